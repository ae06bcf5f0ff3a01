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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/settings"
	"golang.org/x/net/http2"
)

// This file covers the bad-input classes of SECURITY.md ("Behaviours pinned
// by tests": the upgrade handshake, bodies and timing, after the 101, upgrade
// signals on HTTP/2) with raw sockets on loopback. Each case shows the
// documented outcome, that the legitimate request's bytes all arrive, that
// no goroutine is left behind once the connection is gone, and that the
// next connection is served. Cases already
// pinned in upgrade_test.go (TestDecline, TestAfter101, TestStallsClosed, …)
// are not repeated here.

// arrivedWithin waits for the recorder's next request, failing after a bound.
func arrivedWithin(t *testing.T, rec *recorder) seen {
	t.Helper()
	select {
	case s := <-rec.arrived:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not run")
		return seen{}
	}
}

// handshakeLine is an upgrade request head whose Connection, Upgrade and
// HTTP2-Settings lines are given whole, so that each can be varied.
func handshakeLine(lines ...string) string {
	return "POST /hs HTTP/1.1\r\nHost: example.test\r\n" + strings.Join(lines, "\r\n") + "\r\n"
}

// TestHandshakeVariants extends TestDecline (class 1): spellings of the
// handshake that README "What each input gets" accepts — each must upgrade, with stream 1 carrying
// the whole body — and further ones it declines, each served on HTTP/1.1
// with its whole body and reported with its reason.
func TestHandshakeVariants(t *testing.T) {
	const (
		conn = "Connection: Upgrade, HTTP2-Settings"
		upg  = "Upgrade: h2c"
	)
	setting := func(v string) string { return "HTTP2-Settings: " + v }
	cases := []struct {
		name   string
		head   string
		reason Reason // "" means the upgrade is performed
	}{
		// Accepted.
		{"empty settings value", handshakeLine(conn, upg, setting("")), ""},
		{"padded value", handshakeLine(conn, upg, setting("AAMAAABk==")), ""},
		{"whitespace around value", handshakeLine(conn, upg, "HTTP2-Settings: \t AAMAAABk \t"), ""},
		{"unknown id ignored", handshakeLine(conn, upg, setting(settings.Encode(http2.Setting{ID: 0xfa, Val: 7}))), ""},
		{"duplicated entries", handshakeLine(conn, upg, setting(strings.Repeat("AAIAAAAA", 100))), ""},
		{"field name lower case", handshakeLine(conn, upg, "http2-settings: AAMAAABk"), ""},
		{"upgrade token upper case", handshakeLine(conn, "Upgrade: H2C", setting("AAMAAABk")), ""},
		{"upgrade multi-token", handshakeLine(conn, "Upgrade: websocket, H2C", setting("AAMAAABk")), ""},
		{"upgrade split lines", handshakeLine(conn, "Upgrade: websocket", "Upgrade: h2c", setting("")), ""},
		{"connection split lines", handshakeLine("Connection: keep-alive", "Connection: Upgrade", upg, setting("")), ""},
		{"connection lower case, no HTTP2-Settings token", handshakeLine("Connection: upgrade", upg, setting("")), ""},
		// Declined.
		{"odd length", handshakeLine(conn, upg, setting("AAMAAABkA")), ReasonBadSettings},
		{"standard alphabet", handshakeLine(conn, upg, setting("AAQAAP//")), ReasonBadSettings},
		{"standard alphabet plus", handshakeLine(conn, upg, setting("AAQAA+__")), ReasonBadSettings},
		{"list of two values", handshakeLine(conn, upg, setting("AAMAAABk, AAQAAP__")), ReasonBadSettings},
		{"whitespace inside value", handshakeLine(conn, upg, setting("AAMA AABk")), ReasonBadSettings},
		{"101 settings, over the cap", handshakeLine(conn, upg, setting(strings.Repeat("AAIAAAAA", 101))), ReasonBadSettings},
		{"60 KiB value", handshakeLine(conn, upg, setting(strings.Repeat("A", 60<<10))), ReasonBadSettings},
		{"priorities 2", handshakeLine(conn, upg, setting(settings.Encode(http2.Setting{ID: http2.SettingNoRFC7540Priorities, Val: 2}))), ReasonBadSettings},
		{"connect protocol 2", handshakeLine(conn, upg, setting(settings.Encode(http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 2}))), ReasonBadSettings},
		{"connection keep-alive only", handshakeLine("Connection: keep-alive", upg, setting("")), ReasonNoConnectionToken},
		{"connect method", strings.Replace(handshakeLine(conn, upg, setting("")), "POST /hs", "CONNECT example.test:443", 1), ReasonConnect},
	}
	body := bytes.Repeat([]byte("every byte counts "), 200)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, Config{})
			lc := startLeakCheck(t)
			c := dial(t, tg.addr)
			br := bufio.NewReader(c)
			fmt.Fprintf(c, "%sContent-Length: %d\r\n\r\n%s", tc.head, len(body), body)
			var s seen
			if tc.reason == "" {
				expect101(t, br)
				h := newH2Client(t, c, br)
				h.preface()
				resps, _, err := h.readUntil(ended(1))
				if err != nil {
					t.Fatal(err)
				}
				if r := resps[1]; r.status != "200" {
					t.Errorf("stream 1: %+v; want 200", r)
				}
				s = arrivedWithin(t, tg.rec)
				if s.Proto != "HTTP/2.0" || s.Via != PathUpgrade {
					t.Errorf("handler saw %s via %s; want HTTP/2.0 via h2c-upgrade", s.Proto, s.Via)
				}
				waitFor(t, "upgrade_accepted", func() bool { return tg.events.has(EventUpgradeAccepted, "") })
			} else {
				method := "POST"
				if strings.HasPrefix(tc.head, "CONNECT") {
					method = "CONNECT"
				}
				resp, _ := readHTTP1(t, br, method)
				if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
					t.Fatalf("got %s %s; want HTTP/1.1 200", resp.Proto, resp.Status)
				}
				s = arrivedWithin(t, tg.rec)
				if s.Via != PathH1 || s.ProtoMajor != 1 {
					t.Errorf("handler saw %s via %s; want HTTP/1.1 via h1", s.Proto, s.Via)
				}
				waitFor(t, "decline "+string(tc.reason), func() bool { return tg.events.has(EventUpgradeDeclined, tc.reason) })
			}
			if s.BodySHA != sha(body) {
				t.Errorf("handler saw %d body bytes; want all %d", s.BodyLen, len(body))
			}
			c.Close()
			lc.done()
			expectServing(t, tg.addr, "ok")
		})
	}
}

