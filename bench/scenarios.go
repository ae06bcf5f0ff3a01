//go:build linux

package main

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/h2cgw/h2cgw/bench/internal/stats"
)

// need says why a contender cannot run: a program that did not build or a
// tool that is missing; "" when it can.
func (b *bench) need(progs []string, tools ...string) string {
	for _, p := range progs {
		if b.built[p] == "" {
			return p + " did not build"
		}
	}
	for _, t := range tools {
		if b.tools[t] == "" {
			return t + " not installed (apt-get install " + debPackages[t] + ")"
		}
	}
	return ""
}

type load struct {
	name string
	c, m int
}

var loads = []load{{"-c 16 -m 10", 16, 10}, {"-c 64 -m 100", 64, 100}}

func loadVariants() []string {
	var v []string
	for _, l := range loads {
		v = append(v, l.name)
	}
	return v
}

var loadMetrics = []metric{
	{key: "rps", header: "req/s", digits: 0},
	{key: "p50", header: "p50 ms", digits: 2},
	{key: "p99", header: "p99 ms", digits: 2},
	{key: "bad", header: "failed (sum)", digits: 0, sum: true},
}

// proxyMetrics add, for the proxy scenarios, the connections the proxy
// opened to its upstream.
var proxyMetrics = append(append([]metric(nil), loadMetrics...),
	metric{key: "upconns", header: "upstream conns opened", digits: 0})

// scenarioLocal is scenario 1: h2load against a server's own handler.
func (b *bench) scenarioLocal(ctx context.Context) error {
	cs := []*contender{
		{name: "h2cgw (log off)", group: "echo", ours: true, path: "/", start: b.goServer("h2cgw-logoff", "h2cgw", h2cgwArgs("--access-log=false")...),
			missing: b.need([]string{"h2cgw"}, "h2load")},
		{name: "h2cgw (log on)", group: "echo", ours: true, path: "/", start: b.goServer("h2cgw-logon", "h2cgw", h2cgwArgs()...),
			missing: b.need([]string{"h2cgw"}, "h2load")},
		{name: "x/net bare", group: "echo", path: "/", start: b.goServer("xnetbare", "xnetbare", "-handler", "echo"),
			missing: b.need([]string{"xnetbare"}, "h2load")},
		{name: "x/net h2c.NewHandler", group: "echo", path: "/", start: b.goServer("xneth2c", "xneth2c", "-handler", "echo"),
			missing: b.need([]string{"xneth2c"}, "h2load")},
		{name: "h2cgw lib (minimal)", group: "minimal", ours: true, path: "/", start: b.goServer("h2cgwlib-minimal", "h2cgwlib", "-handler", "minimal"),
			missing: b.need([]string{"h2cgwlib"}, "h2load")},
		{name: "x/net bare (minimal)", group: "minimal", path: "/", start: b.goServer("xnetbare-minimal", "xnetbare", "-handler", "minimal"),
			missing: b.need([]string{"xnetbare"}, "h2load")},
	}
	t := b.res.table(&table{
		id:    "1",
		title: "Local handler: h2load → server, HTTP/2 prior knowledge",
		about: []string{
			"Echo group: h2cgw's built-in JSON handler (README \"Running it\"); the x/net baselines serve a copy of it. " +
				"Minimal group: a handler writing `ok`, h2cgw from the library (`bench/h2cgwlib`, no access log, no metrics) against bare x/net. " +
				"Access log on = h2cgw's default JSON line per request to stderr, here a file.",
		},
		variants:   loadVariants(),
		contenders: cs,
		metrics:    loadMetrics,
		ratios: []ratio{
			{ref: "h2cgw (log off)", metric: "rps", header: "h2cgw log off / this, req/s"},
			{ref: "h2cgw (log on)", metric: "rps", header: "h2cgw log on / this, req/s"},
			{ref: "h2cgw lib (minimal)", metric: "rps", header: "h2cgw lib / this, req/s"},
			{ref: "h2cgw (log off)", metric: "p99", header: "h2cgw log off / this, p99"},
		},
	})
	b.logf("scenario 1: local handler")
	servers := b.startAll(ctx, cs)
	defer stopAll(servers)
	return b.measure(ctx, t, func(_, li int, c *contender) (map[string]float64, string, error) {
		return b.h2loadSample(ctx, servers[c.name], c, loads[li])
	})
}

