package gateway

// Write batching: the HTTP/2 server's frames leave in as few write(2)s as
// the peer's pace allows (bench/README.md "Results" gives what it buys).

import (
	"net"
	"sync"
	"time"
)

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
	// scan, when not nil, follows the frames written (frameguard.go). Guarded
	// by mu.
	scan *frameScan
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
	start := len(*c.queue)
	*c.queue = append(*c.queue, p...)
	if s := c.scan; s != nil {
		for off := start; ; {
			off += s.scan((*c.queue)[off:])
			if s.pending != nil && s.atBoundary() {
				off += c.insertPendingLocked(off)
			}
			if off >= len(*c.queue) {
				break
			}
		}
	}
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
	return len(p), nil
}

// queueFrame queues f, a whole frame of the gateway's own, at the next
// frame boundary of the server's writes, and calls done once it is queued.
func (c *batchConn) queueFrame(f []byte, done func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scan.pending, c.scan.done = f, done
	if !c.scan.atBoundary() || c.err != nil {
		return // queued by the Write that ends the frame; lost after an error
	}
	if c.queue == nil {
		c.queue = batchBuffers.Get().(*[]byte)
	}
	c.insertPendingLocked(len(*c.queue))
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
}

// insertPendingLocked puts the scanner's pending frame in the queue at off,
// a frame boundary, and returns its length.
func (c *batchConn) insertPendingLocked(off int) int {
	f := c.scan.pending
	*c.queue = append((*c.queue)[:off], append(f, (*c.queue)[off:]...)...)
	c.scan.pending = nil
	if c.scan.done != nil {
		c.scan.done()
		c.scan.done = nil
	}
	return len(f)
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
	calm := c.scan != nil && c.scan.guard.isCalm()
	c.mu.Unlock()
	if calm {
		c.scan.guard.linger()
	}
	return c.Conn.Close()
}
