package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// seen is what the test handler observed of one request.
type seen struct {
	Via        EntryPath
	Proto      string
	ProtoMajor int
	Method     string
	RequestURI string
	Host       string
	Header     http.Header
	BodyLen    int
	BodySHA    string
	ContentLen int64
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// recorder is a handler that records what reached it and answers with a
// short body. Requests to /slow block until release is closed.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
	// arrived gets one value per request, after it is recorded.
	arrived chan seen
	release chan struct{}
	// ctxDone is closed per request path "/watch" when its context ends.
	ctxDone chan struct{}
}

func newRecorder() *recorder {
	return &recorder{arrived: make(chan seen, 64), release: make(chan struct{}), ctxDone: make(chan struct{}, 8)}
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s := seen{
		Via: EntryPathFromContext(r.Context()), Proto: r.Proto, ProtoMajor: r.ProtoMajor,
		Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(),
		BodyLen: len(body), BodySHA: sha(body), ContentLen: r.ContentLength,
	}
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, s)
	rec.mu.Unlock()
	rec.arrived <- s
	switch r.URL.Path {
	case "/slow":
		<-rec.release
	case "/watch":
		<-r.Context().Done()
		rec.ctxDone <- struct{}{}
		return
	case "/big":
		w.Write(bytes.Repeat([]byte("x"), 100))
		return
	}
	fmt.Fprintf(w, "ok %s %s", s.Via, s.Proto)
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.reqs)
}

// eventLog collects events reported to Config.OnEvent.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) has(kind EventKind, reason Reason) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Kind == kind && e.Reason == reason {
			return true
		}
	}
	return false
}