// TestDuplicatedSettingLastWins: settings in HTTP2-Settings apply in order
// (RFC 9113 §6.5.3), so of two INITIAL_WINDOW_SIZE entries the last governs
// stream 1's send window. /big answers 100 bytes.
func TestDuplicatedSettingLastWins(t *testing.T) {
	for _, tc := range []struct {
		name     string
		windows  [2]uint32
		wantSent int
	}{
		{"small last", [2]uint32{1000, 10}, 10},
		{"large last", [2]uint32{10, 1000}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, Config{})
			c := dial(t, tg.addr)
			br := bufio.NewReader(c)
			hs := settings.Encode(
				http2.Setting{ID: http2.SettingInitialWindowSize, Val: tc.windows[0]},
				http2.Setting{ID: http2.SettingInitialWindowSize, Val: tc.windows[1]})
			fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: %s\r\n\r\n", hs)
			expect101(t, br)
			h := newH2Client(t, c, br)
			h.preface()
			resps, _, err := h.readUntil(func(r map[uint32]*response, _ []*http2.GoAwayFrame) bool {
				return r[1] != nil && (len(r[1].body) >= tc.wantSent || r[1].ended)
			})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(resps[1].body); n != tc.wantSent {
				t.Errorf("stream 1 sent %d bytes before any WINDOW_UPDATE; want %d", n, tc.wantSent)
			}
		})
	}
}

