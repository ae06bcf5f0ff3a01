package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// This file covers HTTP/2 abuse (SECURITY.md, "Behaviours pinned by tests")
// and a handler panic on one stream. Every test runs the gateway's default Config — what the binary
// ships — bounds what the client sends, and names the x/net behaviour it
// relies on (golang.org/x/net v0.62.0, the version guard_test.go pins).

// stressHandler counts its calls and how many run at once.
//
//	/block  waits for release, ignoring its context (a slow backend)
//	/ctx    waits for its context to end
//	/body   reads the body and answers its length, or 400 if it cannot
//	/panic  panics; /abort panics with http.ErrAbortHandler
//	other   answers "ok"
type stressHandler struct {
	calls   atomic.Int64
	running atomic.Int64
	peak    atomic.Int64
	release chan struct{}
	once    sync.Once
	// first is "METHOD host target" of the first request served.
	first     atomic.Pointer[string]
	firstOnce sync.Once
}

func newStressHandler() *stressHandler { return &stressHandler{release: make(chan struct{})} }

func (h *stressHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls.Add(1)
	h.firstOnce.Do(func() {
		s := r.Method + " " + r.Host + " " + r.RequestURI
		h.first.Store(&s)
	})
	n := h.running.Add(1)
	defer h.running.Add(-1)
	for p := h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
	}
	switch r.URL.Path {
	case "/block":
		<-h.release
	case "/ctx":
		<-r.Context().Done()
	case "/body":
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d bytes", len(b))
		return
	case "/panic":
		panic("stressHandler: deliberate panic")
	case "/abort":
		panic(http.ErrAbortHandler)
	}
	io.WriteString(w, "ok")
}

func (h *stressHandler) unblock() { h.once.Do(func() { close(h.release) }) }

// resourceWatch samples the live heap and the goroutines serving a
// connection while an attack runs, to bound both. Goroutines are counted the
// way leakCheck counts them (connGoroutines): the runtime and the testing
// package start goroutines of their own at any moment, more so on a loaded
// machine, and an attack that costs the gateway a goroutine per frame shows
// as connection goroutines.
type resourceWatch struct {
	baseHeap int64
	baseG    int64
	base     map[string]string
	peakHeap atomic.Int64
	peakG    atomic.Int64
	// others is the peak count of goroutines that serve no connection,
	// logged for the record.
	others atomic.Int64
	stop   chan struct{}
	done   chan struct{}
}

func liveHeap() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

