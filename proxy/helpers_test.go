package proxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/gateway"
	"github.com/h2cgw/h2cgw/internal/errlog"
	"github.com/h2cgw/h2cgw/internal/testwait"
	"github.com/rs/zerolog"
)

// testTimeout bounds every wait in these tests, so that a failure is a
// failure and not a hang.
const testTimeout = testwait.Timeout

// closeAtEnd closes s when the test ends, within testTimeout. httptest's
// Close waits for every request in flight, so a handler the test left
// blocked would otherwise hang the whole package until go test's own
// timeout, whose goroutine dump names no test. Past testTimeout it fails
// the test that left the request behind and cuts the connections.
func closeAtEnd(t *testing.T, s *httptest.Server) {
	t.Helper()
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { s.Close(); close(done) }()
		select {
		case <-done:
			return
		case <-time.After(testTimeout):
		}
		t.Errorf("test server %s: a request was still in flight %v after the test; cutting its connections", s.URL, testTimeout)
		s.CloseClientConnections()
		<-done
	})
}

// testUpstream is an upstream server on loopback.
type testUpstream struct {
	// url is what Config.Upstreams takes: http://… or h2c://….
	url string
	// name is how the proxy names it: url with the port made explicit.
	name string
	// accepts counts the connections the upstream accepted.
	accepts *atomic.Int32
}

type upstreamKind struct {
	name  string
	proto string // what the upstream's requests say
	start func(t *testing.T, h http.Handler) *testUpstream
}

// upstreamKinds are the two kinds of upstream the proxy speaks to.
var upstreamKinds = []upstreamKind{
	{"http", "HTTP/1.1", startH1Upstream},
	{"h2c", "HTTP/2.0", startH2CUpstream},
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func startUpstream(t *testing.T, h http.Handler, h2c bool) *testUpstream {
	t.Helper()
	return startUpstreamConfig(t, h, h2c, nil)
}

// startUpstreamConfig is startUpstream with the server adjusted by
// configure, if not nil, before it starts.
func startUpstreamConfig(t *testing.T, h http.Handler, h2c bool, configure func(*http.Server)) *testUpstream {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	n := new(atomic.Int32)
	s.Listener = countingListener{Listener: s.Listener, n: n}
	if h2c {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		s.Config.Protocols = &p
	}
	s.Config.ErrorLog = errlog.New(testLogger(t))
	if configure != nil {
		configure(s.Config)
	}
	s.Start()
	closeAtEnd(t, s)
	addr := s.Listener.Addr().String()
	u := &testUpstream{url: "http://" + addr, name: "http://" + addr, accepts: n}
	if h2c {
		u.url, u.name = "h2c://"+addr, "h2c://"+addr
	}
	return u
}

func startH1Upstream(t *testing.T, h http.Handler) *testUpstream {
	t.Helper()
	return startUpstream(t, h, false)
}

func startH2CUpstream(t *testing.T, h http.Handler) *testUpstream {
	t.Helper()
	return startUpstream(t, h, true)
}

// rawUpstream serves each connection with serve on a loopback listener, for
// upstreams that misbehave in ways net/http's server will not.
func rawUpstream(t *testing.T, serve func(c net.Conn)) *testUpstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := new(atomic.Int32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(testTimeout))
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	addr := l.Addr().String()
	return &testUpstream{url: "http://" + addr, name: "http://" + addr, accepts: n}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
}

// upstreamErrors records OnUpstreamError calls.
type upstreamErrors struct {
	mu    sync.Mutex
	calls []string // "name cause"
	ch    chan string
}

func newUpstreamErrors() *upstreamErrors {
	return &upstreamErrors{ch: make(chan string, 16)}
}

func (e *upstreamErrors) record(name, cause string) {
	e.mu.Lock()
	e.calls = append(e.calls, name+" "+cause)
	e.mu.Unlock()
	select {
	case e.ch <- name + " " + cause:
	default:
	}
}

func (e *upstreamErrors) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.calls...)
}