// TestMalformedChunkedUpgrade (class 2): an upgrade whose chunked body cannot
// be parsed is answered 400 and its connection closed; the handler never
// runs, and no 101 is written. A body that net/http refuses at the head
// (an unknown transfer coding) is answered before the gateway sees it.
func TestMalformedChunkedUpgrade(t *testing.T) {
	cases := []struct {
		name   string
		extra  string
		body   string
		status int
	}{
		{"bad chunk size", "Transfer-Encoding: chunked", "zz\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk size overflow", "Transfer-Encoding: chunked", "fffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400},
		{"missing CRLF after data", "Transfer-Encoding: chunked", "5\r\nhelloXX3\r\nabc\r\n0\r\n\r\n", 400},
		{"bare LF in size line", "Transfer-Encoding: chunked", "5\nhello\r\n0\r\n\r\n", 400},
		{"unknown coding", "Transfer-Encoding: gzip, chunked", "5\r\nhello\r\n0\r\n\r\n", 501},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, Config{})
			lc := startLeakCheck(t)
			c := dial(t, tg.addr)
			br := bufio.NewReader(c)
			io.WriteString(c, upgradeHead("POST", "/chunks", tc.extra)+tc.body)
			resp, _ := readHTTP1(t, br, "POST")
			if resp.StatusCode != tc.status {
				t.Errorf("got %s; want %d", resp.Status, tc.status)
			}
			expectClosed(t, c, br, 5*time.Second)
			if n := tg.rec.count(); n != 0 {
				t.Errorf("handler ran %d times; want 0 for a body that cannot be read", n)
			}
			if tc.status == 400 {
				waitFor(t, "upgrade_body", func() bool { return tg.events.has(EventProtocolError, ReasonUpgradeBody) })
			}
			c.Close()
			lc.done()
			expectServing(t, tg.addr, "ok")
		})
	}
}

// TestChunkedOverridesContentLength (class 2): with both Transfer-Encoding
// and Content-Length, net/http frames the body by the chunked coding alone
// and removes Content-Length before any handler runs (RFC 9112 §6.3), so the
// gateway reads exactly the bytes net/http would: the chunked body, all of
// it, and nothing the shorter Content-Length would have left over is ever
// read as another request or as HTTP/2 frames.
func TestChunkedOverridesContentLength(t *testing.T) {
	tg := startGateway(t, Config{})
	lc := startLeakCheck(t)
	c := dial(t, tg.addr)
	br := bufio.NewReader(c)
	io.WriteString(c, upgradeHead("POST", "/tecl", "Transfer-Encoding: chunked", "Content-Length: 3")+
		"5\r\nhello\r\n0\r\n\r\n"+http2.ClientPreface)
	expect101(t, br)
	h := newH2Client(t, c, br)
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	resps, _, err := h.readUntil(ended(1))
	if err != nil {
		t.Fatal(err)
	}
	if resps[1].status != "200" {
		t.Errorf("stream 1: %+v; want 200", resps[1])
	}
	if s := arrivedWithin(t, tg.rec); s.BodySHA != sha([]byte("hello")) || s.ContentLen != 5 {
		t.Errorf("handler saw %d bytes, content length %d; want the 5 chunked bytes", s.BodyLen, s.ContentLen)
	}
	c.Close()
	lc.done()
	if n := tg.rec.count(); n != 1 {
		t.Errorf("handler ran %d times; want once", n)
	}
	expectServing(t, tg.addr, "ok")
}

