package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/internal/leaktest"
	"github.com/rs/zerolog"
)

// The helpers of this file back the hardening tests (SECURITY.md): every bad
// input must leave no goroutine behind and the gateway serving.

// connFrames mark a goroutine that serves a connection: net/http's
// per-connection goroutine, the HTTP/2 server's serve loop, frame reader,
// frame writers and handlers (x/net's serverConn on Go 1.26, net/http's
// internal one on Go 1.27), and the gateway's own (an HTTP/2 connection,
// stream 1's watcher, the write flusher). A stack, "created by" line
// included, that names one of them belongs to a connection.
// TestConnFramesMatch fails when one of them no longer names a function.
var connFrames = []string{
	"net/http.(*conn).serve",
	"http2.(*serverConn)",
	"/gateway.(*Gateway).serveHTTP2Conn",
	"/gateway.streamHandler.ServeHTTP",
	"/gateway.(*batchConn).flush",
}

// connGoroutines returns the goroutines serving a connection, by id, each
// with its stack.
func connGoroutines() map[string]string { return leaktest.Goroutines(connFrames) }

// startLeakCheck records the goroutines when a test has its gateway up and
// no connection open yet; call done once every client connection is closed.
func startLeakCheck(t *testing.T) *leakCheck {
	t.Helper()
	return &leakCheck{t, leaktest.Start(t, connFrames...)}
}

// leakCheck is a leaktest.Check on the gateway's connection frames.
type leakCheck struct {
	t *testing.T
	c *leaktest.Check
}

func (lc *leakCheck) done() {
	lc.t.Helper()
	lc.c.Done()
}

// startGatewayHandler is startGateway with a handler of the test's own, logs
// at level (the abuse tests would otherwise log thousands of lines).
func startGatewayHandler(t *testing.T, cfg Config, h http.Handler, level zerolog.Level) *testGateway {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startGatewayOn(t, l, cfg, h, level)
}

// startGatewayOn is startGatewayHandler on the test's own listener.
func startGatewayOn(t *testing.T, l net.Listener, cfg Config, h http.Handler, level zerolog.Level) *testGateway {
	t.Helper()
	events := &eventLog{}
	cfg.OnEvent = events.add
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(level)
	g := New(h, cfg)
	done := make(chan error, 1)
	go func() { done <- g.Serve(l) }()
	t.Cleanup(func() {
		g.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v; want http.ErrServerClosed", err)
		}
	})
	return &testGateway{g: g, addr: l.Addr().String(), events: events}
}

// countingListener counts the bytes the server reads from all the
// connections it accepts, to bound how much of a flood the server consumed
// before it hung up (what the client wrote also sits in socket buffers).
type countingListener struct {
	net.Listener
	read atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.read}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// expectServing checks that a fresh connection is served normally, both on
// HTTP/1.1 and on HTTP/2 with prior knowledge, and closes it. want is the
// body the handler answers GET /next with ("" to skip the check).
func expectServing(t *testing.T, addr, want string) {
	t.Helper()
	c := dial(t, addr)
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	resp, body := readHTTP1(t, bufio.NewReader(c), "GET")
	if resp.StatusCode != 200 || (want != "" && !strings.HasPrefix(string(body), want)) {
		t.Errorf("next HTTP/1.1 connection: %s %q; want 200 %q", resp.Status, body, want)
	}
	c.Close()

	c = dial(t, addr)
	h := newH2Client(t, c, nil)
	h.preface()
	h.get(1, "/next")
	resps, _, err := h.readUntil(ended(1))
	if err != nil {
		t.Fatalf("next HTTP/2 connection: %v", err)
	}
	if r := resps[1]; r.status != "200" {
		t.Errorf("next HTTP/2 connection: stream 1 %+v; want 200", r)
	}
	c.Close()
}

// TestConnFramesMatch keeps connFrames honest: each must name a function
// that serves a live HTTP/2 connection, on the toolchain the test runs on,
// or the leak and attack checks would count nothing.
func TestConnFramesMatch(t *testing.T) {
	h := newStressHandler()
	tg := startGatewayHandler(t, Config{}, h, zerolog.WarnLevel)
	defer h.unblock()
	c := dial(t, tg.addr)
	hc := newH2Client(t, c, nil)
	hc.preface()
	hc.get(1, "/block")
	// And an HTTP/1.1 request in flight, for net/http's connection
	// goroutine (a prior-knowledge connection leaves it once hijacked).
	c1 := dial(t, tg.addr)
	io.WriteString(c1, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
	deadline := time.Now().Add(5 * time.Second)
	for {
		var missing []string
		stacks := connGoroutines()
		for _, f := range connFrames {
			if f == "/gateway.(*batchConn).flush" {
				// Lives only while a write is in flight: checked by
				// name below.
				continue
			}
			found := false
			for _, g := range stacks {
				if strings.Contains(g, f) {
					found = true
					break
				}
			}
			if !found {
				missing = append(missing, f)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("no goroutine names %q while a stream is in flight:\n%s", missing, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if name := runtime.FuncForPC(reflect.ValueOf((*batchConn).flush).Pointer()).Name(); !strings.HasSuffix(name, "/gateway.(*batchConn).flush") {
		t.Errorf("batchConn.flush is named %q", name)
	}
	c.Close()
	c1.Close()
}
