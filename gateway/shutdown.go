package gateway

// Shutdown (README "Shutdown"): one registry of every connection taken from
// net/http — upgraded, prior knowledge, and those a handler hijacks through
// [Hijack], such as a WebSocket tunnel — which net/http's Shutdown neither
// signals nor waits for (golang/go#26682).

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Shutdown stops the gateway gracefully (README "Shutdown"): it stops accepting,
// declines new upgrades and hijacks, sends GOAWAY on every HTTP/2 connection
// — upgraded ones included —, lets in-flight requests, streams and the
// connections taken with [Hijack] finish, and returns once every connection
// has closed. When ctx ends first, it closes what is left and returns ctx's
// error. Pass a fresh context with the grace period.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.conns.close()
	// Connections hijacked but not yet registered with the HTTP/2 server would miss the
	// GOAWAY broadcast; wait the moment until they are.
	waitErr := poll(ctx, func() bool {
		_, starting := g.conns.counts()
		return starting == 0
	})
	err := g.hs.Shutdown(ctx)
	if waitErr == nil {
		waitErr = poll(ctx, func() bool {
			open, _ := g.conns.counts()
			return open == 0
		})
	}
	if err == nil {
		err = waitErr
	}
	if err != nil {
		// The grace period is over: what remains is cut.
		g.hs.Close()
		g.conns.closeAll()
	}
	return err
}

// Close closes the listeners and every connection at once, upgraded and
// hijacked ones included, without waiting for in-flight requests.
func (g *Gateway) Close() error {
	g.conns.close()
	err := g.hs.Close()
	g.conns.closeAll()
	return err
}

// poll waits until done reports true or ctx ends, checking often at first and
// less often later, as net/http's Shutdown does.
func poll(ctx context.Context, done func() bool) error {
	interval := time.Millisecond
	t := time.NewTimer(interval)
	defer t.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if interval < 50*time.Millisecond {
				interval *= 2
			}
			t.Reset(interval)
		}
	}
	return nil
}

// ErrShuttingDown is what [Hijack] returns once the Gateway's Shutdown or
// Close has begun: a connection taken then would outlive it.
var ErrShuttingDown = errors.New("gateway: shutting down")

// Hijack takes over the connection of r, as http.ResponseController's
// Hijack does, and keeps it in the Gateway's registry: [Gateway.Shutdown]
// waits for it to close until its context ends, then closes it, and
// [Gateway.Close] closes it at once. A handler that keeps a connection
// after its response — a WebSocket tunnel — takes it this way so that one
// Shutdown ends everything. The connection removes itself from the registry
// when closed. Once shutdown has begun it returns [ErrShuttingDown]; for a
// request that no Gateway serves it is a plain hijack.
func Hijack(w http.ResponseWriter, r *http.Request) (net.Conn, *bufio.ReadWriter, error) {
	ci := connInfoFrom(r.Context())
	if ci == nil || ci.g == nil {
		return http.NewResponseController(w).Hijack()
	}
	t := &ci.g.conns
	if t.isClosing() {
		return nil, nil, ErrShuttingDown
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	hc := &hijackedConn{Conn: c, t: t}
	if !t.track(hc) {
		c.Close()
		return nil, nil, ErrShuttingDown
	}
	return hc, brw, nil
}

// hijackedConn is a connection taken with Hijack, in the registry until
// closed.
type hijackedConn struct {
	net.Conn
	t    *tracker
	once sync.Once
}

func (c *hijackedConn) Close() error {
	c.once.Do(func() { c.t.remove(c, false) })
	return c.Conn.Close()
}

// CloseWrite half-closes the connection when the one beneath can (TCP):
// httputil.ReverseProxy propagates a tunnel's end of stream from one side
// with it, and would otherwise end the whole tunnel at once.
func (c *hijackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// tracker follows the connections the gateway hijacked, which net/http's
// Shutdown neither signals nor waits for (golang/go#26682).
type tracker struct {
	mu sync.Mutex
	// conns holds every hijacked connection still open; guarded by mu.
	conns map[net.Conn]struct{}
	// starting counts connections hijacked but not yet registered with
	// the HTTP/2 server, so not yet reachable by its GOAWAY; guarded by mu.
	starting int
	// closing is set when shutdown begins; no connection is added after;
	// guarded by mu.
	closing bool
}

// add registers c, a connection the HTTP/2 server will take, or reports
// false when the gateway is shutting down.
func (t *tracker) add(c net.Conn) bool { return t.register(c, true) }

// track registers c, a connection hijacked for good (a tunnel), or reports
// false when the gateway is shutting down.
func (t *tracker) track(c net.Conn) bool { return t.register(c, false) }

func (t *tracker) register(c net.Conn, starting bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	if t.conns == nil {
		t.conns = make(map[net.Conn]struct{})
	}
	t.conns[c] = struct{}{}
	if starting {
		t.starting++
	}
	return true
}

// started marks c as reachable by the HTTP/2 server's graceful shutdown.
func (t *tracker) started() {
	t.mu.Lock()
	t.starting--
	t.mu.Unlock()
}

// remove forgets c; wasStarting says whether started was never called for it.
func (t *tracker) remove(c net.Conn, wasStarting bool) {
	t.mu.Lock()
	delete(t.conns, c)
	if wasStarting {
		t.starting--
	}
	t.mu.Unlock()
}

func (t *tracker) close() {
	t.mu.Lock()
	t.closing = true
	t.mu.Unlock()
}

func (t *tracker) isClosing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closing
}

func (t *tracker) counts() (open, starting int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns), t.starting
}

func (t *tracker) closeAll() {
	t.mu.Lock()
	open := make([]net.Conn, 0, len(t.conns))
	for c := range t.conns {
		open = append(open, c)
	}
	t.mu.Unlock()
	// Closed outside the lock: a hijackedConn removes itself.
	for _, c := range open {
		c.Close()
	}
}
