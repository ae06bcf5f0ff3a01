package gateway

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"

	"github.com/h2cgw/h2cgw/internal/errlog"
	"github.com/rs/zerolog"
	"golang.org/x/net/http2"
	"golang.org/x/net/netutil"
)

// Gateway serves HTTP/1.1, h2c upgrades and HTTP/2 with prior knowledge on
// one cleartext listener, in front of one http.Handler.
//
// Build one with [New] (the gateway owns its http.Server) or [Configure] (the
// caller's own http.Server). Either way, stop it with [Gateway.Shutdown],
// which also drains upgraded connections.
type Gateway struct {
	cfg  Config
	next http.Handler
	hs   *http.Server
	h2   *http2.Server
	log  zerolog.Logger

	conns tracker
	// budget is the memory budget (budget.go); refuseToken marks the
	// streams the guard refused (frameguard.go).
	budget      *budget
	refuseToken string
	// infos maps each open, not hijacked connection to its connInfo, so
	// ConnState can report its end with its entry path.
	infos sync.Map // net.Conn → *connInfo
}

// New returns a Gateway serving h, with an http.Server built from cfg's
// timeouts and limits. Serve it with [Gateway.Serve].
func New(h http.Handler, cfg Config) *Gateway {
	hs := &http.Server{
		Handler: h,
		// A slow or stalled request head — or a stall inside the
		// prior-knowledge preface, which net/http reads under the same
		// deadline — must not hold a connection forever.
		ReadHeaderTimeout: cfg.readHeaderTimeout(),
		// No ReadTimeout or WriteTimeout: they would cut long uploads,
		// server-sent events and gRPC streams. A request body that stalls
		// is therefore held until the client goes (SECURITY.md); HTTP/2
		// flow control bounds what it can buffer, and MaxConnections and
		// MaxConcurrentStreams how many such requests there can be.
		IdleTimeout:    cfg.idleTimeout(),
		MaxHeaderBytes: cfg.maxHeaderBytes(),
	}
	g, err := Configure(hs, cfg)
	if err != nil {
		// Configure fails only for a server already configured for HTTP/2,
		// which the one built here is not.
		panic(err)
	}
	return g
}

// Configure makes the caller's hs serve h2c: its Handler is wrapped so that
// h2c upgrades and HTTP/2 with prior knowledge (unless disabled) are served
// and upgrade signals on HTTP/2 rejected, net/http's own prior-knowledge
// path is switched off in hs.Protocols (the gateway serves it), and the
// HTTP/2 server is attached (http2.ConfigureServer) so that hs.Shutdown
// sends GOAWAY. It is a
// superset of x/net's deprecated h2c.NewHandler: call it once, before serving,
// and stop with the returned Gateway's Shutdown rather than hs.Shutdown, so
// that upgraded connections are drained too.
//
// Configure keeps hs's timeouts and limits. hs.HTTP2 is replaced by a copy
// whose zero fields among MaxConcurrentStreams, MaxReadFrameSize and the two
// receive buffers take cfg's values (so MaxReadFrameSize defaults to 16384),
// and whose CountError also reports to the gateway. A nil hs.Handler serves
// http.DefaultServeMux.
func Configure(hs *http.Server, cfg Config) (*Gateway, error) {
	if hs.TLSNextProto != nil {
		if _, ok := hs.TLSNextProto[http2.NextProtoTLS]; ok {
			return nil, errors.New("gateway: http.Server already configured for HTTP/2")
		}
	}
	next := hs.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	g := &Gateway{cfg: cfg, next: next, hs: hs, log: cfg.Logger, refuseToken: newRefuseToken()}
	g.budget = newBudget(cfg.memoryBudget(), g.overload)
	// The HTTP/2 limits go through net/http's documented HTTP2Config, which
	// both HTTP/2 implementations read (x/net config.go; net/http
	// http2.go, mergeHTTP2Config): the caller's non-zero values win.
	hs.HTTP2 = g.http2Config(hs.HTTP2)
	g.h2 = &http2.Server{}
	if err := http2.ConfigureServer(hs, g.h2); err != nil {
		return nil, err
	}
	// net/http answers "OPTIONS *" itself unless told not to, and
	// "nghttp -u" upgrades with exactly that request (http.Server.DisableGeneralOptionsHandler).
	hs.DisableGeneralOptionsHandler = true
	leaveHeaderCountToGateway(hs)

	// Prior knowledge is the gateway's own (priorknowledge.go): net/http's
	// HTTP/1.1 parser hands the preface's "PRI * HTTP/2.0" to the handler,
	// which is then the only way in for cleartext HTTP/2, whichever the
	// toolchain. net/http's own prior-knowledge path stays off. HTTP/2 over
	// TLS stays as the caller had it.
	var p http.Protocols
	if hs.Protocols != nil {
		p = *hs.Protocols
	} else {
		p.SetHTTP1(true)
		p.SetHTTP2(true)
	}
	p.SetUnencryptedHTTP2(false)
	hs.Protocols = &p

	if hs.ErrorLog == nil {
		hs.ErrorLog = errlog.New(g.log)
	}
	userConnContext := hs.ConnContext
	hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if userConnContext != nil {
			ctx = userConnContext(ctx, c)
		}
		ci := &connInfo{conn: c, g: g}
		g.infos.Store(c, ci)
		return context.WithValue(ctx, connInfoKey{}, ci)
	}
	userConnState := hs.ConnState
	hs.ConnState = func(c net.Conn, s http.ConnState) {
		if _, ok := c.(probeConn); ok {
			return // AdvertisedSettings' own connection
		}
		if userConnState != nil {
			userConnState(c, s)
		}
		g.connState(c, s)
	}
	hs.Handler = http.HandlerFunc(g.serveHTTP)
	return g, nil
}

