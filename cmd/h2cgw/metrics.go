package main

import (
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/h2cgw/h2cgw/gateway"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics holds the process's Prometheus collectors, on a registry of its
// own (not the global one: tests run several processes' worth side by side).
type metrics struct {
	reg *prometheus.Registry

	connsTotal     *prometheus.CounterVec
	connsOpen      *prometheus.GaugeVec
	upgrades       *prometheus.CounterVec
	protocolErrors *prometheus.CounterVec
	http2Errors    *prometheus.CounterVec
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	inFlight       prometheus.Gauge
	proxyProtocol  *prometheus.CounterVec
	upstreamTime   *prometheus.HistogramVec
	configReloads  *prometheus.CounterVec
	overload       *prometheus.GaugeVec
	refused        *prometheus.CounterVec

	// byPath resolves the per-request series of the known entry paths once,
	// so a request does not hash its labels. Read-only after newMetrics.
	byPath map[gateway.EntryPath]*pathMetrics
	// unknown is the series of requests without an entry path (from outside
	// the gateway), resolved at the first one.
	unknown atomic.Pointer[pathMetrics]
}

// pathMetrics are one entry path's per-request series.
type pathMetrics struct {
	byClass  [5]prometheus.Counter // 1xx … 5xx
	duration prometheus.Observer
}

// The upgrade outcomes of h2cgw_upgrades_total.
const (
	outcomeAccepted = "accepted"
	outcomeDeclined = "declined"
	outcomeRejected = "rejected"
)

// durationBuckets start at 100µs: a proxied request on a local network
// takes well under a millisecond, which Prometheus's default buckets
// (from 5ms) cannot tell apart. They end at 30s, the default upstream
// timeout.
var durationBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

var entryPaths = []gateway.EntryPath{gateway.PathH1, gateway.PathUpgrade, gateway.PathPriorKnowledge}

// newMetrics registers every collector, the Go runtime's and the process's
// included, and creates the series of every known label value at zero, so
// that dashboards and alerts see them before the first event.
func newMetrics(version string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		connsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "h2cgw_connections_total",
			Help: "Client connections by entry path (h1, h2c-upgrade, h2c-prior-knowledge), counted when the path is known; an upgraded connection counts once as h1, then once as h2c-upgrade.",
		}, []string{"via"}),
		connsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "h2cgw_connections_open",
			Help: "Client connections open now, by entry path.",
		}, []string{"via"}),
		upgrades: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "h2cgw_upgrades_total",
			Help: "h2c upgrade attempts by outcome: accepted (101, reason empty), declined (served on HTTP/1.1) or rejected (upgrade signal on HTTP/2, answered 400), with its reason (README \"What each input gets\").",
		}, []string{"outcome", "reason"}),
		protocolErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "h2cgw_protocol_errors_total",
			Help: "Connections or requests ended by a protocol error the gateway saw itself, by reason.",
		}, []string{"reason"}),
		http2Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "h2cgw_http2_errors_total",
			Help: "Errors counted by the HTTP/2 server (x/net's with Go 1.26, net/http's with Go 1.27), by its error type.",
		}, []string{"type"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "h2cgw_requests_total",
			Help: "Requests served, by entry path and status class (1xx for a protocol switch, 2xx … 5xx).",
		}, []string{"via", "code_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "h2cgw_request_duration_seconds",
			Help:    "Time from the request reaching the handler to the handler's return (the whole response, streamed bodies included), by entry path.",
			Buckets: durationBuckets,
		}, []string{"via"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "h2cgw_upstream_errors_total",
			Help: "Failed attempts to reach an upstream or get its response (502, 504, or a retry), by upstream and cause.",
		}, []string{"upstream", "cause"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "h2cgw_requests_in_flight",
			Help: "Requests being served now.",
		}),
		proxyProtocol: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "h2cgw_proxy_protocol_total",
			Help: "Connections by what they started with under --proxy-protocol: ok (a trusted peer's header), direct (an untrusted peer without one, served), or refused and closed: missing, rejected (an untrusted peer's header), malformed, timeout, empty (ended before its first byte).",
		}, []string{"outcome"}),
		upstreamTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "h2cgw_upstream_duration_seconds",
			Help:    "Time from sending a request to an upstream to its response headers, by upstream; failed attempts are counted in h2cgw_upstream_errors_total instead.",
			Buckets: durationBuckets,
		}, []string{"upstream"}),
		configReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "h2cgw_config_reloads_total",
			Help: "Configuration reloads (SIGHUP, POST /reload) by result: ok (applied), error (refused: the running configuration stays).",
		}, []string{"result"}),
		overload: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "h2cgw_overload_active",
			Help: "1 while a resource is at its limit and the gateway sheds work (memory: the --memory-budget is exhausted: upgrade bodies declined, new streams refused, accepting slowed), else 0.",
		}, []string{"resource"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "h2cgw_refused_total",
			Help: "Work a limit turned away, by reason: memory_upgrade, memory_stream (REFUSED_STREAM), memory_accept (accepting slowed), header_fields (431), glitches (connection ended with GOAWAY ENHANCE_YOUR_CALM).",
		}, []string{"reason"}),
		byPath: make(map[gateway.EntryPath]*pathMetrics),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "h2cgw_build_info",
		Help:        "Always 1; the labels give the version of h2cgw and of Go.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(
		m.connsTotal, m.connsOpen, m.upgrades, m.protocolErrors, m.http2Errors,
		m.requests, m.duration, m.upstreamErrors, m.inFlight, m.proxyProtocol, buildInfo,
		m.upstreamTime, m.configReloads, m.overload, m.refused,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	for _, p := range entryPaths {
		m.connsTotal.WithLabelValues(string(p))
		m.connsOpen.WithLabelValues(string(p))
		m.byPath[p] = m.newPathMetrics(p)
	}
	m.upgrades.WithLabelValues(outcomeAccepted, "")
	for _, r := range gateway.DeclineReasons() {
		m.upgrades.WithLabelValues(outcomeDeclined, string(r))
	}
	for _, r := range gateway.RejectReasons() {
		m.upgrades.WithLabelValues(outcomeRejected, string(r))
	}
	for _, r := range gateway.ProtocolErrorReasons() {
		m.protocolErrors.WithLabelValues(string(r))
	}
	for _, o := range proxyOutcomes {
		m.proxyProtocol.WithLabelValues(o)
	}
	for _, r := range gateway.OverloadResources() {
		m.overload.WithLabelValues(string(r))
	}
	for _, r := range gateway.RefuseReasons() {
		m.refused.WithLabelValues(string(r))
	}
	m.configReloads.WithLabelValues("ok")
	m.configReloads.WithLabelValues("error")
	return m
}

