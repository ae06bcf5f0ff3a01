package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestSIGTERMUnderLoad: SIGTERM while clients keep a steady load on both
// HTTP/2 (prior knowledge) and HTTP/1.1 through the gateway to a slow
// upstream. Every request the upstream began is answered to its client with
// 200 inside the grace period: nothing in flight at the signal is lost
// (README "Shutdown"). Requests the gateway refused after the signal — on a stream
// above the GOAWAY's last stream id, or a connection the closed listener
// refused — never reached the upstream, and are counted apart.
//
// Load: 12 HTTP/2 workers on 3 connections and 4 HTTP/1.1 workers, each
// sending one request after another, each request held 50 ms by the
// upstream; the signal comes after 100 answered requests.
func TestSIGTERMUnderLoad(t *testing.T) {
	t.Parallel()

	var begun sync.Map // request id → true, set when the upstream starts it
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		begun.Store(r.Header.Get("X-Req"), true)
		time.Sleep(50 * time.Millisecond) // the deliberate work of the request
		io.WriteString(w, "done")
	}))
	t.Cleanup(upstream.Close)
	g := startGateway(t, "--upstream", upstream.URL, "--shutdown-timeout", "15s", "--access-log=false")

	dial := func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	h2 := []*http.Client{}
	for range 3 {
		tr := &http2.Transport{AllowHTTP: true, DialTLSContext: dial}
		t.Cleanup(tr.CloseIdleConnections)
		h2 = append(h2, &http.Client{Transport: tr, Timeout: 20 * time.Second})
	}
	h1tr := &http.Transport{MaxIdleConnsPerHost: 8}
	t.Cleanup(h1tr.CloseIdleConnections)
	h1 := &http.Client{Transport: h1tr, Timeout: 20 * time.Second}

	var (
		nextID                  atomic.Int64
		ok, refused, lost, sent atomic.Int64
		signalled               atomic.Bool
		inFlightAtSignal        atomic.Int64
		inFlight                atomic.Int64
		mu                      sync.Mutex
		lostDetail              []string
	)
	stop := make(chan struct{})
	worker := func(c *http.Client) {
		for {
			select {
			case <-stop:
				return
			default:
			}
			id := strconv.FormatInt(nextID.Add(1), 10)
			req, _ := http.NewRequest("GET", g.URL("/work"), nil)
			req.Header.Set("X-Req", id)
			sent.Add(1)
			inFlight.Add(1)
			resp, err := c.Do(req)
			inFlight.Add(-1)
			var body []byte
			if err == nil {
				body, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			_, started := begun.Load(id)
			switch {
			case err == nil && resp.StatusCode == 200 && string(body) == "done":
				ok.Add(1)
			case !started && signalled.Load():
				// Refused after the signal before reaching the
				// upstream: the client may retry it elsewhere.
				refused.Add(1)
				return
			default:
				lost.Add(1)
				mu.Lock()
				lostDetail = append(lostDetail, fmt.Sprintf("request %s (upstream began it: %v): %v %v", id, started, err, resp))
				mu.Unlock()
				return
			}
		}
	}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() { worker(h2[i%3]) })
	}
	for range 4 {
		wg.Go(func() { worker(h1) })
	}
	deadline := time.Now().Add(20 * time.Second)
	for ok.Load() < 100 {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("load never reached 100 answered requests (ok %d, lost %d)", ok.Load(), lost.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	inFlightAtSignal.Store(inFlight.Load())
	signalled.Store(true)
	start := time.Now()
	if err := g.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	drained := time.Since(start)
	close(stop)
	wg.Wait()

	t.Logf("sent %d, answered 200 %d, refused unprocessed after SIGTERM %d, lost %d; %d in flight at the signal; exit after %v",
		sent.Load(), ok.Load(), refused.Load(), lost.Load(), inFlightAtSignal.Load(), drained.Round(time.Millisecond))
	if lost.Load() != 0 {
		t.Errorf("%d requests lost:\n%v", lost.Load(), lostDetail)
	}
	if inFlightAtSignal.Load() == 0 {
		t.Error("no request was in flight at the signal; the test proved nothing")
	}
}
