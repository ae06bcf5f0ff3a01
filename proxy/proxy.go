package proxy

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/h2cgw/h2cgw/internal/errlog"
	"github.com/h2cgw/h2cgw/internal/readahead"
	"github.com/rs/zerolog"
)

// Config configures a [Proxy]. Every field's doc ends with what its zero
// value means; New does not keep or mutate the caller's struct.
type Config struct {
	// Upstreams lists the servers requests are sent to, round robin:
	// "http://host:port" speaks HTTP/1.1 over pooled keep-alive connections,
	// "h2c://host:port" speaks HTTP/2 with prior knowledge (RFC 9113 §3.3),
	// many requests multiplexed on few connections, as gRPC backends expect,
	// and "https://host:port" speaks TLS, then HTTP/2 or HTTP/1.1 as ALPN
	// settles (RFC 9113 §3.2). A missing port means 80 (443 for https). No
	// URL may carry credentials (user:password@). At least one is required.
	Upstreams []string

	// TLSConfig configures the TLS client of https:// upstreams: the roots
	// to verify them with (RootCAs), the name their certificates must carry
	// (ServerName), a client certificate. The proxy uses a clone and sets
	// NextProtos itself. Nil means the system's roots and each upstream's
	// host name.
	TLSConfig *tls.Config

	// Logger receives upstream failures (warn) and pool changes. The zero
	// value is silent.
	Logger zerolog.Logger

	// Timeout bounds the wait for an upstream's response headers, from the
	// end of sending the request; past it the client gets 504. Bodies are not
	// bounded: server-sent events and gRPC streams may last. Zero means 30s.
	Timeout time.Duration

	// DialTimeout bounds connecting to an upstream. Zero means 5s.
	DialTimeout time.Duration

	// DialRate bounds the new upstream connections per second, all
	// upstreams together, with bursts of as many: a client that cancels
	// requests (each cancel costs an HTTP/1.1 connection its life) cannot
	// turn its resets into a connection storm against the upstreams
	// (README "Security"). A request waiting to dial gives up when its
	// client does. Zero means DefaultDialRate; NoDialRate (any negative
	// value) means no bound.
	DialRate float64

	// MaxConnsPerHost caps the connections open to each HTTP/1.1 upstream,
	// which carry one request at a time. HTTP/2 clients bring hundreds of
	// concurrent streams each: past the cap, a request waits for a
	// connection to come free rather than dialling one that the idle pool
	// would close a moment later, and the client gets 504 if none has come
	// free within Timeout. WebSocket tunnels do not count. h2c upstreams
	// are not capped: their connections carry many streams each. Zero means
	// 512.
	MaxConnsPerHost int

	// MaxIdleConnsPerHost is how many idle keep-alive connections are kept
	// per HTTP/1.1 upstream. net/http's default of 2 would open and close a
	// connection per request (http.DefaultMaxIdleConnsPerHost is 2). Zero means MaxConnsPerHost (or
	// its default), so that a steady load keeps every connection it opened.
	// h2c connections stay open until unused for 90s.
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

	// OnUpstreamResponse, if non-nil, is called once for every response
	// an upstream sends, with the upstream's name and the time from
	// sending the request to the response headers. Like OnUpstreamError it
	// must be quick and safe for concurrent use. Nil means no call.
	OnUpstreamResponse func(upstream string, d time.Duration)
}

// The values a zero Config field stands for. The binary's flags take their
// defaults from here.
const (
	DefaultTimeout         = 30 * time.Second
	DefaultDialTimeout     = 5 * time.Second
	DefaultMaxConnsPerHost = 512
	DefaultFailTimeout     = 10 * time.Second
	DefaultDialRate        = 256
)

// NoDialRate, as Config.DialRate, lifts the bound on new upstream
// connections.
const NoDialRate = -1

