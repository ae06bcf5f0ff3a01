package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/internal/echo"
	proxyproto "github.com/pires/go-proxyproto"
	"github.com/rs/zerolog"
	"golang.org/x/net/http2"
)

// The tests' peers: Linux routes all of 127.0.0.0/8 to the loopback, so one
// test dials both as the trusted balancer and as an untrusted client.
const (
	trustedPeer   = "127.0.0.1"
	untrustedPeer = "127.0.0.2"
)

// startProxied starts run with the PROXY protocol on, trusting trustedPeer.
func startProxied(t *testing.T, args ...string) *instance {
	t.Helper()
	return startRun(t, append([]string{"--proxy-protocol", "--proxy-protocol-trusted", trustedPeer + "/32"}, args...)...)
}

// dialFrom connects to addr from the loopback address src.
func dialFrom(ctx context.Context, src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return d.DialContext(ctx, "tcp", addr)
}

// proxyHeader is the header a balancer sends for a client at client (an
// address from the documentation ranges: it is only ever written, never
// dialled).
func proxyHeader(t *testing.T, version byte, client string) []byte {
	t.Helper()
	src := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(client))
	dst := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 8080}
	if src.IP.To4() == nil {
		dst = &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 8080}
	}
	b, err := proxyproto.HeaderProxyFromAddrs(version, src, dst).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// proxiedDial dials from the trusted peer and sends the header first, as a
