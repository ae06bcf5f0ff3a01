package gateway

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
)

// tunnels tracks the client connections of WebSocket tunnels. ReverseProxy
// hijacks them and copies bytes both ways until one side closes; net/http's
// Shutdown neither waits for nor closes a hijacked connection
// (golang/go#26682), so Proxy.Close does.
type tunnels struct {
	mu sync.Mutex
	// conns holds the open tunnels' client connections; guarded by mu.
	conns map[*tunnelConn]struct{}
}

func (t *tunnels) add(c *tunnelConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns == nil {
		t.conns = make(map[*tunnelConn]struct{})
	}
	t.conns[c] = struct{}{}
}

func (t *tunnels) remove(c *tunnelConn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

func (t *tunnels) closeAll() {
	t.mu.Lock()
	open := make([]*tunnelConn, 0, len(t.conns))
	for c := range t.conns {
		open = append(open, c)
	}
	t.mu.Unlock()
	// Closed outside the lock: Close removes the connection.
	for _, c := range open {
		c.Close()
	}
}

// count reports how many tunnels are open.
func (t *tunnels) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// tunnelWriter wraps the ResponseWriter of a WebSocket handshake so that the
// connection ReverseProxy hijacks is tracked. Everything else reaches the
// writer beneath through Unwrap (http.ResponseController).
type tunnelWriter struct {
	http.ResponseWriter
	t *tunnels
}

// Hijack takes the client connection for the tunnel and tracks it until it
// is closed.
func (w *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	tc := &tunnelConn{Conn: c, t: w.t}
	w.t.add(tc)
	return tc, brw, nil
}

// Unwrap serves http.ResponseController (Flush, deadlines).
func (w *tunnelWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// tunnelConn is a tracked tunnel's client connection.
type tunnelConn struct {
	net.Conn
	t    *tunnels
	once sync.Once
}

func (c *tunnelConn) Close() error {
	c.once.Do(func() { c.t.remove(c) })
	return c.Conn.Close()
}

// CloseWrite half-closes the connection when the one beneath can (TCP):
// ReverseProxy propagates the upstream's end of stream with it, and would
// otherwise end the whole tunnel at once.
func (c *tunnelConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
