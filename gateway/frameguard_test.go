package gateway

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/internal/testwait"
	"github.com/rs/zerolog"
	"golang.org/x/net/http2"
)

// guardGateway serves a stressHandler with cfg.
func guardGateway(t *testing.T, cfg Config) (*testGateway, *stressHandler) {
	t.Helper()
	h := newStressHandler()
	tg := startGatewayHandler(t, cfg, h, zerolog.WarnLevel)
	t.Cleanup(h.unblock)
	return tg, h
}

func (h *h2client) req(path string, extra ...string) []string {
	return append([]string{":method", "GET", ":scheme", "http", ":authority", "a", ":path", path}, extra...)
}

// TestGlitchLimit: streams reset before their response is complete — by the
// client (rapid reset, CVE-2023-44487), or by the server for the client's
// protocol errors (MadeYouReset, CVE-2025-8671: DATA past END_STREAM, a body
// longer than its content-length; both servers ignore the third primitive,
// a stream WINDOW_UPDATE of 0, rather than reset the stream) — count against
// GlitchLimit; the one too many ends the connection with GOAWAY
// ENHANCE_YOUR_CALM naming the last stream opened, and is reported. Fewer
// keep the connection serving, and the gateway serves others throughout.
func TestGlitchLimit(t *testing.T) {
	const limit = 20
	glitches := map[string]func(h *h2client, wf *http2.Framer, id uint32){
		"client reset": func(h *h2client, wf *http2.Framer, id uint32) {
			wf.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true, BlockFragment: h.headerBlock(h.req("/ctx")...)})
			wf.WriteRSTStream(id, http2.ErrCodeCancel)
		},
		"data after end stream": func(h *h2client, wf *http2.Framer, id uint32) {
			wf.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true, BlockFragment: h.headerBlock(h.req("/ctx")...)})
			wf.WriteData(id, false, []byte("x"))
		},
		"content-length overrun": func(h *h2client, wf *http2.Framer, id uint32) {
			wf.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, BlockFragment: h.headerBlock(h.req("/ctx", "content-length", "1")...)})
			wf.WriteData(id, true, []byte("xx"))
		},
	}
	for name, glitch := range glitches {
		for _, n := range []int{limit, limit + 1} {
			t.Run(name+"/"+map[bool]string{true: "past", false: "at"}[n > limit], func(t *testing.T) {
				tg, _ := guardGateway(t, Config{GlitchLimit: limit, GlitchWindow: time.Hour})
				c, h := h2conn(t, tg.addr)
				var buf bytes.Buffer
				wf := http2.NewFramer(&buf, nil)
				var last uint32
				for i := range n {
					last = uint32(1 + 2*i)
					glitch(h, wf, last)
				}
				if _, err := c.Write(buf.Bytes()); err != nil {
					t.Fatal(err)
				}
				sentinel := last + 2
				h.get(sentinel, "/ok")
				// Past the limit, read on to the GOAWAY: the server's own
				// resets may be written after the sentinel's response.
				resps, goaways, err := h.readUntil(func(r map[uint32]*response, g []*http2.GoAwayFrame) bool {
					return len(g) > 0 || (n <= limit && ended(sentinel)(r, g))
				})
				if n <= limit {
					if len(goaways) > 0 || err != nil || resps[sentinel].status != "200" {
						t.Fatalf("%d glitches (limit %d): connection ended with %s, stream after them %+v; want it served", n, limit, outcome(goaways, err), resps[sentinel])
					}
					if tg.events.has(EventRefused, ReasonGlitches) {
						t.Error("reported glitches refusal under the limit")
					}
					return
				}
				if len(goaways) == 0 || goaways[0].ErrCode != http2.ErrCodeEnhanceYourCalm {
					t.Fatalf("%d glitches (limit %d): connection ended with %s; want GOAWAY ENHANCE_YOUR_CALM", n, limit, outcome(goaways, err))
				}
				if got := goaways[0].LastStreamID; got < last || got > sentinel {
					t.Errorf("GOAWAY last stream %d; want the last opened, %d or %d", got, last, sentinel)
				}
				expectClosed(t, c, h.br, 5*time.Second)
				waitFor(t, "the glitches refusal event", func() bool { return tg.events.has(EventRefused, ReasonGlitches) })
				expectServing(t, tg.addr, "ok")
			})
		}
	}
}