const (
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

// Proxy is the reverse proxy of gateway mode (README "Gateway mode"): an http.Handler that
// forwards every request to a pool of upstreams, HTTP/1.1, h2c or TLS,
// whatever protocol the request arrived on.
//
// It is built on net/http/httputil.ReverseProxy and adds what an h2c edge
// needs: an h2c upgrade is never carried to an upstream (Upgrade,
// HTTP2-Settings, Connection and every hop-by-hop field are removed whether
// or not the client listed them in Connection), WebSocket upgrades on
// HTTP/1.1 are tunnelled to HTTP/1.1 upstreams, an upstream's unsolicited 101
// is answered 502, X-Forwarded-For/-Proto/-Host and Via are set, bodies
// stream both ways, streamed responses (server-sent events, bodies without a
// Content-Length such as gRPC's) are flushed as they arrive, trailers pass
// (gRPC status). Failures give 502 or 504 with a short plain-text body, a log
// line naming upstream and cause, and a call to OnUpstreamError.
//
// Build one with [New]; it is safe for concurrent use.
type Proxy struct {
	rp      httputil.ReverseProxy
	pool    *pool
	h1      *http.Transport // HTTP/1.1 upstreams
	h2c     *h2cPool        // h2c upstreams: HTTP/2 with prior knowledge
	tls     *http.Transport // https:// upstreams; nil without one
	dialer  net.Dialer
	dials   *dialLimiter // nil: no bound
	log     zerolog.Logger
	timeout time.Duration // Config.Timeout, resolved
	onError func(upstream, cause string)
	// onResponse is Config.OnUpstreamResponse.
	onResponse func(upstream string, d time.Duration)
	names      []string

	// ready caches the last readiness answer; readyMu lets one probe run
	// at a time.
	ready   atomic.Pointer[readyState]
	readyMu sync.Mutex
}

// New returns a Proxy for cfg. It fails when cfg lists no upstream, when
// an upstream is not an http:// or h2c:// URL of a host (and port), when one
// is listed twice, or when a duration is negative; the error says which.
func New(cfg Config) (*Proxy, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("proxy: no upstream")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Timeout", cfg.Timeout}, {"DialTimeout", cfg.DialTimeout}, {"FailTimeout", cfg.FailTimeout}} {
		if d.v < 0 {
			return nil, fmt.Errorf("proxy: Config.%s is negative (%v)", d.name, d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"MaxConnsPerHost", cfg.MaxConnsPerHost}, {"MaxIdleConnsPerHost", cfg.MaxIdleConnsPerHost}} {
		if n.v < 0 {
			return nil, fmt.Errorf("proxy: Config.%s is negative (%d)", n.name, n.v)
		}
	}

	p := &Proxy{log: cfg.Logger, onError: cfg.OnUpstreamError, onResponse: cfg.OnUpstreamResponse}
	p.dialer = net.Dialer{Timeout: cmp.Or(cfg.DialTimeout, DefaultDialTimeout)}
	if rate := cmp.Or(cfg.DialRate, DefaultDialRate); rate > 0 {
		p.dials = newDialLimiter(rate)
	}
	timeout := cmp.Or(cfg.Timeout, DefaultTimeout)
	p.timeout = timeout
	maxConns := cfg.MaxConnsPerHost
	if maxConns == 0 {
		maxConns = DefaultMaxConnsPerHost
	}
	maxIdle := cfg.MaxIdleConnsPerHost
	if maxIdle == 0 {
		maxIdle = maxConns
	}

	var h1 http.Protocols
	h1.SetHTTP1(true)
	p.h1 = &http.Transport{
		// No Proxy: the environment's HTTP_PROXY must not divert upstream
		// traffic.
		DialContext:       p.dial,
		Protocols:         &h1,
		ForceAttemptHTTP2: false,
		// The transport's own cap is the same as the upstreams' slots
		// (upstream.acquire): a request that got a slot the moment
		// another released it waits for that request's connection to
		// go back to the idle pool instead of dialling.
		MaxConnsPerHost:     maxConns,
		MaxIdleConnsPerHost: maxIdle,
		IdleConnTimeout:     idleConnTimeout,
		// What an upstream compressed reaches the client compressed, with
		// its Content-Encoding; nothing is decoded on the way.
		DisableCompression:    true,
		ResponseHeaderTimeout: timeout,
	}

	// h2c upstreams go through a pool of the gateway's own (h2cpool.go)
	// of net/http client connections: many streams on each, one more
	// connection only when every open one is at the upstream's stream
	// limit. net/http's Transport alone keeps HTTP/2 connections with
	// prior knowledge in its HTTP/1.1 idle list and drops one from it when
	// it is full; every request that then finds the list empty dials a
	// connection that its HTTP/2 pool closes at once as not needed.
	var h2cProtos http.Protocols
	h2cProtos.SetUnencryptedHTTP2(true)
	p.h2c = newH2CPool(&http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := p.dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The client reads frames as the server does, in two calls
			// each: one read(2) per burst of responses instead.
			return readahead.New(c), nil
		},
		Protocols:             &h2cProtos,
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
	})

	ups := make([]*upstream, 0, len(cfg.Upstreams))
	for _, s := range cfg.Upstreams {
		name, host, scheme, err := parseUpstream(s)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		for _, u := range ups {
			if u.host == host {
				return nil, fmt.Errorf("proxy: upstream %q: %s is listed twice", s, host)
			}
		}
		u := &upstream{name: name, host: host, h2c: scheme == "h2c", tls: scheme == "https", rt: p.h1}
		switch {
		case u.h2c:
			u.rt = p.h2c
		case u.tls:
			if p.tls == nil {
				p.tls = p.newTLSTransport(cfg.TLSConfig, maxConns, maxIdle)
			}
			u.rt = p.tls
		}
		if !u.h2c {
			// HTTP/1.1 carries one request per connection; over TLS
			// the upstream may speak either.
			u.slots = make(chan struct{}, maxConns)
		}
		ups = append(ups, u)
		p.names = append(p.names, name)
	}
	p.pool = newPool(ups, cmp.Or(cfg.FailTimeout, DefaultFailTimeout))

	p.rp = httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: roundTripFunc(p.roundTrip),
		// No periodic flush: ReverseProxy flushes every write by itself
		// for server-sent events and for bodies of unknown length (gRPC,
		// chunked streams); a body with a Content-Length goes through
		// the HTTP/2 writer's buffer. -1 would flush each write of every
		// response: an extra DATA frame and write syscall per response
		// and a timer goroutine per request.
		FlushInterval:  0,
		ErrorLog:       errlog.New(p.log),
		BufferPool:     &copyBuffers,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.handleError,
	}
	return p, nil
}

