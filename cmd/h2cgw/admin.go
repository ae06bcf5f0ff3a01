package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// readiness is what /readyz answers: ready while the gateway accepts
// connections and, in gateway mode, the proxy has an upstream up.
type readiness struct {
	// draining is set when shutdown begins, before the listener closes, so
	// that a load balancer stops sending new connections first.
	draining atomic.Bool
	// upstreamsUp reports whether an upstream is up; nil in built-in mode.
	upstreamsUp func() bool
}

// ready reports whether the process should get traffic, and if not, why.
func (rd *readiness) ready() (bool, string) {
	if rd.draining.Load() {
		return false, "shutting down"
	}
	if rd.upstreamsUp != nil && !rd.upstreamsUp() {
		return false, "no upstream available"
	}
	return true, "ok"
}

// adminOptions are the admin listener's optional endpoints.
type adminOptions struct {
	// reload, if non-nil, serves POST /reload.
	reload func(why string) reloadResult
	// pprof serves net/http/pprof under /debug/pprof/.
	pprof bool
}

// adminHandler serves the admin listener: /metrics (Prometheus text format,
// from reg), /healthz (200 while the process runs), /readyz (200 or 503,
// from rd), POST /reload, and /debug/pprof/ when opts asks for it.
func adminHandler(reg *prometheus.Registry, rd *readiness, log zerolog.Logger, opts adminOptions) http.Handler {
	mux := http.NewServeMux()
	if opts.reload != nil {
		mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
			res := opts.reload("POST /reload")
			code := http.StatusOK
			if res.Result != "ok" {
				// The file did not parse or its upstreams could not
				// be built: the request was fine, the configuration
				// was not.
				code = http.StatusUnprocessableEntity
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(res)
		})
	}
	if opts.pprof {
		// The profiler's handlers, registered on this mux rather than
		// on http.DefaultServeMux, which nothing here serves.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:          promLogger{log},
		Registry:          reg, // counts its own scrape errors
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, why := rd.ready()
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		plain(w, code, why)
	})
	return mux
}

func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// newAdminServer returns the admin listener's server. Its clients are
// probes and scrapers on a trusted network, so the limits are short.
func newAdminServer(h http.Handler, log zerolog.Logger) *http.Server {
	return &http.Server{
		Handler: h,
		// A scrape or a probe sends a small head at once.
		ReadHeaderTimeout: 5 * time.Second,
		// A probe's client may keep its connection for the next probe.
		IdleTimeout: 60 * time.Second,
		// Scrapes of a large registry take a while to encode, not
		// minutes; a CPU profile (--admin-pprof) takes its ?seconds=,
		// 30 by default, and then its writing.
		WriteTimeout:   90 * time.Second,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       newStdLogger(log),
	}
}

// promLogger gives promhttp's errors to zerolog.
type promLogger struct{ l zerolog.Logger }

// Println logs one scrape error.
func (p promLogger) Println(v ...any) {
	p.l.Error().Str("source", "promhttp").Msg(sprintln(v...))
}
