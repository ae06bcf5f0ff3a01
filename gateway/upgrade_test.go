package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/settings"
	"golang.org/x/net/http2"
)

// TestUpgradeWire checks the exact bytes after an accepted upgrade: the 101,
// then the server's SETTINGS as the first frame, equal to what package
// the defaults say, then stream 1's response.
func TestUpgradeWire(t *testing.T) {
	tg := startGateway(t, Config{})
	c := dial(t, tg.addr)
	br := bufio.NewReader(c)
	io.WriteString(c, upgradeHead("GET", "/wire?q=1"))
	expect101(t, br)

	h := newH2Client(t, c, br)
	f, err := h.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		t.Fatalf("first frame after 101 is %v; want SETTINGS", f.Header())
	}
	// The server speaks first: its SETTINGS arrive before the client has
	// sent its preface (RFC 9113 §3.4 lets neither side wait).
	var got []http2.Setting
	sf.ForeachSetting(func(s http2.Setting) error { got = append(got, s); return nil })
	if !reflect.DeepEqual(got, defaultSettings) {
		t.Errorf("advertised SETTINGS %v; want %v", got, defaultSettings)
	}
	h.preface()
	resps, _, err := h.readUntil(ended(1))
	if err != nil {
		t.Fatal(err)
	}
	if r := resps[1]; r.status != "200" || string(r.body) != "ok h2c-upgrade HTTP/2.0" {
		t.Errorf("stream 1: status %q body %q; want 200 %q", r.status, r.body, "ok h2c-upgrade HTTP/2.0")
	}
	waitFor(t, "upgrade_accepted event", func() bool { return tg.events.has(EventUpgradeAccepted, "") })
}

// TestStream1AsHTTP2 checks what the handler sees of the upgraded request:
// HTTP/2 proto fields, the connection-specific fields gone (RFC 9113 §8.2.2),
// everything else and the body as sent.
func TestStream1AsHTTP2(t *testing.T) {
	tg := startGateway(t, Config{})
	body := bytes.Repeat([]byte("0123456789"), 1000)
	c := dial(t, tg.addr)
	br := bufio.NewReader(c)
	head := upgradeHead("POST", "/submit?x=y",
		"Connection: X-Hop", "X-Hop: secret", "Keep-Alive: timeout=5", "Proxy-Connection: keep-alive",
		"TE: trailers, deflate", "X-Kept: yes", fmt.Sprintf("Content-Length: %d", len(body)))
	io.WriteString(c, head)
	c.Write(body)
	expect101(t, br)
	h := newH2Client(t, c, br)
	h.preface()
	if _, _, err := h.readUntil(ended(1)); err != nil {
		t.Fatal(err)
	}
	s := <-tg.rec.arrived
	checks := []struct{ name, got, want string }{
		{"proto", s.Proto, "HTTP/2.0"},
		{"proto major", fmt.Sprint(s.ProtoMajor), "2"},
		{"method", s.Method, "POST"},
		{"target", s.RequestURI, "/submit?x=y"},
		{"host", s.Host, "example.test"},
		{"via", string(s.Via), "h2c-upgrade"},
		{"body", s.BodySHA, sha(body)},
		{"content length", fmt.Sprint(s.ContentLen), fmt.Sprint(len(body))},
		{"X-Kept", s.Header.Get("X-Kept"), "yes"},
		{"TE", strings.Join(s.Header["Te"], ","), "trailers"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q; want %q", c.name, c.got, c.want)
		}
	}
	for _, k := range []string{"Connection", "Upgrade", "Http2-Settings", "X-Hop", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding"} {
		if v, ok := s.Header[k]; ok {
			t.Errorf("handler saw %s: %q; want it stripped", k, v)
		}
	}
}