// TestUpgradeBodyMemoryFollowsData (class 2): the memory an upgrade body
// takes follows the bytes that arrived, not the Content-Length declared. 32
// clients each declare a body of 1 MiB (the limit), ask for 100-continue —
// which the gateway answers on its first body read, so the answer means the
// read has begun — and send nothing: the live heap must not grow by the 32
// MiB declared.
func TestUpgradeBodyMemoryFollowsData(t *testing.T) {
	const clients = 32
	tg := startGateway(t, Config{})
	lc := startLeakCheck(t)
	runtime.GC()
	base := liveHeap()
	conns := make([]net.Conn, clients)
	for i := range conns {
		c := dial(t, tg.addr)
		conns[i] = c
		io.WriteString(c, upgradeHead("POST", "/big-body", "Expect: 100-continue", "Content-Length: 1048576"))
		line, err := bufio.NewReader(c).ReadString('\n')
		if line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("client %d: got %q, %v; want 100 Continue", i, line, err)
		}
	}
	runtime.GC()
	grown := liveHeap() - base
	t.Logf("%d upgrade bodies of 1 MiB declared, none sent: live heap grew by %.1f MiB", clients, float64(grown)/(1<<20))
	if grown > 8<<20 {
		t.Errorf("live heap grew by %.1f MiB for bodies not yet sent; want it to follow the bytes received (< 8 MiB)", float64(grown)/(1<<20))
	}
	for _, c := range conns {
		c.Close()
	}
	lc.done()
	if n := tg.rec.count(); n != 0 {
		t.Errorf("handler ran %d times without a body; want 0", n)
	}
	expectServing(t, tg.addr, "ok")
}

// TestSlowHeaders (class 2): a request head that does not complete within
// ReadHeaderTimeout closes the connection, whether the client stalls or
// drips a byte at a time (the deadline is absolute, not per read).
func TestSlowHeaders(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		drip bool
	}{{"stall", false}, {"drip", true}} {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, Config{ReadHeaderTimeout: timeout})
			lc := startLeakCheck(t)
			c := dial(t, tg.addr)
			head := upgradeHead("GET", "/slow-head")
			start := time.Now()
			if tc.drip {
				// The client's own pacing, not synchronisation: one byte
				// every 20ms would take ~4s for the whole head.
				go func() {
					for i := 0; i < len(head); i++ {
						if _, err := c.Write([]byte{head[i]}); err != nil {
							return
						}
						time.Sleep(20 * time.Millisecond)
					}
				}()
			} else {
				io.WriteString(c, head[:len(head)/2])
			}
			expectClosed(t, c, c, 5*time.Second)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("closed after %v; want about the %v header timeout", d, timeout)
			}
			if n := tg.rec.count(); n != 0 {
				t.Errorf("handler ran %d times for an incomplete head; want 0", n)
			}
			c.Close()
			lc.done()
			expectServing(t, tg.addr, "ok")
		})
	}
}

// TestStallsNoLeak (class 2) extends TestStallsClosed: each stall is closed
// within its timeout (PrefaceTimeout inside the prior-knowledge preface's
// "SM" tail, UpgradeBodyTimeout in the upgrade body — 408 —, PrefaceTimeout
// after the 101; 10s each by default, 300ms here), leaves no goroutine behind, and the
// next connection is served.
func TestStallsNoLeak(t *testing.T) {
	const d = 300 * time.Millisecond
	cases := []struct {
		name   string
		send   string
		status int // the HTTP/1.1 answer expected before the close, 0 for none
	}{
		{"inside preface", "PRI * HTTP/2.0\r\n\r\nSM", 0},
		{"upgrade body", upgradeHead("POST", "/", "Content-Length: 100") + "only part", http.StatusRequestTimeout},
		{"after 101", upgradeHead("GET", "/") + http2.ClientPreface[:5], 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, Config{ReadHeaderTimeout: d, UpgradeBodyTimeout: d, PrefaceTimeout: d})
			lc := startLeakCheck(t)
			c := dial(t, tg.addr)
			br := bufio.NewReader(c)
			start := time.Now()
			io.WriteString(c, tc.send)
			if tc.status != 0 {
				if resp, _ := readHTTP1(t, br, "POST"); resp.StatusCode != tc.status {
					t.Errorf("got %s; want %d", resp.Status, tc.status)
				}
			}
			expectClosed(t, c, br, 5*time.Second)
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("closed after %v; want about %v", el, d)
			}
			c.Close()
			lc.done()
			if tc.name == "upgrade body" && tg.rec.count() != 0 {
				t.Errorf("handler ran without its body")
			}
			expectServing(t, tg.addr, "ok")
		})
	}
}

