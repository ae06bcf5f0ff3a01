package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/gateway"
	"github.com/rs/zerolog"
	"golang.org/x/net/http2"
)

// faultyUpstream is a raw HTTP/1.1 upstream that misbehaves on some paths
// and answers the others normally. It records, for the connection a fault
// was served on, whether the gateway then dropped it.
type faultyUpstream struct {
	addr    string
	release chan struct{} // /slow waits for it
	// dropped gets the path of each fault whose connection the peer
	// closed afterwards.
	dropped chan string
	conns   atomic.Int32
}

func startFaultyUpstream(t *testing.T) *faultyUpstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &faultyUpstream{addr: l.Addr().String(), release: make(chan struct{}), dropped: make(chan string, 16)}
	var wg sync.WaitGroup
	t.Cleanup(func() { close(u.release); l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			wg.Go(func() { u.serve(c) })
		}
	})
	return u
}

func (u *faultyUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, r.Body)
		fault := r.URL.Path
		switch fault {
		case "/garbage":
			io.WriteString(c, "NOT HTTP AT ALL\r\n\r\n")
		case "/reset":
			// Headers, part of the body, then the connection is gone.
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			return
		case "/unsolicited-101":
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		case "/slow":
			// Past the proxy's 300 ms Timeout, so that it gives up first.
			select {
			case <-u.release:
			case <-time.After(time.Second):
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
		default:
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			continue
		}
		// After a fault: does the gateway drop this connection? A read
		// that ends (EOF or reset) within the bound says it did.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := br.ReadByte(); err != nil {
			var ne net.Error
			if !(errors.As(err, &ne) && ne.Timeout()) {
				u.dropped <- fault
			}
		}
		return
	}
}

// TestUpstreamFaultIsolated: an upstream fault fails only its own stream
// (502, or 504 when slow), streams beside it on the same client connection
// are answered, the client connection goes on, and the upstream connection
// the fault came on is discarded rather than reused.
func TestUpstreamFaultIsolated(t *testing.T) {
	up := startFaultyUpstream(t)
	p, err := New(Config{Upstreams: []string{"http://" + up.addr}, Timeout: 300 * time.Millisecond,
		Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	g := gateway.New(p, gateway.Config{Logger: zerolog.New(zerolog.NewTestWriter(t))})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(l)
	t.Cleanup(func() { g.Close() })

	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, n, a string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, n, a)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		resp, err := client.Get("http://" + l.Addr().String() + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	cases := []struct {
		fault  string
		status int
		drops  bool // the upstream left the connection open: the gateway must drop it
	}{
		{"/garbage", 502, true},
		{"/reset", 200, false}, // headers arrived: the body is cut short; the upstream closed
		{"/unsolicited-101", 502, true},
		{"/slow", 504, true},
	}
	for _, tc := range cases {
		t.Run(tc.fault, func(t *testing.T) {
			var wg sync.WaitGroup
			status := make([]int, 4)
			bodies := make([]string, 4)
			for i := range status {
				wg.Go(func() {
					path := "/fine" + strconv.Itoa(i)
					if i == 0 {
						path = tc.fault
					}
					status[i], bodies[i] = get(path)
				})
			}
			wg.Wait()
			if status[0] != tc.status {
				t.Errorf("%s: status %d (%q); want %d", tc.fault, status[0], bodies[0], tc.status)
			}
			if tc.fault == "/reset" && len(bodies[0]) >= 100 {
				t.Errorf("%s: body of %d bytes arrived whole; want it cut short", tc.fault, len(bodies[0]))
			}
			for i := 1; i < len(status); i++ {
				if status[i] != 200 || bodies[i] != "ok" {
					t.Errorf("stream beside %s: %d %q; want 200 \"ok\"", tc.fault, status[i], bodies[i])
				}
			}
			if tc.drops {
				select {
				case got := <-up.dropped:
					if got != tc.fault {
						t.Errorf("dropped after %s; want after %s", got, tc.fault)
					}
				case <-time.After(6 * time.Second):
					t.Errorf("the upstream connection of %s was kept, not discarded", tc.fault)
				}
			}
			// The client connection goes on.
			if s, b := get("/after"); s != 200 || b != "ok" {
				t.Errorf("after %s: %d %q; want 200 \"ok\"", tc.fault, s, b)
			}
		})
	}
}