func (m *metrics) newPathMetrics(p gateway.EntryPath) *pathMetrics {
	pm := &pathMetrics{duration: m.duration.WithLabelValues(string(p))}
	for i := range pm.byClass {
		pm.byClass[i] = m.requests.WithLabelValues(string(p), strconv.Itoa(i+1)+"xx")
	}
	return pm
}

// onEvent counts the gateway's events; it is gateway.Config.OnEvent, called
// from many goroutines (the collectors are safe for that).
func (m *metrics) onEvent(e gateway.Event) {
	switch e.Kind {
	case gateway.EventConnOpen:
		m.connsTotal.WithLabelValues(string(e.Path)).Inc()
		m.connsOpen.WithLabelValues(string(e.Path)).Inc()
	case gateway.EventConnClose:
		m.connsOpen.WithLabelValues(string(e.Path)).Dec()
	case gateway.EventUpgradeAccepted:
		m.upgrades.WithLabelValues(outcomeAccepted, "").Inc()
	case gateway.EventUpgradeDeclined:
		m.upgrades.WithLabelValues(outcomeDeclined, string(e.Reason)).Inc()
	case gateway.EventUpgradeRejected:
		m.upgrades.WithLabelValues(outcomeRejected, string(e.Reason)).Inc()
	case gateway.EventProtocolError:
		m.protocolErrors.WithLabelValues(string(e.Reason)).Inc()
	case gateway.EventHTTP2Error:
		m.http2Errors.WithLabelValues(string(e.Reason)).Inc()
	case gateway.EventRefused:
		m.refused.WithLabelValues(string(e.Reason)).Inc()
	case gateway.EventOverloadStart:
		m.overload.WithLabelValues(string(e.Resource)).Set(1)
	case gateway.EventOverloadEnd:
		m.overload.WithLabelValues(string(e.Resource)).Set(0)
	}
	if e.Status != 0 {
		// A response the gateway wrote itself: a request the handler
		// chain never saw, counted here instead.
		if class := e.Status/100 - 1; class >= 0 && class < 5 {
			m.pathMetrics(e.Path).byClass[class].Inc()
		}
	}
}

// proxyOutcome counts one connection's PROXY protocol outcome
// (proxyListener.count).
func (m *metrics) proxyOutcome(outcome string) {
	m.proxyProtocol.WithLabelValues(outcome).Inc()
}

// upstreamError counts a failure the proxy reports
// (proxy.Config.OnUpstreamError).
func (m *metrics) upstreamError(upstream, cause string) {
	m.upstreamErrors.WithLabelValues(upstream, cause).Inc()
}

// upstreamResponse times one upstream's answer
// (proxy.Config.OnUpstreamResponse).
func (m *metrics) upstreamResponse(upstream string, d time.Duration) {
	m.upstreamTime.WithLabelValues(upstream).Observe(d.Seconds())
}

// middleware counts requests in flight, and each request by entry path and
// status class with its duration, once the handler has returned.
func (m *metrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inFlight.Inc()
		rec, ok := w.(*recorder)
		if !ok {
			rec, r = newRecorder(w, r)
		}
		defer func() {
			m.inFlight.Dec()
			pm := m.pathMetrics(gateway.EntryPathFromContext(r.Context()))
			class := rec.code()/100 - 1
			if class >= 0 && class < len(pm.byClass) {
				pm.byClass[class].Inc()
			}
			pm.duration.Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r)
	})
}

func (m *metrics) pathMetrics(p gateway.EntryPath) *pathMetrics {
	if pm, ok := m.byPath[p]; ok {
		return pm
	}
	if p == "" {
		// A request from outside the gateway (tests).
		if pm := m.unknown.Load(); pm != nil {
			return pm
		}
		pm := m.newPathMetrics("unknown")
		m.unknown.Store(pm)
		return pm
	}
	// An entry path added after this binary: resolved per request.
	return m.newPathMetrics(p)
}

// watchMemory registers the memory budget's gauges, read from g at each
// scrape.
func (m *metrics) watchMemory(g *gateway.Gateway) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "h2cgw_memory_budget_bytes",
			Help: "The memory budget (--memory-budget; by default half of GOMEMLIMIT); 0 for none.",
		}, func() float64 { return float64(g.MemoryBudget()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "h2cgw_memory_held_bytes",
			Help: "Memory held against the budget now: buffered upgrade bodies and the decoded request headers of HTTP/2 streams not yet answered.",
		}, func() float64 { return float64(g.MemoryHeld()) }),
	)
}