// TestGlitchWindow: the limit is a rate: glitches spread out over more than
// GlitchWindow do not add up.
func TestGlitchWindow(t *testing.T) {
	const limit = 10
	window := 200 * time.Millisecond
	tg, _ := guardGateway(t, Config{GlitchLimit: limit, GlitchWindow: window})
	c, h := h2conn(t, tg.addr)
	id := uint32(1)
	for range 3 {
		var buf bytes.Buffer
		wf := http2.NewFramer(&buf, nil)
		for range limit {
			wf.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true, BlockFragment: h.headerBlock(h.req("/ctx")...)})
			wf.WriteRSTStream(id, http2.ErrCodeCancel)
			id += 2
		}
		if _, err := c.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(window + 50*time.Millisecond)
	}
	h.get(id, "/ok")
	resps, goaways, err := h.readUntil(func(r map[uint32]*response, g []*http2.GoAwayFrame) bool {
		return len(g) > 0 || ended(id)(r, g)
	})
	if len(goaways) > 0 || err != nil || resps[id].status != "200" {
		t.Fatalf("%d glitches over %v at %d per %v: %s, %+v; want served", 3*limit, 3*window, limit, window, outcome(goaways, err), resps[id])
	}
}

// TestStreamRefusedOverBudget: past the memory budget, a new stream gets
// REFUSED_STREAM before any handler sees it (RFC 9113 §8.7: safe to
// retry), the overload is reported once, and once the held streams are
// answered the budget recovers and new streams are served. The accounting
// is of decoded headers: a 4 KiB field sent once and referenced by its HPACK
// index costs its decoded size on every stream.
func TestStreamRefusedOverBudget(t *testing.T) {
	const budget = 64 << 10
	tg, sh := guardGateway(t, Config{MemoryBudget: budget})
	_, h := h2conn(t, tg.addr)
	h.handshake()
	big := strings.Repeat("v", 4000)
	// About 8 KiB decoded per stream, 16 bytes on the wire after the
	// first: the encoder indexes the fields.
	extra := []string{"x-a", big, "x-b", big}
	const held = 12
	for i := range held {
		h.writeRequest(uint32(1+2*i), true, h.req("/block", extra...)...)
	}
	refused := uint32(1 + 2*held)
	resps, goaways, err := h.readUntil(func(r map[uint32]*response, g []*http2.GoAwayFrame) bool {
		for id := uint32(1); id < refused; id += 2 {
			if r[id] != nil && r[id].reset != nil {
				return true
			}
		}
		return len(g) > 0 || sh.calls.Load() == held
	})
	if err != nil || len(goaways) > 0 {
		t.Fatalf("connection ended: %s", outcome(goaways, err))
	}
	var gotRefused []uint32
	for id, r := range resps {
		if r.reset != nil {
			if r.reset.ErrCode != http2.ErrCodeRefusedStream {
				t.Errorf("stream %d reset with %v; want REFUSED_STREAM", id, r.reset.ErrCode)
			}
			gotRefused = append(gotRefused, id)
		}
	}
	if len(gotRefused) == 0 {
		// All held within the budget so far: the next one cannot be.
		h.writeRequest(refused, true, h.req("/block", extra...)...)
		resps, goaways, err = h.readUntil(sawGoAwayOrReset(refused))
		if err != nil || len(goaways) > 0 || resps[refused].reset == nil || resps[refused].reset.ErrCode != http2.ErrCodeRefusedStream {
			t.Fatalf("stream past the budget: %s, %+v; want REFUSED_STREAM", outcome(goaways, err), resps[refused])
		}
	}
	calls := sh.calls.Load()
	if !tg.events.has(EventOverloadStart, "") {
		t.Error("no overload_start event")
	}
	if !tg.events.has(EventRefused, ReasonMemoryStream) {
		t.Error("no memory_stream refusal event")
	}
	// The refused streams never reached the handler.
	if calls > held {
		t.Errorf("handler called %d times; want at most the %d streams held", calls, held)
	}
	sh.unblock()
	next := refused + 2
	waitFor(t, "the budget to recover", func() bool { return tg.events.has(EventOverloadEnd, "") })
	h.get(next, "/ok")
	resps, goaways, err = h.readUntil(ended(next))
	if err != nil || resps[next].status != "200" {
		t.Fatalf("stream after recovery: %s %+v; want 200", outcome(goaways, err), resps[next])
	}
	expectServing(t, tg.addr, "ok")
}

