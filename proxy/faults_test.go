package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/internal/testwait"
	"golang.org/x/net/http2"
)

// readRequestHead reads one request head (and discards its body) from br.
func readRequestHead(br *bufio.Reader) (*http.Request, error) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, r.Body)
	return r, nil
}

// TestProxyUpstreamFaults: each way an upstream can fail before its response
// headers gives the client 502 or 504 with a short text body, and reports the
// upstream and the cause.
func TestProxyUpstreamFaults(t *testing.T) {
	tests := []struct {
		name       string
		upstream   func(t *testing.T) *testUpstream
		wantStatus int
		wantCause  string
		wantBody   string
	}{
		{
			name: "refused http",
			upstream: func(t *testing.T) *testUpstream {
				a := closedAddr(t)
				return &testUpstream{url: "http://" + a, name: "http://" + a}
			},
			wantStatus: http.StatusBadGateway,
			wantCause:  causeRefused,
			wantBody:   "502 Bad Gateway: upstream refused the connection\n",
		},
		{
			name: "refused h2c",
			upstream: func(t *testing.T) *testUpstream {
				a := closedAddr(t)
				return &testUpstream{url: "h2c://" + a, name: "h2c://" + a}
			},
			wantStatus: http.StatusBadGateway,
			wantCause:  causeRefused,
			wantBody:   "502 Bad Gateway: upstream refused the connection\n",
		},
		{
			name:       "garbage status line",
			upstream:   replying("garbage\r\n\r\n"),
			wantStatus: http.StatusBadGateway,
			wantCause:  causeBadResponse,
			wantBody:   "502 Bad Gateway: upstream sent a malformed response\n",
		},
		{
			name:       "malformed status code",
			upstream:   replying("HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"),
			wantStatus: http.StatusBadGateway,
			wantCause:  causeBadResponse,
			wantBody:   "502 Bad Gateway: upstream sent a malformed response\n",
		},
		{
			name: "closed before response",
			upstream: func(t *testing.T) *testUpstream {
				return rawUpstream(t, func(c net.Conn) {
					_, _ = readRequestHead(bufio.NewReader(c))
				})
			},
			wantStatus: http.StatusBadGateway,
			wantCause:  causeReset,
			wantBody:   "502 Bad Gateway: upstream closed the connection\n",
		},
		{
			name: "h2c upstream reset stream",
			upstream: func(t *testing.T) *testUpstream {
				return startH2CUpstream(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
					panic(http.ErrAbortHandler) // RST_STREAM
				}))
			},
			wantStatus: http.StatusBadGateway,
			wantCause:  causeReset,
			wantBody:   "502 Bad Gateway: upstream closed the connection\n",
		},
		{
			name: "h2c upstream speaks HTTP/1.1 only",
			upstream: func(t *testing.T) *testUpstream {
				u := startH1Upstream(t, http.NotFoundHandler())
				u.url = strings.Replace(u.url, "http://", "h2c://", 1)
				u.name = u.url
				return u
			},
			wantStatus: http.StatusBadGateway,
			wantCause:  causeBadResponse,
			wantBody:   "502 Bad Gateway: upstream sent a malformed response\n",
		},
		{
			name: "h2c upstream sends illegal SETTINGS",
			upstream: func(t *testing.T) *testUpstream {
				u := rawUpstream(t, func(c net.Conn) {
					preface := make([]byte, len(http2.ClientPreface))
					if _, err := io.ReadFull(c, preface); err != nil {
						return
					}
					fr := http2.NewFramer(c, c)
					// ENABLE_PUSH is 0 or 1 (RFC 9113 §6.5.2).
					_ = fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 2})
					_, _ = io.Copy(io.Discard, c)
				})
				u.url = strings.Replace(u.url, "http://", "h2c://", 1)
				u.name = u.url
				return u
			},
			wantStatus: http.StatusBadGateway,
			wantCause:  causeBadResponse,
			wantBody:   "502 Bad Gateway: upstream sent a malformed response\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := tt.upstream(t)
			p, errs := newProxy(t, Config{}, up)
			f := startH1Front(t, p)
			res, body := f.get(t, "/x")
			if res.StatusCode != tt.wantStatus {
				t.Errorf("status: got %d; want %d", res.StatusCode, tt.wantStatus)
			}
			if body != tt.wantBody {
				t.Errorf("body: got %q; want %q", body, tt.wantBody)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type: got %q; want text/plain", ct)
			}
			want := up.name + " " + tt.wantCause
			if got := errs.list(); len(got) != 1 || got[0] != want {
				t.Errorf("OnUpstreamError: got %q; want [%q]", got, want)
			}
		})
	}
}

