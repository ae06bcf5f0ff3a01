package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/internal/testwait"
)

// fakeClock is a clock the test moves; safe for concurrent use.
type fakeClock struct {
	base time.Time
	off  atomic.Int64
}

func newFakeClock() *fakeClock { return &fakeClock{base: time.Now()} }

func (c *fakeClock) now() time.Time { return c.base.Add(time.Duration(c.off.Load())) }

func (c *fakeClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// testPool builds a pool of upstreams named by specs ("http://a:1",
// "h2c://b:2"), on a fake clock.
func testPool(t *testing.T, failTimeout time.Duration, specs ...string) (*pool, *fakeClock) {
	t.Helper()
	var ups []*upstream
	for _, s := range specs {
		name, host, scheme, err := parseUpstream(s)
		if err != nil {
			t.Fatal(err)
		}
		ups = append(ups, &upstream{name: name, host: host, h2c: scheme == "h2c", tls: scheme == "https"})
	}
	p := newPool(ups, failTimeout)
	c := newFakeClock()
	p.now = c.now
	return p, c
}

func picks(p *pool, n int, wantH1 bool) string {
	var names []string
	for range n {
		names = append(names, p.pick(wantH1).host)
	}
	return strings.Join(names, " ")
}

func TestPoolRoundRobin(t *testing.T) {
	tests := []struct {
		name   string
		specs  []string
		wantH1 bool
		want   string
	}{
		{"one", []string{"http://a:1"}, false, "a:1 a:1 a:1"},
		{"three", []string{"http://a:1", "h2c://b:2", "http://c:3"}, false, "a:1 b:2 c:3 a:1 b:2 c:3"},
		// A WebSocket tunnel needs HTTP/1.1: h2c upstreams are passed over.
		{"tunnel skips h2c", []string{"http://a:1", "h2c://b:2", "http://c:3"}, true, "a:1 c:3 c:3 a:1 c:3 c:3"},
		// With no HTTP/1.1 upstream the tunnel is not made; any will do.
		{"tunnel without http upstreams", []string{"h2c://a:1", "h2c://b:2"}, true, "a:1 b:2 a:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := testPool(t, time.Second, tt.specs...)
			if got := picks(p, len(strings.Fields(tt.want)), tt.wantH1); got != tt.want {
				t.Errorf("picks: got %q; want %q", got, tt.want)
			}
		})
	}
}

// TestPoolTakeOut: a taken-out upstream is skipped until failTimeout has
// passed, then picked again; a success before then does not restore it.
func TestPoolTakeOut(t *testing.T) {
	p, clock := testPool(t, 10*time.Second, "http://a:1", "http://b:2", "http://c:3")
	a, b := p.ups[0], p.ups[1]
	if !p.takeOut(b) {
		t.Errorf("takeOut of an upstream in service: got false; want true")
	}
	if p.takeOut(b) {
		t.Errorf("takeOut of an upstream already out: got true; want false")
	}
	if got, want := picks(p, 4, false), "a:1 c:3 c:3 a:1"; got != want {
		t.Errorf("picks with b out: got %q; want %q", got, want)
	}
	if got := p.pickOther(a, false); got == nil || got.host != "c:3" {
		t.Errorf("pickOther(a) with b out: got %v; want c:3", got)
	}
	clock.advance(5 * time.Second)
	if p.restore(b) {
		t.Errorf("restore before failTimeout: got true; want false")
	}
	if got, want := picks(p, 3, false), "c:3 c:3 a:1"; got != want {
		t.Errorf("picks before failTimeout: got %q; want %q", got, want)
	}
	clock.advance(5 * time.Second)
	if got, want := picks(p, 3, false), "b:2 c:3 a:1"; got != want {
		t.Errorf("picks after failTimeout: got %q; want %q", got, want)
	}
	if !p.restore(b) {
		t.Errorf("restore after failTimeout: got false; want true")
	}
	if b.downUntil.Load() != 0 {
		t.Errorf("restored upstream still has downUntil %d", b.downUntil.Load())
	}
}

