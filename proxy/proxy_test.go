package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/internal/leaktest"
	"golang.org/x/net/http/httpguts"
)

// hopFields are the fields an upstream must never see (RFC 9110 §7.6.1,
// RFC 9113 §8.2.2, RFC 7540 §3.2.1).
var hopFields = []string{"Connection", "Upgrade", "Http2-Settings", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding"}

// TestProxyForwardsHeaders: whatever hop-by-hop fields an HTTP/1.1 client
// sends, listed in Connection or not, none reaches the upstream (h2c
// smuggling, golang/go#80416); TE is reduced to "trailers"; the
// X-Forwarded-* fields and Via are set; the client's Host is kept.
func TestProxyForwardsHeaders(t *testing.T) {
	tests := []struct {
		name    string
		proto   string   // request line version; HTTP/1.1 if empty
		lines   []string // header lines besides Host, X-Forwarded-For, Via
		absent  []string // besides hopFields
		want    map[string]string
		wantVia string
	}{
		{
			name:  "h2c upgrade listing HTTP2-Settings",
			lines: []string{"Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA"},
		},
		{
			name:  "h2c upgrade not listing HTTP2-Settings",
			lines: []string{"Connection: Upgrade", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA"},
		},
		{
			name:  "HTTP2-Settings and Upgrade without Connection",
			lines: []string{"Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA"},
		},
		{
			name:  "h2c beside websocket",
			lines: []string{"Connection: Upgrade", "Upgrade: h2c, websocket", "HTTP2-Settings: "},
			// A POST is no WebSocket handshake: nothing is tunnelled.
		},
		{
			name:   "fields named in Connection",
			lines:  []string{"Connection: keep-alive, X-Secret, x-other", "Keep-Alive: timeout=5", "X-Secret: 1", "X-Other: 2", "X-Kept: 3"},
			absent: []string{"X-Secret", "X-Other"},
			want:   map[string]string{"X-Kept": "3"},
		},
		{
			name:  "Proxy-Connection",
			lines: []string{"Proxy-Connection: keep-alive"},
		},
		{
			name:  "TE other than trailers",
			lines: []string{"TE: deflate"},
			// TE is absent.
			absent: []string{"Te"},
		},
		{
			name:  "TE trailers among others",
			lines: []string{"TE: deflate, trailers"},
			want:  map[string]string{"Te": "trailers"},
		},
		{
			name:  "unknown upgrade token",
			lines: []string{"Connection: Upgrade", "Upgrade: foo/2"},
		},
		{
			name:    "websocket on HTTP/1.0",
			proto:   "HTTP/1.0",
			lines:   []string{"Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"},
			wantVia: "1.0 edge, 1.0 h2cgw",
		},
	}
	for _, kind := range upstreamKinds {
		for _, tt := range tests {
			t.Run(kind.name+"/"+tt.name, func(t *testing.T) {
				var log requestLog
				up := kind.start(t, log.handler())
				p, errs := newProxy(t, Config{}, up)
				f := startH1Front(t, p)
				proto := tt.proto
				if proto == "" {
					proto = "HTTP/1.1"
				}
				lines := append([]string{
					"POST /path?q=1 " + proto,
					"Host: example.test",
					"X-Forwarded-For: 203.0.113.7",
					"X-Forwarded-Proto: https", // the client's own: replaced
					"Via: 1.0 edge",
					"Content-Length: 4",
				}, tt.lines...)
				res, body := rawExchange(t, f.addr, rawRequest(lines...)+"body")
				if res.StatusCode != http.StatusOK || body != "ok" {
					t.Fatalf("response: got %d %q; want 200 \"ok\" (errors: %q)", res.StatusCode, body, errs.list())
				}
				seen := log.last(t)
				for _, k := range append(slices.Clone(hopFields), tt.absent...) {
					if v, ok := seen.Header[k]; ok {
						t.Errorf("upstream saw %s: %q; want it absent", k, v)
					}
				}
				if _, ok := tt.want["Te"]; !ok {
					if v, ok := seen.Header["Te"]; ok {
						t.Errorf("upstream saw Te: %q; want it absent", v)
					}
				}
				wantVia := tt.wantVia
				if wantVia == "" {
					wantVia = "1.0 edge, 1.1 h2cgw"
				}
				want := map[string]string{
					"X-Forwarded-For":   "203.0.113.7, 127.0.0.1",
					"X-Forwarded-Host":  "example.test",
					"X-Forwarded-Proto": "http",
					"Via":               wantVia,
				}
				for k, v := range tt.want {
					want[k] = v
				}
				for k, v := range want {
					if got := strings.Join(seen.Header[k], ", "); got != v {
						t.Errorf("upstream saw %s: %q; want %q", k, got, v)
					}
				}
				if seen.Host != "example.test" {
					t.Errorf("upstream saw Host %q; want %q", seen.Host, "example.test")
				}
				if seen.Method != "POST" || seen.Path != "/path" || seen.Proto != kind.proto {
					t.Errorf("upstream saw %s %s %s; want POST /path %s", seen.Method, seen.Path, seen.Proto, kind.proto)
				}
				if got := res.Header.Get("Via"); !strings.HasSuffix(got, "h2cgw") {
					t.Errorf("response Via: got %q; want the gateway appended", got)
				}
			})
		}
	}
}

// TestProxyForwardsHeadersHTTP2: a request that reached the proxy over
// HTTP/2 carrying HTTP2-Settings (which HTTP/2 servers let through: RFC
// 9113 §8.2.2 does not list it) reaches neither kind of upstream with it; "TE: trailers" (gRPC) is
// kept; Via says 2.
func TestProxyForwardsHeadersHTTP2(t *testing.T) {
	for _, kind := range upstreamKinds {
		t.Run(kind.name, func(t *testing.T) {
			var log requestLog
			up := kind.start(t, log.handler())
			p, _ := newProxy(t, Config{}, up)
			f := startH2CFront(t, p)
			req, _ := http.NewRequest(http.MethodGet, f.url+"/grpc", nil)
			req.Host = "example.test"
			req.Header.Set("HTTP2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA")
			req.Header.Set("TE", "trailers")
			res, body := f.do(t, req)
			if res.StatusCode != http.StatusOK || body != "ok" {
				t.Fatalf("response: got %d %q; want 200 \"ok\"", res.StatusCode, body)
			}
			if res.ProtoMajor != 2 {
				t.Fatalf("client spoke %s; want HTTP/2", res.Proto)
			}
			seen := log.last(t)
			for _, k := range hopFields {
				if v, ok := seen.Header[k]; ok {
					t.Errorf("upstream saw %s: %q; want it absent", k, v)
				}
			}
			want := map[string]string{
				"Te":                "trailers",
				"Via":               "2 h2cgw",
				"X-Forwarded-Proto": "http",
				"X-Forwarded-Host":  "example.test",
				"X-Forwarded-For":   "127.0.0.1",
			}
			for k, v := range want {
				if got := strings.Join(seen.Header[k], ", "); got != v {
					t.Errorf("upstream saw %s: %q; want %q", k, got, v)
				}
			}
			if seen.Host != "example.test" {
				t.Errorf("upstream saw Host %q; want %q", seen.Host, "example.test")
			}
			if seen.Proto != kind.proto {
				t.Errorf("upstream saw %s; want %s", seen.Proto, kind.proto)
			}
		})
	}
}

// TestProxyLenientUpstreamNeverUpgrades: an upstream that would switch to h2c
// on any "Upgrade: h2c" (as x/net's deprecated h2c handler does even without
// HTTP2-Settings in Connection) never gets the chance: each h2csmuggler-style
// attempt arrives as a plain request, the client gets the upstream's 200,
// and the upstream's request log is the evidence.
func TestProxyLenientUpstreamNeverUpgrades(t *testing.T) {
	var log requestLog
	var mu sync.Mutex
	switched := 0
	up := startH1Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		if httpguts.HeaderValuesContainsToken(r.Header["Upgrade"], "h2c") {
			mu.Lock()
			switched++
			mu.Unlock()
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
			_ = brw.Flush()
			return
		}
		_, _ = io.WriteString(w, "plain")
	}))
	p, _ := newProxy(t, Config{}, up)
	f := startH1Front(t, p)
	attempts := map[string][]string{
		"full upgrade":            {"Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA"},
		"settings unlisted":       {"Connection: Upgrade", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA"},
		"no Connection at all":    {"Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA"},
		"split Connection fields": {"Connection: HTTP2-Settings", "Connection: Upgrade", "Upgrade: H2C", "HTTP2-Settings: "},
	}
	for name, lines := range attempts {
		head := append([]string{"GET /flag HTTP/1.1", "Host: example.test"}, lines...)
		res, body := rawExchange(t, f.addr, rawRequest(head...))
		if res.StatusCode != http.StatusOK || body != "plain" {
			t.Errorf("%s: got %d %q; want 200 \"plain\"", name, res.StatusCode, body)
		}
	}
	if switched != 0 {
		t.Errorf("upstream switched %d times; want 0", switched)
	}
	seen := log.all()
	if len(seen) != len(attempts) {
		t.Fatalf("upstream saw %d requests; want %d", len(seen), len(attempts))
	}
	for i, s := range seen {
		for _, k := range hopFields {
			if v, ok := s.Header[k]; ok {
				t.Errorf("request %d: upstream saw %s: %q; want it absent", i, k, v)
			}
		}
		if s.Proto != "HTTP/1.1" || s.Method != "GET" || s.Path != "/flag" {
			t.Errorf("request %d: upstream saw %s %s %s; want GET /flag HTTP/1.1", i, s.Method, s.Path, s.Proto)
		}
	}
}