// TestProxyTimeout: an upstream that does not send its response headers
// within Timeout gives 504, for either kind of upstream, and the upstream's
// request is abandoned (its context ends).
func TestProxyTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, kind := range upstreamKinds {
		t.Run(kind.name, func(t *testing.T) {
			abandoned := make(chan struct{})
			up := kind.start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
					close(abandoned)
				case <-time.After(testTimeout): // the deliberate delay
				}
			}))
			p, errs := newProxy(t, Config{Timeout: timeout}, up)
			f := startH1Front(t, p)
			start := time.Now()
			res, body := f.get(t, "/slow")
			elapsed := time.Since(start)
			if res.StatusCode != http.StatusGatewayTimeout {
				t.Errorf("status: got %d; want 504", res.StatusCode)
			}
			if want := "504 Gateway Timeout: upstream did not answer in time\n"; body != want {
				t.Errorf("body: got %q; want %q", body, want)
			}
			if elapsed < timeout || elapsed > testTimeout/2 {
				t.Errorf("answered after %v; want about %v", elapsed, timeout)
			}
			if got, want := errs.list(), []string{up.name + " timeout"}; !equalStrings(got, want) {
				t.Errorf("OnUpstreamError: got %q; want %q", got, want)
			}
			testwait.Recv(t, abandoned, "the upstream request to be abandoned")
		})
	}
}

// TestProxyClientCanceled: a client that goes away while the upstream thinks
// is reported as "canceled", and the upstream's request is abandoned.
func TestProxyClientCanceled(t *testing.T) {
	for _, kind := range upstreamKinds {
		t.Run(kind.name, func(t *testing.T) {
			arrived := make(chan struct{})
			abandoned := make(chan struct{})
			up := kind.start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(arrived)
				select {
				case <-r.Context().Done():
					close(abandoned)
				case <-time.After(testTimeout):
				}
			}))
			p, errs := newProxy(t, Config{}, up)
			f := startH1Front(t, p)
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url+"/", nil)
			done := make(chan error, 1)
			go func() {
				res, err := f.client.Do(req)
				if err == nil {
					res.Body.Close()
				}
				done <- err
			}()
			testwait.Recv(t, arrived, "the request to reach the upstream")
			cancel()
			if err := testwait.Recv(t, done, "the client to return"); !errors.Is(err, context.Canceled) {
				t.Errorf("client: got %v; want context.Canceled", err)
			}
			if got, want := testwait.Recv(t, errs.ch, "OnUpstreamError"), up.name+" canceled"; got != want {
				t.Errorf("OnUpstreamError: got %q; want %q", got, want)
			}
			testwait.Recv(t, abandoned, "the upstream request to be abandoned")
		})
	}
}

