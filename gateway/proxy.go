package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ProxyConfig configures a [Proxy]. Every field's doc ends with what its zero
// value means; NewProxy does not keep or mutate the caller's struct.
type ProxyConfig struct {
	// Upstreams lists the servers requests are sent to, round robin:
	// "http://host:port" speaks HTTP/1.1 over pooled keep-alive connections,
	// "h2c://host:port" speaks HTTP/2 with prior knowledge (RFC 9113 §3.3),
	// many requests multiplexed on few connections, as gRPC backends expect.
	// A missing port means 80. At least one is required.
	Upstreams []string

	// Logger receives upstream failures (warn) and pool changes. The zero
	// value is silent.
	Logger zerolog.Logger

	// Timeout bounds the wait for an upstream's response headers, from the
	// end of sending the request; past it the client gets 504. Bodies are not
	// bounded: server-sent events and gRPC streams may last. Zero means 30s.
	Timeout time.Duration

	// DialTimeout bounds connecting to an upstream. Zero means 5s.
	DialTimeout time.Duration

	// MaxIdleConnsPerHost is how many idle keep-alive connections are kept
	// per HTTP/1.1 upstream. HTTP/2 clients bring hundreds of concurrent
	// streams, each an HTTP/1.1 request upstream; net/http's default of 2
	// would open and close a connection per request (PITFALLS 18). Zero means
	// 256.
	MaxIdleConnsPerHost int

	// FailTimeout is how long an upstream that refused a connection (or
	// could not be reached) is taken out of the pool before a request tries
	// it again. Zero means 10s.
	FailTimeout time.Duration

	// OnUpstreamError, if non-nil, is called once for every failed attempt
	// to get a response from an upstream, with the upstream's name and one
	// of the causes "refused", "timeout", "reset", "bad_response",
	// "unsolicited_101", "canceled" (the client went away first) or
	// "other". An attempt retried on another upstream is reported too. It
	// is called synchronously from many goroutines: it must be quick and
	// safe for concurrent use. Nil means failures are only logged.
	OnUpstreamError func(upstream, cause string)
}

const (
	defaultProxyTimeout        = 30 * time.Second
	defaultDialTimeout         = 5 * time.Second
	defaultMaxIdleConnsPerHost = 256
	defaultFailTimeout         = 10 * time.Second
	// idleConnTimeout closes upstream connections unused this long, as
	// net/http's DefaultTransport does.
	idleConnTimeout = 90 * time.Second
	// h2cPingTimeout: an h2c upstream connection silent this long is pinged,
	// and closed if the ping goes unanswered as long again, so that a dead
	// upstream (half-open TCP) does not hold its streams until the kernel
	// gives up on it.
	h2cPingTimeout = 15 * time.Second
	// h2cStreamBuffer bounds what is buffered per stream from an h2c
	// upstream (its flow-control window).
	h2cStreamBuffer = 1 << 20
)

// Proxy is the reverse proxy of gateway mode (SPEC §5): an http.Handler that
// forwards every request to a pool of upstreams, HTTP/1.1 or h2c, whatever
// protocol the request arrived on.
//
// It is built on net/http/httputil.ReverseProxy and adds what an h2c edge
// needs: an h2c upgrade is never carried to an upstream (Upgrade,
// HTTP2-Settings, Connection and every hop-by-hop field are removed whether
// or not the client listed them in Connection), WebSocket upgrades on
// HTTP/1.1 are tunnelled to HTTP/1.1 upstreams, an upstream's unsolicited 101
// is answered 502, X-Forwarded-For/-Proto/-Host and Via are set, bodies
// stream both ways and responses are flushed as they arrive, trailers pass
// (gRPC status). Failures give 502 or 504 with a short plain-text body, a log
// line naming upstream and cause, and a call to OnUpstreamError.
//
// Build one with [NewProxy]; it is safe for concurrent use.
type Proxy struct {
	rp      httputil.ReverseProxy
	pool    *pool
	h1      *http.Transport // HTTP/1.1 upstreams
	h2c     *http.Transport // h2c upstreams: unencrypted HTTP/2 only
	dialer  net.Dialer
	log     zerolog.Logger
	onError func(upstream, cause string)
	names   []string
	tunnels tunnels
}

