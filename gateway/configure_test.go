package gateway

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/h2cgw/h2cgw/internal/testwait"
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

// hiddenWriter hides every optional interface of the ResponseWriter beneath
// (http.Hijacker, Unwrap), as a careless middleware does.
type hiddenWriter struct{ w http.ResponseWriter }

func (h hiddenWriter) Header() http.Header         { return h.w.Header() }
func (h hiddenWriter) Write(p []byte) (int, error) { return h.w.Write(p) }
func (h hiddenWriter) WriteHeader(code int)        { h.w.WriteHeader(code) }

// TestHijackFailed: a wrapper in front of a Configured gateway that hides
// http.Hijacker leaves the upgrade nothing to take over: the request is
// served on HTTP/1.1, its body intact, and the decline says why.
func TestHijackFailed(t *testing.T) {
	rec := newRecorder()
	events := &eventLog{}
	srv := httptest.NewUnstartedServer(rec)
	if _, err := Configure(srv.Config, Config{OnEvent: events.add, Logger: zerolog.New(zerolog.NewTestWriter(t))}); err != nil {
		t.Fatal(err)
	}
	inner := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(hiddenWriter{w}, r)
	})
	srv.Start()
	defer srv.Close()
	c := dial(t, srv.Listener.Addr().String())
	br := bufio.NewReader(c)
	io.WriteString(c, upgradeHead("POST", "/hidden", "Content-Length: 5")+"hello")
	resp, _ := readHTTP1(t, br, "POST")
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
		t.Fatalf("got %s %s; want HTTP/1.1 200", resp.Proto, resp.Status)
	}
	waitFor(t, "hijack_failed decline", func() bool { return events.has(EventUpgradeDeclined, ReasonHijackFailed) })
	if s := testwait.Recv(t, rec.arrived, "the request"); s.BodyLen != 5 || s.Proto != "HTTP/1.1" {
		t.Errorf("handler saw %s with %d body bytes; want HTTP/1.1 with 5", s.Proto, s.BodyLen)
	}
}
