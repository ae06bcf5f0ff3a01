package gateway

import (
	"bytes"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/h2cgw/h2cgw/internal/errlog"
	"github.com/rs/zerolog"
	"golang.org/x/net/http2"
)

// TestConfigureTLS: on a caller's TLS server, an h2c upgrade over TLS is
// declined (h2c is cleartext only, RFC 9113 §3.1) and upgrade fields on
// ALPN-negotiated HTTP/2 are rejected (RFC 9113 §8.2.2). The caller's own ConnState
// hook keeps running.
func TestConfigureTLS(t *testing.T) {
	rec := newRecorder()
	events := &eventLog{}
	var states atomic.Int32
	srv := httptest.NewUnstartedServer(rec)
	srv.Config.ConnState = func(net.Conn, http.ConnState) { states.Add(1) }
	if _, err := Configure(srv.Config, Config{OnEvent: events.add, Logger: zerolog.New(zerolog.NewTestWriter(t))}); err != nil {
		t.Fatal(err)
	}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	// HTTP/1.1 over TLS asking for h2c.
	tr1 := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr1.CloseIdleConnections()
	req, _ := http.NewRequest("GET", srv.URL+"/tls1", nil)
	req.Header.Set("Connection", "Upgrade, HTTP2-Settings")
	req.Header.Set("Upgrade", "h2c")
	req.Header.Set("HTTP2-Settings", "")
	resp, err := tr1.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
		t.Errorf("h2c over TLS: %s %s; want HTTP/1.1 200", resp.Proto, resp.Status)
	}
	waitFor(t, "tls decline", func() bool { return events.has(EventUpgradeDeclined, ReasonTLS) })

	// HTTP/2 over TLS carrying HTTP2-Settings.
	tr2 := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr2.CloseIdleConnections()
	req, _ = http.NewRequest("GET", srv.URL+"/tls2", nil)
	req.Header.Set("HTTP2-Settings", "AAMAAABk")
	resp, err = tr2.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("HTTP2-Settings on TLS HTTP/2: %s; want 400", resp.Status)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/tls3", nil)
	resp, err = tr2.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok h2 HTTP/2.0" {
		t.Errorf("next request on the same connection: %q; want %q", body, "ok h2 HTTP/2.0")
	}
	if states.Load() == 0 {
		t.Error("the caller's ConnState hook never ran")
	}
}

// TestConfigureTwice: a server already set up for HTTP/2 is refused rather
// than configured twice.
func TestConfigureTwice(t *testing.T) {
	srv := &http.Server{}
	if _, err := Configure(srv, Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Configure(srv, Config{}); err == nil {
		t.Error("second Configure succeeded; want an error")
	}
}

// TestErrorLogBridge: net/http's and x/net's error log lands in zerolog at
// the level its content deserves.
func TestErrorLogBridge(t *testing.T) {
	var buf bytes.Buffer
	l := errlog.New(zerolog.New(&buf))
	l.Print("http: panic serving 1.2.3.4: boom")
	l.Print("http2: server: error reading preface from client")
	l.Print("http: Accept error: too many open files; retrying in 5ms")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{`"level":"error"`, `"level":"debug"`, `"level":"warn"`}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines; want %d: %q", len(lines), len(want), lines)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) || !strings.Contains(lines[i], `"source":"net/http"`) {
			t.Errorf("line %d: %s; want %s", i, lines[i], w)
		}
	}
	var _ *log.Logger = l
}