func watchResources(t *testing.T) *resourceWatch {
	runtime.GC()
	w := &resourceWatch{
		baseHeap: liveHeap(),
		baseG:    int64(runtime.NumGoroutine()),
		base:     connGoroutines(),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		seen := w.baseG
		for {
			if h := liveHeap(); h > w.peakHeap.Load() {
				w.peakHeap.Store(h)
			}
			// A stack dump stops the world: take one only when the
			// goroutine count has reached a new high.
			if g := int64(runtime.NumGoroutine()); g > seen {
				seen = g
				conn := int64(0)
				for id := range connGoroutines() {
					if _, ok := w.base[id]; !ok {
						conn++
					}
				}
				if conn > w.peakG.Load() {
					w.peakG.Store(conn)
				}
				if o := g - w.baseG - conn; o > w.others.Load() {
					w.others.Store(o)
				}
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(w.end)
	return w
}

func (w *resourceWatch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// check ends the watch and fails if the heap grew by more than heapMiB or
// more than goroutines new goroutines served a connection at once. The live
// heap counts garbage not yet collected, so the heap bound is generous: it
// tells a bounded attack (a few MiB) from an unbounded one (everything the
// client sent, or the decoded size of an HPACK bomb).
func (w *resourceWatch) check(t *testing.T, heapMiB, goroutines int64) {
	t.Helper()
	w.end()
	dh, dg := w.peakHeap.Load()-w.baseHeap, w.peakG.Load()
	t.Logf("peak over baseline: heap %.1f MiB, %d goroutines serving a connection (%d others)",
		float64(dh)/(1<<20), dg, w.others.Load())
	if dh > heapMiB<<20 {
		t.Errorf("live heap grew by %.1f MiB during the attack; want at most %d MiB", float64(dh)/(1<<20), heapMiB)
	}
	if dg > goroutines {
		t.Errorf("%d new goroutines served a connection at once during the attack; want at most %d", dg, goroutines)
	}
}

// abuseGateway starts a gateway with the default Config around a
// stressHandler; warn-level logs keep thousands of stream errors out of the
// test output.
func abuseGateway(t *testing.T) (*testGateway, *stressHandler) {
	t.Helper()
	h := newStressHandler()
	tg := startGatewayHandler(t, Config{}, h, zerolog.WarnLevel)
	t.Cleanup(h.unblock)
	return tg, h
}

// h2conn opens a prior-knowledge connection and sends the preface and an
// empty SETTINGS.
func h2conn(t *testing.T, addr string) (net.Conn, *h2client) {
	t.Helper()
	c := dial(t, addr)
	h := newH2Client(t, c, nil)
	h.preface()
	return c, h
}

// outcome names how a connection ended for an assertion message: the first
// GOAWAY's code, or "close" when it ended without one.
func outcome(goaways []*http2.GoAwayFrame, err error) string {
	if len(goaways) > 0 {
		return "GOAWAY " + goaways[0].ErrCode.String()
	}
	if err != nil {
		return "close"
	}
	return "open"
}

func sawGoAwayOrReset(id uint32) func(map[uint32]*response, []*http2.GoAwayFrame) bool {
	return func(r map[uint32]*response, g []*http2.GoAwayFrame) bool {
		return len(g) > 0 || (r[id] != nil && (r[id].reset != nil || r[id].ended))
	}
}

// TestRapidReset: CVE-2023-44487. The client opens streams and resets them
// at once, as fast as it can write, 5000 of them (about 165 KB). x/net
// (fixed in v0.17.0, server.go scheduleHandler) runs at most
// MAX_CONCURRENT_STREAMS handlers at a time (250 by default here), queues the
// rest, and when more than 4×250 are queued hangs up with GOAWAY
// ENHANCE_YOUR_CALM. Against slow handlers that ignore the reset, the
// handler runs at most 250 times; against handlers that stop on the reset,
// at most 250 run at once. Either way memory and goroutines stay bounded.
func TestRapidReset(t *testing.T) {
	const streams = 5000
	for _, tc := range []struct {
		path string
		// goaway is the connection error expected, or 0 when the client
		// may get through all its streams.
		goaway http2.ErrCode
	}{
		{"/block", http2.ErrCodeEnhanceYourCalm},
		{"/ctx", 0},
	} {
		t.Run(tc.path, func(t *testing.T) {
			tg, sh := abuseGateway(t)
			lc := startLeakCheck(t)
			w := watchResources(t)
			c, h := h2conn(t, tg.addr)
			// Write from a goroutine: the server may stop reading.
			var buf bytes.Buffer
			wf := http2.NewFramer(&buf, nil)
			for i := range streams {
				id := uint32(1 + 2*i)
				wf.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true,
					BlockFragment: h.headerBlock(":method", "GET", ":scheme", "http", ":authority", "a", ":path", tc.path)})
				wf.WriteRSTStream(id, http2.ErrCodeCancel)
			}
			wrote := make(chan error, 1)
			go func() { _, err := c.Write(buf.Bytes()); wrote <- err }()
			var goaways []*http2.GoAwayFrame
			var err error
			if tc.goaway != 0 {
				_, goaways, err = h.readUntil(func(_ map[uint32]*response, g []*http2.GoAwayFrame) bool { return len(g) > 0 })
			} else {
				// Streams are processed in order: once a stream opened
				// after all the resets is answered, all were seen. The
				// connection may have been ended meanwhile; both are
				// acceptable, the bounds below are what matters.
				if err = <-wrote; err == nil {
					const sentinel = 1 + 2*streams
					h.get(sentinel, "/ok")
					var resps map[uint32]*response
					resps, goaways, err = h.readUntil(func(r map[uint32]*response, g []*http2.GoAwayFrame) bool {
						return len(g) > 0 || ended(sentinel)(r, g)
					})
					if err == nil && len(goaways) == 0 && resps[sentinel].status != "200" {
						t.Errorf("stream after the resets: %+v; want 200", resps[sentinel])
					}
				}
				wrote <- err
			}
			if tc.goaway != 0 {
				if len(goaways) == 0 || goaways[0].ErrCode != tc.goaway {
					t.Errorf("connection ended with %s; want GOAWAY %v", outcome(goaways, err), tc.goaway)
				}
				if n := sh.calls.Load(); n > int64(DefaultMaxConcurrentStreams) {
					t.Errorf("handler ran %d times for %d reset streams; want at most %d", n, streams, DefaultMaxConcurrentStreams)
				}
			}
			if p := sh.peak.Load(); p > int64(DefaultMaxConcurrentStreams) {
				t.Errorf("%d handlers ran at once; want at most MAX_CONCURRENT_STREAMS %d", p, DefaultMaxConcurrentStreams)
			}
			t.Logf("%d streams sent (%d bytes): %d handler calls, peak %d at once, ended with %s",
				streams, buf.Len(), sh.calls.Load(), sh.peak.Load(), outcome(goaways, err))
			// Two goroutines per running handler and one per stream
			// waiting for its handler, at most.
			w.check(t, 64, 2*int64(DefaultMaxConcurrentStreams)+50)
			c.Close()
			<-wrote
			sh.unblock()
			lc.done()
			expectServing(t, tg.addr, "ok")
		})
	}
}

// handshake reads until the server's SETTINGS and acknowledges it, so that
// readUntil has nothing left to write while another goroutine writes frames
// that must not be interleaved (a header block and its CONTINUATIONs).
func (h *h2client) handshake() {
	h.t.Helper()
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			h.t.Fatalf("reading the server's SETTINGS: %v", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			if err := h.fr.WriteSettingsAck(); err != nil {
				h.t.Fatal(err)
			}
			return
		}
	}
}

// writeAll writes p; it reports false once the server is gone.
func writeAll(c net.Conn, p []byte) bool {
	_, err := c.Write(p)
	return err == nil
}

// TestContinuationFlood: CVE-2023-45288. HEADERS without END_HEADERS, then
// CONTINUATION frames for as long as the server reads them (the client stops
// at 16 MiB). x/net (fixed in v0.23.0, frame.go readMetaFrame) stops decoding
// once the header list passes SETTINGS_MAX_HEADER_LIST_SIZE (MaxHeaderBytes,
// 64 KiB, plus x/net's allowance) and hangs up on the next fragment with
// GOAWAY PROTOCOL_ERROR: the server has read about 100 KB when the GOAWAY
// arrives. (It then drains what comes for x/net's one-second GOAWAY linger
// before closing.) Empty CONTINUATION frames carry no header bytes and so
// never reach that limit: they cost the server a 9-byte read each, and are
// bounded by the idle timeout, which keeps running while no stream is open —
// the second case, with a short IdleTimeout, shows the GOAWAY NO_ERROR.
func TestContinuationFlood(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		frag []byte
		// maxRead bounds what the server read before its GOAWAY; 0 for
		// the case bounded by time instead.
		maxRead int64
		goaway  http2.ErrCode
	}{
		{"header bytes", Config{}, func() []byte {
			// Literal fields without indexing, 16 KB per frame.
			var b bytes.Buffer
			for b.Len() < 16000 {
				b.Write(hpackLiteral("x-flood", strings.Repeat("v", 1000)))
			}
			return b.Bytes()
		}(), 1 << 20, http2.ErrCodeProtocol},
		{"empty frames", Config{IdleTimeout: 300 * time.Millisecond}, nil, 0, http2.ErrCodeNo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh := newStressHandler()
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cl := &countingListener{Listener: l}
			tg := startGatewayOn(t, cl, tc.cfg, sh, zerolog.WarnLevel)
			lc := startLeakCheck(t)
			w := watchResources(t)
			c, h := h2conn(t, tg.addr)
			h.handshake()
			var frame bytes.Buffer
			http2.NewFramer(&frame, nil).WriteContinuation(1, false, tc.frag)
			// Batch frames so that an empty-frame flood is not a syscall
			// per 9 bytes.
			batch := bytes.Repeat(frame.Bytes(), max(1, 64<<10/frame.Len()))

			const limit = 16 << 20
			var sent atomic.Int64
			stop := make(chan struct{})
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				fr := http2.NewFramer(c, nil)
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true,
					BlockFragment: h.headerBlock(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/")})
				for sent.Load() < limit && writeAll(c, batch) {
					sent.Add(int64(len(batch)))
					select {
					case <-stop:
						return
					default:
					}
				}
			}()
			start := time.Now()
			_, goaways, err := h.readUntil(func(_ map[uint32]*response, g []*http2.GoAwayFrame) bool { return len(g) > 0 })
			read, elapsed := cl.read.Load(), time.Since(start)
			close(stop)
			if len(goaways) == 0 || goaways[0].ErrCode != tc.goaway {
				t.Errorf("connection ended with %s; want GOAWAY %v", outcome(goaways, err), tc.goaway)
			}
			t.Logf("GOAWAY after %v; the server had read %d KiB, the client written %d KiB",
				elapsed.Round(time.Millisecond), read>>10, sent.Load()>>10)
			if tc.maxRead > 0 && read > tc.maxRead {
				t.Errorf("server read %d KiB of CONTINUATION before its GOAWAY; want at most %d KiB", read>>10, tc.maxRead>>10)
			}
			if tc.maxRead == 0 && elapsed > 5*time.Second {
				t.Errorf("GOAWAY after %v; want about the %v idle timeout", elapsed, tc.cfg.IdleTimeout)
			}
			// The server closes after its GOAWAY; the writer then fails.
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			io.Copy(io.Discard, h.br)
			c.Close()
			<-stopped
			if n := sh.calls.Load(); n != 0 {
				t.Errorf("handler ran %d times; want 0", n)
			}
			w.check(t, 32, 20)
			lc.done()
			expectServing(t, tg.addr, "ok")
		})
	}
}

