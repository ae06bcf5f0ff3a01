package gateway

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// upgradedConn is a hijacked connection handed to x/net after a 101. It
// serves first the bytes the client had already sent behind the upgrade
// request (its preface's tail, pipelined frames), which net/http's reader
// buffered before the hijack: dropping them would lose frames (RFC 7540 §3.2
// lets the client send its preface at once after the request).
//
// It also checks the client preface (RFC 9113 §3.4) on x/net's behalf, under
// the gateway's own timeout: x/net's server fixes its own at 10s. A wrong
// preface ends the read with a PROTOCOL_ERROR connection error, which x/net
// answers with GOAWAY while stream 1 may still finish its response.
type upgradedConn struct {
	net.Conn
	// pending holds the bytes net/http had buffered past the upgrade
	// request. It, prefaceOK and the preface fields are touched only by
	// x/net's single reader goroutine.
	pending        []byte
	prefaceOK      bool
	prefaceTimeout time.Duration
	onBadPreface   func(Reason, error)
	// started is set by the first Write: x/net writes its SETTINGS only
	// after it has registered the connection for graceful shutdown.
	started   atomic.Bool
	onStarted func()
}

func (c *upgradedConn) Read(p []byte) (int, error) {
	if !c.prefaceOK {
		if err := c.readPreface(); err != nil {
			return 0, err
		}
	}
	return c.read(p)
}

// readPreface consumes the 24-octet client preface, under a deadline set
// only now: x/net clears read deadlines when it takes the connection.
func (c *upgradedConn) readPreface() error {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.prefaceTimeout))
	var got [len(http2.ClientPreface)]byte
	_, err := io.ReadFull(readerFunc(c.read), got[:])
	_ = c.Conn.SetReadDeadline(time.Time{})
	switch {
	case err != nil:
		reason := ReasonBadPreface
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			reason = ReasonPrefaceTimeout
		}
		c.onBadPreface(reason, err)
		return err
	case string(got[:]) != http2.ClientPreface:
		c.onBadPreface(ReasonBadPreface, nil)
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	c.prefaceOK = true
	return nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func (c *upgradedConn) read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *upgradedConn) Write(p []byte) (int, error) {
	if !c.started.Load() && c.started.CompareAndSwap(false, true) && c.onStarted != nil {
		c.onStarted()
	}
	return c.Conn.Write(p)
}

// tracker follows the connections the gateway hijacked, which net/http's
// Shutdown neither signals nor waits for (golang/go#26682).
type tracker struct {
	mu sync.Mutex
	// conns holds every hijacked connection still open; guarded by mu.
	conns map[net.Conn]struct{}
	// starting counts connections hijacked but not yet registered with
	// x/net's server, so not yet reachable by its GOAWAY; guarded by mu.
	starting int
	// closing is set when shutdown begins; no connection is added after;
	// guarded by mu.
	closing bool
}

// add registers c, or reports false when the gateway is shutting down.
func (t *tracker) add(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	if t.conns == nil {
		t.conns = make(map[net.Conn]struct{})
	}
	t.conns[c] = struct{}{}
	t.starting++
	return true
}

// started marks c as reachable by x/net's graceful shutdown.
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
	defer t.mu.Unlock()
	for c := range t.conns {
		c.Close()
	}
}
