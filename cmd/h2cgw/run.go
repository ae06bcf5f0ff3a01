package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/h2cgw/h2cgw/gateway"
	"github.com/h2cgw/h2cgw/internal/echo"
	"github.com/h2cgw/h2cgw/internal/toolchain"
	"github.com/h2cgw/h2cgw/proxy"
	"github.com/rs/zerolog"
)

// run is the whole process, testable: it parses args (and the environment
// twins), serves until ctx ends, then shuts down gracefully. It reports its
// own errors, on stderr, before returning them; the caller only maps them to
// an exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "healthcheck" {
		err := healthcheck(ctx, args[1:], stdout)
		if err != nil {
			fmt.Fprintln(stderr, err)
		}
		return err
	}
	if err := checkEnviron(os.Environ()); err != nil {
		fmt.Fprintf(stderr, "h2cgw: %v\n", err)
		return err
	}
	c, err := parseFlags(args, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "h2cgw: %v\n", err)
		return err
	}
	switch {
	case c.Help:
		printUsage(stdout)
		return nil
	case c.Version:
		fmt.Fprintf(stdout, "h2cgw %s (%s)\n", version, runtime.Version())
		return nil
	}
	log, levels := newLogger(c, stderr)
	load := func() (config, error) { return parseFlags(args, os.LookupEnv) }
	return serve(ctx, c, load, log, levels, stderr)
}

// serve builds the handler chain and the gateway, listens, and runs until
// ctx ends. load reads the configuration again for a reload (SIGHUP, POST
// /reload).
func serve(ctx context.Context, c config, load func() (config, error), log zerolog.Logger, levels *levelFilter, logOut io.Writer) error {
	lim := startupLimits(c)
	m := newMetrics(version)
	rd := &readiness{}
	st, err := newLive(c, load, log, levels, m)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return err
	}
	rd.upstreamsUp = st.upstreamsUp

	// The chain every stream passes through, inside the gateway (every
	// stream of an upgraded connection too, stream 1 included): access
	// log, metrics, then the proxy or the echo. The access log is switched
	// per request, so that a reload can turn it on or off. Access lines
	// are written in batches (accesslog.go), not with a write(2) per
	// request.
	alog, stopAccess := newAccessLogger(c, logOut)
	defer stopAccess()
	inner := m.middleware(st.target(echo.Handler(nil)))
	logged := accessLog(alog, &st.accessQuery, inner)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st.accessOn.Load() {
			logged.ServeHTTP(w, r)
			return
		}
		inner.ServeHTTP(w, r)
	})
	// answered logs the responses the gateway writes itself.
	answered := func(e gateway.Event) {
		if st.accessOn.Load() {
			logAnswered(alog, &st.accessQuery, e)
		}
	}

	g := gateway.New(h, gateway.Config{
		Logger: log,
		OnEvent: func(e gateway.Event) {
			m.onEvent(e)
			if e.Request != nil {
				answered(e)
			}
		},
		DisableUpgrade:        c.NoUpgrade,
		DisablePriorKnowledge: c.NoPriorKnowledge,
		MaxUpgradeBody:        c.MaxUpgradeBody,
		PrefaceTimeout:        c.PrefaceTimeout,
		UpgradeBodyTimeout:    c.UpgradeBodyTimeout,
		ReadHeaderTimeout:     c.ReadHeaderTimeout,
		IdleTimeout:           c.IdleTimeout,
		MaxHeaderBytes:        int(c.MaxHeaderBytes),
		MaxConcurrentStreams:  c.MaxConcurrentStreams,
		MaxConnections:        lim.maxConns,
		MemoryBudget:          c.MemoryBudget,
		MaxHeaderFields:       c.MaxHeaderFields,
		GlitchLimit:           cmp.Or(c.GlitchLimit, gateway.NoGlitchLimit),
		GlitchWindow:          c.GlitchWindow,
	})
	m.watchMemory(g)

	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		log.Error().Err(err).Str("listen", c.Listen).Msg("cannot listen")
		return err
	}
	if c.ProxyProtocol {
		// Wrapped before the gateway sees it: net/http's prior-knowledge
		// peek and the upgrade's hijack then read after the header.
		ln = &proxyListener{
			Listener: ln,
			trusted:  c.ProxyProtocolTrusted,
			timeout:  c.ReadHeaderTimeout,
			log:      log,
			count:    m.proxyOutcome,
		}
	}
	var (
		adminLn   net.Listener
		adminAddr string
		admin     *http.Server
	)
	if c.AdminListen != "" {
		adminLn, err = net.Listen("tcp", c.AdminListen)
		if err != nil {
			ln.Close()
			log.Error().Err(err).Str("admin", c.AdminListen).Msg("cannot listen")
			return err
		}
		adminAddr = adminLn.Addr().String()
		admin = newAdminServer(adminHandler(m.reg, rd, log, adminOptions{reload: st.reload, pprof: c.AdminPprof}), log)
	}
	mode, upstreams := st.mode()
	logStartup(ctx, log, c, lim, g, ln.Addr().String(), adminAddr, mode, upstreams)

	// SIGHUP reloads the configuration (reload.go), as systemctl reload
	// sends it; its default action would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				st.reload("SIGHUP")
			case <-ctx.Done():
				return
			}
		}
	}()

	// Each server's Serve returns when it is shut down or its listener
	// fails; serve waits for both before it returns.
	served := make(chan error, 2)
	servers := 1
	go func() { served <- g.Serve(ln) }()
	if admin != nil {
		servers++
		go func() { served <- admin.Serve(adminLn) }()
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		servers--
		log.Error().Err(err).Msg("listener failed")
		g.Close()
		if admin != nil {
			admin.Close()
		}
		for ; servers > 0; servers-- {
			<-served
		}
		return err
	}

	// README "Shutdown": readiness goes first, so that load balancers stop sending;
	// then stop accepting, GOAWAY everywhere, drain within the grace
	// period; the admin listener last, so the drain can be watched.
	rd.draining.Store(true)
	log.Info().Stringer("grace_period", c.ShutdownTimeout).Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	// One Shutdown drains everything: HTTP/1.1, HTTP/2 however it came,
	// and WebSocket tunnels (gateway.Hijack).
	err = g.Shutdown(sctx)
	st.closeIdle()
	if admin != nil {
		if admin.Shutdown(sctx) != nil {
			admin.Close()
		}
	}
	for ; servers > 0; servers-- {
		if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			log.Warn().Err(serr).Msg("serve ended with an error during shutdown")
		}
	}
	if err != nil {
		err = fmt.Errorf("shutdown grace period of %s exceeded, remaining connections closed: %w", c.ShutdownTimeout, err)
		log.Error().Err(err).Msg("shutdown incomplete")
		return err
	}
	log.Info().Stringer("took", time.Since(start).Round(time.Millisecond)).Msg("shut down")
	return nil
}

