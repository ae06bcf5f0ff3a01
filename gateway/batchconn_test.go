package gateway

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/internal/testwait"
	"github.com/rs/zerolog"
	"golang.org/x/net/http2"
)

// gatedConn is a net.Conn whose Write blocks until the test lets it go, and
// records what each call wrote.
type gatedConn struct {
	net.Conn // nil: only Write and Close are called
	entered  chan struct{}
	release  chan error // what the blocked Write returns
	closed   chan struct{}
	once     sync.Once

	mu    sync.Mutex
	calls []string
}

func newGatedConn() *gatedConn {
	return &gatedConn{entered: make(chan struct{}, 16), release: make(chan error), closed: make(chan struct{})}
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.calls = append(c.calls, string(p))
	c.mu.Unlock()
	c.entered <- struct{}{}
	select {
	case err := <-c.release:
		if err != nil {
			return 0, err
		}
		return len(p), nil
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *gatedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *gatedConn) writes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

// idle waits until bc's flusher has stopped.
func (bc *batchConn) idle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(testwait.Timeout)
	for {
		bc.mu.Lock()
		done := !bc.flushing
		bc.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the flusher did not stop")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBatchConnCoalesces(t *testing.T) {
	raw := newGatedConn()
	bc := newBatchConn(raw)
	if _, err := bc.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	testwait.Recv(t, raw.entered, "the first write")
	// While "a" is being written, the next frames queue up.
	for _, s := range []string{"b", "c", "d"} {
		if n, err := bc.Write([]byte(s)); n != 1 || err != nil {
			t.Fatalf("Write(%q): got %d, %v; want 1, nil", s, n, err)
		}
	}
	raw.release <- nil
	testwait.Recv(t, raw.entered, "the second write")
	raw.release <- nil
	bc.idle(t)
	if got, want := strings.Join(raw.writes(), "|"), "a|bcd"; got != want {
		t.Errorf("writes: got %q; want %q (the queued frames in one write)", got, want)
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if bc.queue != nil {
		t.Errorf("an idle connection keeps a %d-byte buffer; want none", cap(*bc.queue))
	}
}

func TestBatchConnBackPressure(t *testing.T) {
	raw := newGatedConn()
	bc := newBatchConn(raw)
	bc.Write([]byte("x"))
	testwait.Recv(t, raw.entered, "the first write")
	big := bytes.Repeat([]byte("y"), batchMax)
	if _, err := bc.Write(big); err != nil {
		t.Fatal(err)
	}
	// The queue is full: the next Write waits for the flusher to take it.
	done := make(chan error, 1)
	go func() {
		_, err := bc.Write([]byte("z"))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Write past batchMax returned (%v) while nothing was written; want it to wait", err)
	case <-time.After(50 * time.Millisecond):
	}
	raw.release <- nil // "x" written; the flusher takes the full queue
	if err := testwait.Recv(t, done, "the waiting Write"); err != nil {
		t.Fatal(err)
	}
	testwait.Recv(t, raw.entered, "the second write")
	raw.release <- nil
	testwait.Recv(t, raw.entered, "the third write")
	raw.release <- nil
	bc.idle(t)
	if got, want := strings.Join(raw.writes(), ""), "x"+string(big)+"z"; got != want {
		t.Errorf("bytes written: got %d, in order %v; want %d in order", len(got), got == want, len(want))
	}
}

func TestBatchConnWriteError(t *testing.T) {
	raw := newGatedConn()
	bc := newBatchConn(raw)
	bc.Write([]byte("a"))
	testwait.Recv(t, raw.entered, "the first write")
	bc.Write([]byte("b")) // queued behind the write that fails: dropped
	boom := errors.New("boom")
	raw.release <- boom
	bc.idle(t)
	if _, err := bc.Write([]byte("c")); !errors.Is(err, boom) {
		t.Errorf("Write after a failed write: got %v; want %v", err, boom)
	}
	if got := raw.writes(); len(got) != 1 {
		t.Errorf("writes: got %q; want only the failed one", got)
	}
}

func TestBatchConnClose(t *testing.T) {
	t.Run("writes what is queued first", func(t *testing.T) {
		raw := newGatedConn()
		bc := newBatchConn(raw)
		bc.Write([]byte("data"))
		testwait.Recv(t, raw.entered, "the first write")
		bc.Write([]byte("goaway"))
		closed := make(chan error, 1)
		go func() { closed <- bc.Close() }()
		raw.release <- nil
		testwait.Recv(t, raw.entered, "the queued write")
		raw.release <- nil
		if err := testwait.Recv(t, closed, "Close"); err != nil {
			t.Errorf("Close: %v", err)
		}
		if got, want := strings.Join(raw.writes(), "|"), "data|goaway"; got != want {
			t.Errorf("writes: got %q; want %q", got, want)
		}
		if _, err := bc.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Close: got %v; want net.ErrClosed", err)
		}
	})
	t.Run("does not wait for a peer that does not read", func(t *testing.T) {
		raw := newGatedConn()
		bc := newBatchConn(raw)
		bc.Write([]byte("stuck"))
		testwait.Recv(t, raw.entered, "the write")
		start := time.Now()
		closed := make(chan error, 1)
		go func() { closed <- bc.Close() }()
		testwait.Recv(t, closed, "Close")
		if d := time.Since(start); d > batchCloseWait+testwait.Timeout/2 {
			t.Errorf("Close took %v; want about %v", d, batchCloseWait)
		}
	})
}

func TestBatchConnPrime(t *testing.T) {
	// Primed bytes lead the first write...
	raw := newGatedConn()
	bc := newBatchConn(raw)
	bc.prime("101|")
	bc.Write([]byte("SETTINGS"))
	testwait.Recv(t, raw.entered, "the first write")
	raw.release <- nil
	bc.idle(t)
	if got, want := strings.Join(raw.writes(), "/"), "101|SETTINGS"; got != want {
		t.Errorf("writes: got %q; want %q", got, want)
	}

	// ...and are written by Close when nothing followed them.
	raw = newGatedConn()
	bc = newBatchConn(raw)
	bc.prime("101|")
	closed := make(chan error, 1)
	go func() { closed <- bc.Close() }()
	testwait.Recv(t, raw.entered, "the write of the primed bytes")
	raw.release <- nil
	testwait.Recv(t, closed, "Close")
	if got, want := strings.Join(raw.writes(), "/"), "101|"; got != want {
		t.Errorf("writes before close: got %q; want %q", got, want)
	}
}

// writeLog records every Write on the connections its listener accepts.
type writeLog struct {
	net.Listener
	mu     sync.Mutex
	writes []string
}

type loggedConn struct {
	net.Conn
	log *writeLog
}

func (l *writeLog) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return loggedConn{c, l}, nil
}