// TestDecline checks every decline reason of README "What each input gets": the request is served on
// HTTP/1.1 with its whole body, never an error, and the reason is reported.
func TestDecline(t *testing.T) {
	body := "the body must arrive whole"
	cl := fmt.Sprintf("Content-Length: %d", len(body))
	cases := []struct {
		name   string
		cfg    Config
		head   string
		reason Reason // "" means not an upgrade attempt
	}{
		{"http10", Config{}, "POST / HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n" + cl + "\r\n\r\n", ReasonHTTP10},
		{"no connection token", Config{}, "POST / HTTP/1.1\r\nHost: a\r\nConnection: HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n" + cl + "\r\n\r\n", ReasonNoConnectionToken},
		{"no connection field", Config{}, "POST / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n" + cl + "\r\n\r\n", ReasonNoConnectionToken},
		{"missing settings", Config{}, "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n" + cl + "\r\n\r\n", ReasonMissingSettings},
		{"duplicate settings", Config{}, "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\nHTTP2-Settings: AAMAAABk\r\n" + cl + "\r\n\r\n", ReasonDuplicateSettings},
		{"bad base64", Config{}, "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: !!!!\r\n" + cl + "\r\n\r\n", ReasonBadSettings},
		{"bad length", Config{}, "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAAA\r\n" + cl + "\r\n\r\n", ReasonBadSettings},
		{"frame size out of range", Config{}, "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: " + settings.Encode(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 100}) + "\r\n" + cl + "\r\n\r\n", ReasonBadSettings},
		{"enable push 2", Config{}, "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: " + settings.Encode(http2.Setting{ID: http2.SettingEnablePush, Val: 2}) + "\r\n" + cl + "\r\n\r\n", ReasonBadSettings},
		{"window too large", Config{}, "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: " + settings.Encode(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31}) + "\r\n" + cl + "\r\n\r\n", ReasonBadSettings},
		{"disabled", Config{DisableUpgrade: true}, "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n" + cl + "\r\n\r\n", ReasonDisabled},
		{"content length over limit", Config{MaxUpgradeBody: 8}, "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n" + cl + "\r\n\r\n", ReasonBodyTooLarge},
		{"no body allowed", Config{MaxUpgradeBody: -1}, "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n" + cl + "\r\n\r\n", ReasonBodyTooLarge},
		{"upgrade h2 only", Config{}, "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2\r\nHTTP2-Settings: \r\n" + cl + "\r\n\r\n", ""},
		{"upgrade websocket", Config{}, "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" + cl + "\r\n\r\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, tc.cfg)
			c := dial(t, tg.addr)
			io.WriteString(c, tc.head+body)
			br := bufio.NewReader(c)
			resp, got := readHTTP1(t, br, "POST")
			if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
				t.Fatalf("got %s %s; want HTTP/1.x 200", resp.Proto, resp.Status)
			}
			s := <-tg.rec.arrived
			if s.ProtoMajor != 1 || s.Via != PathH1 {
				t.Errorf("handler saw %s via %s; want HTTP/1.x via h1", s.Proto, s.Via)
			}
			if s.BodySHA != sha([]byte(body)) {
				t.Errorf("handler body %d bytes; want %d bytes intact", s.BodyLen, len(body))
			}
			if !strings.HasPrefix(string(got), "ok h1") {
				t.Errorf("body %q; want the handler's answer", got)
			}
			if tc.reason != "" {
				waitFor(t, "decline "+string(tc.reason), func() bool { return tg.events.has(EventUpgradeDeclined, tc.reason) })
			} else if tg.events.has(EventUpgradeDeclined, "") || len(tg.events.events) > 2 {
				t.Errorf("events %v; want no upgrade event for a non-h2c Upgrade", tg.events.events)
			}
			// The connection stays HTTP/1.1 and keeps serving (except
			// HTTP/1.0, which closes).
			if tc.reason != ReasonHTTP10 {
				io.WriteString(c, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
				if resp, _ := readHTTP1(t, br, "GET"); resp.StatusCode != 200 {
					t.Errorf("next request: %s; want 200", resp.Status)
				}
			}
		})
	}
}