// logStartup writes the one "listening" line: the bound addresses (port 0
// resolved), the effective settings, and the SETTINGS the HTTP/2 server
// really sends, read from it. The line is written whatever --log-level says
// (it carries the addresses bound to port 0), at info.
func logStartup(ctx context.Context, log zerolog.Logger, c config, lim limits, g *gateway.Gateway, listen, admin, mode string, upstreams []string) {
	if err := toolchain.Check(runtime.Version()); err != nil {
		log.Warn().Err(err).Msg("toolchain below its security floor")
	}
	adv := zerolog.Dict()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	settings, err := g.AdvertisedSettings(ctx)
	if err != nil {
		log.Warn().Err(err).Msg("cannot read the advertised HTTP/2 settings")
	}
	for _, s := range settings {
		adv.Uint32(s.ID.String(), s.Val)
	}
	if mode == "builtin" {
		// A misspelt --upstream (or its variable) would otherwise start
		// a gateway that answers everything 200, echoing credentials.
		log.Warn().Msg("no upstream: serving the built-in echo, which answers every request 200 with its headers (Authorization and Cookie included); give --upstream to proxy")
	}
	ev := log.Log().Str(zerolog.LevelFieldName, zerolog.InfoLevel.String()).
		Str("listen", listen).
		Str("admin", admin).
		Str("version", version).
		Str("go", runtime.Version()).
		Str("http2_engine", gateway.HTTP2Engine).
		Str("mode", mode)
	if mode == "gateway" {
		ev = ev.Strs("upstreams", upstreams).Stringer("upstream_timeout", c.UpstreamTimeout)
	}
	ev = ev.Bool("proxy_protocol", c.ProxyProtocol)
	if c.ProxyProtocol {
		trusted := make([]string, len(c.ProxyProtocolTrusted))
		for i, p := range c.ProxyProtocolTrusted {
			trusted[i] = p.String()
		}
		ev = ev.Strs("proxy_protocol_trusted", trusted)
	}
	ev.Bool("upgrade", !c.NoUpgrade).
		Bool("prior_knowledge", !c.NoPriorKnowledge).
		Int64("max_upgrade_body", max(c.MaxUpgradeBody, 0)).
		Int64("max_header_bytes", c.MaxHeaderBytes).
		Uint32("max_concurrent_streams", c.MaxConcurrentStreams).
		Int("max_connections", lim.maxConns).
		Uint64("rlimit_nofile", lim.nofile).
		Int64("memory_limit", lim.memLimit).
		Str("memory_limit_from", lim.memFrom).
		Int64("memory_budget", g.MemoryBudget()).
		Int("max_header_fields", c.MaxHeaderFields).
		Int("glitch_limit", c.GlitchLimit).
		Stringer("glitch_window", c.GlitchWindow).
		Stringer("read_header_timeout", c.ReadHeaderTimeout).
		Stringer("idle_timeout", c.IdleTimeout).
		Stringer("preface_timeout", c.PrefaceTimeout).
		Stringer("upgrade_body_timeout", c.UpgradeBodyTimeout).
		Stringer("shutdown_timeout", c.ShutdownTimeout).
		Bool("access_log", c.AccessLog).
		Dict("http2_settings", adv).
		Msg("listening")
}

