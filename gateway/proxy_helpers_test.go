package gateway

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

	"github.com/rs/zerolog"
)

// pxTimeout bounds every wait in these tests, so that a failure is a
// failure and not a hang.
const pxTimeout = 5 * time.Second

// pxUpstream is an upstream server on loopback.
type pxUpstream struct {
	// url is what ProxyConfig.Upstreams takes: http://… or h2c://….
	url string
	// name is how the proxy names it: url with the port made explicit.
	name string
	// accepts counts the connections the upstream accepted.
	accepts *atomic.Int32
}

type pxUpstreamKind struct {
	name  string
	proto string // what the upstream's requests say
	start func(t *testing.T, h http.Handler) *pxUpstream
}

// pxUpstreamKinds are the two kinds of upstream the proxy speaks to.
var pxUpstreamKinds = []pxUpstreamKind{
	{"http", "HTTP/1.1", pxStartH1Upstream},
	{"h2c", "HTTP/2.0", pxStartH2CUpstream},
}

// pxCountingListener counts accepted connections.
type pxCountingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l pxCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func pxStartUpstream(t *testing.T, h http.Handler, h2c bool) *pxUpstream {
	t.Helper()
	return pxStartUpstreamConfig(t, h, h2c, nil)
}

// pxStartUpstreamConfig is pxStartUpstream with the server adjusted by
// configure, if not nil, before it starts.
func pxStartUpstreamConfig(t *testing.T, h http.Handler, h2c bool, configure func(*http.Server)) *pxUpstream {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	n := new(atomic.Int32)
	s.Listener = pxCountingListener{Listener: s.Listener, n: n}
	if h2c {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		s.Config.Protocols = &p
	}
	s.Config.ErrorLog = newErrorLog(pxLogger(t))
	if configure != nil {
		configure(s.Config)
	}
	s.Start()
	t.Cleanup(s.Close)
	addr := s.Listener.Addr().String()
	u := &pxUpstream{url: "http://" + addr, name: "http://" + addr, accepts: n}
	if h2c {
		u.url, u.name = "h2c://"+addr, "h2c://"+addr
	}
	return u
}

func pxStartH1Upstream(t *testing.T, h http.Handler) *pxUpstream {
	t.Helper()
	return pxStartUpstream(t, h, false)
}

func pxStartH2CUpstream(t *testing.T, h http.Handler) *pxUpstream {
	t.Helper()
	return pxStartUpstream(t, h, true)
}

// pxRawUpstream serves each connection with serve on a loopback listener, for
// upstreams that misbehave in ways net/http's server will not.
func pxRawUpstream(t *testing.T, serve func(c net.Conn)) *pxUpstream {
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
				_ = c.SetDeadline(time.Now().Add(pxTimeout))
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
	return &pxUpstream{url: "http://" + addr, name: "http://" + addr, accepts: n}
}

// pxClosedAddr returns a loopback address nothing listens on.
func pxClosedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func pxLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
}

// pxUpstreamErrors records OnUpstreamError calls.
type pxUpstreamErrors struct {
	mu    sync.Mutex
	calls []string // "name cause"
	ch    chan string
}

func pxNewUpstreamErrors() *pxUpstreamErrors {
	return &pxUpstreamErrors{ch: make(chan string, 16)}
}

func (e *pxUpstreamErrors) record(name, cause string) {
	e.mu.Lock()
	e.calls = append(e.calls, name+" "+cause)
	e.mu.Unlock()
	select {
	case e.ch <- name + " " + cause:
	default:
	}
}

func (e *pxUpstreamErrors) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.calls...)
}

// pxNewProxy builds a Proxy over upstreams with cfg's other fields, logging
// to the test, recording OnUpstreamError unless cfg sets it.
func pxNewProxy(t *testing.T, cfg ProxyConfig, upstreams ...*pxUpstream) (*Proxy, *pxUpstreamErrors) {
	t.Helper()
	for _, u := range upstreams {
		cfg.Upstreams = append(cfg.Upstreams, u.url)
	}
	cfg.Logger = pxLogger(t)
	errs := pxNewUpstreamErrors()
	if cfg.OnUpstreamError == nil {
		cfg.OnUpstreamError = errs.record
	}
	p, err := NewProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, errs
}