// TestPoolAllOut: with every upstream out, requests still go round robin
// (nothing else could bring the pool back before failTimeout), a retry finds
// no other upstream, and the pool is not ready.
func TestPoolAllOut(t *testing.T) {
	p, clock := testPool(t, time.Second, "http://a:1", "h2c://b:2")
	for _, u := range p.ups {
		p.takeOut(u)
	}
	if got, want := picks(p, 3, false), "a:1 b:2 a:1"; got != want {
		t.Errorf("picks: got %q; want %q", got, want)
	}
	if got := p.pickOther(p.ups[0], false); got != nil {
		t.Errorf("pickOther: got %s; want nil", got.host)
	}
	if p.ready() {
		t.Errorf("ready: got true; want false")
	}
	clock.advance(time.Second)
	if !p.ready() {
		t.Errorf("ready after failTimeout: got false; want true")
	}
}

func TestPoolLookup(t *testing.T) {
	p, _ := testPool(t, time.Second, "http://a:1", "h2c://b:2")
	for host, want := range map[string]string{"a:1": "http://a:1", "b:2": "h2c://b:2", "c:3": ""} {
		got := ""
		if u := p.lookup(host); u != nil {
			got = u.name
		}
		if got != want {
			t.Errorf("lookup(%q): got %q; want %q", host, got, want)
		}
	}
}

func TestParseUpstream(t *testing.T) {
	tests := []struct {
		in       string
		name     string
		host     string
		h2c      bool
		errMatch string
	}{
		{in: "http://127.0.0.1:8081", name: "http://127.0.0.1:8081", host: "127.0.0.1:8081"},
		{in: "h2c://grpc:50051", name: "h2c://grpc:50051", host: "grpc:50051", h2c: true},
		{in: "HTTP://Example.COM", name: "http://example.com:80", host: "example.com:80"},
		{in: "h2c://[::1]:9/", name: "h2c://[::1]:9", host: "[::1]:9", h2c: true},
		{in: "https://Backend.internal", name: "https://backend.internal:443", host: "backend.internal:443"},
		{in: "https://10.0.0.1:8443/", name: "https://10.0.0.1:8443", host: "10.0.0.1:8443"},
		{in: "ftp://a:1", errMatch: `scheme "ftp" is not served`},
		{in: "//a:1", errMatch: "no scheme"},
		{in: "http:a", errMatch: "no host"},
		{in: "http://a:1/x", errMatch: "a path is not supported"},
		{in: "http://a:1#f", errMatch: "a query or fragment is not supported"},
		{in: "http://u@a:1", errMatch: "must not carry credentials"},
		{in: "http://u:s3cret@a:1/%zz", errMatch: "must not carry credentials"},
		{in: "http://a:99999999", errMatch: "port 99999999 is out of range"},
		{in: "http://a:0", errMatch: "port 0 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			name, host, scheme, err := parseUpstream(tt.in)
			h2c := scheme == "h2c"
			if tt.errMatch != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errMatch) {
					t.Errorf("error: got %v; want one containing %q", err, tt.errMatch)
				}
				if err != nil && strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: got %v; want none", err)
			}
			if name != tt.name || host != tt.host || h2c != tt.h2c {
				t.Errorf("got %q %q %v; want %q %q %v", name, host, h2c, tt.name, tt.host, tt.h2c)
			}
		})
	}
}