// newTLSTransport returns the transport of https:// upstreams: net/http's,
// which offers h2 and http/1.1 by ALPN and keeps the HTTP/2 connections it
// negotiated in a pool of their own (RFC 9113 §3.2). A request that
// switches protocols (a WebSocket) asks for http/1.1 only.
func (p *Proxy) newTLSTransport(tc *tls.Config, maxConns, maxIdle int) *http.Transport {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	if tc != nil {
		tc = tc.Clone()
	}
	return &http.Transport{
		DialContext:           p.dial,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   p.dialer.Timeout,
		Protocols:             &protos,
		MaxConnsPerHost:       maxConns,
		MaxIdleConnsPerHost:   maxIdle,
		IdleConnTimeout:       idleConnTimeout,
		DisableCompression:    true,
		ResponseHeaderTimeout: p.timeout,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout:           h2cPingTimeout,
			PingTimeout:               h2cPingTimeout,
			MaxReceiveBufferPerStream: h2cStreamBuffer,
		},
	}
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
		// The connection ReverseProxy will hijack for the tunnel joins
		// the Gateway's shutdown registry.
		w = &tunnelWriter{ResponseWriter: w, r: r}
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				// The upstream's body failed midway: ReverseProxy
				// aborts the response. What it copied may still sit in
				// the writer's buffer (no flush per write): send it, so
				// that the client sees the response cut short rather
				// than no response at all.
				_ = http.NewResponseController(w).Flush()
			}
			panic(v)
		}
	}()
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
	if u.tls {
		out.URL.Scheme = "https"
	}
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
	return nil
}

// Ready reports whether at least one upstream accepts connections, for a
// readiness probe (README "Metrics, health"). It dials the upstreams in turn until one
// answers, rather than trusting the passive health of the pool alone, which
// learns of a dead upstream only from a failed request; one that does not
// answer is taken out of the pool as after a failed request, one that does
// is put back. The answer is reused for readyTTL, so that many probers cost
// one dial.
func (p *Proxy) Ready() bool {
	if s := p.ready.Load(); s != nil && time.Since(s.at) < readyTTL {
		return s.ok
	}
	p.readyMu.Lock()
	defer p.readyMu.Unlock()
	if s := p.ready.Load(); s != nil && time.Since(s.at) < readyTTL {
		return s.ok
	}
	ok := p.probe()
	p.ready.Store(&readyState{at: time.Now(), ok: ok})
	return ok
}

const (
	// readyTTL is how long a readiness answer is reused.
	readyTTL = time.Second
	// probeTimeout bounds one readiness dial.
	probeTimeout = time.Second
)

// readyState is the last readiness answer and when it was found.
type readyState struct {
	at time.Time
	ok bool
}

func (p *Proxy) probe() bool {
	for _, u := range p.pool.ups {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		c, err := p.dialer.DialContext(ctx, "tcp", u.host)
		cancel()
		if err != nil {
			if p.pool.takeOut(u) {
				p.log.Warn().Str("upstream", u.name).Err(err).Msg("upstream taken out: readiness dial failed")
			}
			continue
		}
		c.Close()
		// It accepts new connections, which is what being in service
		// means.
		u.downUntil.Store(0)
		return true
	}
	return false
}

// Close closes the idle upstream connections. It does not stop the Proxy:
// a later request opens new connections. Call it once the server in front
// has shut down. WebSocket tunnels are the Gateway's to end: its Shutdown
// waits for them and closes what is left (gateway.Hijack).
func (p *Proxy) Close() {
	p.h1.CloseIdleConnections()
	p.h2c.CloseIdleConnections()
	if p.tls != nil {
		p.tls.CloseIdleConnections()
	}
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
