package gateway

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// pxWSAccept is the Sec-WebSocket-Accept for key (RFC 6455 §4.2.2).
func pxWSAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// pxWriteWSFrame writes one final text frame with a payload under 126 bytes,
// masked as a client's must be (RFC 6455 §5.3).
func pxWriteWSFrame(w io.Writer, payload string, mask bool) error {
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

// pxReadWSFrame reads one short frame written by pxWriteWSFrame.
func pxReadWSFrame(r io.Reader) (string, error) {
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

// pxWSEcho is an upstream that completes a WebSocket handshake and
// echoes frames until the connection closes.
func pxWSEcho(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !headerHasToken(r.Header["Upgrade"], "websocket") {
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
			"Sec-WebSocket-Accept: " + pxWSAccept(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
		_ = brw.Flush()
		for {
			msg, err := pxReadWSFrame(brw)
			if err != nil {
				return
			}
			if err := pxWriteWSFrame(c, msg, false); err != nil {
				return
			}
		}
	})
}

const pxWSKey = "dGhlIHNhbXBsZSBub25jZQ=="

var pxWSHandshake = pxRawRequest(
	"GET /chat HTTP/1.1",
	"Host: example.test",
	"Connection: keep-alive, Upgrade",
	"Upgrade: websocket",
	"Sec-WebSocket-Key: "+pxWSKey,
	"Sec-WebSocket-Version: 13",
)

// TestProxyWebSocketTunnel: a WebSocket handshake on HTTP/1.1 is passed to
// an HTTP/1.1 upstream and the connection becomes a tunnel, frames going
// both ways; Close ends the tunnel.
func TestProxyWebSocketTunnel(t *testing.T) {
	up := pxStartH1Upstream(t, pxWSEcho(t))
	p, errs := pxNewProxy(t, ProxyConfig{}, up)
	f := pxStartH1Front(t, p)

	c, err := net.DialTimeout("tcp", f.addr, pxTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(pxTimeout))
	if _, err := io.WriteString(c, pxWSHandshake); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading handshake response: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status: got %d; want 101 (errors %q)", res.StatusCode, errs.list())
	}
	if got, want := res.Header.Get("Sec-WebSocket-Accept"), pxWSAccept(pxWSKey); got != want {
		t.Errorf("Sec-WebSocket-Accept: got %q; want %q", got, want)
	}
	if got := res.Header.Get("Via"); got != "1.1 h2cgw" {
		t.Errorf("Via: got %q; want %q", got, "1.1 h2cgw")
	}
	for _, msg := range []string{"hello", "again"} {
		if err := pxWriteWSFrame(c, msg, true); err != nil {
			t.Fatal(err)
		}
		got, err := pxReadWSFrame(br)
		if err != nil || got != msg {
			t.Fatalf("echo: got %q, %v; want %q", got, err, msg)
		}
	}
	if n := p.tunnels.count(); n != 1 {
		t.Errorf("open tunnels: got %d; want 1", n)
	}

	p.Close()
	if _, err := br.ReadByte(); err == nil {
		t.Errorf("after Close: read succeeded; want the tunnel closed")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("after Close: tunnel still open (read timed out)")
	}
	if n := p.tunnels.count(); n != 0 {
		t.Errorf("open tunnels after Close: got %d; want 0", n)
	}
}

// TestProxyWebSocketNotTunnelled: a WebSocket handshake the proxy cannot
// tunnel — to an h2c upstream, or as a POST — is forwarded as a plain
// request, its Upgrade removed, and the upstream's answer returned.
func TestProxyWebSocketNotTunnelled(t *testing.T) {
	tests := []struct {
		name    string
		kind    pxUpstreamKind
		request string
	}{
		{"h2c upstream", pxUpstreamKinds[1], pxWSHandshake},
		{"POST", pxUpstreamKinds[0], strings.Replace(pxWSHandshake, "GET", "POST", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := tt.kind.start(t, pxWSEcho(t))
			p, _ := pxNewProxy(t, ProxyConfig{}, up)
			f := pxStartH1Front(t, p)
			res, body := pxRawExchange(t, f.addr, tt.request)
			if res.StatusCode != http.StatusOK || body != "no upgrade seen" {
				t.Errorf("got %d %q; want 200 %q", res.StatusCode, body, "no upgrade seen")
			}
		})
	}
}