// balancer does on each connection it opens.
func proxiedDial(t *testing.T, version byte, client string) func(context.Context, string, string) (net.Conn, error) {
	h := proxyHeader(t, version, client)
	return func(ctx context.Context, _, addr string) (net.Conn, error) {
		c, err := dialFrom(ctx, trustedPeer, addr)
		if err != nil {
			return nil, err
		}
		if _, err := c.Write(h); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
}

func h1ClientDial(t *testing.T, dial func(context.Context, string, string) (net.Conn, error)) *http.Client {
	tr := &http.Transport{DialContext: dial}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func h2cClientDial(t *testing.T, dial func(context.Context, string, string) (net.Conn, error)) *http.Client {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return dial(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestProxyProtocolEntryPaths: a trusted peer's v1 or v2 header names the
// client on each entry path — net/http's prior-knowledge peek and the
// upgrade's hijack read through the wrapped connection — and the access log
// shows that client, not the balancer.
func TestProxyProtocolEntryPaths(t *testing.T) {
	t.Parallel()
	in := startProxied(t)
	line := in.logs.waitMessage(t, "listening", nil)
	if trusted, _ := line["proxy_protocol_trusted"].([]any); line["proxy_protocol"] != true || len(trusted) != 1 || trusted[0] != trustedPeer+"/32" {
		t.Errorf("listening line proxy_protocol %v, proxy_protocol_trusted %v; want true, [%s/32]", line["proxy_protocol"], line["proxy_protocol_trusted"], trustedPeer)
	}
	headers := []struct {
		name    string
		version byte
		client  string // the header's source; the port is the path's index
	}{
		{"v1", 1, "192.0.2.10"},
		{"v2", 2, "198.51.100.20"},
		{"v2 ipv6", 2, "2001:db8::30"},
	}
	for _, hd := range headers {
		for i, path := range []string{"h1", "h2c-prior-knowledge", "h2c-upgrade"} {
			client := netip.AddrPortFrom(netip.MustParseAddr(hd.client), uint16(40000+i)).String()
			target := "/" + strings.ReplaceAll(hd.name, " ", "-") + "/" + path
			t.Run(hd.name+"/"+path, func(t *testing.T) {
				dial := proxiedDial(t, hd.version, client)
				var e echo.Response
				switch path {
				case "h1":
					e = echoOf(t, get(t, h1ClientDial(t, dial), in.url(target)))
				case "h2c-prior-knowledge":
					e = echoOf(t, get(t, h2cClientDial(t, dial), in.url(target)))
				case "h2c-upgrade":
					c, err := dial(context.Background(), "tcp", in.addr)
					if err != nil {
						t.Fatal(err)
					}
					resp := upgradeRequestOn(t, c, upgradeHead(in.addr, "GET", target))
					if resp.status != "200" {
						t.Fatalf("stream 1 status %q; want 200", resp.status)
					}
					if err := json.Unmarshal(resp.body, &e); err != nil {
						t.Fatalf("decoding %q: %v", resp.body, err)
					}
				}
				if e.Via != path || e.Path != target {
					t.Errorf("echo via %q path %q; want %q %q", e.Via, e.Path, path, target)
				}
				line := in.logs.waitMessage(t, "request", map[string]any{"path": target})
				if line["remote"] != client {
					t.Errorf("access log remote %v; want the header's client %s", line["remote"], client)
				}
			})
		}
	}
	text := metricsText(t, in.admin)
	if got := metricValue(t, text, `h2cgw_proxy_protocol_total{outcome="ok"}`); got != "9" {
		t.Errorf(`h2cgw_proxy_protocol_total{outcome="ok"} = %s; want 9 (one connection per case)`, got)
	}
}

// TestProxyProtocolForwardedFor: in gateway mode the upstream sees the
// header's client in X-Forwarded-For; an untrusted peer without a header is
// served under its own address.
func TestProxyProtocolForwardedFor(t *testing.T) {
	t.Parallel()
	up, got := recordingUpstream(t)
	in := startProxied(t, "--upstream", up.URL)

	resp := get(t, h2cClientDial(t, proxiedDial(t, 2, "203.0.113.9:5555")), in.url("/via-balancer"))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if s := <-got; s.header.Get("X-Forwarded-For") != "203.0.113.9" {
		t.Errorf("upstream X-Forwarded-For %q; want the header's client 203.0.113.9", s.header.Get("X-Forwarded-For"))
	}

	direct := func(ctx context.Context, _, addr string) (net.Conn, error) { return dialFrom(ctx, untrustedPeer, addr) }
	resp = get(t, h1ClientDial(t, direct), in.url("/direct"))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("untrusted peer without a header: status %d; want 200", resp.StatusCode)
	}
	if s := <-got; s.header.Get("X-Forwarded-For") != untrustedPeer {
		t.Errorf("upstream X-Forwarded-For %q; want the peer's own %s", s.header.Get("X-Forwarded-For"), untrustedPeer)
	}
	text := metricsText(t, in.admin)
	for series, want := range map[string]string{
		`h2cgw_proxy_protocol_total{outcome="ok"}`:     "1",
		`h2cgw_proxy_protocol_total{outcome="direct"}`: "1",
	} {
		if got := metricValue(t, text, series); got != want {
			t.Errorf("%s = %s; want %s", series, got, want)
		}
	}
}

// TestProxyProtocolRefused: every connection that does not start as its peer
// must is closed without an answer, within the read-header timeout, with a
// log line that names the peer and the outcome.
func TestProxyProtocolRefused(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	in := startProxied(t, "--read-header-timeout", timeout.String())
	request := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	v2 := proxyHeader(t, 2, "192.0.2.50:1000")

	tests := []struct {
		name    string
		from    string
		send    string // then the test stops sending
		outcome string // any but timeout shows it was not the timeout that closed it
		slow    bool   // closed by the timeout
	}{
		{"untrusted peer with a v1 header", untrustedPeer, string(proxyHeader(t, 1, "192.0.2.51:1000")) + request, proxyRejected, false},
		{"untrusted peer with a v2 header", untrustedPeer, string(v2) + request, proxyRejected, false},
		{"trusted peer without a header", trustedPeer, request, proxyMissing, false},
		{"trusted peer with the preface and no header", trustedPeer, http2.ClientPreface, proxyMissing, false},
		{"v1 with a bad address", trustedPeer, "PROXY TCP4 192.0.2.1 nonsense 1 2\r\n" + request, proxyMalformed, false},
		{"v1 without CR", trustedPeer, "PROXY TCP4 192.0.2.1 192.0.2.2 1000 8080\n" + request, proxyMalformed, false},
		{"v1 too long", trustedPeer, "PROXY " + strings.Repeat("x", 200), proxyMalformed, false},
		{"v1 cut short", trustedPeer, "PROXY TCP4 192.0.2.1", proxyMalformed, false},
		{"v2 with a bad command", trustedPeer, string(v2[:12]) + "\x2f\x11\x00\x0c", proxyMalformed, false},
		{"v2 cut short", trustedPeer, string(v2[:20]), proxyTimeout, true},
		{"v2 signature cut short", trustedPeer, string(v2[:6]), proxyTimeout, true},
		{"trusted peer silent", trustedPeer, "", proxyTimeout, true},
	}
	counts := map[string]int{}
	for _, tt := range tests {
		counts[tt.outcome]++
		t.Run(tt.name, func(t *testing.T) {
			c, err := dialFrom(context.Background(), tt.from, in.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			if _, err := io.WriteString(c, tt.send); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(start.Add(waitTimeout))
			n, err := io.Copy(io.Discard, c)
			took := time.Since(start)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after %v; want it closed", took)
			}
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("reading: %v; want EOF or a reset", err)
			}
			if n != 0 {
				t.Errorf("got %d bytes back; want none", n)
			}
			if tt.slow && took < timeout {
				t.Errorf("closed after %v; want the read-header timeout (%v) first", took, timeout)
			}
			line := in.logs.waitMessage(t, msgProxyRefused, map[string]any{"peer": c.LocalAddr().String()})
			if line["outcome"] != tt.outcome || line["level"] != "warn" || line["error"] == nil {
				t.Errorf("log line %v; want level warn, outcome %s, an error", line, tt.outcome)
			}
		})
	}

	// A peer that closes before its first byte (a TCP health check).
	c, err := dialFrom(context.Background(), trustedPeer, in.addr)
	if err != nil {
		t.Fatal(err)
	}
	peer := c.LocalAddr().String()
	c.Close()
	line := in.logs.waitMessage(t, msgProxyRefused, map[string]any{"peer": peer})
	if line["outcome"] != proxyEmpty || line["level"] != "debug" {
		t.Errorf("log line %v; want level debug, outcome empty", line)
	}
	counts[proxyEmpty]++

	text := metricsText(t, in.admin)
	for _, o := range proxyOutcomes {
		series := `h2cgw_proxy_protocol_total{outcome="` + o + `"}`
		if got, want := metricValue(t, text, series), strconv.Itoa(counts[o]); got != want {
			t.Errorf("%s = %s; want %s", series, got, want)
		}
	}
}

// TestProxyProtocolOff: without the flag a header is not read: it is the
// start of an HTTP/1.1 request, and a bad one.
func TestProxyProtocolOff(t *testing.T) {
	t.Parallel()
	in := startRun(t)
	c, err := net.Dial("tcp", in.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitTimeout))
	io.WriteString(c, string(proxyHeader(t, 1, "192.0.2.60:1000"))+"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 400 ") {
		t.Errorf("answer %q; want a 400", b)
	}
}

func TestPrefixesValue(t *testing.T) {
	tests := []struct {
		in   string
		want string // String() after Set; "" for an error
	}{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/16", "10.1.0.0/16"},
		{"192.0.2.7", "192.0.2.7/32"},
		{" 10.0.0.0/8 , 2001:db8::/32,::1", "10.0.0.0/8,2001:db8::/32,::1/128"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"", ""},
		{"10.0.0.0/33", ""},
		{"example.com", ""},
		{"fe80::1%eth0", ""},
	}
	for _, tt := range tests {
		var p []netip.Prefix
		v := &prefixesValue{p: &p}
		err := v.Set(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("Set(%q) = nil, %q; want an error", tt.in, v.String())
		case tt.want != "" && err != nil:
			t.Errorf("Set(%q) = %v; want %q", tt.in, err, tt.want)
		case tt.want != "" && v.String() != tt.want:
			t.Errorf("Set(%q): %q; want %q", tt.in, v.String(), tt.want)
		}
	}
}

func TestProxyListenerTrust(t *testing.T) {
	l := &proxyListener{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}}
	for addr, want := range map[string]bool{
		"10.1.2.3:1":          true,
		"[::ffff:10.1.2.3]:1": true, // an IPv4 peer on a dual-stack listener
		"11.0.0.1:1":          false,
		"[2001:db8::5]:1":     true,
		"[2001:db9::5]:1":     false,
	} {
		a := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr))
		if got := l.isTrusted(a); got != want {
			t.Errorf("isTrusted(%s) = %v; want %v", addr, got, want)
		}
	}
	if l.isTrusted(&net.UnixAddr{Name: "/x", Net: "unix"}) {
		t.Error("a Unix socket peer is trusted; want not")
	}
}