// TestChunkedBodyOverLimit checks README "What each input gets" for a body without a declared
// length: read up to the limit, then served on HTTP/1.1 with every byte.
func TestChunkedBodyOverLimit(t *testing.T) {
	for _, n := range []int{100, 1000, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			tg := startGateway(t, Config{MaxUpgradeBody: 1000})
			body := bytes.Repeat([]byte("abcdefghij"), n/10)
			c := dial(t, tg.addr)
			br := bufio.NewReader(c)
			var req bytes.Buffer
			req.WriteString(upgradeHead("POST", "/chunked", "Transfer-Encoding: chunked"))
			for chunk := range slices.Chunk(body, 300) {
				fmt.Fprintf(&req, "%x\r\n%s\r\n", len(chunk), chunk)
			}
			req.WriteString("0\r\n\r\n")
			c.Write(req.Bytes())
			var s seen
			if n <= 1000 {
				expect101(t, br)
				h := newH2Client(t, c, br)
				h.preface()
				if _, _, err := h.readUntil(ended(1)); err != nil {
					t.Fatal(err)
				}
				s = <-tg.rec.arrived
				if s.Proto != "HTTP/2.0" || s.ContentLen != int64(len(body)) {
					t.Errorf("got %s content length %d; want HTTP/2.0 with %d", s.Proto, s.ContentLen, len(body))
				}
			} else {
				resp, _ := readHTTP1(t, br, "POST")
				if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
					t.Fatalf("got %s %s; want HTTP/1.1 200", resp.Proto, resp.Status)
				}
				s = <-tg.rec.arrived
				if s.Via != PathH1 {
					t.Errorf("via %s; want h1", s.Via)
				}
				waitFor(t, "body_too_large", func() bool { return tg.events.has(EventUpgradeDeclined, ReasonBodyTooLarge) })
			}
			if s.BodySHA != sha(body) {
				t.Errorf("handler saw %d bytes; want %d intact", s.BodyLen, len(body))
			}
		})
	}
}

// TestExpectContinue checks that 100 Continue comes before the 101 (the body
// is read before the switch), and with a body over the limit that the
// request is served on HTTP/1.1 after the 100.
func TestExpectContinue(t *testing.T) {
	t.Run("within limit", func(t *testing.T) {
		tg := startGateway(t, Config{})
		c := dial(t, tg.addr)
		br := bufio.NewReader(c)
		io.WriteString(c, upgradeHead("POST", "/e", "Expect: 100-continue", "Content-Length: 5"))
		line, _ := br.ReadString('\n')
		if line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("got %q; want 100 Continue before the body is sent", line)
		}
		br.ReadString('\n')
		io.WriteString(c, "hello")
		expect101(t, br)
		h := newH2Client(t, c, br)
		h.preface()
		if _, _, err := h.readUntil(ended(1)); err != nil {
			t.Fatal(err)
		}
		if s := <-tg.rec.arrived; s.BodySHA != sha([]byte("hello")) || s.Proto != "HTTP/2.0" {
			t.Errorf("handler saw %s, %d bytes; want HTTP/2.0 with hello", s.Proto, s.BodyLen)
		}
	})
	t.Run("over limit", func(t *testing.T) {
		tg := startGateway(t, Config{MaxUpgradeBody: 2})
		c := dial(t, tg.addr)
		br := bufio.NewReader(c)
		io.WriteString(c, upgradeHead("POST", "/e", "Expect: 100-continue", "Content-Length: 5"))
		line, _ := br.ReadString('\n')
		if line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("got %q; want 100 Continue", line)
		}
		br.ReadString('\n')
		io.WriteString(c, "hello")
		resp, _ := readHTTP1(t, br, "POST")
		if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
			t.Fatalf("got %s %s; want HTTP/1.1 200", resp.Proto, resp.Status)
		}
		if s := <-tg.rec.arrived; s.BodySHA != sha([]byte("hello")) || s.Via != PathH1 {
			t.Errorf("handler saw via %s, %d bytes; want h1 with hello", s.Via, s.BodyLen)
		}
	})
}

