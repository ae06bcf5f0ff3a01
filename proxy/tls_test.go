package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTLSUpstream starts an https:// upstream that answers with the
// protocol the request came by, over HTTP/2 or only HTTP/1.1 by ALPN.
func startTLSUpstream(t *testing.T, h2 bool) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s via %s", r.Proto, r.Header.Get("Via"))
	}))
	srv.EnableHTTP2 = h2
	srv.StartTLS()
	closeAtEnd(t, srv)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return srv, roots
}

// TestProxyTLSUpstream: an https:// upstream is verified with
// Config.TLSConfig and spoken to over HTTP/2 or HTTP/1.1 as ALPN
// settles, from either client protocol; OnUpstreamResponse times each
// response.
func TestProxyTLSUpstream(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		for _, fk := range frontKinds {
			t.Run(fmt.Sprintf("h2=%v/%s", h2, fk.name), func(t *testing.T) {
				srv, roots := startTLSUpstream(t, h2)
				var mu sync.Mutex
				var timed []string
				p, _ := newProxy(t, Config{
					Upstreams: []string{srv.URL},
					// The test certificate is for example.com and
					// 127.0.0.1; the name checked is the configured one.
					TLSConfig: &tls.Config{RootCAs: roots, ServerName: "example.com"},
					OnUpstreamResponse: func(up string, d time.Duration) {
						mu.Lock()
						timed = append(timed, up)
						mu.Unlock()
						if d <= 0 {
							t.Errorf("OnUpstreamResponse: duration %v", d)
						}
					},
				})
				f := fk.start(t, p)
				resp, body := f.get(t, "/tls")
				want := "HTTP/1.1 via "
				if h2 {
					want = "HTTP/2.0 via "
				}
				if resp.StatusCode != 200 || !strings.HasPrefix(body, want) {
					t.Errorf("got %d %q; want 200 %q…", resp.StatusCode, body, want)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(timed) != 1 || timed[0] != srv.URL {
					t.Errorf("OnUpstreamResponse calls %q; want one for %s", timed, srv.URL)
				}
			})
		}
	}
}

// TestProxyTLSUntrusted: an upstream whose certificate the configured roots
// (here the system's) do not vouch for gets no request: 502.
func TestProxyTLSUntrusted(t *testing.T) {
	srv, _ := startTLSUpstream(t, true)
	p, errs := newProxy(t, Config{Upstreams: []string{srv.URL}})
	f := startH2CFront(t, p)
	if resp, _ := f.get(t, "/untrusted"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("got %d; want 502", resp.StatusCode)
	}
	if got := errs.list(); len(got) != 1 || !strings.HasPrefix(got[0], srv.URL+" ") {
		t.Errorf("OnUpstreamError %q; want one call for %s", got, srv.URL)
	}
}