// hpackLiteral encodes a "literal header field without indexing — new
// name" (RFC 7541 §6.2.2) with 7-bit string lengths of any size.
func hpackLiteral(name, value string) []byte {
	b := []byte{0x00}
	for _, s := range []string{name, value} {
		b = appendHpackInt(b, 0, 7, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// appendHpackInt appends an integer with an n-bit prefix (RFC 7541 §5.1).
func appendHpackInt(b []byte, first byte, n uint, v uint64) []byte {
	max := uint64(1)<<n - 1
	if v < max {
		return append(b, first|byte(v))
	}
	b = append(b, first|byte(max))
	v -= max
	for v >= 128 {
		b = append(b, byte(v&0x7f|0x80))
		v >>= 7
	}
	return append(b, byte(v))
}

// TestHPACKBomb: one 4 KB field put in the dynamic table, then referenced by
// its one-byte index 11000 times: 15 KB on the wire that decode to 44 MB
// (16000 times, 64 MB, over three frames in the second case).
// x/net (frame.go readMetaFrame) stops emitting fields once the list passes
// SETTINGS_MAX_HEADER_LIST_SIZE and answers 431 without running the handler
// — the decoded size is never held. Split over CONTINUATION frames, the
// fragment after the limit is a connection error instead (the CVE-2023-45288
// rule). Either way the handler never sees it and the server stays up.
func TestHPACKBomb(t *testing.T) {
	for _, tc := range []struct {
		name  string
		split bool
		want  string
	}{
		{"one frame", false, "431"},
		{"with CONTINUATION", true, "GOAWAY PROTOCOL_ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, sh := abuseGateway(t)
			lc := startLeakCheck(t)
			w := watchResources(t)
			c, h := h2conn(t, tg.addr)
			big := strings.Repeat("b", 4000)
			h.hbuf.Reset()
			for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "a"}, {":path", "/bomb"}} {
				h.henc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			// The encoder indexes the field the first time, then
			// refers to it by index (RFC 7541 §6.1).
			refs := 11000 // one HEADERS frame: under MAX_FRAME_SIZE 16384
			if tc.split {
				refs = 16000
			}
			for range refs {
				h.henc.WriteField(hpack.HeaderField{Name: "x-bomb", Value: big})
			}
			block := bytes.Clone(h.hbuf.Bytes())
			if tc.split {
				h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, BlockFragment: block[:8000]})
				h.fr.WriteContinuation(1, false, block[8000:16000])
				h.fr.WriteContinuation(1, true, block[16000:])
			} else {
				h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true, BlockFragment: block})
			}
			resps, goaways, err := h.readUntil(sawGoAwayOrReset(1))
			got := outcome(goaways, err)
			if r := resps[1]; got == "open" && r != nil {
				got = r.status
			}
			t.Logf("%d-byte header block (decoded: %d MB): %s", len(block), refs*(4000+6)/1000000, got)
			if got != tc.want {
				t.Errorf("got %s; want %s", got, tc.want)
			}
			if got == "431" {
				// The connection goes on, HPACK state intact.
				h.get(3, "/after")
				resps, _, err := h.readUntil(ended(3))
				if err != nil || resps[3].status != "200" {
					t.Errorf("stream 3 after the bomb: %+v %v; want 200", resps[3], err)
				}
			}
			if n := sh.calls.Load(); n > 1 {
				t.Errorf("handler ran %d times; want only the request after the bomb", n)
			}
			w.check(t, 32, 20)
			c.Close()
			lc.done()
			expectServing(t, tg.addr, "ok")
		})
	}
}

