//go:build unix

package readahead

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// readAheadConn gives the HTTP/2 frame reader whatever the socket holds in one
// read(2). x/net reads every frame in two calls — the 9-octet header (RFC 9113
// §4.1), then the payload — and on a plain connection each is a system call,
// though the client sent a burst of frames in one segment: a request's
// HEADERS, its DATA and the next stream's HEADERS; after a 101, the preface,
// SETTINGS and their ACK. readAheadConn reads what is there into a pooled
// buffer and serves the following Reads from it.
//
// The buffer is taken only once the socket is readable and given back as soon
// as it is drained, so a connection waiting for its next frame holds none:
// the read goes through syscall.RawConn, whose callback runs when the poller
// says data may be there, and on EAGAIN returns the buffer before it waits.
// A Read of at least readAheadSize bytes (a large DATA payload) goes straight
// into the caller's slice. Deadlines and Close work as on the connection.
type readAheadConn struct {
	net.Conn
	rc syscall.RawConn
	// fill is c.fillFrom, made once: rc.Read takes a func, and a closure
	// made per read would be allocated per read.
	fill func(fd uintptr) bool
	// buf holds bytes read and not yet returned, (*buf)[off:]; nil when
	// there are none. err is what the last fill met instead of bytes.
	// Touched only by the reading goroutine (x/net has one per
	// connection).
	buf *[]byte
	off int
	err error
}

var readAheadBuffers = sync.Pool{New: func() any { b := make([]byte, readAheadSize); return &b }}

// New wraps c when it is a socket the poller can hand over (syscall.Conn);
// any other connection (a PROXY-protocol wrapper, a pipe in tests) is
// returned as it is.
func New(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	ra := &readAheadConn{Conn: c, rc: rc}
	ra.fill = ra.fillFrom
	return ra
}

func (c *readAheadConn) Read(p []byte) (int, error) {
	if c.buf == nil {
		if len(p) == 0 {
			return 0, nil
		}
		if len(p) >= readAheadSize {
			return c.Conn.Read(p)
		}
		c.err = nil
		if err := c.rc.Read(c.fill); err != nil {
			// Closed, or past the read deadline: net's own error,
			// which says so (net.ErrClosed, os.ErrDeadlineExceeded).
			return 0, err
		}
		if c.err != nil {
			return 0, c.err
		}
	}
	n := copy(p, (*c.buf)[c.off:])
	c.off += n
	if c.off == len(*c.buf) {
		c.release()
	}
	return n, nil
}

// fillFrom is rc.Read's callback, run when the poller says fd may be
// readable: it reads into a pooled buffer (c.buf) or records what it met
// instead (c.err), and reports false, to be called again once fd is
// readable, when there was nothing yet — without keeping the buffer.
func (c *readAheadConn) fillFrom(fd uintptr) bool {
	b := readAheadBuffers.Get().(*[]byte)
	for {
		n, err := syscall.Read(int(fd), (*b)[:readAheadSize])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			readAheadBuffers.Put(b)
			return false
		case err != nil:
			readAheadBuffers.Put(b)
			c.err = &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", err)}
			return true
		case n == 0:
			readAheadBuffers.Put(b)
			c.err = io.EOF
			return true
		}
		*b = (*b)[:n]
		c.buf, c.off = b, 0
		return true
	}
}

func (c *readAheadConn) release() {
	*c.buf = (*c.buf)[:readAheadSize]
	readAheadBuffers.Put(c.buf)
	c.buf, c.off = nil, 0
}