// TestClientGone (class 2): a client that leaves mid-body, right after the
// 101 or with stream 1 in flight leaves nothing behind; a handler that was running sees
// its context cancelled; a handler that never got its whole body never runs.
func TestClientGone(t *testing.T) {
	t.Run("mid upgrade body", func(t *testing.T) {
		tg := startGateway(t, Config{})
		lc := startLeakCheck(t)
		c := dial(t, tg.addr)
		io.WriteString(c, upgradeHead("POST", "/gone", "Content-Length: 1000")+"only ten b")
		c.Close()
		waitFor(t, "upgrade_body", func() bool { return tg.events.has(EventProtocolError, ReasonUpgradeBody) })
		lc.done()
		if n := tg.rec.count(); n != 0 {
			t.Errorf("handler ran %d times without its body; want 0", n)
		}
		expectServing(t, tg.addr, "ok")
	})
	t.Run("mid chunked upgrade body", func(t *testing.T) {
		tg := startGateway(t, Config{})
		lc := startLeakCheck(t)
		c := dial(t, tg.addr)
		io.WriteString(c, upgradeHead("POST", "/gone", "Transfer-Encoding: chunked")+"a\r\n01234")
		c.Close()
		waitFor(t, "upgrade_body", func() bool { return tg.events.has(EventProtocolError, ReasonUpgradeBody) })
		lc.done()
		if n := tg.rec.count(); n != 0 {
			t.Errorf("handler ran %d times without its body; want 0", n)
		}
		expectServing(t, tg.addr, "ok")
	})
	t.Run("mid declined body", func(t *testing.T) {
		// Over the limit: declined, served on HTTP/1.1, and the client
		// leaves while the handler reads the rest.
		tg := startGateway(t, Config{MaxUpgradeBody: 10})
		lc := startLeakCheck(t)
		c := dial(t, tg.addr)
		io.WriteString(c, upgradeHead("POST", "/gone", "Transfer-Encoding: chunked")+"20\r\n0123456789abcdef0123456789abcdef\r\n5\r\n01")
		waitFor(t, "body_too_large", func() bool { return tg.events.has(EventUpgradeDeclined, ReasonBodyTooLarge) })
		c.Close()
		lc.done()
		expectServing(t, tg.addr, "ok")
	})
	t.Run("right after the 101", func(t *testing.T) {
		// The client resets the connection as soon as the 101 arrives,
		// before its preface: the gateway's preface read fails. (A 101
		// whose write fails — the client gone a moment earlier — takes
		// the same path with reason write_101, but the kernel accepts the
		// 78 bytes too reliably to test it without a fault injector.)
		tg := startGateway(t, Config{})
		lc := startLeakCheck(t)
		c := dial(t, tg.addr)
		br := bufio.NewReader(c)
		io.WriteString(c, upgradeHead("GET", "/watch"))
		expect101(t, br)
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		waitFor(t, "bad_preface", func() bool { return tg.events.has(EventProtocolError, ReasonBadPreface) })
		// Stream 1 may have started before the preface read failed; if
		// so, its context must have ended.
		if tg.rec.count() == 1 {
			select {
			case <-tg.rec.ctxDone:
			case <-time.After(10 * time.Second):
				t.Fatal("stream 1's handler context not cancelled when the client left")
			}
		}
		lc.done()
		expectServing(t, tg.addr, "ok")
	})
	t.Run("stream 1 in flight", func(t *testing.T) {
		tg := startGateway(t, Config{})
		lc := startLeakCheck(t)
		c := dial(t, tg.addr)
		br := bufio.NewReader(c)
		io.WriteString(c, upgradeHead("GET", "/watch")+http2.ClientPreface)
		expect101(t, br)
		arrivedWithin(t, tg.rec)
		c.Close()
		select {
		case <-tg.rec.ctxDone:
		case <-time.After(10 * time.Second):
			t.Fatal("stream 1's handler context not cancelled when the client left")
		}
		lc.done()
		expectServing(t, tg.addr, "ok")
	})
}