// TestProxyRejects: requests the proxy answers itself.
func TestProxyRejects(t *testing.T) {
	var log requestLog
	up := startH1Upstream(t, log.handler())
	p, _ := newProxy(t, Config{}, up)
	f := startH1Front(t, p)
	tests := []struct {
		name       string
		request    string
		wantStatus int
	}{
		{"CONNECT", rawRequest("CONNECT example.test:443 HTTP/1.1", "Host: example.test:443"), http.StatusNotImplemented},
		{"unprintable Upgrade", rawRequest("GET / HTTP/1.1", "Host: example.test", "Connection: upgrade", "Upgrade: \x7fbad"), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := rawExchange(t, f.addr, tt.request)
			if res.StatusCode != tt.wantStatus {
				t.Errorf("status: got %d; want %d", res.StatusCode, tt.wantStatus)
			}
		})
	}
	if n := len(log.all()); n != 0 {
		t.Errorf("upstream saw %d requests; want 0", n)
	}
}

// TestNewProxy: configurations New refuses, with an error that says
// which upstream and why, and the names it gives the ones it accepts.
func TestNewProxy(t *testing.T) {
	bad := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no upstream", Config{}, "no upstream"},
		{"ftp", Config{Upstreams: []string{"ftp://a:1"}}, `upstream "ftp://a:1": scheme "ftp" is not served`},
		{"credentials", Config{Upstreams: []string{"http://u:s3cret@a:1"}}, `must not carry credentials`},
		{"no scheme", Config{Upstreams: []string{"a:1"}}, `upstream "a:1"`},
		{"no host", Config{Upstreams: []string{"http://:80"}}, "no host"},
		{"path", Config{Upstreams: []string{"http://a:1/api"}}, "a path is not supported"},
		{"query", Config{Upstreams: []string{"http://a:1?x=1"}}, "a query or fragment is not supported"},
		{"credentials, not parsed", Config{Upstreams: []string{"http://u:p@a:1:x"}}, "must not carry credentials"},
		{"bad port", Config{Upstreams: []string{"http://a:port"}}, `upstream "http://a:port"`},
		{"twice", Config{Upstreams: []string{"http://a:1", "h2c://A:1"}}, `upstream "h2c://A:1": a:1 is listed twice`},
		{"negative timeout", Config{Upstreams: []string{"http://a:1"}, Timeout: -1}, "Config.Timeout is negative"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.cfg)
			if err == nil {
				p.Close()
				t.Fatalf("New: got no error; want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: got %q; want it to contain %q", err, tt.want)
			}
		})
	}

	p, err := New(Config{Upstreams: []string{"http://Backend", "H2C://[::1]:50051/", "http://127.0.0.1:8081"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	want := []string{"http://backend:80", "h2c://[::1]:50051", "http://127.0.0.1:8081"}
	if got := p.Upstreams(); !equalStrings(got, want) {
		t.Errorf("Upstreams: got %q; want %q", got, want)
	}
}

// ExampleProxy puts a Proxy in front of one HTTP/1.1 upstream.
func ExampleProxy() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from upstream, via %s\n", r.Header.Get("Via"))
	}))
	defer upstream.Close()

	p, err := New(Config{Upstreams: []string{upstream.URL}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	front := httptest.NewServer(p) // a Gateway in production: gateway.New(p, cfg)
	defer front.Close()

	res, err := http.Get(front.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.Status)
	fmt.Print(string(body))
	// Output:
	// 200 OK
	// hello from upstream, via 1.1 h2cgw
}

// TestProxyNoLeak: after plain requests to both kinds of upstream, a
// WebSocket tunnel, a timeout and an unsolicited 101, once the servers are
// closed and Close called, no goroutine of the proxy is left.
func TestProxyNoLeak(t *testing.T) {
	lc := leaktest.Start(t, proxyFrames...)
	t.Run("traffic", func(t *testing.T) {
		h := http.NewServeMux()
		h.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
		h.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		h.HandleFunc("/switch", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusSwitchingProtocols)
		})
		h.Handle("/chat", wsEcho(t))
		h1 := startH1Upstream(t, h)
		h2 := startH2CUpstream(t, h)
		p, _ := newProxy(t, Config{Timeout: 100 * time.Millisecond}, h1, h2)
		f := startH1Front(t, p)
		for _, path := range []string{"/", "/", "/slow", "/slow", "/switch", "/switch"} {
			f.get(t, path)
		}
		c, br, res := wsOpen(t, f.addr)
		if res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake: got %s; want 101", res.Status)
		}
		if err := writeWSFrame(c, "hi", true); err != nil {
			t.Fatal(err)
		}
		if msg, err := readWSFrame(br); err != nil || msg != "hi" {
			t.Fatalf("echo: got %q, %v; want \"hi\"", msg, err)
		}
	})
	lc.Done()
}
