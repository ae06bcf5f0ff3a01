package proxy

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/internal/testwait"
	"golang.org/x/net/http/httpguts"
)

// wsAccept is the Sec-WebSocket-Accept for key (RFC 6455 §4.2.2).
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// writeWSFrame writes one final text frame with a payload under 126 bytes,
// masked as a client's must be (RFC 6455 §5.3).
func writeWSFrame(w io.Writer, payload string, mask bool) error {
	b := []byte{0x81, byte(len(payload))}
	p := []byte(payload)
	if mask {
		key := []byte{1, 2, 3, 4}
		b[1] |= 0x80
		b = append(b, key...)
		for i := range p {
			p[i] ^= key[i%4]
		}
	}
	_, err := w.Write(append(b, p...))
	return err
}

// readWSFrame reads one short frame written by writeWSFrame.
func readWSFrame(r io.Reader) (string, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", err
	}
	n := int(h[1] & 0x7f)
	var key [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return "", err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return "", err
	}
	if masked {
		for i := range p {
			p[i] ^= key[i%4]
		}
	}
	return string(p), nil
}

// wsEcho is an upstream that completes a WebSocket handshake and
// echoes frames until the connection closes.
func wsEcho(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !httpguts.HeaderValuesContainsToken(r.Header["Upgrade"], "websocket") {
			_, _ = io.WriteString(w, "no upgrade seen")
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("upstream hijack: %v", err)
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + wsAccept(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
		_ = brw.Flush()
		for {
			msg, err := readWSFrame(brw)
			if err != nil {
				return
			}
			if err := writeWSFrame(c, msg, false); err != nil {
				return
			}
		}
	})
}

const wsKey = "dGhlIHNhbXBsZSBub25jZQ=="

var wsHandshake = rawRequest(
	"GET /chat HTTP/1.1",
	"Host: example.test",
	"Connection: keep-alive, Upgrade",
	"Upgrade: websocket",
	"Sec-WebSocket-Key: "+wsKey,
	"Sec-WebSocket-Version: 13",
)

// TestProxyWebSocketTunnel: a WebSocket handshake on HTTP/1.1 is passed to
// an HTTP/1.1 upstream and the connection becomes a tunnel, frames going
// both ways. The tunnel is in the Gateway's shutdown registry: Shutdown
// waits for it through its grace period, then closes it.
func TestProxyWebSocketTunnel(t *testing.T) {
	up := startH1Upstream(t, wsEcho(t))
	p, errs := newProxy(t, Config{}, up)
	f, g := startGatewayFront(t, p)

	c, br, res := wsOpen(t, f.addr)
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status: got %d; want 101 (errors %q)", res.StatusCode, errs.list())
	}
	if got, want := res.Header.Get("Sec-WebSocket-Accept"), wsAccept(wsKey); got != want {
		t.Errorf("Sec-WebSocket-Accept: got %q; want %q", got, want)
	}
	if got := res.Header.Get("Via"); got != "1.1 h2cgw" {
		t.Errorf("Via: got %q; want %q", got, "1.1 h2cgw")
	}
	for _, msg := range []string{"hello", "again"} {
		if err := writeWSFrame(c, msg, true); err != nil {
			t.Fatal(err)
		}
		got, err := readWSFrame(br)
		if err != nil || got != msg {
			t.Fatalf("echo: got %q, %v; want %q", got, err, msg)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := g.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a tunnel open: %v; want the grace period to run out", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("Shutdown returned after %v; want it to wait the grace period for the tunnel", d)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Errorf("after Shutdown: read succeeded; want the tunnel closed")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("after Shutdown: tunnel still open (read timed out)")
	}
}

// TestProxyWebSocketTunnelEndsInGrace: a tunnel that ends within the grace
// period lets Shutdown return as soon as it has; a handshake once shutdown
// has begun gets no tunnel.
func TestProxyWebSocketTunnelEndsInGrace(t *testing.T) {
	up := startH1Upstream(t, wsEcho(t))
	p, _ := newProxy(t, Config{}, up)
	f, g := startGatewayFront(t, p)
	c, _, res := wsOpen(t, f.addr)
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s; want 101", res.Status)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- g.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a tunnel open", err)
	default:
	}
	c.Close()
	if err := testwait.Recv(t, done, "Shutdown"); err != nil {
		t.Errorf("Shutdown: %v; want nil once the tunnel ended", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v after the tunnel ended", d)
	}
}

// TestProxyWebSocketNotTunnelled: a WebSocket handshake the proxy cannot
// tunnel — to an h2c upstream, or as a POST — is forwarded as a plain
// request, its Upgrade removed, and the upstream's answer returned.
func TestProxyWebSocketNotTunnelled(t *testing.T) {
	tests := []struct {
		name    string
		kind    upstreamKind
		request string
	}{
		{"h2c upstream", upstreamKinds[1], wsHandshake},
		{"POST", upstreamKinds[0], strings.Replace(wsHandshake, "GET", "POST", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := tt.kind.start(t, wsEcho(t))
			p, _ := newProxy(t, Config{}, up)
			f := startH1Front(t, p)
			res, body := rawExchange(t, f.addr, tt.request)
			if res.StatusCode != http.StatusOK || body != "no upgrade seen" {
				t.Errorf("got %d %q; want 200 %q", res.StatusCode, body, "no upgrade seen")
			}
		})
	}
}

// wsOpen connects to addr, sends the WebSocket handshake and reads the
// response head, under the test's deadline. The connection is closed when
// the test ends.
func wsOpen(t *testing.T, addr string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, wsHandshake); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading handshake response: %v", err)
	}
	return c, br, res
}