// front is a server in front of the proxy, and a client for it.
type pxFront struct {
	url    string
	addr   string
	client *http.Client
}

type pxFrontKind struct {
	name  string
	start func(t *testing.T, h http.Handler) *pxFront
}

// pxFrontKinds are the protocols a client reaches the proxy with.
var pxFrontKinds = []pxFrontKind{
	{"h1", pxStartH1Front},
	{"h2c", pxStartH2CFront},
}

func pxStartH1Front(t *testing.T, h http.Handler) *pxFront {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = newErrorLog(pxLogger(t))
	s.Start()
	t.Cleanup(s.Close)
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &pxFront{url: s.URL, addr: s.Listener.Addr().String(), client: &http.Client{Transport: tr}}
}

func pxStartH2CFront(t *testing.T, h http.Handler) *pxFront {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	var sp http.Protocols
	sp.SetHTTP1(true)
	sp.SetUnencryptedHTTP2(true)
	s.Config.Protocols = &sp
	s.Config.ErrorLog = newErrorLog(pxLogger(t))
	s.Start()
	t.Cleanup(s.Close)
	var cp http.Protocols
	cp.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &cp, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &pxFront{url: s.URL, addr: s.Listener.Addr().String(), client: &http.Client{Transport: tr}}
}

// do sends req with the test's deadline and returns the response with its
// body read.
func (f *pxFront) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), pxTimeout)
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

func (f *pxFront) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f.do(t, req)
}

// pxRawExchange sends a raw HTTP/1.1 request on a new connection to addr and
// returns the response with its body read.
func pxRawExchange(t *testing.T, addr, request string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, pxTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(pxTimeout))
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

// pxRawRequest builds a raw HTTP/1.1 request head from lines.
func pxRawRequest(lines ...string) string {
	return strings.Join(lines, "\r\n") + "\r\n\r\n"
}

// pxSeenRequest is what an upstream received.
type pxSeenRequest struct {
	Proto, Method, Host, Path string
	Header                    http.Header
}

// pxRequestLog records what an upstream received: the evidence of what the
// proxy forwarded.
type pxRequestLog struct {
	mu   sync.Mutex
	reqs []pxSeenRequest
}

func (l *pxRequestLog) add(r *http.Request) {
	l.mu.Lock()
	l.reqs = append(l.reqs, pxSeenRequest{r.Proto, r.Method, r.Host, r.URL.Path, r.Header.Clone()})
	l.mu.Unlock()
}

func (l *pxRequestLog) all() []pxSeenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]pxSeenRequest(nil), l.reqs...)
}

func (l *pxRequestLog) last(t *testing.T) pxSeenRequest {
	t.Helper()
	all := l.all()
	if len(all) == 0 {
		t.Fatal("upstream saw no request")
	}
	return all[len(all)-1]
}

// echoHeaders records each request and answers 200 "ok".
func (l *pxRequestLog) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.add(r)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	})
}

// pxRandomStream is n deterministic pseudo-random bytes read in odd-sized
// pieces, of unknown length to net/http (so it is sent chunked or as DATA
// frames without Content-Length).
type pxRandomStream struct {
	r *rand.ChaCha8
	n int
}

func pxNewRandomStream(seed byte, n int) *pxRandomStream {
	var s [32]byte
	s[0] = seed
	return &pxRandomStream{r: rand.NewChaCha8(s), n: n}
}

func (s *pxRandomStream) Read(p []byte) (int, error) {
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

func pxHashOf(r io.Reader) (string, int64) {
	h := sha256.New()
	n, _ := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n
}

// pxWithNote gives each request a Note, as the access log does, and reports
// the upstream it named after the proxy returned.
func pxWithNote(h http.Handler, report func(upstream string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, n := WithNote(r.Context())
		h.ServeHTTP(w, r.WithContext(ctx))
		report(n.Upstream)
	})
}

// pxWaitFor receives from ch within the test deadline.
func pxWaitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(pxTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
