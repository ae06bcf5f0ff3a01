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

// batchConn coalesces the writes the HTTP/2 server makes on one
// connection. The server flushes its frame buffer whenever its write queue runs
// empty, which under a request–response load is after almost every frame: a
// response's HEADERS and its DATA went out in two write(2)s, and responses
// finishing together in one each; write syscalls were a third of the
// gateway's CPU. batchConn's Write queues the bytes and returns; a flusher
// goroutine, started when the queue goes from empty to not empty and gone
// once it is empty again, writes everything queued meanwhile in one
// write(2). Nothing waits on a timer: a batch is what accumulated during the
// previous write, so an isolated frame goes out at once.
//
// Write blocks while batchMax bytes are queued (the peer is not reading):
// memory stays bounded, and the server sees the back-pressure it saw before. A
// failed write is returned by the next Write. Close lets the flusher finish
// (a GOAWAY queued just before), for at most batchCloseWait. An idle
// connection holds neither a buffer nor a goroutine.
type batchConn struct {
	net.Conn
	mu sync.Mutex
	// cond is signalled when the flusher takes the queue or stops; its L
	// is &mu.
	cond sync.Cond
	// queue holds the bytes written and not yet taken by the flusher
	// (pooled, nil when empty); flushing says a flusher runs; err is the
	// first write error, or net.ErrClosed after Close. Guarded by mu.
	queue    *[]byte
	flushing bool
	err      error
}

const (
	// batchMax bounds the bytes queued on one connection.
	batchMax = 64 << 10
	// batchCloseWait bounds how long Close waits for queued bytes to be
	// written to a peer that does not read them.
	batchCloseWait = time.Second
)

// batchBuffers lends queues; a queue grown past batchMax×2 is not kept.
var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func newBatchConn(c net.Conn) *batchConn {
	bc := &batchConn{Conn: c}
	bc.cond.L = &bc.mu
	return bc
}

// prime queues b to lead the first write, without starting a flush: it
// leaves with whatever is written next. Called before the connection is
// shared.
func (c *batchConn) prime(b string) {
	c.queue = batchBuffers.Get().(*[]byte)
	*c.queue = append(*c.queue, b...)
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && c.queue != nil && len(*c.queue) >= batchMax {
		c.cond.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.queue == nil {
		c.queue = batchBuffers.Get().(*[]byte)
	}
	*c.queue = append(*c.queue, p...)
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
	return len(p), nil
}

// flush writes the queue until it stays empty, then ends.
func (c *batchConn) flush() {
	c.mu.Lock()
	for c.queue != nil && c.err == nil {
		b := c.queue
		c.queue = nil
		c.cond.Broadcast()
		c.mu.Unlock()
		_, err := c.Conn.Write(*b)
		putBatchBuffer(b)
		c.mu.Lock()
		if err != nil && c.err == nil {
			c.err = err
		}
	}
	if c.queue != nil {
		// Written after a failed write: dropped, as a synchronous
		// write would have been refused.
		putBatchBuffer(c.queue)
		c.queue = nil
	}
	c.flushing = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

func putBatchBuffer(b *[]byte) {
	if cap(*b) > 2*batchMax {
		return
	}
	*b = (*b)[:0]
	batchBuffers.Put(b)
}

// Close writes what is queued and waits for it, at most batchCloseWait
// (then the connection is closed under the flusher's write, which ends it),
// and closes the connection.
func (c *batchConn) Close() error {
	c.mu.Lock()
	if !c.flushing && c.queue != nil && c.err == nil {
		// Queued and never flushed: a primed 101 when the server ends the
		// connection (a bad preface) before its own first write has
		// reached Write. The client still gets its 101 (RFC 9113 §3.2:
		// the upgrade took place) before the close.
		c.flushing = true
		go c.flush()
	}
	if c.flushing {
		t := time.AfterFunc(batchCloseWait, func() { _ = c.Conn.Close() })
		for c.flushing {
			c.cond.Wait()
		}
		t.Stop()
	}
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.mu.Unlock()
	return c.Conn.Close()
}