// TestHeaderListOverLimit: plain header fields past MaxHeaderBytes (64 KiB).
// On HTTP/2, x/net answers 431 when the list ends within the frame that
// passes the limit, and hangs up when more fragments follow; on HTTP/1.1,
// net/http answers 431 to the head. The handler never runs.
func TestHeaderListOverLimit(t *testing.T) {
	field := hpackLiteral("x-long", strings.Repeat("l", 8000))
	for _, tc := range []struct {
		name   string
		frames [][]byte
		want   string
	}{
		// 9 fields of 8 KB: 72 KB, in one HEADERS frame (allowed up to
		// MAX_FRAME_SIZE 16384 only; so in frames of ≤16 KB).
		{"ends in the frame past the limit", splitBlock(bytes.Repeat(field, 9), 16000), "GOAWAY PROTOCOL_ERROR|431"},
		{"more fragments follow", splitBlock(bytes.Repeat(field, 12), 16000), "GOAWAY PROTOCOL_ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, sh := abuseGateway(t)
			lc := startLeakCheck(t)
			c, h := h2conn(t, tg.addr)
			pseudo := h.headerBlock(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/long")
			h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, BlockFragment: pseudo})
			for i, f := range tc.frames {
				h.fr.WriteContinuation(1, i == len(tc.frames)-1, f)
			}
			resps, goaways, err := h.readUntil(sawGoAwayOrReset(1))
			got := outcome(goaways, err)
			if r := resps[1]; got == "open" && r != nil {
				got = r.status
			}
			if !strings.Contains("|"+tc.want+"|", "|"+got+"|") {
				t.Errorf("got %s; want %s", got, tc.want)
			}
			t.Logf("%d KB of fields: %s", len(bytes.Join(tc.frames, nil))>>10, got)
			if n := sh.calls.Load(); n != 0 {
				t.Errorf("handler ran %d times; want 0", n)
			}
			c.Close()
			lc.done()
			expectServing(t, tg.addr, "ok")
		})
	}
	t.Run("HTTP/1.1 head", func(t *testing.T) {
		tg, sh := abuseGateway(t)
		lc := startLeakCheck(t)
		c := dial(t, tg.addr)
		br := bufio.NewReader(c)
		io.WriteString(c, upgradeHead("GET", "/long", "X-Long: "+strings.Repeat("l", 70<<10)))
		resp, _ := readHTTP1(t, br, "GET")
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("got %s; want 431", resp.Status)
		}
		if n := sh.calls.Load(); n != 0 {
			t.Errorf("handler ran %d times; want 0", n)
		}
		c.Close()
		lc.done()
		expectServing(t, tg.addr, "ok")
	})
}