// answered reports an event for a response the gateway wrote itself with
// the given reason and status, carrying its request.
func (l *eventLog) answered(reason Reason, status int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Reason == reason && e.Status == status && e.Request != nil {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or a bound passes: events are reported
// from server goroutines, after the client may already have its answer.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type testGateway struct {
	g      *Gateway
	addr   string
	rec    *recorder
	events *eventLog
}

// startGateway serves a recorder behind a Gateway on loopback port 0.
func startGateway(t *testing.T, cfg Config) *testGateway {
	t.Helper()
	rec := newRecorder()
	events := &eventLog{}
	cfg.OnEvent = events.add
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	g := New(rec, cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(l) }()
	t.Cleanup(func() {
		g.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v; want http.ErrServerClosed", err)
		}
		// Close does not wait for the goroutines serving upgraded
		// connections; they log to t, which must outlive them.
		waitFor(t, "upgraded connections to end", func() bool {
			open, _ := g.conns.counts()
			return open == 0
		})
	})
	return &testGateway{g: g, addr: l.Addr().String(), rec: rec, events: events}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// upgradeHead is an h2c upgrade request head with the given extra lines.
func upgradeHead(method, target string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: example.test\r\n", method, target)
	b.WriteString("Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n")
	for _, l := range extra {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// h2client speaks HTTP/2 frames over a raw connection, for tests that must
// see the exact bytes and frames.
type h2client struct {
	t    *testing.T
	c    net.Conn
	br   *bufio.Reader
	fr   *http2.Framer
	henc *hpack.Encoder
	hbuf bytes.Buffer
	dec  *hpack.Decoder
}

func newH2Client(t *testing.T, c net.Conn, br *bufio.Reader) *h2client {
	if br == nil {
		br = bufio.NewReader(c)
	}
	h := &h2client{t: t, c: c, br: br}
	h.fr = http2.NewFramer(c, br)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.henc = hpack.NewEncoder(&h.hbuf)
	return h
}

// want101 is the whole 101 RFC 7540 §3.2 promises, written out here rather than
// taken from the gateway's own constant, so that a wrong constant fails.
const want101 = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"

// expect101 reads the response to an upgrade and checks it is exactly the
// 101 the gateway promises.
func expect101(t *testing.T, br *bufio.Reader) {
	t.Helper()
	buf := make([]byte, len(want101))
	if _, err := io.ReadFull(br, buf); err != nil {
		t.Fatalf("reading 101: %v", err)
	}
	if string(buf) != want101 {
		t.Fatalf("got response %q; want %q", buf, want101)
	}
}

// upgradeTo connects to addr, sends head (an upgrade request, its body
// included), checks the 101 and sends the client preface: the connection
// is then HTTP/2 with stream 1 in flight.
func upgradeTo(t *testing.T, addr, head string) *h2client {
	t.Helper()
	c := dial(t, addr)
	br := bufio.NewReader(c)
	io.WriteString(c, head)
	expect101(t, br)
	h := newH2Client(t, c, br)
	h.preface()
	return h
}

// openHTTP2 opens an HTTP/2 connection to addr by the given entry path with
// stream 1 (GET target) in flight: the upgrade's own request, or a first
// request after the prior-knowledge preface.
func openHTTP2(t *testing.T, addr string, path EntryPath, target string) *h2client {
	t.Helper()
	if path == PathUpgrade {
		return upgradeTo(t, addr, upgradeHead("GET", target))
	}
	c := dial(t, addr)
	h := newH2Client(t, c, nil)
	h.preface()
	h.get(1, target)
	return h
}

// headerBlock encodes fields, pseudo-fields first, for a HEADERS frame.
func (h *h2client) headerBlock(fields ...string) []byte {
	h.hbuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		h.henc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(h.hbuf.Bytes())
}

func (h *h2client) writeRequest(id uint32, endStream bool, fields ...string) {
	h.t.Helper()
	err := h.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: h.headerBlock(fields...), EndStream: endStream, EndHeaders: true,
	})
	if err != nil {
		h.t.Fatalf("writing HEADERS: %v", err)
	}
}

func (h *h2client) get(id uint32, path string, extra ...string) {
	h.writeRequest(id, true, append([]string{":method", "GET", ":scheme", "http", ":authority", "example.test", ":path", path}, extra...)...)
}

// response is what arrived on one stream.
type response struct {
	status  string
	header  map[string]string
	body    []byte
	ended   bool
	reset   *http2.RSTStreamFrame
	dataLen []int
}

// readUntil reads frames, collecting responses by stream, until cond holds or
// the connection ends. It answers PINGs and acknowledges SETTINGS, and
// reports GOAWAY frames seen.
func (h *h2client) readUntil(cond func(map[uint32]*response, []*http2.GoAwayFrame) bool) (map[uint32]*response, []*http2.GoAwayFrame, error) {
	resps := map[uint32]*response{}
	var goaways []*http2.GoAwayFrame
	get := func(id uint32) *response {
		r := resps[id]
		if r == nil {
			r = &response{header: map[string]string{}}
			resps[id] = r
		}
		return r
	}
	for !cond(resps, goaways) {
		f, err := h.fr.ReadFrame()
		if err != nil {
			return resps, goaways, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				h.fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			r := get(f.StreamID)
			for _, hf := range f.Fields {
				if hf.Name == ":status" {
					r.status = hf.Value
				} else {
					r.header[hf.Name] = hf.Value
				}
			}
			r.ended = r.ended || f.StreamEnded()
		case *http2.DataFrame:
			r := get(f.StreamID)
			r.body = append(r.body, f.Data()...)
			r.dataLen = append(r.dataLen, len(f.Data()))
			r.ended = r.ended || f.StreamEnded()
		case *http2.RSTStreamFrame:
			get(f.StreamID).reset = f
		case *http2.GoAwayFrame:
			goaways = append(goaways, f)
		case *http2.PingFrame:
			if !f.IsAck() {
				h.fr.WritePing(true, f.Data)
			}
		}
	}
	return resps, goaways, nil
}

// ended reports that every listed stream has ended.
func ended(ids ...uint32) func(map[uint32]*response, []*http2.GoAwayFrame) bool {
	return func(r map[uint32]*response, _ []*http2.GoAwayFrame) bool {
		for _, id := range ids {
			if r[id] == nil || (!r[id].ended && r[id].reset == nil) {
				return false
			}
		}
		return true
	}
}

// preface writes the client preface and an empty SETTINGS frame.
func (h *h2client) preface() {
	h.t.Helper()
	if _, err := io.WriteString(h.c, http2.ClientPreface); err != nil {
		h.t.Fatal(err)
	}
	if err := h.fr.WriteSettings(); err != nil {
		h.t.Fatal(err)
	}
}

// readHTTP1 reads one HTTP/1.1 response from br.
func readHTTP1(t *testing.T, br *bufio.Reader, method string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading HTTP/1.1 response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading HTTP/1.1 body: %v", err)
	}
	return resp, body
}

// expectClosed reads until the peer closes, failing if it takes too long.
func expectClosed(t *testing.T, c net.Conn, br io.Reader, within time.Duration) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	rest, err := io.ReadAll(br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", within)
	}
	return rest
}

var _ = context.Background