// FuzzProxyConn: whatever a peer sends, trusted or not, detection ends (the
// peer closes after its bytes), and on a connection that is served nothing
// is lost: what the server reads after the header is the rest of what was
// sent, and all of it when there was no header.
func FuzzProxyConn(f *testing.F) {
	req := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, s := range []string{
		"PROXY TCP4 192.0.2.1 192.0.2.2 1000 8080\r\n" + req,
		"PROXY TCP6 2001:db8::1 2001:db8::2 1000 8080\r\n" + http2.ClientPreface,
		"PROXY UNKNOWN\r\n" + req,
		"PROXY TCP4 192.0.2.1",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x01\xc0\x00\x02\x02\x03\xe8\x1f\x90" + req,
		"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00" + req, // LOCAL
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff",
		req,
		http2.ClientPreface,
		"\r\n" + req,
		"",
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, trusted bool) {
		client, server := net.Pipe()
		go func() {
			client.Write(b)
			client.Close()
		}()
		defer server.Close()
		var outcome string
		pc := &proxyConn{
			Conn:    server,
			l:       &proxyListener{timeout: 5 * time.Second, log: zerolog.Nop(), count: func(o string) { outcome = o }},
			trusted: trusted,
			br:      bufio.NewReaderSize(server, proxyBufferSize),
		}
		start := time.Now()
		if pc.RemoteAddr() == nil {
			t.Fatal("RemoteAddr() = nil")
		}
		if took := time.Since(start); took > 4*time.Second {
			t.Fatalf("detection took %v on bytes the peer had closed after", took)
		}
		if pc.err != nil {
			if outcome == proxyOK || outcome == proxyDirect {
				t.Fatalf("outcome %s with error %v", outcome, pc.err)
			}
			if _, err := pc.Read(make([]byte, 1)); err == nil {
				t.Fatal("a refused connection still reads")
			}
			return
		}
		if outcome != proxyOK && outcome != proxyDirect {
			t.Fatalf("outcome %q, yet served", outcome)
		}
		if outcome == proxyDirect && trusted {
			t.Fatal("a trusted peer served without a header")
		}
		server.SetReadDeadline(time.Now().Add(5 * time.Second))
		rest, err := io.ReadAll(pc)
		if err != nil {
			t.Fatalf("reading the rest: %v", err)
		}
		if !bytes.HasSuffix(b, rest) {
			t.Fatalf("served %q; want a suffix of what was sent, %q", rest, b)
		}
		if outcome == proxyDirect && !bytes.Equal(rest, b) {
			t.Fatalf("no header, yet %d of %d bytes were lost", len(b)-len(rest), len(b))
		}
	})
}