// scenarioProxy is scenarios 2 (kind "http") and 3 ("h2c"): h2load → proxy
// → the h2o upstream's static file.
func (b *bench) scenarioProxy(ctx context.Context, kind string) error {
	id, title, proto := "2", "Proxy → HTTP/1.1 upstream", ""
	if kind == "h2c" {
		id, title, proto = "3", "Proxy → h2c upstream (HTTP/2 prior knowledge)", "h2"
	}
	b.logf("scenario %s: %s", id, title)
	upName := "h2o"
	if b.tools["h2o"] == "" {
		upName = "the Go fallback upstream (bench/baselines/upstream)"
	}
	// Every measurement gets a fresh upstream on a fresh port: a proxy that
	// opens a connection per request leaves tens of thousands of sockets
	// in TIME_WAIT towards its upstream's port, and tcp_tw_reuse only
	// recycles those older than a second, so the next contender on the
	// same port would wait on connect (p99 ≈ 1 s).
	var upURL, upAddr string
	h2cgw := func(name string, extra ...string) func(context.Context) (*server, error) {
		return func(ctx context.Context) (*server, error) {
			return b.startGo(ctx, name, "h2cgw", h2cgwArgs(append([]string{"--upstream=" + upURL}, extra...)...)...)
		}
	}
	cs := []*contender{
		{name: "h2cgw (log off)", group: "proxy", ours: true, path: staticPath, start: h2cgw("h2cgw-proxy-logoff", "--access-log=false"),
			missing: b.need([]string{"h2cgw"}, "h2load")},
		{name: "h2cgw (log on)", group: "proxy", ours: true, path: staticPath, start: h2cgw("h2cgw-proxy-logon"),
			missing: b.need([]string{"h2cgw"}, "h2load")},
		{name: "nghttpx", group: "proxy", path: staticPath,
			start: func(ctx context.Context) (*server, error) {
				return b.startNghttpx(ctx, "nghttpx-"+kind, upAddr, proto)
			},
			missing: b.need(nil, "h2load", "nghttpx")},
		{name: "x/net h2c + ReverseProxy (naive)", group: "proxy", path: staticPath,
			start: func(ctx context.Context) (*server, error) {
				return b.startGo(ctx, "naiveproxy-"+kind, "naiveproxy", "-upstream", upURL)
			},
			missing: b.need([]string{"naiveproxy"}, "h2load")},
	}
	t := b.res.table(&table{
		id:    id,
		title: title,
		about: []string{fmt.Sprintf("Upstream: %s on loopback serving a %d-byte static file (`%s`), spoken to as `%s`; "+
			"a fresh upstream on a fresh port and a fresh proxy for every run, so that one contender's TIME_WAIT sockets do not slow the next. "+
			"nghttpx: `--frontend=127.0.0.1,PORT;no-tls --backend=…%s --workers=%d`. "+
			"Naive: x/net `h2c.NewHandler` around `httputil.NewSingleHostReverseProxy`, default Transport%s. "+
			"Upstream conns opened = sockets towards the upstream's port (open or TIME_WAIT) after the run, warm-up included.",
			upName, b.opt.staticSize, staticPath, kind+"://", map[string]string{"": "", "h2": ";;proto=h2"}[proto], b.opt.nghttpxWorkers,
			map[string]string{"http": "", "h2c": " (x/net `http2.Transport` with AllowHTTP for h2c)"}[kind])},
		variants:   loadVariants(),
		contenders: cs,
		metrics:    proxyMetrics,
		ratios: []ratio{
			{ref: "h2cgw (log off)", metric: "rps", header: "h2cgw log off / this, req/s"},
			{ref: "h2cgw (log on)", metric: "rps", header: "h2cgw log on / this, req/s"},
			{ref: "h2cgw (log off)", metric: "p99", header: "h2cgw log off / this, p99"},
		},
	})
	return b.measure(ctx, t, func(_, li int, c *contender) (map[string]float64, string, error) {
		up, err := b.startFreshUpstream(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("upstream: %w", err)
		}
		upAddr, upURL = up.addr, kind+"://"+up.addr
		sample, figures, err := b.loadOnce(ctx, c, loads[li])
		up.stop()
		if err != nil {
			return nil, "", err
		}
		sample["upconns"] = float64(socketsTo(portOf(up.addr)))
		return sample, fmt.Sprintf("%s  upstream conns %v", figures, sample["upconns"]), nil
	})
}