// newProxy builds gateway mode's proxy from c's upstream flags; caPEM is
// what the --upstream-ca file holds.
func newProxy(c config, caPEM []byte, log zerolog.Logger, m *metrics) (*proxy.Proxy, error) {
	var tc *tls.Config
	if caPEM != nil || c.UpstreamServerName != "" {
		tc = &tls.Config{ServerName: c.UpstreamServerName}
		if caPEM != nil {
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(caPEM) {
				return nil, &usageError{fmt.Sprintf("invalid --upstream-ca: no PEM certificate in %s", c.UpstreamCA)}
			}
			tc.RootCAs = roots
		}
	}
	p, err := proxy.New(proxy.Config{
		Upstreams:          c.Upstreams,
		Logger:             log,
		Timeout:            c.UpstreamTimeout,
		MaxConnsPerHost:    c.UpstreamMaxConns,
		DialRate:           cmp.Or(float64(c.UpstreamDialRate), proxy.NoDialRate),
		TLSConfig:          tc,
		OnUpstreamError:    m.upstreamError,
		OnUpstreamResponse: m.upstreamResponse,
	})
	if err != nil {
		return nil, &usageError{fmt.Sprintf("invalid --upstream: %v", err)}
	}
	return p, nil
}

// limits are what the process found of its own limits at startup.
type limits struct {
	memLimit int64  // the Go runtime's memory limit, 0 for none
	memFrom  string // GOMEMLIMIT, cgroup or none
	nofile   uint64 // RLIMIT_NOFILE, 0 when unknown
	maxConns int    // the connection cap in force, 0 for none
}

// startupLimits sets the runtime's memory limit from the container's when
// GOMEMLIMIT does not (the memory budget's default is half of it), and
// derives the connection cap from the descriptor limit unless
// --max-connections gives one (README "Security").
func startupLimits(c config) limits {
	var l limits
	l.memLimit, l.memFrom = memoryLimit("/sys/fs/cgroup")
	l.nofile = descriptorLimit()
	l.maxConns = c.MaxConnections
	if l.maxConns == 0 {
		upstreamConns := len(c.Upstreams) * cmp.Or(c.UpstreamMaxConns, proxy.DefaultMaxConnsPerHost)
		l.maxConns = connectionCap(l.nofile, upstreamConns)
	}
	return l
}