// TestProxyUnsolicited101: an upstream that switches protocols without being
// asked for a WebSocket tunnel gets the client a 502. An HTTP/1.1 upstream's
// connection is dropped (the upstream sees it close, and the next request
// opens a new one); an h2c upstream's stream is reset and its connection,
// carrying other streams, kept.
func TestProxyUnsolicited101(t *testing.T) {
	h1Tests := []struct {
		name     string
		request  []string // extra request header lines
		response string
	}{
		{
			name:     "h2c switch to a plain request",
			response: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
		},
		{
			name:     "bare 101",
			response: "HTTP/1.1 101 Switching Protocols\r\n\r\n",
		},
		{
			name:     "h2c switch to a websocket request",
			request:  []string{"Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="},
			response: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
		},
	}
	for _, tt := range h1Tests {
		t.Run("http/"+tt.name, func(t *testing.T) {
			dropped := make(chan struct{}, 1)
			up := rawUpstream(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				for {
					r, err := readRequestHead(br)
					if err != nil {
						return
					}
					if r.URL.Path == "/switch" {
						_, _ = io.WriteString(c, tt.response)
						// Whatever the proxy does, it must not talk on:
						// the connection is read until it closes.
						_, err := io.Copy(io.Discard, br)
						if err == nil {
							dropped <- struct{}{}
						}
						return
					}
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			})
			p, errs := newProxy(t, Config{}, up)
			f := startH1Front(t, p)
			lines := append([]string{"GET /switch HTTP/1.1", "Host: example.test"}, tt.request...)
			res, body := rawExchange(t, f.addr, rawRequest(lines...))
			if res.StatusCode != http.StatusBadGateway {
				t.Errorf("status: got %d; want 502", res.StatusCode)
			}
			if want := "502 Bad Gateway: upstream switched protocols unasked\n"; body != want {
				t.Errorf("body: got %q; want %q", body, want)
			}
			testwait.Recv(t, dropped, "the upstream connection to be dropped")
			if res, _ := f.get(t, "/next"); res.StatusCode != http.StatusOK {
				t.Errorf("next request: got %d; want 200", res.StatusCode)
			}
			if got := up.accepts.Load(); got != 2 {
				t.Errorf("upstream connections: got %d; want 2 (the switched one dropped)", got)
			}
			if got, want := errs.list(), []string{up.name + " unsolicited_101"}; !equalStrings(got, want) {
				t.Errorf("OnUpstreamError: got %q; want %q", got, want)
			}
		})
	}

	t.Run("h2c", func(t *testing.T) {
		up := startH2CUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/switch" {
				w.Header().Set("Upgrade", "h2c")
				w.WriteHeader(http.StatusSwitchingProtocols)
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, "smuggled")
				return
			}
			_, _ = io.WriteString(w, "ok")
		}))
		p, errs := newProxy(t, Config{}, up)
		for _, fk := range frontKinds {
			f := fk.start(t, p)
			res, body := f.get(t, "/switch")
			if res.StatusCode != http.StatusBadGateway {
				t.Errorf("%s front: status: got %d; want 502", fk.name, res.StatusCode)
			}
			if want := "502 Bad Gateway: upstream switched protocols unasked\n"; body != want {
				t.Errorf("%s front: body: got %q; want %q", fk.name, body, want)
			}
			if res, body := f.get(t, "/next"); res.StatusCode != http.StatusOK || body != "ok" {
				t.Errorf("%s front: next request: got %d %q; want 200 \"ok\"", fk.name, res.StatusCode, body)
			}
		}
		if got := up.accepts.Load(); got != 1 {
			t.Errorf("upstream connections: got %d; want 1 (only the stream reset)", got)
		}
		want := []string{up.name + " unsolicited_101", up.name + " unsolicited_101"}
		if got := errs.list(); !equalStrings(got, want) {
			t.Errorf("OnUpstreamError: got %q; want %q", got, want)
		}
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestProxyResetMidResponse: an upstream that fails after its response
// headers cuts the client's response short (it cannot become a 502 any
// more), and the failure is reported with the upstream and the cause.
func TestProxyResetMidResponse(t *testing.T) {
	tests := []struct {
		name     string
		upstream func(t *testing.T) *testUpstream
	}{
		{
			name:     "http closes early",
			upstream: replying("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"),
		},
		{
			name: "h2c resets the stream",
			upstream: func(t *testing.T) *testUpstream {
				return startH2CUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.WriteString(w, "partial")
					_ = http.NewResponseController(w).Flush()
					panic(http.ErrAbortHandler)
				}))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := tt.upstream(t)
			p, errs := newProxy(t, Config{}, up)
			f := startH1Front(t, p)
			res, err := f.client.Get(f.url + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("status: got %d; want 200 (headers were sent)", res.StatusCode)
			}
			if b, err := io.ReadAll(res.Body); err == nil {
				t.Errorf("body: got %q and no error; want the response cut short", b)
			}
			if got, want := testwait.Recv(t, errs.ch, "OnUpstreamError"), up.name+" reset"; got != want {
				t.Errorf("OnUpstreamError: got %q; want %q", got, want)
			}
		})
	}
}

// replying returns an upstream that answers each connection's first
// request with the raw bytes reply, whatever they are.
func replying(reply string) func(t *testing.T) *testUpstream {
	return func(t *testing.T) *testUpstream {
		return rawUpstream(t, func(c net.Conn) {
			if _, err := readRequestHead(bufio.NewReader(c)); err == nil {
				_, _ = io.WriteString(c, reply)
			}
		})
	}
}