// NewProxy returns a Proxy for cfg. It fails when cfg lists no upstream, when
// an upstream is not an http:// or h2c:// URL of a host (and port), when one
// is listed twice, or when a duration is negative; the error says which.
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("gateway: no upstream")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Timeout", cfg.Timeout}, {"DialTimeout", cfg.DialTimeout}, {"FailTimeout", cfg.FailTimeout}} {
		if d.v < 0 {
			return nil, fmt.Errorf("gateway: ProxyConfig.%s is negative (%v)", d.name, d.v)
		}
	}
	if cfg.MaxIdleConnsPerHost < 0 {
		return nil, fmt.Errorf("gateway: ProxyConfig.MaxIdleConnsPerHost is negative (%d)", cfg.MaxIdleConnsPerHost)
	}

	p := &Proxy{log: cfg.Logger, onError: cfg.OnUpstreamError}
	p.dialer = net.Dialer{Timeout: orDuration(cfg.DialTimeout, defaultDialTimeout)}
	timeout := orDuration(cfg.Timeout, defaultProxyTimeout)
	maxIdle := cfg.MaxIdleConnsPerHost
	if maxIdle == 0 {
		maxIdle = defaultMaxIdleConnsPerHost
	}

	var h1 http.Protocols
	h1.SetHTTP1(true)
	p.h1 = &http.Transport{
		// No Proxy: the environment's HTTP_PROXY must not divert upstream
		// traffic.
		DialContext:         p.dial,
		Protocols:           &h1,
		ForceAttemptHTTP2:   false,
		MaxIdleConnsPerHost: maxIdle,
		IdleConnTimeout:     idleConnTimeout,
		// What an upstream compressed reaches the client compressed, with
		// its Content-Encoding; nothing is decoded on the way.
		DisableCompression:    true,
		ResponseHeaderTimeout: timeout,
	}

	// h2c upstreams go through net/http's own HTTP/2 client (Go ≥ 1.24:
	// Protocols with UnencryptedHTTP2 alone means prior knowledge for
	// http:// URLs) rather than x/net's http2.Transport, which is deprecated
	// since x/net v0.62 in favour of it, and which has no response header
	// timeout of its own (its ClientConn reads ResponseHeaderTimeout from a
	// linked http.Transport only). One connection carries many streams; a
	// second opens only when the upstream's SETTINGS_MAX_CONCURRENT_STREAMS
	// is reached.
	var h2 http.Protocols
	h2.SetUnencryptedHTTP2(true)
	p.h2c = &http.Transport{
		DialContext: p.dial,
		Protocols:   &h2,
		// HTTP/2 connections stay in net/http's idle list while they
		// carry streams; the cap must not drop the extra connections
		// opened past the upstream's stream limit.
		MaxIdleConnsPerHost:   maxIdle,
		IdleConnTimeout:       idleConnTimeout,
		DisableCompression:    true,
		ResponseHeaderTimeout: timeout,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: h2cPingTimeout,
			PingTimeout:     h2cPingTimeout,
			// What an upstream may send ahead of a slow client, per
			// stream: the gateway's own default stream window, rather
			// than net/http's 4 MiB.
			MaxReceiveBufferPerStream: h2cStreamBuffer,
		},
	}

	ups := make([]*upstream, 0, len(cfg.Upstreams))
	for _, s := range cfg.Upstreams {
		name, host, h2c, err := parseUpstream(s)
		if err != nil {
			return nil, err
		}
		for _, u := range ups {
			if u.host == host {
				return nil, fmt.Errorf("gateway: upstream %q: %s is listed twice", s, host)
			}
		}
		u := &upstream{name: name, host: host, h2c: h2c, rt: p.h1}
		if h2c {
			u.rt = p.h2c
		}
		ups = append(ups, u)
		p.names = append(p.names, name)
	}
	p.pool = newPool(ups, orDuration(cfg.FailTimeout, defaultFailTimeout))

	p.rp = httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      roundTripFunc(p.roundTrip),
		FlushInterval:  -1, // flush every write: server-sent events, gRPC streams
		ErrorLog:       newErrorLog(p.log),
		BufferPool:     &copyBuffers,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.handleError,
	}
	return p, nil
}

