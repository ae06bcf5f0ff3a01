package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/h2cgw/h2cgw/internal/testwait"
)

// TestProxyStreamsBodies: a 1 MiB request body of unknown length reaches the
// upstream intact, and a 1 MiB streamed response reaches the client intact,
// for each kind of upstream and each protocol the client speaks.
func TestProxyStreamsBodies(t *testing.T) {
	const size = 1 << 20
	wantUp, _ := hashOf(newRandomStream(1, size))
	wantDown, _ := hashOf(newRandomStream(2, size))
	for _, kind := range upstreamKinds {
		for _, fk := range frontKinds {
			t.Run(kind.name+"/"+fk.name, func(t *testing.T) {
				up := kind.start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					sum, n := hashOf(r.Body)
					w.Header().Set("X-Body-Sha256", sum)
					w.Header().Set("X-Body-Bytes", fmt.Sprint(n))
					_, _ = io.Copy(w, newRandomStream(2, size))
				}))
				p, _ := newProxy(t, Config{}, up)
				f := fk.start(t, p)
				req, _ := http.NewRequest(http.MethodPut, f.url+"/upload", newRandomStream(1, size))
				res, body := f.do(t, req)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("status: got %d; want 200", res.StatusCode)
				}
				if got := res.Header.Get("X-Body-Sha256"); got != wantUp {
					t.Errorf("upstream's request body hash: got %s (%s bytes); want %s (%d bytes)", got, res.Header.Get("X-Body-Bytes"), wantUp, size)
				}
				if got, n := hashOf(strings.NewReader(body)); got != wantDown {
					t.Errorf("response body hash: got %s (%d bytes); want %s (%d bytes)", got, n, wantDown, size)
				}
			})
		}
	}
}

// TestProxyFlushesStreamingResponse: what the upstream flushes reaches the
// client while the upstream's handler is still running (server-sent events,
// gRPC streaming): the handler waits for the client to have read the first
// event before it writes the second.
func TestProxyFlushesStreamingResponse(t *testing.T) {
	for _, kind := range upstreamKinds {
		for _, fk := range frontKinds {
			t.Run(kind.name+"/"+fk.name, func(t *testing.T) {
				release := make(chan struct{})
				up := kind.start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/event-stream")
					_, _ = io.WriteString(w, "data: first\n\n")
					_ = http.NewResponseController(w).Flush()
					select {
					case <-release:
					case <-r.Context().Done():
						return
					}
					_, _ = io.WriteString(w, "data: second\n\n")
				}))
				p, _ := newProxy(t, Config{}, up)
				f := fk.start(t, p)
				req, _ := http.NewRequest(http.MethodGet, f.url+"/events", nil)
				res, err := f.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				got := make(chan string, 1)
				go func() {
					line, _ := bufio.NewReader(res.Body).ReadString('\n')
					got <- line
				}()
				if line := testwait.Recv(t, got, "the first event"); line != "data: first\n" {
					t.Fatalf("first line: got %q; want %q", line, "data: first\n")
				}
				close(release)
			})
		}
	}
}

// TestProxyPassesTrailers: trailers from either kind of upstream, announced
// or not, reach the client over either protocol (gRPC's status).
func TestProxyPassesTrailers(t *testing.T) {
	for _, kind := range upstreamKinds {
		for _, fk := range frontKinds {
			t.Run(kind.name+"/"+fk.name, func(t *testing.T) {
				up := kind.start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Trailer", "Grpc-Status")
					w.Header().Set("Content-Type", "application/grpc")
					_, _ = io.WriteString(w, "payload")
					_ = http.NewResponseController(w).Flush()
					w.Header().Set("Grpc-Status", "0")
					w.Header().Set(http.TrailerPrefix+"Grpc-Message", "unannounced")
				}))
				p, _ := newProxy(t, Config{}, up)
				f := fk.start(t, p)
				req, _ := http.NewRequest(http.MethodPost, f.url+"/svc/Method", strings.NewReader("x"))
				req.Header.Set("TE", "trailers")
				res, body := f.do(t, req)
				if body != "payload" {
					t.Errorf("body: got %q; want %q", body, "payload")
				}
				for k, v := range map[string]string{"Grpc-Status": "0", "Grpc-Message": "unannounced"} {
					if got := res.Trailer.Get(k); got != v {
						t.Errorf("trailer %s: got %q; want %q (trailers %v)", k, got, v, res.Trailer)
					}
				}
			})
		}
	}
}

// TestProxyReusesConnections: HTTP/1.1 upstream connections are kept alive
// for as many concurrent requests as HTTP/2 clients bring (net/http's
// default of 2 idle per host would dial again, http.DefaultMaxIdleConnsPerHost is 2), and an h2c
// upstream gets concurrent requests multiplexed on one connection. The
// first round warms the pool (a cold h2c pool may dial more than once, and
// keeps one); the second is measured: the upstream records the connection
// (remote address) of every request.
func TestProxyReusesConnections(t *testing.T) {
	const n = 20
	for _, kind := range upstreamKinds {
		t.Run(kind.name, func(t *testing.T) {
			arrived := make(chan string, n)
			var gate atomic.Pointer[chan struct{}]
			up := kind.start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived <- r.RemoteAddr
				select {
				case <-*gate.Load():
				case <-r.Context().Done():
				}
				_, _ = io.WriteString(w, "ok")
			}))
			p, _ := newProxy(t, Config{}, up)
			served := make(chan struct{}, n)
			f := startH1Front(t, withNote(p, func(string) { served <- struct{}{} }))
			// A round holds n requests at the upstream at once, then lets
			// them go and waits until the proxy has finished with each (its
			// upstream connection back in the pool). It returns the number
			// of upstream connections the requests came on.
			round := func() int {
				release := make(chan struct{})
				gate.Store(&release)
				errs := make(chan error, n)
				for range n {
					go func() {
						res, err := f.client.Get(f.url + "/")
						if err == nil {
							_, err = io.Copy(io.Discard, res.Body)
							res.Body.Close()
						}
						errs <- err
					}()
				}
				conns := map[string]bool{}
				for range n {
					conns[testwait.Recv(t, arrived, "the requests to arrive")] = true
				}
				close(release)
				for range n {
					testwait.Recv(t, served, "the proxy to finish")
					if err := testwait.Recv(t, errs, "the client"); err != nil {
						t.Fatal(err)
					}
				}
				return len(conns)
			}
			round()
			accepted := up.accepts.Load()
			used := round()
			want := n
			if kind.name == "h2c" {
				want = 1
			}
			if used != want {
				t.Errorf("upstream connections carrying %d concurrent requests: got %d; want %d", n, used, want)
			}
			if got := up.accepts.Load() - accepted; got != 0 {
				t.Errorf("connections dialled in the second round: got %d; want 0 (all reused)", got)
			}
		})
	}
}
