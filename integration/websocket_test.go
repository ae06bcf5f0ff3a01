package integration

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// TestWebSocket: a WebSocket (Upgrade: websocket on HTTP/1.1) tunnelled
// through the gateway to an HTTP/1.1 upstream (README "Gateway mode"), with messages
// both ways.
func TestWebSocket(t *testing.T) {
	t.Parallel()

	seen := make(chan http.Header, 1) // the upstream's view of the handshake, Host included
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		select {
		case seen <- h:
		default:
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return // Accept has answered
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		// Echo until the client closes.
		ctx := r.Context()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(upstream.Close)

	g := startGateway(t, "--upstream", upstream.URL)

	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c, resp, err := websocket.Dial(ctx, "ws://"+g.Addr+"/ws", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatalf("websocket.Dial through the gateway: %v", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("handshake status: got %d; want 101", resp.StatusCode)
	}

	for _, m := range []struct {
		typ  websocket.MessageType
		data []byte
	}{
		{websocket.MessageText, []byte("hello through h2cgw")},
		{websocket.MessageBinary, randomBytes(t, 200<<10)},
	} {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatalf("write %v: %v", m.typ, err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read the echo of %v: %v", m.typ, err)
		}
		if typ != m.typ || !bytes.Equal(got, m.data) {
			t.Errorf("echo: got %v of %d bytes; want %v of %d bytes, equal", typ, len(got), m.typ, len(m.data))
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Errorf("close: %v", err)
	}

	// What the upstream saw.
	h := <-seen
	if got := h.Get("Upgrade"); !strings.EqualFold(got, "websocket") {
		t.Errorf("upstream saw Upgrade %q; want websocket", got)
	}
	if got := h.Get("Host"); got != g.Addr {
		t.Errorf("upstream saw Host %q; want the client's %q", got, g.Addr)
	}
	if got := h.Get("X-Forwarded-For"); !strings.Contains(got, "127.0.0.1") {
		t.Errorf("upstream saw X-Forwarded-For %q; want 127.0.0.1", got)
	}
}