func (c loggedConn) Write(p []byte) (int, error) {
	c.log.mu.Lock()
	c.log.writes = append(c.log.writes, string(p))
	c.log.mu.Unlock()
	return c.Conn.Write(p)
}

// TestUpgrade101SharesWriteWithSettings checks that the 101 leaves in the
// same write as x/net's first frames, its SETTINGS.
func TestUpgrade101SharesWriteWithSettings(t *testing.T) {
	g := New(newRecorder(), Config{Logger: zerolog.New(zerolog.NewTestWriter(t))})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := &writeLog{Listener: l}
	go g.Serve(wl)
	t.Cleanup(func() {
		g.Close()
		waitFor(t, "upgraded connections to end", func() bool {
			open, _ := g.conns.counts()
			return open == 0
		})
	})

	h := openHTTP2(t, l.Addr().String(), PathUpgrade, "/")
	res, _, err := h.readUntil(ended(1))
	if err != nil {
		t.Fatal(err)
	}
	if res[1].status != "200" {
		t.Fatalf("stream 1: status %q; want 200", res[1].status)
	}
	wl.mu.Lock()
	defer wl.mu.Unlock()
	if len(wl.writes) == 0 {
		t.Fatal("no write recorded")
	}
	first := wl.writes[0]
	if !strings.HasPrefix(first, want101) || len(first) < len(want101)+9 {
		t.Fatalf("first write %q; want the 101 followed by frames", first)
	}
	if typ := http2.FrameType(first[len(want101)+3]); typ != http2.FrameSettings {
		t.Fatalf("first frame after the 101: %v; want SETTINGS", typ)
	}
}