func splitBlock(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// floodUntilClosed writes batch until the server closes or limit bytes are
// out, and returns how many bytes were written.
func floodUntilClosed(t *testing.T, c net.Conn, batch []byte, limit int) int {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	sent := 0
	for sent < limit {
		n, err := c.Write(batch)
		sent += n
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("server stopped reading without closing after %d KiB", sent>>10)
			}
			break
		}
	}
	return sent
}

// TestPingFlood: CVE-2019-9512. PINGs from a client that never reads its
// ACKs. x/net (server.go, maxQueuedControlFrames) closes the connection once
// 10000 control frames are queued unsent. The client is allowed 64 MiB of
// PINGs; the server closes after the socket buffers and its queue fill, a
// few MiB in.
func TestPingFlood(t *testing.T) {
	tg, sh := abuseGateway(t)
	lc := startLeakCheck(t)
	w := watchResources(t)
	c, _ := h2conn(t, tg.addr)
	var batch bytes.Buffer
	fr := http2.NewFramer(&batch, nil)
	for range 4096 {
		fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	}
	const limit = 64 << 20
	sent := floodUntilClosed(t, c, batch.Bytes(), limit)
	t.Logf("server closed after %d KiB of PING (%d frames)", sent>>10, sent/17)
	if sent >= limit {
		t.Errorf("connection still open after %d MiB of unread PINGs", limit>>20)
	}
	w.check(t, 64, 20)
	c.Close()
	lc.done()
	if n := sh.calls.Load(); n != 0 {
		t.Errorf("handler ran %d times; want 0", n)
	}
	expectServing(t, tg.addr, "ok")
}