// TestOptionsStarUpgrade: nghttp -u upgrades with "OPTIONS *", which
// net/http would otherwise answer itself.
func TestOptionsStarUpgrade(t *testing.T) {
	tg := startGateway(t, Config{})
	h := upgradeTo(t, tg.addr, upgradeHead("OPTIONS", "*"))
	h.get(3, "/after")
	resps, _, err := h.readUntil(ended(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	if resps[1].status != "200" || resps[3].status != "200" {
		t.Errorf("statuses %q, %q; want 200, 200", resps[1].status, resps[3].status)
	}
	if s := <-tg.rec.arrived; s.Method != "OPTIONS" || s.RequestURI != "*" {
		t.Errorf("stream 1 reached the handler as %s %s; want OPTIONS *", s.Method, s.RequestURI)
	}
}

// TestNoBodyLimitStillUpgradesWithoutBody: with bodies never upgraded, a
// request without one still is.
func TestNoBodyLimitStillUpgradesWithoutBody(t *testing.T) {
	tg := startGateway(t, Config{MaxUpgradeBody: -1})
	h := upgradeTo(t, tg.addr, upgradeHead("GET", "/nobody"))
	if resps, _, err := h.readUntil(ended(1)); err != nil || resps[1].status != "200" {
		t.Fatalf("stream 1: %v %v; want 200", resps[1], err)
	}
}

// TestHeadUpgrade: a HEAD upgrade gets its headers on stream 1 with
// END_STREAM and no DATA.
func TestHeadUpgrade(t *testing.T) {
	tg := startGateway(t, Config{})
	h := upgradeTo(t, tg.addr, upgradeHead("HEAD", "/big"))
	resps, _, err := h.readUntil(ended(1))
	if err != nil {
		t.Fatal(err)
	}
	if r := resps[1]; r.status != "200" || len(r.dataLen) != 0 {
		t.Errorf("got status %q and %d DATA frames; want 200 and none", r.status, len(r.dataLen))
	}
}

// TestClientWindowAppliesToStream1: the client's INITIAL_WINDOW_SIZE from
// HTTP2-Settings governs the send window of stream 1 (RFC 7540 §3.2.1).
func TestClientWindowAppliesToStream1(t *testing.T) {
	tg := startGateway(t, Config{})
	c := dial(t, tg.addr)
	br := bufio.NewReader(c)
	hs := settings.Encode(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
	fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: %s\r\n\r\n", hs)
	expect101(t, br)
	h := newH2Client(t, c, br)
	h.preface()
	// Until the client opens the window, at most 10 bytes may come.
	gotData := func(r map[uint32]*response, _ []*http2.GoAwayFrame) bool {
		return r[1] != nil && len(r[1].body) >= 10
	}
	resps, _, err := h.readUntil(gotData)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resps[1].body); n != 10 || resps[1].ended {
		t.Fatalf("got %d bytes (ended %v) before any WINDOW_UPDATE; want exactly 10, not ended", n, resps[1].ended)
	}
	h.fr.WriteWindowUpdate(1, 1000)
	rest, _, err := h.readUntil(ended(1))
	if err != nil {
		t.Fatal(err)
	}
	if n := 10 + len(rest[1].body); n != 100 {
		t.Errorf("got %d bytes in all; want 100", n)
	}
}

// TestPipelinedAfterUpgrade: the request, the preface, SETTINGS and stream 3
// sent in one write; nothing buffered by the HTTP/1.1 reader is lost.
func TestPipelinedAfterUpgrade(t *testing.T) {
	tg := startGateway(t, Config{})
	c := dial(t, tg.addr)
	var out bytes.Buffer
	out.WriteString(upgradeHead("GET", "/one"))
	out.WriteString(http2.ClientPreface)
	wh := newH2Client(t, c, nil)
	wh.fr = http2.NewFramer(&out, nil)
	wh.fr.WriteSettings()
	wh.get(3, "/three")
	wh.get(5, "/five")
	if _, err := c.Write(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	expect101(t, br)
	h := newH2Client(t, c, br)
	resps, _, err := h.readUntil(ended(1, 3, 5))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint32{1, 3, 5} {
		if r := resps[id]; r.status != "200" || string(r.body) != "ok h2c-upgrade HTTP/2.0" {
			t.Errorf("stream %d: %q %q; want 200 and the handler's answer", id, r.status, r.body)
		}
	}
}

// TestAfter101 checks what follows a 101 that is not HTTP/2: a connection
// error (GOAWAY PROTOCOL_ERROR, or a close when the client left), stream 1 —
// which the client did send, as HTTP/1.1 — may be answered, and nothing sent
// after the 101 is ever run as a request.
func TestAfter101(t *testing.T) {
	cases := []struct {
		name   string
		after  string
		goaway bool
	}{
		{"garbage", "GARBAGE GARBAGE GARBAGE GARBAGE\r\n", true},
		{"pipelined HTTP/1.1", "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"frames without preface", "\x00\x00\x00\x04\x00\x00\x00\x00\x00" + strings.Repeat("\x00", 20), true},
		{"client leaves", "PRI * HTTP/2.0", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, Config{})
			c := dial(t, tg.addr)
			br := bufio.NewReader(c)
			io.WriteString(c, upgradeHead("GET", "/first")+tc.after)
			if !tc.goaway {
				c.(interface{ CloseWrite() error }).CloseWrite()
			}
			expect101(t, br)
			h := newH2Client(t, c, br)
			_, goaways, _ := h.readUntil(func(map[uint32]*response, []*http2.GoAwayFrame) bool { return false })
			if tc.goaway && (len(goaways) == 0 || goaways[0].ErrCode != http2.ErrCodeProtocol) {
				t.Errorf("got GOAWAY frames %v; want one with PROTOCOL_ERROR", goaways)
			}
			waitFor(t, "bad_preface", func() bool { return tg.events.has(EventProtocolError, ReasonBadPreface) })
			tg.rec.mu.Lock()
			for _, s := range tg.rec.reqs {
				if s.RequestURI != "/first" {
					t.Errorf("handler ran %s %s, which the client never sent as HTTP/2", s.Method, s.RequestURI)
				}
			}
			tg.rec.mu.Unlock()
			// The gateway keeps serving.
			c2 := dial(t, tg.addr)
			io.WriteString(c2, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp, _ := readHTTP1(t, bufio.NewReader(c2), "GET"); resp.StatusCode != 200 {
				t.Errorf("next connection: %s; want 200", resp.Status)
			}
		})
	}
}

// TestDataOnHalfClosedStream1: stream 1 is half-closed (remote) after the
// upgrade; DATA on it is a stream error, and the connection goes on.
func TestDataOnHalfClosedStream1(t *testing.T) {
	tg := startGateway(t, Config{})
	h := upgradeTo(t, tg.addr, upgradeHead("GET", "/slow"))
	<-tg.rec.arrived
	h.fr.WriteData(1, true, []byte("smuggled"))
	resps, _, err := h.readUntil(func(r map[uint32]*response, g []*http2.GoAwayFrame) bool {
		return (r[1] != nil && r[1].reset != nil) || len(g) > 0
	})
	if err != nil {
		t.Fatal(err)
	}
	if rst := resps[1].reset; rst == nil || rst.ErrCode != http2.ErrCodeStreamClosed {
		t.Fatalf("got %+v; want RST_STREAM STREAM_CLOSED on stream 1", resps[1])
	}
	close(tg.rec.release)
	h.get(3, "/three")
	resps, _, err = h.readUntil(ended(3))
	if err != nil || resps[3].status != "200" {
		t.Errorf("stream 3 after the reset: %v %v; want 200", resps[3], err)
	}
}

// TestStream1ContextCancelledOnReset: a RST_STREAM on stream 1 ends its
// handler's context, as it would for any other stream.
func TestStream1ContextCancelledOnReset(t *testing.T) {
	tg := startGateway(t, Config{})
	h := upgradeTo(t, tg.addr, upgradeHead("GET", "/watch"))
	<-tg.rec.arrived
	h.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	select {
	case <-tg.rec.ctxDone:
	case <-time.After(5 * time.Second):
		t.Fatal("stream 1's handler context not cancelled by RST_STREAM")
	}
}

// TestPriorKnowledge: the preface as the first bytes starts HTTP/2 at once.
func TestPriorKnowledge(t *testing.T) {
	tg := startGateway(t, Config{})
	c := dial(t, tg.addr)
	h := newH2Client(t, c, nil)
	h.preface()
	h.get(1, "/pk")
	resps, _, err := h.readUntil(ended(1))
	if err != nil {
		t.Fatal(err)
	}
	if r := resps[1]; r.status != "200" || string(r.body) != "ok h2c-prior-knowledge HTTP/2.0" {
		t.Errorf("got %q %q; want 200 via h2c-prior-knowledge", r.status, r.body)
	}
	waitFor(t, "conn_open event", func() bool {
		tg.events.mu.Lock()
		defer tg.events.mu.Unlock()
		for _, e := range tg.events.events {
			if e.Kind == EventConnOpen && e.Path == PathPriorKnowledge {
				return true
			}
		}
		return false
	})
}

// TestPrefaceOutOfPlace: the preface counts only as the first bytes of a
// connection (README "What each input gets").
func TestPrefaceOutOfPlace(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		first  string
		status int
	}{
		{"after a request", Config{}, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"after a declined upgrade", Config{}, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", 400},
		{"prior knowledge off", Config{DisablePriorKnowledge: true}, "", 505},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, tc.cfg)
			c := dial(t, tg.addr)
			br := bufio.NewReader(c)
			if tc.first != "" {
				io.WriteString(c, tc.first)
				readHTTP1(t, br, "GET")
			}
			io.WriteString(c, http2.ClientPreface)
			resp, _ := readHTTP1(t, br, "PRI")
			if resp.StatusCode != tc.status {
				t.Errorf("got %s; want %d", resp.Status, tc.status)
			}
			expectClosed(t, c, br, 5*time.Second)
			// The answer is reported with its status and request, so the
			// binary logs and counts it like any other request.
			reason := ReasonLatePreface
			if tc.status == 505 {
				reason = ReasonPriorKnowledgeDisabled
			}
			waitFor(t, "answered event", func() bool { return tg.events.answered(reason, tc.status) })
		})
	}
}