// ServeHTTP forwards r to an upstream and copies the response back.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		// A reverse proxy is no tunnel to arbitrary hosts; forwarded, a
		// CONNECT would open one to the upstream itself (RFC 9110 §9.3.6).
		http.Error(w, "501 Not Implemented: CONNECT is not served", http.StatusNotImplemented)
		return
	case !validUpgradeValue(r.Header):
		// ReverseProxy refuses an Upgrade it cannot print before any hook
		// runs, and would report it as an upstream failure (502); it is the
		// client's fault.
		http.Error(w, "400 Bad Request: malformed Upgrade field", http.StatusBadRequest)
		return
	}
	if wantsWebSocket(r) && p.pool.hasH1 {
		// Track the connection ReverseProxy will hijack for the tunnel, so
		// that Close can end it (net/http's Shutdown does not).
		w = &tunnelWriter{ResponseWriter: w, t: &p.tunnels}
	}
	p.rp.ServeHTTP(w, r)
}

// rewrite picks the upstream and shapes the outgoing request. ReverseProxy
// calls it after its own hop-by-hop pass and after it has re-added
// "Connection: Upgrade" and the client's Upgrade for any upgrade request
// (golang/go#80416): what rewrite leaves is what the upstream gets.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	ws := wantsWebSocket(in)
	u := p.pool.pick(ws)
	forwardHeader(out.Header, ws && !u.h2c)
	out.URL.Scheme = "http" // h2c too: the transport speaks HTTP/2 to http:// URLs
	out.URL.Host = u.host
	// Credentials in an absolute-form target would become an Authorization
	// field sent upstream.
	out.URL.User = nil
	out.Host = in.Host
	setForwarded(in, out.Header)
	if n := NoteFromContext(in.Context()); n != nil {
		n.Upstream = u.name
	}
}

// modifyResponse refuses an upstream's 101 that does not complete the
// WebSocket tunnel the request asked for, and adds Via to the response.
func (p *Proxy) modifyResponse(res *http.Response) error {
	if res.StatusCode == http.StatusSwitchingProtocols && !tunnelAccepted(res) {
		// An upstream switching protocols unasked (a lenient h2c server,
		// say) would get a raw tunnel to the client: refused, and the
		// connection, which ReverseProxy closes with the 101's body, is
		// dropped. Checked here rather than left to ReverseProxy: for a
		// 101 whose Upgrade does not match the request's, it reports an
		// error without closing the upstream connection.
		var u *upstream
		if res.Request != nil {
			u = p.pool.lookup(res.Request.URL.Host)
		}
		return &upstreamError{up: u, err: errUnsolicited101}
	}
	addVia(res.Header, res.ProtoMajor, res.ProtoMinor)
	if res.StatusCode != http.StatusSwitchingProtocols &&
		res.Body != nil && res.Body != http.NoBody && res.Request != nil {
		// ReverseProxy aborts a response whose body fails midway
		// (http.ErrAbortHandler) without calling ErrorHandler: the
		// failure is reported from the body. A tunnel's body is the
		// upstream connection, which ReverseProxy needs as it is.
		res.Body = &watchedBody{ReadCloser: res.Body, p: p, req: res.Request}
	}
	return nil
}

// Ready reports whether at least one upstream is in service (not taken out
// after a failed connect), for a readiness probe.
func (p *Proxy) Ready() bool { return p.pool.ready() }

// Close closes the idle upstream connections and the WebSocket tunnels open
// at the time. It does not stop the Proxy: a later request opens new
// connections. Call it once the server in front has shut down.
func (p *Proxy) Close() {
	p.h1.CloseIdleConnections()
	p.h2c.CloseIdleConnections()
	p.tunnels.closeAll()
}

// Upstreams returns the upstreams' names, normalised with their ports
// ("http://127.0.0.1:8081"), in the configured order: the names logs, the
// access log's Note and OnUpstreamError use.
func (p *Proxy) Upstreams() []string { return slices.Clone(p.names) }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// copyBufferSize is ReverseProxy's own buffer size for copying a response.
const copyBufferSize = 32 << 10

// copyBuffers lends ReverseProxy its response copy buffers, which it would
// otherwise allocate (32 KiB) for every request. The pool holds array
// pointers, which an interface stores without allocating.
var copyBuffers bufferPool

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if a, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return a[:]
	}
	return new([copyBufferSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) < copyBufferSize {
		return
	}
	b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
}