// TestProxyRetriesIdempotent: a request that could not connect to its
// upstream goes to another if it is idempotent (by method or
// Idempotency-Key), with its body intact; otherwise the client gets 502.
// Either way the refused upstream is reported and the Note names the
// upstream that answered.
func TestProxyRetriesIdempotent(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		header     map[string]string
		body       string
		wantStatus int
	}{
		{name: "GET", method: http.MethodGet, wantStatus: http.StatusOK},
		{name: "HEAD", method: http.MethodHead, wantStatus: http.StatusOK},
		{name: "POST with Idempotency-Key", method: http.MethodPost, header: map[string]string{"Idempotency-Key": "k1"}, body: "payload", wantStatus: http.StatusOK},
		{name: "POST", method: http.MethodPost, body: "payload", wantStatus: http.StatusBadGateway},
		{name: "DELETE", method: http.MethodDelete, wantStatus: http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := closedAddr(t)
			refused := &testUpstream{url: "http://" + a, name: "http://" + a}
			good := startH1Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				w.Header().Set("X-Got-Body", string(b))
			}))
			// The refused upstream comes first in round robin.
			p, errs := newProxy(t, Config{}, refused, good)
			notes := make(chan string, 1)
			f := startH1Front(t, withNote(p, func(u string) { notes <- u }))
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, _ := http.NewRequest(tt.method, f.url+"/", body)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			res, _ := f.do(t, req)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status: got %d; want %d", res.StatusCode, tt.wantStatus)
			}
			wantNote := good.name
			if tt.wantStatus != http.StatusOK {
				wantNote = refused.name
			} else if got := res.Header.Get("X-Got-Body"); got != tt.body {
				t.Errorf("body at the second upstream: got %q; want %q", got, tt.body)
			}
			if got := testwait.Recv(t, notes, "the note"); got != wantNote {
				t.Errorf("Note.Upstream: got %q; want %q", got, wantNote)
			}
			if got, want := errs.list(), []string{refused.name + " refused"}; !equalStrings(got, want) {
				t.Errorf("OnUpstreamError: got %q; want %q", got, want)
			}
		})
	}
}

// TestProxyTakesOutFailingUpstream: an upstream that refused a connection is
// taken out of the pool — requests go to the others without trying it — for
// FailTimeout, after which a request tries it again; Ready stays true while
// one upstream is in service. The pool's clock is the test's.
func TestProxyTakesOutFailingUpstream(t *testing.T) {
	const failTimeout = time.Minute
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	flaky := &testUpstream{url: "http://" + addr, name: "http://" + addr}
	l.Close() // refused from now on
	good := startH1Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "good")
	}))
	p, errs := newProxy(t, Config{FailTimeout: failTimeout}, flaky, good)
	clock := newFakeClock()
	p.pool.now = clock.now
	f := startH1Front(t, p)

	// Round robin starts at flaky: refused, retried on good, flaky out;
	// the next requests, one of which round robin gives to flaky, go to
	// good without trying it.
	for i := range 4 {
		if res, body := f.get(t, "/"); res.StatusCode != http.StatusOK || body != "good" {
			t.Fatalf("request %d: got %d %q; want 200 \"good\"", i, res.StatusCode, body)
		}
		clock.advance(failTimeout / 10)
	}
	if got, want := errs.list(), []string{flaky.name + " refused"}; !equalStrings(got, want) {
		t.Errorf("OnUpstreamError while taken out: got %q; want %q (flaky tried once)", got, want)
	}
	if !p.Ready() {
		t.Errorf("Ready: got false; want true (one upstream in service)")
	}

	// Flaky comes back; once FailTimeout has passed a request reaches it.
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	back := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "back")
	}))
	back.Listener.Close()
	back.Listener = l2
	back.Start()
	closeAtEnd(t, back)
	clock.advance(failTimeout)
	var bodies []string
	for range 2 {
		_, body := f.get(t, "/")
		bodies = append(bodies, body)
	}
	if !slices.Equal(bodies, []string{"good", "back"}) && !slices.Equal(bodies, []string{"back", "good"}) {
		t.Errorf("after FailTimeout: bodies %q; want one from each upstream", bodies)
	}
}

// TestProxyTakenOutNotReady: with its only upstream refusing, the proxy is
// not ready — found by the readiness dial, before any request failed — and
// is ready again once the upstream accepts connections.
func TestProxyTakenOutNotReady(t *testing.T) {
	a := closedAddr(t)
	p, _ := newProxy(t, Config{}, &testUpstream{url: "h2c://" + a, name: "h2c://" + a})
	if p.Ready() {
		t.Fatalf("Ready with the only upstream refusing: got true; want false")
	}
	f := startH1Front(t, p)
	if res, _ := f.get(t, "/"); res.StatusCode != http.StatusBadGateway {
		t.Fatalf("status: got %d; want 502", res.StatusCode)
	}
	l, err := net.Listen("tcp", a)
	if err != nil {
		t.Fatalf("cannot listen on %s again: %v", a, err)
	}
	defer l.Close()
	p.ready.Store(nil) // forget the cached answer rather than wait readyTTL
	if !p.Ready() {
		t.Errorf("Ready once the upstream accepts connections: got false; want true")
	}
}