// TestStallsClosed: a stall inside the prior-knowledge preface is closed by
// the header read timeout, one after the 101 by the preface timeout.
func TestStallsClosed(t *testing.T) {
	t.Run("inside preface", func(t *testing.T) {
		tg := startGateway(t, Config{ReadHeaderTimeout: 200 * time.Millisecond})
		c := dial(t, tg.addr)
		io.WriteString(c, "PRI * HTTP/2.0\r\n")
		start := time.Now()
		expectClosed(t, c, c, 5*time.Second)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("closed after %v; want about the 200ms header timeout", d)
		}
	})
	t.Run("after 101", func(t *testing.T) {
		tg := startGateway(t, Config{PrefaceTimeout: 200 * time.Millisecond})
		c := dial(t, tg.addr)
		br := bufio.NewReader(c)
		io.WriteString(c, upgradeHead("GET", "/"))
		expect101(t, br)
		start := time.Now()
		expectClosed(t, c, br, 5*time.Second)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("closed after %v; want about the 200ms preface timeout", d)
		}
		waitFor(t, "preface_timeout", func() bool { return tg.events.has(EventProtocolError, ReasonPrefaceTimeout) })
	})
	t.Run("upgrade body", func(t *testing.T) {
		tg := startGateway(t, Config{UpgradeBodyTimeout: 200 * time.Millisecond})
		c := dial(t, tg.addr)
		br := bufio.NewReader(c)
		io.WriteString(c, upgradeHead("POST", "/", "Content-Length: 10")+"abc")
		resp, _ := readHTTP1(t, br, "POST")
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("got %s; want 408", resp.Status)
		}
		waitFor(t, "answered event", func() bool { return tg.events.answered(ReasonUpgradeBody, http.StatusRequestTimeout) })
		expectClosed(t, c, br, 5*time.Second)
		if n := tg.rec.count(); n != 0 {
			t.Errorf("handler ran %d times for an incomplete body; want 0", n)
		}
	})
}

