package main

// What a reload changes while the gateway serves (README "Reloading the
// configuration"): the upstream pool and its settings, the log level, the
// access log. The rest of the configuration is bound to listeners and
// connections already open, and needs a restart.

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/h2cgw/h2cgw/proxy"
	"github.com/rs/zerolog"
)

// reloadable lists the flags a reload applies; a change to any other is
// reported as needing a restart and left as it is.
var reloadable = map[string]bool{
	"upstream":             true,
	"upstream-timeout":     true,
	"upstream-max-conns":   true,
	"upstream-ca":          true,
	"upstream-server-name": true,
	"upstream-dial-rate":   true,
	"log-level":            true,
	"access-log":           true,
	"access-log-query":     true,
}

// upstreamFlags are the flags a proxy is built from: a change to any of them
// builds a new one.
var upstreamFlags = []string{"upstream", "upstream-timeout", "upstream-max-conns", "upstream-ca", "upstream-server-name", "upstream-dial-rate"}

// live is the state of a serving process that a reload changes. Requests
// read it through atomics; reloads are serialised by mu.
type live struct {
	log    zerolog.Logger
	levels *levelFilter
	m      *metrics
	// load reads the configuration again: the same command line and
	// environment over the --config file as it is now.
	load func() (config, error)

	// accessOn and accessQuery are --access-log and --access-log-query.
	accessOn    atomic.Bool
	accessQuery atomic.Bool
	// pool is the proxy requests go to; nil in built-in mode.
	pool atomic.Pointer[upstreamPool]

	mu sync.Mutex
	// cur is the configuration in force: the one started with, with the
	// reloadable changes applied. caPEM is what --upstream-ca held when the
	// proxy was built. retired holds the pools a reload replaced that still
	// have requests in flight. Guarded by mu.
	cur     config
	caPEM   []byte
	retired []*upstreamPool
}

// upstreamPool is one generation of gateway mode's proxy, with a count of
// the requests in it, so that a pool a reload replaced is closed once
// they are done (its WebSocket tunnels included: ReverseProxy serves a
// tunnel within its request).
type upstreamPool struct {
	proxy    *proxy.Proxy
	inFlight atomic.Int64
}

func (u *upstreamPool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.inFlight.Add(1)
	defer u.inFlight.Add(-1)
	u.proxy.ServeHTTP(w, r)
}

// newLive builds the state c describes: its proxy, if c names upstreams.
func newLive(c config, load func() (config, error), log zerolog.Logger, levels *levelFilter, m *metrics) (*live, error) {
	st := &live{log: log, levels: levels, m: m, load: load, cur: c}
	st.accessOn.Store(c.AccessLog)
	st.accessQuery.Store(c.AccessLogQuery)
	if len(c.Upstreams) > 0 {
		pem, err := readCA(c.UpstreamCA)
		if err != nil {
			return nil, err
		}
		p, err := newProxy(c, pem, log, m)
		if err != nil {
			return nil, err
		}
		st.pool.Store(&upstreamPool{proxy: p})
		st.caPEM = pem
	}
	return st, nil
}

// readCA reads --upstream-ca; "" is no file.
func readCA(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &usageError{fmt.Sprintf("invalid --upstream-ca: %v", err)}
	}
	return b, nil
}

// target serves a request with the current proxy, which forwards its
// X-Request-Id (requestID), or with the built-in handler.
func (st *live) target(echo http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := st.pool.Load(); u != nil {
			requestID(r.Header)
			u.ServeHTTP(w, r)
			return
		}
		echo.ServeHTTP(w, r)
	})
}

// mode is "gateway" with upstreams and "builtin" without, and the
// upstreams' names.
func (st *live) mode() (string, []string) {
	if u := st.pool.Load(); u != nil {
		return "gateway", u.proxy.Upstreams()
	}
	return "builtin", nil
}

// upstreamsUp is the readiness of the upstreams: true in built-in mode.
func (st *live) upstreamsUp() bool {
	u := st.pool.Load()
	return u == nil || u.proxy.Ready()
}

// reloadResult is what a reload did, for the log line and POST /reload.
type reloadResult struct {
	Result       string   `json:"result"` // "ok" or "error"
	Error        string   `json:"error,omitempty"`
	Changed      []string `json:"changed"`
	NeedsRestart []string `json:"needs_restart"`
}