// newProxy builds a Proxy over upstreams with cfg's other fields, logging
// to the test, recording OnUpstreamError unless cfg sets it.
func newProxy(t *testing.T, cfg Config, upstreams ...*testUpstream) (*Proxy, *upstreamErrors) {
	t.Helper()
	for _, u := range upstreams {
		cfg.Upstreams = append(cfg.Upstreams, u.url)
	}
	cfg.Logger = testLogger(t)
	errs := newUpstreamErrors()
	if cfg.OnUpstreamError == nil {
		cfg.OnUpstreamError = errs.record
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, errs
}

// front is a server in front of the proxy, and a client for it.
type front struct {
	url    string
	addr   string
	client *http.Client
}

type frontKind struct {
	name  string
	start func(t *testing.T, h http.Handler) *front
}

// frontKinds are the protocols a client reaches the proxy with.
var frontKinds = []frontKind{
	{"h1", startH1Front},
	{"h2c", startH2CFront},
}

func startH1Front(t *testing.T, h http.Handler) *front {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = errlog.New(testLogger(t))
	s.Start()
	closeAtEnd(t, s)
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &front{url: s.URL, addr: s.Listener.Addr().String(), client: &http.Client{Transport: tr}}
}

// startGatewayFront serves h behind a Gateway on loopback, as the binary
// does, and returns it with the Gateway.
func startGatewayFront(t *testing.T, h http.Handler) (*front, *gateway.Gateway) {
	t.Helper()
	g := gateway.New(h, gateway.Config{Logger: testLogger(t)})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(l) }()
	t.Cleanup(func() {
		g.Close()
		<-done
	})
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	addr := l.Addr().String()
	return &front{url: "http://" + addr, addr: addr, client: &http.Client{Transport: tr}}, g
}

// proxyFrames mark the goroutines of the proxy and of the servers and
// transports around it in these tests (leaktest): the front's and the
// upstreams' connections, the upstream transports' connections.
var proxyFrames = []string{
	"net/http.(*conn).serve",
	"net/http.(*persistConn)",
	"http2.(*ClientConn)",
	"http2.(*clientConnReadLoop)",
	"http2.(*serverConn)",
	"/h2cgw/proxy.",
	"/h2cgw/gateway.",
}

func startH2CFront(t *testing.T, h http.Handler) *front {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	var sp http.Protocols
	sp.SetHTTP1(true)
	sp.SetUnencryptedHTTP2(true)
	s.Config.Protocols = &sp
	s.Config.ErrorLog = errlog.New(testLogger(t))
	s.Start()
	closeAtEnd(t, s)
	var cp http.Protocols
	cp.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &cp, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &front{url: s.URL, addr: s.Listener.Addr().String(), client: &http.Client{Transport: tr}}
}

// do sends req with the test's deadline and returns the response with its
// body read.
func (f *front) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), testTimeout)
	defer cancel()
	res, err := f.client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return res, string(b)
}

func (f *front) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f.do(t, req)
}

// rawExchange sends a raw HTTP/1.1 request on a new connection to addr and
// returns the response with its body read.
func rawExchange(t *testing.T, addr, request string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return res, string(b)
}

// rawRequest builds a raw HTTP/1.1 request head from lines.
func rawRequest(lines ...string) string {
	return strings.Join(lines, "\r\n") + "\r\n\r\n"
}

// seenRequest is what an upstream received.
type seenRequest struct {
	Proto, Method, Host, Path string
	Header                    http.Header
}

// requestLog records what an upstream received: the evidence of what the
// proxy forwarded.
type requestLog struct {
	mu   sync.Mutex
	reqs []seenRequest
}

func (l *requestLog) add(r *http.Request) {
	l.mu.Lock()
	l.reqs = append(l.reqs, seenRequest{r.Proto, r.Method, r.Host, r.URL.Path, r.Header.Clone()})
	l.mu.Unlock()
}

func (l *requestLog) all() []seenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]seenRequest(nil), l.reqs...)
}

func (l *requestLog) last(t *testing.T) seenRequest {
	t.Helper()
	all := l.all()
	if len(all) == 0 {
		t.Fatal("upstream saw no request")
	}
	return all[len(all)-1]
}

// echoHeaders records each request and answers 200 "ok".
func (l *requestLog) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.add(r)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	})
}

// randomStream is n deterministic pseudo-random bytes read in odd-sized
// pieces, of unknown length to net/http (so it is sent chunked or as DATA
// frames without Content-Length).
type randomStream struct {
	r *rand.ChaCha8
	n int
}

func newRandomStream(seed byte, n int) *randomStream {
	var s [32]byte
	s[0] = seed
	return &randomStream{r: rand.NewChaCha8(s), n: n}
}

func (s *randomStream) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	if len(p) > 7777 {
		p = p[:7777]
	}
	if len(p) > s.n {
		p = p[:s.n]
	}
	n, _ := s.r.Read(p)
	s.n -= n
	return n, nil
}

func hashOf(r io.Reader) (string, int64) {
	h := sha256.New()
	n, _ := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n
}

// withNote gives each request a Note, as the access log does, and reports
// the upstream it named after the proxy returned.
func withNote(h http.Handler, report func(upstream string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, n := WithNote(r.Context())
		h.ServeHTTP(w, r.WithContext(ctx))
		report(n.Upstream)
	})
}