// loadOnce starts c, runs one h2load load against it, and stops it.
func (b *bench) loadOnce(ctx context.Context, c *contender, l load) (map[string]float64, string, error) {
	s, err := c.start(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("did not start: %w", err)
	}
	defer s.stop()
	return b.h2loadSample(ctx, s, c, l)
}

// h2loadSample runs one h2load load against s, c's server, and returns the
// sample of a load table and its figures for the progress log.
func (b *bench) h2loadSample(ctx context.Context, s *server, c *contender, l load) (map[string]float64, string, error) {
	res, err := b.h2load(ctx, "http://"+s.addr+c.path, l.c, l.m)
	// A server kept over the rounds would fill the disk with its access log.
	s.p.TruncateLog(64 << 20)
	if s.p.Exited() {
		return nil, "", fmt.Errorf("server exited during the run: %v", s.p.Err())
	}
	if err != nil {
		return nil, "", err
	}
	return map[string]float64{"rps": res.rps, "p50": res.p50, "p99": res.p99, "bad": float64(res.bad)},
		fmt.Sprintf("%9.0f req/s  p99 %7.2f ms  failed %d", res.rps, res.p99, res.bad), nil
}

// measure is the loop of every scenario: for each round, variant of t and
// contender that can run, in an order rotated by round and variant (see
// rotate), it calls once and records the sample or the failure in t. once
// returns, besides the sample, the figures the progress log shows.
func (b *bench) measure(ctx context.Context, t *table, once func(round, variant int, c *contender) (map[string]float64, string, error)) error {
	var nameW, varW int
	for _, c := range t.contenders {
		nameW = max(nameW, utf8.RuneCountInString(c.name))
	}
	for _, v := range t.variants {
		varW = max(varW, utf8.RuneCountInString(v))
	}
	for r := range b.opt.rounds {
		for vi, v := range t.variants {
			for _, c := range rotate(t.contenders, r+vi) {
				if c.missing != "" {
					continue
				}
				// Also before: a contender that startAll did not reach
				// has no server.
				if err := ctx.Err(); err != nil {
					return err
				}
				sample, figures, err := once(r, vi, c)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err != nil {
					b.logf("  round %d %s: %v", r+1, strings.TrimSpace(v+" "+c.name), err)
					b.res.fail(t, v, c.name, err)
					continue
				}
				// Aligned columns: the progress log reads as a table.
				col := fmt.Sprintf("%-*s", nameW, c.name)
				if varW > 0 {
					col = fmt.Sprintf("%-*s %s", varW, v, col)
				}
				b.logf("  round %d %s  %s", r+1, col, figures)
				b.res.add(t, v, c.name, sample)
			}
		}
	}
	return nil
}

// upgradeContenders are the servers of scenarios 4–6: h2cgw with its
// built-in handler, x/net's h2c.NewHandler with the same handler, and
// nghttpx (whose frontend does the h2c upgrade) in front of the upstream.
func (b *bench) upgradeContenders(ctx context.Context, h2cgwExtra ...string) []*contender {
	up, upErr := b.startUpstream(ctx)
	ngMissing := b.need([]string{"upgradeload"}, "nghttpx")
	if ngMissing == "" && upErr != nil {
		ngMissing = "upstream did not start: " + oneLine(upErr)
	}
	return []*contender{
		{name: "h2cgw", group: "upgrade", ours: true, path: "/",
			start:   b.goServer("h2cgw-upgrade", "h2cgw", h2cgwArgs(append([]string{"--access-log=false"}, h2cgwExtra...)...)...),
			missing: b.need([]string{"h2cgw", "upgradeload"})},
		{name: "x/net h2c.NewHandler", group: "upgrade", path: "/",
			start:   b.goServer("xneth2c-upgrade", "xneth2c", "-handler", "echo"),
			missing: b.need([]string{"xneth2c", "upgradeload"})},
		{name: "nghttpx → upstream", group: "upgrade", path: staticPath,
			start: func(ctx context.Context) (*server, error) {
				return b.startNghttpx(ctx, "nghttpx-upgrade", up.addr, "")
			},
			missing: ngMissing},
	}
}

