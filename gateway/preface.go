package gateway

// The client preface (RFC 9113 §3.4) on a hijacked connection: the bytes
// the client sent behind its request, served first, and the check that they
// begin with the preface and a SETTINGS frame.

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// upgradedConn is a hijacked connection handed to the HTTP/2 server: after
// a 101, or after the "PRI * HTTP/2.0" head of a prior-knowledge preface
// (priorknowledge.go). It serves first the bytes the client had already sent
// behind the request (its preface, pipelined frames), which net/http's
// reader buffered before the hijack: dropping them would lose frames (RFC
// 7540 §3.2 lets the client send its preface at once after the request).
//
// It also checks the client preface (RFC 9113 §3.4) on the server's behalf,
// under the gateway's own timeout: both HTTP/2 implementations fix theirs at
// 10s. Bytes that are not the preface are replaced, for the server, by
// notSettingsFrame: the server was told it had seen the preface
// (ServeConnOpts.SawClientPreface), so that frame stands where the SETTINGS
// frame that ends a client preface must be, and either implementation
// answers it as RFC 9113 §3.4 requires of an invalid preface: GOAWAY
// PROTOCOL_ERROR, while stream 1 may still finish its response. What the
// client sends after that is read and dropped until the server closes the
// connection. A client that stalls or leaves inside the preface gets no
// GOAWAY: the read error closes the connection.
type upgradedConn struct {
	net.Conn
	// pending holds the bytes net/http had buffered past the upgrade
	// request; prefaceOK, prefaceTimeout and rejected belong to the preface
	// check. All are touched only by the server's single reader goroutine.
	pending        []byte
	prefaceOK      bool
	prefaceTimeout time.Duration
	// rejected holds what is left to hand the server of notSettingsFrame
	// after a bad preface; non-nil once the preface was rejected.
	rejected     []byte
	onBadPreface func(Reason, error)
	// started is set by the first Write: the HTTP/2 server writes its
	// SETTINGS only after it has registered the connection for graceful
	// shutdown.
	started   atomic.Bool
	onStarted func()
	// onFirstWriteError reports a failure of the first write, which
	// carries the 101 (serveUpgraded primes the batch with it).
	onFirstWriteError func(error)
	// guard follows the frames after the preface (frameguard.go).
	guard *connGuard
}

// notSettingsFrame is a PING frame (RFC 9113 §6.7) with an all-zero opaque
// payload: a well-formed frame that is not SETTINGS, which the server must
// treat as a connection error of type PROTOCOL_ERROR when it comes first
// (RFC 9113 §3.4).
const notSettingsFrame = "\x00\x00\x08\x06\x00\x00\x00\x00\x00" + "\x00\x00\x00\x00\x00\x00\x00\x00"

func (c *upgradedConn) Read(p []byte) (int, error) {
	if !c.prefaceOK {
		if c.rejected == nil {
			if err := c.readPreface(); err != nil {
				return 0, err
			}
		}
		if c.rejected != nil {
			return c.readRejected(p)
		}
	}
	if c.guard != nil {
		return c.guard.read(p, c.read)
	}
	return c.read(p)
}

// readPreface consumes the 24-octet client preface, under a deadline set
// only now: the HTTP/2 server clears deadlines when it takes the connection.
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
		c.rejected = []byte(notSettingsFrame)
		return nil
	}
	c.prefaceOK = true
	return nil
}

// readRejected hands the server notSettingsFrame, then drops whatever the
// client sends until the connection ends: none of it is HTTP/2, and none of
// it may reach the server as a frame.
func (c *upgradedConn) readRejected(p []byte) (int, error) {
	if len(c.rejected) > 0 {
		n := copy(p, c.rejected)
		c.rejected = c.rejected[n:]
		return n, nil
	}
	c.pending = nil
	var scratch [512]byte
	for {
		if _, err := c.Conn.Read(scratch[:]); err != nil {
			return 0, err
		}
	}
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
	first := !c.started.Load() && c.started.CompareAndSwap(false, true)
	if first && c.onStarted != nil {
		c.onStarted()
	}
	n, err := c.Conn.Write(p)
	if first && err != nil && c.onFirstWriteError != nil {
		c.onFirstWriteError(err)
	}
	return n, err
}