// TestSettingsFlood: CVE-2019-9515. SETTINGS frames from a client that never
// reads. x/net sends one SETTINGS ACK for all the frames that arrived before
// it could write (server.go needToSendSettingsAck), so nothing queues up:
// the connection is not closed, memory stays flat, and once the client
// reads again it is served. 2 MiB of SETTINGS (140,000 frames) are sent. A single SETTINGS
// with more than 100 entries, or with duplicates, is a connection error
// (server.go processSettings).
func TestSettingsFlood(t *testing.T) {
	t.Run("many frames", func(t *testing.T) {
		tg, sh := abuseGateway(t)
		lc := startLeakCheck(t)
		w := watchResources(t)
		c, h := h2conn(t, tg.addr)
		var batch bytes.Buffer
		fr := http2.NewFramer(&batch, nil)
		for range 4096 {
			fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
		}
		const limit = 2 << 20
		sent := floodUntilClosed(t, c, batch.Bytes(), limit)
		if sent < limit {
			t.Fatalf("server closed after %d KiB of SETTINGS; want the connection kept", sent>>10)
		}
		w.check(t, 32, 20)
		h.get(1, "/after")
		resps, _, err := h.readUntil(ended(1))
		if err != nil || resps[1].status != "200" {
			t.Errorf("request after the flood: %+v %v; want 200", resps[1], err)
		}
		c.Close()
		lc.done()
		if n := sh.calls.Load(); n != 1 {
			t.Errorf("handler ran %d times; want once", n)
		}
		expectServing(t, tg.addr, "ok")
	})
	for _, tc := range []struct {
		name     string
		settings []http2.Setting
	}{
		{"101 entries", func() []http2.Setting {
			s := make([]http2.Setting, 101)
			for i := range s {
				s[i] = http2.Setting{ID: http2.SettingID(0x100 + i), Val: 1}
			}
			return s
		}()},
		{"duplicates", []http2.Setting{{ID: http2.SettingEnablePush, Val: 0}, {ID: http2.SettingEnablePush, Val: 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, _ := abuseGateway(t)
			lc := startLeakCheck(t)
			c, h := h2conn(t, tg.addr)
			h.fr.WriteSettings(tc.settings...)
			_, goaways, err := h.readUntil(func(_ map[uint32]*response, g []*http2.GoAwayFrame) bool { return len(g) > 0 })
			if got := outcome(goaways, err); got != "GOAWAY PROTOCOL_ERROR" {
				t.Errorf("got %s; want GOAWAY PROTOCOL_ERROR", got)
			}
			c.Close()
			lc.done()
			expectServing(t, tg.addr, "ok")
		})
	}
}

// TestFrameAbuse covers the remaining frame-level cases, each on one
// prior-knowledge connection: the outcome on the offending stream or
// connection, and, where the connection survives, a request after it.
func TestFrameAbuse(t *testing.T) {
	cases := []struct {
		name string
		// send writes the abuse on stream 1 (and 3 when needed); the
		// connection's next stream is 5.
		send func(h *h2client)
		// want: "GOAWAY <code>", "RST_STREAM <code>" (on stream 1), or a
		// status on stream 1; several may be joined with "|".
		want     string
		survives bool
		// handled, when set, is what the handler saw of stream 1
		// ("METHOD host target").
		handled string
	}{
		{
			// RFC 9113 §6.9.1: a window over 2^31-1 is a
			// FLOW_CONTROL_ERROR, of the connection on stream 0.
			"WINDOW_UPDATE overflow, connection", func(h *h2client) {
				h.fr.WriteWindowUpdate(0, 1<<31-1)
			}, "GOAWAY FLOW_CONTROL_ERROR", false, "",
		},
		{
			"WINDOW_UPDATE overflow, stream", func(h *h2client) {
				h.get(1, "/block")
				h.fr.WriteWindowUpdate(1, 1<<31-1)
			}, "RST_STREAM FLOW_CONTROL_ERROR", true, "",
		},
		{
			// RFC 9113 §6.9: an increment of 0 is a PROTOCOL_ERROR.
			"WINDOW_UPDATE zero, stream", func(h *h2client) {
				h.get(1, "/block")
				h.fr.AllowIllegalWrites = true
				h.fr.WriteWindowUpdate(1, 0)
			}, "RST_STREAM PROTOCOL_ERROR", true, "",
		},
		{
			// RFC 9113 §5.5: unknown frame types are ignored, on the
			// connection and inside a stream's lifetime.
			"unknown frame types", func(h *h2client) {
				h.fr.WriteRawFrame(0xfa, 0, 0, []byte("on stream 0"))
				h.writeRequest(1, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/body")
				h.fr.WriteRawFrame(0xfb, 0xff, 1, []byte("on stream 1"))
				h.fr.WriteData(1, true, []byte("hello"))
			}, "200", true, "",
		},
		{
			// RFC 8441: extended CONNECT needs SETTINGS_ENABLE_CONNECT_PROTOCOL,
			// which x/net does not advertise by default (golang/go#71128).
			"extended CONNECT", func(h *h2client) {
				h.writeRequest(1, true, ":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":authority", "a", ":path", "/chat")
			}, "RST_STREAM PROTOCOL_ERROR", true, "",
		},
		{
			// RFC 9113 §8.5: a CONNECT carries only :method and
			// :authority. x/net hands it to the handler like any request
			// (Method "CONNECT", Host the authority); what it does with
			// it is the handler's business — here it answers "ok".
			"plain CONNECT", func(h *h2client) {
				h.writeRequest(1, true, ":method", "CONNECT", ":authority", "example.test:443")
			}, "200", true, "CONNECT example.test:443 example.test:443",
		},
		{
			"CONNECT with a path", func(h *h2client) {
				h.writeRequest(1, true, ":method", "CONNECT", ":scheme", "http", ":authority", "example.test:443", ":path", "/")
			}, "RST_STREAM PROTOCOL_ERROR", true, "",
		},
		{
			// RFC 9113 §8.1.1: DATA past content-length is malformed.
			"DATA longer than content-length", func(h *h2client) {
				h.writeRequest(1, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/body", "content-length", "5")
				h.fr.WriteData(1, true, []byte("0123456789"))
			}, "RST_STREAM PROTOCOL_ERROR", true, "",
		},
		{
			// Shorter: x/net fails the handler's body read ("declared a
			// Content-Length of 10 but only wrote 5 bytes") rather than
			// resetting the stream; a handler that checks its read errors
			// (as this one and the proxy must) never takes it as whole.
			"DATA shorter than content-length", func(h *h2client) {
				h.writeRequest(1, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/body", "content-length", "10")
				h.fr.WriteData(1, true, []byte("01234"))
			}, "400|RST_STREAM PROTOCOL_ERROR", true, "",
		},
		{
			// x/net takes an unparsable content-length as 0 (server.go
			// newWriterAndRequest), so the first DATA byte is "more than
			// declared". Without a body (END_STREAM on HEADERS) such a
			// request reaches the handler with ContentLength 0; Go's
			// transports never forward the field as received.
			"invalid content-length", func(h *h2client) {
				h.writeRequest(1, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/body", "content-length", "ten")
				h.fr.WriteData(1, true, []byte("hello"))
			}, "RST_STREAM PROTOCOL_ERROR", true, "",
		},
		{
			// RFC 9113 §6.9.1: DATA beyond the 1 MiB stream window
			// (the handler does not read). x/net charges neither window
			// for the offending frame, so only the stream is reset.
			"DATA beyond the window", func(h *h2client) {
				h.writeRequest(1, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/block")
				chunk := make([]byte, 16384)
				for range 1<<20/16384 + 8 {
					h.fr.WriteData(1, false, chunk)
				}
			}, "RST_STREAM FLOW_CONTROL_ERROR", true, "",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg, sh := abuseGateway(t)
			lc := startLeakCheck(t)
			c, h := h2conn(t, tg.addr)
			tc.send(h)
			resps, goaways, err := h.readUntil(sawGoAwayOrReset(1))
			got := outcome(goaways, err)
			if r := resps[1]; got == "open" && r != nil {
				if r.reset != nil {
					got = "RST_STREAM " + r.reset.ErrCode.String()
				} else {
					got = r.status
				}
			}
			if !strings.Contains("|"+tc.want+"|", "|"+got+"|") {
				t.Errorf("got %s (stream 1: %+v); want %s", got, resps[1], tc.want)
			}
			t.Logf("outcome: %s", got)
			if tc.handled != "" {
				if p := sh.first.Load(); p == nil || *p != tc.handled {
					t.Errorf("handler saw %v; want %q", p, tc.handled)
				}
			}
			if tc.survives && len(goaways) == 0 {
				h.get(5, "/after")
				resps, _, err := h.readUntil(ended(5))
				if err != nil || resps[5].status != "200" {
					t.Errorf("stream 5 after it: %+v %v; want 200", resps[5], err)
				}
			}
			sh.unblock()
			c.Close()
			lc.done()
			expectServing(t, tg.addr, "ok")
		})
	}
}

// TestExtendedConnectNotAdvertised: the gateway's SETTINGS do not carry
// SETTINGS_ENABLE_CONNECT_PROTOCOL: extended CONNECT (RFC 8441) stays off.
func TestExtendedConnectNotAdvertised(t *testing.T) {
	tg, _ := abuseGateway(t)
	c := dial(t, tg.addr)
	h := newH2Client(t, c, nil)
	h.preface()
	f, err := h.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v; want SETTINGS", f.Header())
	}
	if v, ok := sf.Value(http2.SettingEnableConnectProtocol); ok {
		t.Errorf("SETTINGS_ENABLE_CONNECT_PROTOCOL = %d advertised; want it absent", v)
	}
}

// TestHandlerPanic: a handler that panics on one stream fails that stream
// only — x/net recovers it and resets the stream with INTERNAL_ERROR
// (server.go runHandler) — and the connection and its other streams go on.
// On stream 1 of an upgrade, the gateway's own stream-1 wrapper unwinds
// with it. On HTTP/1.1, net/http recovers and closes that connection.
func TestHandlerPanic(t *testing.T) {
	for _, path := range []EntryPath{PathPriorKnowledge, PathUpgrade} {
		for _, p := range []string{"/panic", "/abort"} {
			t.Run(string(path)+p, func(t *testing.T) {
				tg, sh := abuseGateway(t)
				lc := startLeakCheck(t)
				c := dial(t, tg.addr)
				var h *h2client
				if path == PathUpgrade {
					br := bufio.NewReader(c)
					io.WriteString(c, upgradeHead("GET", p))
					expect101(t, br)
					h = newH2Client(t, c, br)
					h.preface()
					h.get(3, p)
				} else {
					h = newH2Client(t, c, nil)
					h.preface()
					h.get(1, p)
					h.get(3, p)
				}
				h.get(5, "/ok")
				resps, goaways, err := h.readUntil(ended(1, 3, 5))
				if err != nil || len(goaways) > 0 {
					t.Fatalf("connection ended: %v, GOAWAY %v; want it kept", err, goaways)
				}
				for _, id := range []uint32{1, 3} {
					if r := resps[id]; r.reset == nil || r.reset.ErrCode != http2.ErrCodeInternal {
						t.Errorf("stream %d: %+v; want RST_STREAM INTERNAL_ERROR", id, r)
					}
				}
				if r := resps[5]; r.status != "200" {
					t.Errorf("stream 5: %+v; want 200", r)
				}
				h.get(7, "/ok")
				if resps, _, err := h.readUntil(ended(7)); err != nil || resps[7].status != "200" {
					t.Errorf("stream 7 after the panics: %+v %v; want 200", resps[7], err)
				}
				if n := sh.running.Load(); n != 0 {
					t.Errorf("%d handlers still counted as running", n)
				}
				c.Close()
				lc.done()
				expectServing(t, tg.addr, "ok")
			})
		}
	}
	t.Run("HTTP/1.1", func(t *testing.T) {
		tg, _ := abuseGateway(t)
		lc := startLeakCheck(t)
		c := dial(t, tg.addr)
		io.WriteString(c, "GET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
		if rest := expectClosed(t, c, c, 5*time.Second); len(rest) != 0 {
			t.Errorf("got %q; want the connection closed without a response", rest)
		}
		c.Close()
		lc.done()
		expectServing(t, tg.addr, "ok")
	})
}
