package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/internal/testwait"
)

// acceptTimes is a loopback HTTP/1.1 upstream that closes every connection
// after one response and records when it accepted each.
func acceptTimes(t *testing.T, h http.Handler) (*testUpstream, func() []time.Time) {
	t.Helper()
	var mu sync.Mutex
	var at []time.Time
	up := startUpstreamConfig(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		h.ServeHTTP(w, r)
	}), false, func(s *http.Server) {
		s.ConnState = func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				mu.Lock()
				at = append(at, time.Now())
				mu.Unlock()
			}
		}
	})
	return up, func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Time(nil), at...)
	}
}

// TestDialRate: new upstream connections are bounded by DialRate, in
// bursts of as many: 60 requests that each cost a connection take at least
// two seconds at 20 a second, and no more than the burst and the rate allow
// arrive early.
func TestDialRate(t *testing.T) {
	const rate, n = 20, 60
	up, accepts := acceptTimes(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	p, _ := newProxy(t, Config{DialRate: rate}, up)
	f := startH1Front(t, p)
	start := time.Now()
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range n {
		wg.Go(func() {
			res, err := f.client.Get(f.url + "/")
			if err != nil {
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 && string(body) == "ok" {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != n {
		t.Fatalf("%d of %d requests served; want all", ok.Load(), n)
	}
	at := accepts()
	if len(at) < n {
		t.Fatalf("%d upstream connections for %d requests; want one each", len(at), n)
	}
	early := 0
	for _, a := range at {
		if a.Sub(start) < 500*time.Millisecond {
			early++
		}
	}
	if max := rate + rate/2 + 2; early > max {
		t.Errorf("%d connections in the first 500ms; want at most %d (a burst of %d, then %d/s)", early, max, rate, rate)
	}
	if last := at[n-1].Sub(start); last < 1800*time.Millisecond {
		t.Errorf("connection %d after %v; want no sooner than about %v at %d/s after a burst of %d", n, last, 2*time.Second, rate, rate)
	}
}

// TestCanceledBeforeSent: a request whose client goes away while it waits
// for a connection (here, for the dial rate) is never sent: the upstream
// never sees it. (net/http finishes the dial it had begun, at the rate, and
// keeps the connection for the next request.)
func TestCanceledBeforeSent(t *testing.T) {
	var requests atomic.Int32
	release := make(chan struct{})
	up, accepts := acceptTimes(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	p, _ := newProxy(t, Config{DialRate: 0.5}, up) // one dial now, the next in 2s
	f := startH1Front(t, p)
	go func() {
		if res, err := f.client.Get(f.url + "/first"); err == nil {
			res.Body.Close()
		}
	}()
	testwait.Recv(t, waitUntil(func() bool { return requests.Load() == 1 }), "the first request to arrive")
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url+"/second", nil)
	done := make(chan error, 1)
	go func() {
		res, err := f.client.Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // waiting for the dial rate
	cancel()
	testwait.Recv(t, done, "the canceled request to return")
	time.Sleep(2 * time.Second) // past the next dial's due time
	if n := requests.Load(); n != 1 {
		t.Errorf("upstream saw %d requests; want only the first", n)
	}
	if n := len(accepts()); n > 2 {
		t.Errorf("upstream accepted %d connections; want the first's and at most the one dial net/http finishes for the pool", n)
	}
}

// waitUntil returns a channel closed once cond holds (polled).
func waitUntil(cond func() bool) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		deadline := time.Now().Add(testTimeout)
		for !cond() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		close(ch)
	}()
	return ch
}
