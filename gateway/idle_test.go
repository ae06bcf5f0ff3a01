package gateway

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// TestIdleConnectionsClosed: many connections left idle after a request —
// HTTP/1.1 keep-alive, prior knowledge, upgraded — are all closed by the
// idle timeout, and nothing serving them is left behind (README "Flags": the idle
// timeout).
func TestIdleConnectionsClosed(t *testing.T) {
	tg := startGateway(t, Config{IdleTimeout: 300 * time.Millisecond})
	lc := startLeakCheck(t)
	const each = 20
	var conns []net.Conn
	var readers []io.Reader
	for range each {
		c := dial(t, tg.addr)
		br := bufio.NewReader(c)
		io.WriteString(c, "GET /h1 HTTP/1.1\r\nHost: a\r\n\r\n")
		readHTTP1(t, br, "GET")
		conns, readers = append(conns, c), append(readers, br)

		c = dial(t, tg.addr)
		h := newH2Client(t, c, nil)
		h.preface()
		h.get(1, "/pk")
		if _, _, err := h.readUntil(ended(1)); err != nil {
			t.Fatal(err)
		}
		conns, readers = append(conns, c), append(readers, h.br)

		c = dial(t, tg.addr)
		br = bufio.NewReader(c)
		io.WriteString(c, upgradeHead("GET", "/up"))
		expect101(t, br)
		h = newH2Client(t, c, br)
		h.preface()
		if _, _, err := h.readUntil(ended(1)); err != nil {
			t.Fatal(err)
		}
		conns, readers = append(conns, c), append(readers, br)
	}
	start := time.Now()
	for i, c := range conns {
		// Each ends with a close from the server: an HTTP/2 connection
		// first gets GOAWAY, which expectClosed reads past.
		expectClosed(t, c, readers[i], 10*time.Second)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("%d idle connections took %v to close; want about the 300ms idle timeout", len(conns), d)
	}
	for _, c := range conns {
		c.Close()
	}
	lc.done()
	open, _ := tg.g.conns.counts()
	if open != 0 {
		t.Errorf("%d upgraded connections still tracked; want 0", open)
	}
}
