package gateway_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/gateway"
	"github.com/h2cgw/h2cgw/proxy"
	"github.com/rs/zerolog"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// lenientUpstream is an HTTP/1.1 server on a raw listener that logs every
// request it parses — a raw HTTP/2 preface parses as "PRI *" — and answers
// 101 to any "Upgrade: h2c", as the backends h2c smuggling preys on do.
type lenientUpstream struct {
	addr string
	mu   sync.Mutex
	// log has one line per request: method, target and upgrade fields.
	log []string
}

func startLenientUpstream(t *testing.T) *lenientUpstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &lenientUpstream{addr: l.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { u.serve(c) })
		}
	})
	return u
}

func (u *lenientUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, r.Body)
		line := r.Method + " " + r.RequestURI
		for _, k := range []string{"Upgrade", "Connection", "Http2-Settings"} {
			if v, ok := r.Header[k]; ok {
				line += " " + k + "=" + strings.Join(v, ",")
			}
		}
		u.mu.Lock()
		u.log = append(u.log, line)
		u.mu.Unlock()
		if httpguts.HeaderValuesContainsToken(r.Header["Upgrade"], "h2c") {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nupstream")
	}
}

func (u *lenientUpstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.log...)
}

// TestSmugglingThroughGateway runs h2csmuggler-style sequences against the
// whole chain — gateway, an authorising handler that denies /admin, the
// proxy — in front of a lenient upstream (README "Gateway mode"). The upstream's own log
// is the evidence: it never sees an upgrade, a preface or /admin, and every
// stream the client opens passes the authorising handler.
func TestSmugglingThroughGateway(t *testing.T) {
	up := startLenientUpstream(t)
	p, err := proxy.New(proxy.Config{Upstreams: []string{"http://" + up.addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	var authMu sync.Mutex
	var authorised []string
	deny := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authMu.Lock()
		authorised = append(authorised, r.URL.Path)
		authMu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/admin") {
			http.Error(w, "denied", http.StatusForbidden)
			return
		}
		p.ServeHTTP(w, r)
	})
	g := gateway.New(deny, gateway.Config{Logger: zerolog.New(zerolog.NewTestWriter(t))})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(l) }()
	t.Cleanup(func() {
		g.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		gateway.WaitFor(t, "upgraded connections to end", func() bool { return gateway.OpenConns(g) == 0 })
	})
	addr := l.Addr().String()

	t.Run("upgrade then a denied stream", func(t *testing.T) {
		c := gateway.Dial(t, addr)
		br := bufio.NewReader(c)
		io.WriteString(c, gateway.UpgradeHead("GET", "/public"))
		gateway.Expect101(t, br)
		h := gateway.NewH2Client(t, c, br)
		h.Preface()
		h.Get(3, "/admin/secret")
		h.Get(5, "/public2")
		resps, _, err := h.ReadUntil(gateway.Ended(1, 3, 5))
		if err != nil {
			t.Fatal(err)
		}
		want := map[uint32]string{1: "200", 3: "403", 5: "200"}
		for id, st := range want {
			if resps[id].Status() != st {
				t.Errorf("stream %d: %s; want %s", id, resps[id].Status(), st)
			}
		}
	})
	t.Run("declined upgrade then a raw preface", func(t *testing.T) {
		// A bad HTTP2-Settings declines the upgrade: the request goes
		// upstream on HTTP/1.1 — where a lenient upstream would switch
		// if it saw the upgrade — and the client then speaks HTTP/2 on
		// the connection as if a 101 had come back.
		c := gateway.Dial(t, addr)
		br := bufio.NewReader(c)
		io.WriteString(c, "GET /public3 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: !!\r\n\r\n")
		resp, body := gateway.ReadHTTP1(t, br, "GET")
		if resp.StatusCode != 200 || string(body) != "upstream" {
			t.Errorf("declined upgrade: %s %q; want 200 from the upstream on HTTP/1.1", resp.Status, body)
		}
		// Preface, SETTINGS and a request in one write, its error
		// ignored: the gateway may answer and close after the preface
		// alone, which is the outcome under test.
		var out bytes.Buffer
		out.WriteString(http2.ClientPreface)
		h := gateway.NewH2Client(t, c, br)
		h.SetFramer(http2.NewFramer(&out, nil))
		h.Framer().WriteSettings()
		h.Get(1, "/admin/secret")
		c.Write(out.Bytes())
		resp, _ = gateway.ReadHTTP1(t, br, "PRI")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("preface after a declined upgrade: %s; want 400", resp.Status)
		}
		gateway.ExpectClosed(t, c, br, 5*time.Second)
	})
	t.Run("prior knowledge with upgrade fields", func(t *testing.T) {
		c := gateway.Dial(t, addr)
		h := gateway.NewH2Client(t, c, nil)
		h.Preface()
		h.Get(1, "/public4", "upgrade", "h2c", "http2-settings", "AAMAAABk", "connection", "Upgrade")
		h.Get(3, "/public5", "http2-settings", "AAMAAABk")
		resps, _, err := h.ReadUntil(gateway.Ended(1, 3))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []uint32{1, 3} {
			if r := resps[id]; r.Status() != "400" && r.Reset() == nil {
				t.Errorf("stream %d: %+v; want 400 or a reset", id, r)
			}
		}
	})

	got := up.requests()
	slices.Sort(got) // streams 1 and 5 run concurrently
	want := []string{"GET /public", "GET /public2", "GET /public3"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("upstream saw:\n%s\nwant exactly:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	authMu.Lock()
	defer authMu.Unlock()
	for _, path := range []string{"/public", "/admin/secret", "/public2", "/public3"} {
		found := false
		for _, a := range authorised {
			found = found || a == path
		}
		if !found {
			t.Errorf("%s never passed the authorising handler; it saw %v", path, authorised)
		}
	}
}