// reload reads the configuration again and applies what a reload may
// change. A configuration that does not parse, or whose upstreams cannot
// be built, is refused whole: the running one stays. why names the trigger
// (SIGHUP, POST /reload) in the log.
func (st *live) reload(why string) reloadResult {
	st.mu.Lock()
	defer st.mu.Unlock()
	res := reloadResult{Result: "ok", Changed: []string{}, NeedsRestart: []string{}}
	refuse := func(err error) reloadResult {
		st.m.configReloads.WithLabelValues("error").Inc()
		st.log.Warn().Str("trigger", why).Err(err).Msg("configuration reload refused; the running configuration stays")
		return reloadResult{Result: "error", Error: err.Error(), Changed: []string{}, NeedsRestart: []string{}}
	}
	next, err := st.load()
	if err != nil {
		return refuse(err)
	}
	oldVals, newVals := flagStrings(&st.cur), flagStrings(&next)
	rebuild := false
	for _, name := range flagNames() {
		if oldVals[name] == newVals[name] {
			continue
		}
		change := fmt.Sprintf("%s: %s → %s", name, quoteEmpty(oldVals[name]), quoteEmpty(newVals[name]))
		if !reloadable[name] {
			res.NeedsRestart = append(res.NeedsRestart, change)
			continue
		}
		res.Changed = append(res.Changed, change)
		for _, f := range upstreamFlags {
			rebuild = rebuild || f == name
		}
	}
	pem, err := readCA(next.UpstreamCA)
	if err != nil {
		return refuse(err)
	}
	if next.UpstreamCA != "" && !bytes.Equal(pem, st.caPEM) && !rebuild {
		res.Changed = append(res.Changed, "upstream-ca: the file's certificates")
		rebuild = true
	}

	// Build first: a pool that cannot be built leaves everything as it was.
	var fresh *upstreamPool
	if rebuild && len(next.Upstreams) > 0 {
		p, err := newProxy(next, pem, st.log, st.m)
		if err != nil {
			return refuse(err)
		}
		fresh = &upstreamPool{proxy: p}
	}
	if rebuild {
		old := st.pool.Swap(fresh)
		if old != nil {
			st.retire(old)
		}
		st.cur.Upstreams = next.Upstreams
		st.cur.UpstreamTimeout = next.UpstreamTimeout
		st.cur.UpstreamMaxConns = next.UpstreamMaxConns
		st.cur.UpstreamCA = next.UpstreamCA
		st.cur.UpstreamServerName = next.UpstreamServerName
		st.caPEM = pem
	}
	st.levels.set(next.LogLevel)
	st.cur.LogLevel = next.LogLevel
	st.accessOn.Store(next.AccessLog)
	st.cur.AccessLog = next.AccessLog
	st.accessQuery.Store(next.AccessLogQuery)
	st.cur.AccessLogQuery = next.AccessLogQuery

	st.m.configReloads.WithLabelValues("ok").Inc()
	mode, ups := st.mode()
	st.log.Info().Str("trigger", why).Strs("changed", res.Changed).Str("mode", mode).Strs("upstreams", ups).Msg("configuration reloaded")
	if len(res.NeedsRestart) > 0 {
		st.log.Warn().Strs("needs_restart", res.NeedsRestart).Msg("configuration changes that need a restart were left as they are")
	}
	return res
}

// retire closes old's idle upstream connections once its last request is
// done; until then it stays on the retired list, which shutdown drains.
// Called with mu held.
func (st *live) retire(old *upstreamPool) {
	st.retired = append(st.retired, old)
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for old.inFlight.Load() > 0 {
			<-t.C
		}
		old.proxy.Close()
		st.mu.Lock()
		for i, u := range st.retired {
			if u == old {
				st.retired = append(st.retired[:i], st.retired[i+1:]...)
				break
			}
		}
		st.mu.Unlock()
	}()
}

// closeIdle closes the idle upstream connections of the current pool and
// of the retired ones, once the gateway has shut down. WebSocket tunnels
// were the gateway's to drain (gateway.Hijack).
func (st *live) closeIdle() {
	st.mu.Lock()
	pools := append([]*upstreamPool(nil), st.retired...)
	st.mu.Unlock()
	if u := st.pool.Load(); u != nil {
		pools = append(pools, u)
	}
	for _, u := range pools {
		u.proxy.Close()
	}
}

// flagStrings returns every flag's value in c as --help would print it.
func flagStrings(c *config) map[string]string {
	m := map[string]string{}
	for _, s := range flagSpecs(c) {
		if !s.noFile {
			m[s.name] = s.value.String()
		}
	}
	return m
}

// flagNames lists the flags a file may set, in --help's order.
func flagNames() []string {
	var names []string
	for _, s := range flagSpecs(new(config)) {
		if !s.noFile {
			names = append(names, s.name)
		}
	}
	return names
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}