// scenarioUpgrade is scenario 4: upgrade handshakes per second against the
// same server's plain HTTP/1.1 connection rate.
func (b *bench) scenarioUpgrade(ctx context.Context) error {
	b.logf("scenario 4: upgrade handshakes")
	cs := b.upgradeContenders(ctx)
	t := b.res.table(&table{
		id:    "4",
		title: "Upgrade handshakes: connect → GET with Upgrade: h2c → 101 → prefaces → one response → close",
		about: []string{fmt.Sprintf("`bench/upgradeload`, %d workers, %s per run; the reference is the same server's plain HTTP/1.1 rate "+
			"(connect → GET → response → close) measured by the same client right before or after. "+
			"h2cgw and x/net serve the echo handler; nghttpx upgrades and proxies to the upstream's static file (HTTP/1.1). Access log off.",
			b.opt.upgradeWorkers, b.opt.duration)},
		variants:   []string{""},
		contenders: cs,
		metrics: []metric{
			{key: "hs", header: "upgrades/s", digits: 0},
			{key: "h1", header: "plain h1 conns/s", digits: 0},
			{key: "ratio", header: "upgrades / h1 (same server)", digits: 2},
			{key: "errors", header: "errors (sum)", digits: 0, sum: true},
		},
		ratios: []ratio{
			{ref: "h2cgw", metric: "hs", header: "h2cgw / this, upgrades/s"},
			{ref: "h2cgw", metric: "h1", header: "h2cgw / this, h1 conns/s"},
		},
	})
	servers := b.startAll(ctx, cs)
	defer stopAll(servers)
	limit := b.opt.warmup + b.opt.duration + time.Minute
	return b.measure(ctx, t, func(r, _ int, c *contender) (map[string]float64, string, error) {
		s := servers[c.name]
		modes := []string{"upgrade", "h1"}
		if r%2 == 1 {
			modes = []string{"h1", "upgrade"}
		}
		got := map[string]stats.Load{}
		for _, mode := range modes {
			args := []string{"-mode", mode, "-c", fmt.Sprint(b.opt.upgradeWorkers), "-path", c.path}
			if b.opt.warmup > 0 {
				if _, err := b.upgradeload(ctx, s.addr, limit, append(args, "-d", b.opt.warmup.String())...); err != nil {
					return nil, "", err
				}
			}
			lr, err := b.upgradeload(ctx, s.addr, limit, append(args, "-d", b.opt.duration.String())...)
			if err != nil {
				return nil, "", err
			}
			if lr.OK == 0 {
				return nil, "", fmt.Errorf("%s: no exchange completed: %s", mode, lr.FirstError)
			}
			if mode == "upgrade" && lr.Upgraded < lr.OK {
				return nil, "", fmt.Errorf("upgrade: only %d of %d responses came after a 101", lr.Upgraded, lr.OK)
			}
			got[mode] = lr
		}
		u, h := got["upgrade"], got["h1"]
		return map[string]float64{"hs": u.Rate, "h1": h.Rate, "ratio": u.Rate / h.Rate, "errors": float64(u.Errors + h.Errors)},
			fmt.Sprintf("%8.0f upgrades/s  %8.0f h1/s  errors %d+%d %s", u.Rate, h.Rate, u.Errors, h.Errors, firstNonEmpty(u.FirstError, h.FirstError)), nil
	})
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return "(" + x + ")"
		}
	}
	return ""
}