// TestAfter101NoLeak (class 3) extends TestAfter101: whatever follows the
// 101, only stream 1 — which the client did send, as HTTP/1.1 — ever reaches
// the handler, the connection ends with a connection error or a stream
// error, and nothing is left behind.
func TestAfter101NoLeak(t *testing.T) {
	frames := func(write func(fr *http2.Framer, h *h2client)) string {
		var b bytes.Buffer
		h := newH2Client(t, nil, bufio.NewReader(nil))
		h.fr = http2.NewFramer(&b, nil)
		write(h.fr, h)
		return b.String()
	}
	settingsFrame := frames(func(fr *http2.Framer, _ *h2client) { fr.WriteSettings() })
	hdrs := func(id uint32, path string) string {
		return frames(func(fr *http2.Framer, h *h2client) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true,
				BlockFragment: h.headerBlock(":method", "GET", ":scheme", "http", ":authority", "a", ":path", path)})
		})
	}
	cases := []struct {
		name  string
		after string
		// want lists the acceptable ends: "GOAWAY <code>", "RST_STREAM 1
		// <code>", or "close" when the client's own close ends it.
		want []string
	}{
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not HTTP/2 at all", []string{"GOAWAY PROTOCOL_ERROR"}},
		{"partial preface then close", http2.ClientPreface[:10], []string{"close"}},
		// "GET" read as a frame length is 4.6 MB, over MAX_FRAME_SIZE.
		{"preface then HTTP/1.1", http2.ClientPreface + "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GOAWAY FRAME_SIZE_ERROR"}},
		{"preface then DATA first", http2.ClientPreface + frames(func(fr *http2.Framer, _ *h2client) {
			fr.WriteData(1, true, []byte("x"))
		}), []string{"GOAWAY PROTOCOL_ERROR"}},
		{"HEADERS again on stream 1", http2.ClientPreface + settingsFrame + hdrs(1, "/smuggled"),
			// STREAM_CLOSED while stream 1 is half-closed (remote); once
			// it has closed, a lower stream id is a connection error.
			[]string{"RST_STREAM 1 STREAM_CLOSED", "GOAWAY PROTOCOL_ERROR"}},
		{"stream 3 then 1", http2.ClientPreface + settingsFrame + hdrs(3, "/three") + hdrs(1, "/smuggled"),
			[]string{"RST_STREAM 1 STREAM_CLOSED", "GOAWAY PROTOCOL_ERROR"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, Config{})
			lc := startLeakCheck(t)
			c := dial(t, tg.addr)
			br := bufio.NewReader(c)
			io.WriteString(c, upgradeHead("GET", "/first")+tc.after)
			if slices.Equal(tc.want, []string{"close"}) {
				c.(*net.TCPConn).CloseWrite()
			}
			expect101(t, br)
			h := newH2Client(t, c, br)
			resps, goaways, err := h.readUntil(func(r map[uint32]*response, g []*http2.GoAwayFrame) bool {
				return (r[1] != nil && r[1].reset != nil) || len(g) > 0
			})
			var got string
			switch {
			case len(goaways) > 0:
				got = "GOAWAY " + goaways[0].ErrCode.String()
			case resps[1] != nil && resps[1].reset != nil:
				got = "RST_STREAM 1 " + resps[1].reset.ErrCode.String()
			case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
				got = "close"
			default:
				got = fmt.Sprintf("error %v", err)
			}
			if !slices.Contains(tc.want, got) {
				t.Errorf("connection ended with %s; want one of %q", got, tc.want)
			}
			c.Close()
			lc.done()
			tg.rec.mu.Lock()
			for _, s := range tg.rec.reqs {
				if s.RequestURI != "/first" && s.RequestURI != "/three" {
					t.Errorf("handler ran %s %s, which the client never sent as an HTTP/2 request", s.Method, s.RequestURI)
				}
			}
			tg.rec.mu.Unlock()
			expectServing(t, tg.addr, "ok")
		})
	}
}