// TestRefuseFieldFromClient: a client that sends the guard's refusal field
// itself, with any value, is served; the field does not reach the handler.
func TestRefuseFieldFromClient(t *testing.T) {
	tg, _ := guardGateway(t, Config{})
	_, h := h2conn(t, tg.addr)
	h.get(1, "/ok", refuseField, "0123456789abcdef0123456789abcdef")
	resps, goaways, err := h.readUntil(ended(1))
	if err != nil || resps[1].status != "200" {
		t.Fatalf("%s %+v; want 200", outcome(goaways, err), resps[1])
	}
}

// TestConnShare: one connection's streams hold at most its share of decoded
// headers, budget or none: past it its new streams get REFUSED_STREAM,
// while another connection is served.
func TestConnShare(t *testing.T) {
	tg, sh := guardGateway(t, Config{MemoryBudget: NoMemoryBudget})
	_, h := h2conn(t, tg.addr)
	h.handshake()
	big := strings.Repeat("v", 4000)
	const n = 200 // about 8 KiB decoded each: 1.6 MiB, past the 1 MiB share
	for i := range n {
		h.writeRequest(uint32(1+2*i), true, h.req("/block", "x-a", big, "x-b", big)...)
	}
	last := uint32(1 + 2*(n-1))
	resps, goaways, err := h.readUntil(sawGoAwayOrReset(last))
	if err != nil || len(goaways) > 0 {
		t.Fatalf("connection ended: %s", outcome(goaways, err))
	}
	refused := 0
	for _, r := range resps {
		if r.reset != nil && r.reset.ErrCode == http2.ErrCodeRefusedStream {
			refused++
		}
	}
	held := n - refused
	if held*8000 > connShareMin || refused == 0 {
		t.Errorf("%d streams held, %d refused; want at most %d KiB held", held, refused, connShareMin>>10)
	}
	if c := sh.calls.Load(); c > int64(held) {
		t.Errorf("handler called %d times; want at most the %d held", c, held)
	}
	expectServing(t, tg.addr, "ok")
}

// TestRefusedSplitBlock: a stream refused while its header block is split
// over HEADERS (padded, with a priority) and CONTINUATION frames gets
// REFUSED_STREAM, the connection goes on, and the server's HPACK state is
// still the client's: a later stream whose fields are references to what
// the refused block put in the table reaches the handler with their values.
func TestRefusedSplitBlock(t *testing.T) {
	tg := startGateway(t, Config{MemoryBudget: 10 << 10})
	_, h := h2conn(t, tg.addr)
	h.handshake()
	big := strings.Repeat("v", 4000)
	h.writeRequest(1, true, h.req("/slow", "x-a", big, "x-b", big)...) // about 8 KiB held
	testwait.Recv(t, tg.rec.arrived, "the first stream")
	// About 3 KiB decoded, past the budget beside the first; each field
	// goes into the HPACK table.
	fields := []string{"x-c", strings.Repeat("c", 1000), "x-d", strings.Repeat("d", 1000), "x-e", strings.Repeat("e", 1000)}
	block := h.headerBlock(h.req("/ok", fields...)...)
	third := len(block) / 3
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block[:third], EndStream: true,
		PadLength: 7, Priority: http2.PriorityParam{StreamDep: 1, Weight: 9}}); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteContinuation(3, false, block[third:2*third]); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteContinuation(3, true, block[2*third:]); err != nil {
		t.Fatal(err)
	}
	resps, goaways, err := h.readUntil(sawGoAwayOrReset(3))
	if err != nil || len(goaways) > 0 || resps[3].reset == nil || resps[3].reset.ErrCode != http2.ErrCodeRefusedStream {
		t.Fatalf("split block past the budget: %s, %+v; want REFUSED_STREAM", outcome(goaways, err), resps[3])
	}
	close(tg.rec.release)
	waitFor(t, "the first stream's memory to be given back", func() bool { return tg.g.budget.used.Load() == 0 })
	// The same fields again: the encoder sends them as table references.
	again := h.headerBlock(h.req("/ok", fields...)...)
	if len(again) > 40 {
		t.Fatalf("the second block is %d octets; want table references", len(again))
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: again, EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	s := testwait.Recv(t, tg.rec.arrived, "the stream after the refused block")
	for i := 0; i < len(fields); i += 2 {
		if got := s.Header.Get(fields[i]); got != fields[i+1] {
			t.Errorf("%s: %d octets %.10q…; want the %d the refused block put in the table", fields[i], len(got), got, len(fields[i+1]))
		}
	}
	resps, goaways, err = h.readUntil(ended(5))
	if err != nil || resps[5].status != "200" {
		t.Fatalf("stream after the refused block: %s, %+v; want 200", outcome(goaways, err), resps[5])
	}
}
