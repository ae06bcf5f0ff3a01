//go:build unix

package readahead

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// tcpPair is a connected pair of loopback TCP connections.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

func TestReadAheadServesBurstInOrder(t *testing.T) {
	client, server := tcpPair(t)
	ra, ok := New(server).(*readAheadConn)
	if !ok {
		t.Fatal("a TCP connection was not wrapped")
	}
	// What a client sends behind a 101 in one segment: its preface, an
	// empty SETTINGS, a SETTINGS ACK.
	burst := http2.ClientPreface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00" + "\x00\x00\x00\x04\x01\x00\x00\x00\x00"
	if _, err := io.WriteString(client, burst); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, n := range []int{24, 9, 9} {
		b := make([]byte, n)
		if _, err := io.ReadFull(ra, b); err != nil {
			t.Fatalf("read %d: %v", n, err)
		}
		got = append(got, b...)
	}
	if string(got) != burst {
		t.Fatalf("read %q; want %q", got, burst)
	}
	if ra.buf != nil {
		t.Error("buffer still held after every byte was returned; want it back in the pool")
	}

	// A large read goes straight to the caller's slice, and a read split
	// over the buffer's end loses nothing.
	big := make([]byte, 3*readAheadSize+7)
	for i := range big {
		big[i] = byte(i * 7)
	}
	go client.Write(big)
	small := make([]byte, 5)
	if _, err := io.ReadFull(ra, small); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, len(big)-len(small))
	if _, err := io.ReadFull(ra, rest); err != nil {
		t.Fatal(err)
	}
	if string(append(small, rest...)) != string(big) {
		t.Fatal("bytes lost or reordered across buffered and direct reads")
	}

	// The peer's close is io.EOF, as on the connection itself.
	client.Close()
	if n, err := ra.Read(small); n != 0 || err != io.EOF {
		t.Fatalf("after the peer closed: Read = %d, %v; want 0, io.EOF", n, err)
	}
}

func TestReadAheadDeadlineAndClose(t *testing.T) {
	_, server := tcpPair(t)
	ra := New(server).(*readAheadConn)

	ra.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := ra.Read(make([]byte, 9))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v; want a timeout", err)
	}
	if ra.buf != nil {
		t.Error("a read that found nothing holds a buffer")
	}

	ra.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := ra.Read(make([]byte, 9))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ra.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read during Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
}

func TestReadAheadLeavesOtherConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := New(a); got != a {
		t.Fatalf("New(pipe) = %T; want the pipe itself", got)
	}
}