// TestUpgradeSignalsOnHTTP2NoLeak (class 5) extends TestUpgradeSignalsOnHTTP2
// with an h2csmuggler-style request — every upgrade field at once — and
// upper-case field names (malformed in HTTP/2, RFC 9113 §8.2.1), on both
// HTTP/2 entry paths: each rejected before the handler, other streams
// served, the rejections the gateway itself sees counted, nothing left
// behind.
func TestUpgradeSignalsOnHTTP2NoLeak(t *testing.T) {
	bad := [][]string{
		{"connection", "Upgrade, HTTP2-Settings", "upgrade", "h2c", "http2-settings", "AAMAAABk"},
		{"HTTP2-Settings", "AAMAAABk"},
		{"Upgrade", "h2c"},
		{"http2-settings", "AAMAAABk"}, // the one x/net lets through: the gateway's own check
		{"te", "trailers, gzip"},
	}
	for _, path := range []EntryPath{PathPriorKnowledge, PathUpgrade} {
		t.Run(string(path), func(t *testing.T) {
			tg := startGateway(t, Config{})
			lc := startLeakCheck(t)
			h := openHTTP2(t, tg.addr, path, "/one")
			ids := []uint32{1}
			for i, f := range bad {
				id := uint32(3 + 4*i)
				h.get(id, "/bad", f...)
				h.get(id+2, "/good", "te", "trailers")
				ids = append(ids, id, id+2)
			}
			resps, goaways, err := h.readUntil(ended(ids...))
			if err != nil {
				t.Fatalf("%v (GOAWAY %v)", err, goaways)
			}
			for i, f := range bad {
				id := uint32(3 + 4*i)
				r := resps[id]
				if r.status != "400" && (r.reset == nil || r.reset.ErrCode != http2.ErrCodeProtocol) {
					t.Errorf("stream with %v: %+v; want 400 or RST_STREAM PROTOCOL_ERROR", f, r)
				}
				if g := resps[id+2]; g.status != "200" {
					t.Errorf("stream after %v: %+v; want 200", f, g)
				}
			}
			if resps[1].status != "200" {
				t.Errorf("stream 1: %+v; want 200", resps[1])
			}
			waitFor(t, "upgrade_on_http2", func() bool { return tg.events.has(EventUpgradeRejected, ReasonUpgradeOnHTTP2) })
			h.c.Close()
			lc.done()
			tg.rec.mu.Lock()
			for _, s := range tg.rec.reqs {
				if s.RequestURI == "/bad" {
					t.Errorf("the handler saw a request with upgrade fields: %v", s.Header)
				}
			}
			tg.rec.mu.Unlock()
			expectServing(t, tg.addr, "ok")
		})
	}
}

// TestPriorKnowledgeBadPreface: a connection that starts with the preface's
// first line ("PRI * HTTP/2.0", which net/http hands to the gateway) but not
// its "SM" tail gets the server's SETTINGS, then GOAWAY PROTOCOL_ERROR (RFC
// 9113 §3.4); nothing it sent reaches the handler, and the gateway keeps
// serving.
func TestPriorKnowledgeBadPreface(t *testing.T) {
	tg := startGateway(t, Config{})
	c := dial(t, tg.addr)
	io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
	h := newH2Client(t, c, nil)
	_, goaways, _ := h.readUntil(func(map[uint32]*response, []*http2.GoAwayFrame) bool { return false })
	if len(goaways) == 0 || goaways[0].ErrCode != http2.ErrCodeProtocol {
		t.Errorf("got GOAWAY frames %v; want one with PROTOCOL_ERROR", goaways)
	}
	waitFor(t, "bad_preface", func() bool { return tg.events.has(EventProtocolError, ReasonBadPreface) })
	if n := tg.rec.count(); n != 0 {
		t.Errorf("handler ran %d times; want 0", n)
	}
	c2 := dial(t, tg.addr)
	io.WriteString(c2, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := readHTTP1(t, bufio.NewReader(c2), "GET"); resp.StatusCode != 200 {
		t.Errorf("next connection: %s; want 200", resp.Status)
	}
}
