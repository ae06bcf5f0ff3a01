package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// seen is what an upstream saw of one request.
type seen struct {
	host   string
	header http.Header
	sum    string
	n      int64
}

// recordingUpstream is an HTTP/1.1 upstream on loopback that records each
// request, answers with a body and a trailer (gRPC's status), and serves a
// WebSocket-like tunnel on /ws.
func recordingUpstream(t *testing.T) (*httptest.Server, <-chan seen) {
	t.Helper()
	got := make(chan seen, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			tunnelEcho(t, w, r)
			return
		}
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		got <- seen{host: r.Host, header: r.Header.Clone(), sum: hex.EncodeToString(h.Sum(nil)), n: n}
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "from upstream")
		w.Header().Set("Grpc-Status", "0")
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// tunnelEcho completes a WebSocket handshake with a raw 101 and echoes lines.
func tunnelEcho(t *testing.T, w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "want Upgrade: websocket", http.StatusBadRequest)
		return
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("upstream hijack: %v", err)
		return
	}
	defer c.Close()
	io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	brw.Flush()
	for {
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		io.WriteString(brw, "echo "+line)
		brw.Flush()
	}
}

func TestRunGatewayMode(t *testing.T) {
	t.Parallel()
	up, got := recordingUpstream(t)
	in := startRun(t, "--upstream", up.URL)
	line := in.logs.waitMessage(t, "listening", nil)
	if line["mode"] != "gateway" {
		t.Errorf("mode %v; want gateway", line["mode"])
	}
	if code, body := statusOf(t, "http://"+in.admin+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz in gateway mode: %d %q; want 200", code, body)
	}

	body := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB
	sum := sha256.Sum256(body)
	wantSum := hex.EncodeToString(sum[:])

	t.Run("h1 smuggling attempt", func(t *testing.T) {
		// An h2c upgrade whose Connection does not list Upgrade is
		// declined and served on HTTP/1.1; its upgrade fields, and the
		// hop-by-hop fields it names, must not reach the upstream.
		req, _ := http.NewRequest("POST", in.url("/h1?q=1"), bytes.NewReader(body))
		req.Header.Set("Upgrade", "h2c")
		req.Header.Set("HTTP2-Settings", "AAMAAABkAAQAAP__")
		req.Header.Set("Connection", "X-Hop, Keep-Alive")
		req.Header.Set("X-Hop", "secret")
		req.Header.Set("Keep-Alive", "timeout=5")
		req.Header.Set("X-End-To-End", "kept")
		resp := doReq(t, h1Client(t), req)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "from upstream" {
			t.Fatalf("response %d %q; want 200 from upstream", resp.StatusCode, b)
		}
		if g := resp.Trailer.Get("Grpc-Status"); g != "0" {
			t.Errorf("trailer Grpc-Status %q; want 0", g)
		}
		s := <-got
		checkForwarded(t, s, in.addr, wantSum, int64(len(body)))
		for _, k := range []string{"Upgrade", "Http2-Settings", "Connection", "X-Hop", "Keep-Alive"} {
			if v, ok := s.header[k]; ok {
				t.Errorf("upstream saw %s: %q", k, v)
			}
		}
		if s.header.Get("X-End-To-End") != "kept" {
			t.Errorf("upstream did not see X-End-To-End")
		}
	})

	t.Run("prior knowledge", func(t *testing.T) {
		req, _ := http.NewRequest("POST", in.url("/grpc.Service/Method"), bytes.NewReader(body))
		req.Header.Set("TE", "trailers")
		resp := doReq(t, h2cClient(t), req)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "from upstream" || resp.ProtoMajor != 2 {
			t.Fatalf("response %s %d %q; want HTTP/2 200 from upstream", resp.Proto, resp.StatusCode, b)
		}
		if g := resp.Trailer.Get("Grpc-Status"); g != "0" {
			t.Errorf("trailer Grpc-Status %q; want 0 through HTTP/2", g)
		}
		s := <-got
		checkForwarded(t, s, in.addr, wantSum, int64(len(body)))
		if s.header.Get("Te") != "trailers" {
			t.Errorf("upstream saw TE %q; want trailers (gRPC)", s.header.Get("Te"))
		}
	})

	t.Run("upgrade", func(t *testing.T) {
		resp := upgradeRequest(t, in.addr, upgradeHead(in.addr, "GET", "/upgraded"))
		if resp.status != "200" || string(resp.body) != "from upstream" {
			t.Fatalf("stream 1: %s %q; want 200 from upstream", resp.status, resp.body)
		}
		if g := resp.trailer.Get("grpc-status"); g != "0" {
			t.Errorf("stream 1 trailer grpc-status %q; want 0", g)
		}
		s := <-got
		empty := sha256.Sum256(nil)
		checkForwarded(t, s, in.addr, hex.EncodeToString(empty[:]), 0)
		for _, k := range []string{"Upgrade", "Http2-Settings", "Connection"} {
			if v, ok := s.header[k]; ok {
				t.Errorf("upstream saw %s: %q after an upgrade", k, v)
			}
		}
	})

	t.Run("websocket", func(t *testing.T) {
		c, err := net.Dial("tcp", in.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(waitTimeout))
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: "+in.addr+"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake: %v, %v; want 101", resp, err)
		}
		for _, msg := range []string{"ping\n", "pong\n"} {
			io.WriteString(c, msg)
			if l, err := br.ReadString('\n'); l != "echo "+msg {
				t.Fatalf("tunnel answered %q, %v; want %q", l, err, "echo "+msg)
			}
		}
		c.Close()
		line := in.logs.waitMessage(t, "request", map[string]any{"path": "/ws"})
		if line["status"] != float64(101) || line["upstream"] != up.URL {
			t.Errorf("access line status %v upstream %v; want 101 %s", line["status"], line["upstream"], up.URL)
		}
	})

	line = in.logs.waitMessage(t, "request", map[string]any{"path": "/h1"})
	if line["upstream"] != up.URL || line["status"] != float64(200) || line["bytes_in"] != float64(len(body)) {
		t.Errorf("access line upstream %v status %v bytes_in %v; want %s 200 %d",
			line["upstream"], line["status"], line["bytes_in"], up.URL, len(body))
	}
}