// http2Config returns a copy of the caller's HTTP2Config (nil for none)
// with the zero fields the gateway sets filled from its Config, and
// CountError reporting to the gateway as well as to the caller's hook.
func (g *Gateway) http2Config(user *http.HTTP2Config) *http.HTTP2Config {
	var c http.HTTP2Config
	if user != nil {
		c = *user
	}
	c.MaxConcurrentStreams = cmp.Or(c.MaxConcurrentStreams, int(g.cfg.maxConcurrentStreams()))
	c.MaxReadFrameSize = cmp.Or(c.MaxReadFrameSize, int(g.cfg.maxReadFrameSize()))
	c.MaxReceiveBufferPerStream = cmp.Or(c.MaxReceiveBufferPerStream, int(g.cfg.streamWindow()))
	c.MaxReceiveBufferPerConnection = cmp.Or(c.MaxReceiveBufferPerConnection, int(g.cfg.connWindow()))
	userCount := c.CountError
	c.CountError = func(errType string) {
		if userCount != nil {
			userCount(errType)
		}
		g.countHTTP2Error(errType)
	}
	return &c
}

// HTTPServer returns the http.Server the gateway serves with. Its fields must
// not be changed once serving has begun.
func (g *Gateway) HTTPServer() *http.Server { return g.hs }

// HTTP2Server returns the x/net server that serves every HTTP/2 connection
// (on Go 1.27 and later, a wrapper of the http.Server's own).
// Its fields must not be changed once serving has begun.
func (g *Gateway) HTTP2Server() *http2.Server { return g.h2 }

// Serve accepts connections on l until [Gateway.Shutdown] or [Gateway.Close].
// Like http.Server.Serve it returns http.ErrServerClosed after a shutdown.
func (g *Gateway) Serve(l net.Listener) error {
	if n := g.cfg.MaxConnections; n > 0 {
		// The cap counts a connection until it is closed, whoever
		// closes it: net/http, the HTTP/2 server, or the gateway after a hijack.
		l = netutil.LimitListener(l, n)
	}
	if g.budget.limit > 0 {
		l = &budgetListener{Listener: l, g: g, closed: make(chan struct{})}
	}
	return g.hs.Serve(l)
}

// connState reports connection ends. Openings are reported at the first
// request, when the entry path is known: net/http does not call ConnState
// when it hands a prior-knowledge connection to HTTP/2. A hijacked
// connection ends its HTTP/1.1 life here; an upgraded one is reported again
// by the upgrade.
func (g *Gateway) connState(c net.Conn, s http.ConnState) {
	if s != http.StateClosed && s != http.StateHijacked {
		return
	}
	v, ok := g.infos.LoadAndDelete(c)
	if !ok {
		return
	}
	if p := v.(*connInfo).entryPath(); p != "" {
		g.emit(Event{Kind: EventConnClose, Path: p})
	}
}

func (g *Gateway) countHTTP2Error(errType string) {
	g.log.Debug().Str("reason", errType).Msg("http2 error")
	g.emit(Event{Kind: EventHTTP2Error, Reason: Reason(errType)})
}