// TestUpgradeSignalsOnHTTP2: upgrade fields on a request that is already
// HTTP/2 are rejected with 400, on both HTTP/2 entry paths, and the
// connection's other streams keep working (RFC 9113 §8.2.2).
func TestUpgradeSignalsOnHTTP2(t *testing.T) {
	fields := [][]string{
		{"http2-settings", "AAMAAABk"},
		{"upgrade", "h2c"},
		{"connection", "upgrade"},
		{"keep-alive", "timeout=5"},
		{"proxy-connection", "keep-alive"},
		{"transfer-encoding", "chunked"},
		{"te", "gzip"},
	}
	for _, path := range []EntryPath{PathPriorKnowledge, PathUpgrade} {
		for _, f := range fields {
			t.Run(string(path)+"/"+f[0], func(t *testing.T) {
				tg := startGateway(t, Config{})
				h := openHTTP2(t, tg.addr, path, "/one")
				h.get(3, "/bad", f...)
				h.get(5, "/good")
				resps, _, err := h.readUntil(ended(1, 3, 5))
				if err != nil {
					t.Fatal(err)
				}
				if r := resps[3]; r.status != "400" && (r.reset == nil || r.reset.ErrCode != http2.ErrCodeProtocol) {
					t.Errorf("stream with %s: %+v; want 400 or RST_STREAM PROTOCOL_ERROR", f[0], r)
				}
				if resps[1].status != "200" || resps[5].status != "200" {
					t.Errorf("other streams: %q, %q; want 200, 200", resps[1].status, resps[5].status)
				}
				tg.rec.mu.Lock()
				for _, s := range tg.rec.reqs {
					if s.RequestURI == "/bad" {
						t.Errorf("the handler saw the request carrying %s", f[0])
					}
				}
				tg.rec.mu.Unlock()
				if f[0] == "http2-settings" {
					waitFor(t, "rejection event", func() bool { return tg.events.answered(ReasonUpgradeOnHTTP2, 400) })
				}
			})
		}
	}
}

// TestStream3PassesHandlerChain: every stream of an upgraded connection,
// not only stream 1, reaches the wrapped handler, so whatever it enforces
// applies to all of them.
func TestStream3PassesHandlerChain(t *testing.T) {
	tg := startGateway(t, Config{})
	h := upgradeTo(t, tg.addr, upgradeHead("GET", "/one"))
	h.get(3, "/three")
	if _, _, err := h.readUntil(ended(1, 3)); err != nil {
		t.Fatal(err)
	}
	got := map[string]EntryPath{}
	for range 2 {
		s := <-tg.rec.arrived
		got[s.RequestURI] = s.Via
	}
	want := map[string]EntryPath{"/one": PathUpgrade, "/three": PathUpgrade}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("handler saw %v; want %v", got, want)
	}
}