func checkForwarded(t *testing.T, s seen, addr, sum string, n int64) {
	t.Helper()
	if s.host != addr {
		t.Errorf("upstream saw Host %q; want the client's %q", s.host, addr)
	}
	if s.sum != sum || s.n != n {
		t.Errorf("upstream got %d bytes, sha256 %s; want %d, %s", s.n, s.sum, n, sum)
	}
	for k, want := range map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  addr,
	} {
		if got := s.header.Get(k); got != want {
			t.Errorf("upstream saw %s %q; want %q", k, got, want)
		}
	}
	if !strings.Contains(s.header.Get("Via"), "h2cgw") {
		t.Errorf("upstream saw Via %q; want the gateway in it", s.header.Get("Via"))
	}
}

func TestRunGatewayRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upstream := "http://" + l.Addr().String()
	l.Close() // nothing listens there now

	in := startRun(t, "--upstream", upstream)
	resp := get(t, h2cClient(t), in.url("/x"))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || len(b) == 0 || len(b) > 200 {
		t.Errorf("refused upstream: %d %q %q; want 502 with a short text body", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	line := in.logs.waitMessage(t, "upstream error", map[string]any{"upstream": upstream})
	in.logs.waitMessage(t, "request", map[string]any{"path": "/x", "status": float64(502)})
	series := `h2cgw_upstream_errors_total{cause="` + line["cause"].(string) + `",upstream="` + upstream + `"}`
	if got := metricValue(t, metricsText(t, in.admin), series); got != "1" {
		t.Errorf("%s = %s; want 1", series, got)
	}
	if got := metricValue(t, metricsText(t, in.admin), `h2cgw_requests_total{code_class="5xx",via="h2c-prior-knowledge"}`); got != "1" {
		t.Errorf("requests_total 5xx = %s; want 1", got)
	}
	// Its only upstream is out of the pool: not ready.
	if code, body := statusOf(t, "http://"+in.admin+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the only upstream refused: %d %q; want 503", code, body)
	}
}

func TestRunGatewayTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var once sync.Once
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done(): // the gateway gave up
		case <-release:
		}
	}))
	t.Cleanup(func() {
		once.Do(func() { close(release) })
		slow.Close()
	})

	in := startRun(t, "--upstream", slow.URL, "--upstream-timeout", "200ms")
	start := time.Now()
	resp := get(t, h1Client(t), in.url("/slow"))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout || len(b) == 0 {
		t.Errorf("slow upstream: %d %q; want 504 with a text body", resp.StatusCode, b)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("504 after %v; want it soon after --upstream-timeout 200ms", d)
	}
	in.logs.waitMessage(t, "upstream error", map[string]any{"upstream": slow.URL, "cause": "timeout"})
	in.logs.waitMessage(t, "request", map[string]any{"path": "/slow", "status": float64(504)})
	series := `h2cgw_upstream_errors_total{cause="timeout",upstream="` + slow.URL + `"}`
	if got := metricValue(t, metricsText(t, in.admin), series); got != "1" {
		t.Errorf("%s = %s; want 1", series, got)
	}
}

// TestRunShutdownDrainsTunnel: a WebSocket tunnel open when shutdown begins
// keeps working inside the grace period — it is a hijacked connection that
// neither net/http nor the gateway drains — and run returns nil once the
// client closes it.
func TestRunShutdownDrainsTunnel(t *testing.T) {
	up, _ := recordingUpstream(t)
	in := startRun(t, "--upstream", up.URL, "--shutdown-timeout", "10s")
	c, err := net.Dial("tcp", in.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitTimeout))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: "+in.addr+"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v, %v; want 101", resp, err)
	}
	in.cancel() // SIGTERM
	in.logs.waitMessage(t, "shutting down", nil)
	for _, msg := range []string{"after\n", "the signal\n"} {
		io.WriteString(c, msg)
		if l, err := br.ReadString('\n'); l != "echo "+msg {
			t.Fatalf("tunnel after shutdown began answered %q, %v; want %q", l, err, "echo "+msg)
		}
	}
	select {
	case err := <-in.done:
		t.Fatalf("run returned %v with a tunnel still open", err)
	default:
	}
	c.Close()
	if err := in.stop(t); err != nil {
		t.Errorf("run: %v; want nil once the tunnel closed", err)
	}
}
