package proxy

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/internal/testwait"
)

// TestProxyCapsUpstreamConns: past MaxConnsPerHost requests in flight to an
// HTTP/1.1 upstream, a request waits for a connection rather than dialling
// one, and gets 504 when none comes free within Timeout; it never reaches
// the upstream. The first request holds the only connection with a body
// that does not end (its headers came in time).
func TestProxyCapsUpstreamConns(t *testing.T) {
	arrived := make(chan struct{}, 2)
	release := make(chan struct{})
	var seen atomic.Int32
	up := startH1Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen.Add(1) > 1 {
			_, _ = io.WriteString(w, "ok")
			return
		}
		w.Header().Set("Content-Length", "2")
		_, _ = io.WriteString(w, "o")
		_ = http.NewResponseController(w).Flush()
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "k")
	}))
	p, errs := newProxy(t, Config{MaxConnsPerHost: 1, Timeout: 300 * time.Millisecond}, up)
	f := startH1Front(t, p)

	first := make(chan int, 1)
	go func() {
		res, err := f.client.Get(f.url + "/slow")
		if err != nil {
			first <- 0
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		first <- res.StatusCode
	}()
	testwait.Recv(t, arrived, "the first request at the upstream")

	res, body := f.get(t, "/queued")
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("request past the cap: got %d %q; want 504", res.StatusCode, body)
	}
	if got := seen.Load(); got != 1 {
		t.Errorf("requests that reached the upstream: got %d; want 1 (the second waited for a connection)", got)
	}
	if got, want := testwait.Recv(t, errs.ch, "OnUpstreamError"), up.name+" timeout"; got != want {
		t.Errorf("OnUpstreamError: got %q; want %q", got, want)
	}

	close(release)
	if got := testwait.Recv(t, first, "the first request"); got != http.StatusOK {
		t.Errorf("first request: got %d; want 200", got)
	}
	// The slot came back with the first response: the next request goes
	// through, on the same connection.
	if res, body := f.get(t, "/after"); res.StatusCode != http.StatusOK || body != "ok" {
		t.Errorf("request after the first finished: got %d %q; want 200 \"ok\"", res.StatusCode, body)
	}
	if got := up.accepts.Load(); got != 1 {
		t.Errorf("upstream connections: got %d; want 1", got)
	}
}

// TestProxyKeepsUpstreamConns: rounds of more concurrent requests than
// MaxConnsPerHost open at most MaxConnsPerHost connections to an HTTP/1.1
// upstream over the whole run: none is closed and dialled again (http.DefaultMaxIdleConnsPerHost is 2).
func TestProxyKeepsUpstreamConns(t *testing.T) {
	const limit, n, rounds = 3, 12, 3
	up := startH1Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	p, _ := newProxy(t, Config{MaxConnsPerHost: limit}, up)
	f := startH1Front(t, p)
	for range rounds {
		concurrentGets(t, f, n)
	}
	if got := up.accepts.Load(); got > limit {
		t.Errorf("upstream connections over %d rounds of %d requests: got %d; want at most %d", rounds, n, got, limit)
	}
}

// TestProxyH2CNoChurn: an h2c upstream whose stream limit makes the proxy
// open more than one connection gets no new connection once those are open:
// a request finds a connection with a free stream instead of dialling one
// that would be closed at once.
func TestProxyH2CNoChurn(t *testing.T) {
	const n = 6
	gate := make(chan struct{})
	arrived := make(chan struct{}, n)
	up := startH2CUpstreamConfig(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default: // the later rounds
		}
		select {
		case <-gate:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "ok")
	}), func(s *http.Server) { s.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 2} })
	p, _ := newProxy(t, Config{}, up)
	f := startH1Front(t, p)

	// The first round holds n requests at once: the proxy needs n/2
	// connections. A request sent on a new connection before the client
	// has read the upstream's SETTINGS may exceed its limit of 2, and the
	// upstream may refuse it with PROTOCOL_ERROR (RFC 9113 §5.1.2 allows
	// that code; the client cannot know the limit yet): 502, sent again
	// once. Later rounds find the limit known.
	done := make(chan error, n)
	for range n {
		go func() {
			err := get(f, "/")
			var se *statusError
			if errors.As(err, &se) && se.code == http.StatusBadGateway {
				err = get(f, "/")
			}
			done <- err
		}()
	}
	for range n {
		testwait.Recv(t, arrived, "the requests at the upstream")
	}
	close(gate)
	for range n {
		if err := testwait.Recv(t, done, "the first round"); err != nil {
			t.Fatal(err)
		}
	}
	opened := up.accepts.Load()
	if opened < n/2 {
		t.Fatalf("connections for %d concurrent requests at 2 streams each: got %d; want at least %d", n, opened, n/2)
	}
	for range 3 {
		concurrentGets(t, f, n)
	}
	if got := up.accepts.Load(); got != opened {
		t.Errorf("connections after more rounds: got %d; want %d (no new dial)", got, opened)
	}
}

// startH2CUpstreamConfig is startH2CUpstream with the server adjusted by
// configure before it starts.
func startH2CUpstreamConfig(t *testing.T, h http.Handler, configure func(*http.Server)) *testUpstream {
	t.Helper()
	return startUpstreamConfig(t, h, true, configure)
}

// concurrentGets sends n GETs at once through f and fails the test unless
// every one gets 200 "ok".
func concurrentGets(t *testing.T, f *front, n int) {
	t.Helper()
	errs := make(chan error, n)
	for range n {
		go func() { errs <- get(f, "/") }()
	}
	for range n {
		if err := testwait.Recv(t, errs, "the requests"); err != nil {
			t.Fatal(err)
		}
	}
}

// get sends one GET through f and reports anything but 200 "ok".
func get(f *front, path string) error {
	res, err := f.client.Get(f.url + path)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK || string(b) != "ok" {
		return &statusError{code: res.StatusCode, body: string(b)}
	}
	return nil
}

type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	return "got " + http.StatusText(e.code) + " " + e.body + "; want 200 ok"
}

// TestProxyH2CFirstRequests: the first requests on new h2c connections,
// sent while the upstream's SETTINGS may be arriving, all complete. net/http
// runs a ClientConn's state hook synchronously inside Reserve; the pool's
// hook once took the pool's lock that Reserve is called under, and a first
// request hung for good whenever the SETTINGS won that race.
func TestProxyH2CFirstRequests(t *testing.T) {
	up := startH2CUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	for i := range 300 {
		p, _ := newProxy(t, Config{}, up)
		done := make(chan int, 1)
		go func() {
			w := httptest.NewRecorder()
			p.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://front.test/", nil))
			done <- w.Code
		}()
		if code := testwait.Recv(t, done, "a first request on a new connection"); code != http.StatusOK {
			t.Fatalf("request %d: status %d; want 200", i, code)
		}
		p.Close()
	}
}
