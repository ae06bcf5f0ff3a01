package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestReloadSIGHUP: the binary, sent SIGHUP as systemctl reload sends it,
// re-reads its --config file and switches upstream pools under a steady
// HTTP/1.1 and HTTP/2 load with no failed request; a file that does not
// parse is refused and the process keeps serving; SIGTERM still ends it
// cleanly (the cleanup checks exit status 0).
func TestReloadSIGHUP(t *testing.T) {
	t.Parallel()
	named := func(name string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	a, b := named("A"), named("B")
	path := filepath.Join(t.TempDir(), "h2cgw.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("upstream: [" + a.URL + "]\naccess-log: false\n")
	g := startGateway(t, "--config", path)

	// The load: 4 HTTP/2 and 4 HTTP/1.1 workers, bounded in time.
	var (
		failed  atomic.Int64
		mu      sync.Mutex
		byBody  = map[string]int{}
		firstEr string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	deadline := time.Now().Add(40 * time.Second)
	dial := func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	for i := range 8 {
		var c *http.Client
		if i%2 == 0 {
			tr := &http2.Transport{AllowHTTP: true, DialTLSContext: dial}
			t.Cleanup(tr.CloseIdleConnections)
			c = &http.Client{Transport: tr, Timeout: ioTimeout}
		} else {
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			c = &http.Client{Transport: tr, Timeout: ioTimeout}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(g.URL("/load"))
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
					}
				}
				mu.Lock()
				if err != nil {
					failed.Add(1)
					if firstEr == "" {
						firstEr = err.Error()
					}
				} else {
					byBody[string(body)]++
				}
				mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})
	served := func(body string) int {
		mu.Lock()
		defer mu.Unlock()
		return byBody[body]
	}
	waitServed := func(body string, n int) {
		t.Helper()
		start := served(body)
		end := time.Now().Add(ioTimeout)
		for served(body) < start+n {
			if time.Now().After(end) {
				t.Fatalf("no %d answers from %s within %v (failed %d, first: %s)", n, body, ioTimeout, failed.Load(), firstEr)
			}
			time.Sleep(5 * time.Millisecond) // polling the load's own counters
		}
	}
	hup := func() {
		t.Helper()
		if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}

	waitServed("A", 100)
	write("upstream: [" + b.URL + "]\naccess-log: false\n")
	hup()
	if _, err := g.stderr.wait(ioTimeout, func(m map[string]any) bool {
		return m["message"] == "configuration reloaded" && m["trigger"] == "SIGHUP"
	}); err != nil {
		t.Fatalf("after SIGHUP: %v", err)
	}
	waitServed("B", 300)

	write("upstream: [" + a.URL + "\n")
	hup()
	if _, err := g.stderr.wait(ioTimeout, func(m map[string]any) bool {
		return m["message"] == "configuration reload refused; the running configuration stays" && m["level"] == "warn"
	}); err != nil {
		t.Fatalf("after SIGHUP with a broken file: %v", err)
	}
	waitServed("B", 300)
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed across the reloads; first: %s", n, firstEr)
	}
	if n := served("A") + served("B"); n < 700 {
		t.Errorf("%d requests served; want a steady load", n)
	}
}
