//go:build linux

package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profileOut is one CPU profile's pprof -top, for the report.
type profileOut struct {
	title string
	about string
	top   string
}

// profileTarget is a server the harness can profile under h2load -c 64 -m
// 100. The h2cgw binary serves no pprof endpoint, so h2cgw is profiled as
// bench/h2cgwlib: the same gateway library and proxy, without cmd/h2cgw's
// access log and metrics.
type profileTarget struct {
	title string
	prog  string
	args  func(up string) []string
	path  string
	// upstream is the upstream scheme ("" for none).
	upstream string
}

var profileTargets = map[string]profileTarget{
	"proxy-h1": {title: "h2cgw (library + proxy.New) → HTTP/1.1 upstream", prog: "h2cgwlib", upstream: "http", path: staticPath,
		args: func(up string) []string { return []string{"-handler", "proxy", "-upstream", up} }},
	"proxy-h2c": {title: "h2cgw (library + proxy.New) → h2c upstream", prog: "h2cgwlib", upstream: "h2c", path: staticPath,
		args: func(up string) []string { return []string{"-handler", "proxy", "-upstream", up} }},
	"local": {title: "h2cgw (library), echo handler", prog: "h2cgwlib", path: "/",
		args: func(string) []string { return []string{"-handler", "echo"} }},
	"naive-proxy-h1": {title: "naive x/net h2c + ReverseProxy → HTTP/1.1 upstream", prog: "naiveproxy", upstream: "http", path: staticPath,
		args: func(up string) []string { return []string{"-upstream", up} }},
}

func (b *bench) runProfiles(ctx context.Context) error {
	for _, name := range strings.Split(b.opt.profile, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		pt, ok := profileTargets[name]
		if !ok {
			b.note("Unknown -profile target %q (proxy-h1, proxy-h2c, local, naive-proxy-h1).", name)
			continue
		}
		for _, l := range loads {
			p, err := b.profileOnce(ctx, name, pt, l)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				b.logf("profile %s %s: %v", name, l.name, err)
				b.note("CPU profile %s (%s) failed: %s", name, l.name, oneLine(err))
				continue
			}
			b.profiles = append(b.profiles, p)
		}
	}
	return nil
}

func (b *bench) profileOnce(ctx context.Context, name string, pt profileTarget, l load) (profileOut, error) {
	var out profileOut
	if why := b.need([]string{pt.prog}, "h2load"); why != "" {
		return out, fmt.Errorf("%s", why)
	}
	b.logf("profiling %s, h2load %s", name, l.name)
	var upURL string
	if pt.upstream != "" {
		up, err := b.startFreshUpstream(ctx)
		if err != nil {
			return out, err
		}
		defer up.stop()
		upURL = pt.upstream + "://" + up.addr
	}
	prof := filepath.Join(b.out, fmt.Sprintf("profile-%s-c%d-m%d.pprof", name, l.c, l.m))
	args := append(pt.args(upURL), "-cpuprofile", prof)
	s, err := b.startGo(ctx, "profile-"+name, pt.prog, args...)
	if err != nil {
		return out, err
	}
	res, err := b.h2load(ctx, "http://"+s.addr+pt.path, l.c, l.m)
	// SIGTERM makes the program stop the profile and exit.
	s.stop()
	if err != nil {
		return out, err
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var top []byte
	// Flat first (where the CPU is), then cumulative (which call paths
	// lead there): flat alone is mostly Syscall6 for a proxy.
	for _, view := range [][]string{{"-top"}, {"-top", "-cum"}} {
		args := append(append([]string{"tool", "pprof"}, view...), "-nodecount=15", b.built[pt.prog], prof)
		cmd := exec.CommandContext(pctx, "go", args...)
		cmd.Dir = b.root
		t, err := cmd.CombinedOutput()
		if err != nil {
			return out, fmt.Errorf("go tool pprof: %v: %s", err, t)
		}
		if len(top) > 0 {
			// The header lines are the same: keep the table only.
			if i := strings.Index(string(t), "      flat"); i >= 0 {
				t = append([]byte("\n-cum:\n"), t[i:]...)
			}
		}
		top = append(top, t...)
	}
	out.title = fmt.Sprintf("%s, h2load %s", pt.title, l.name)
	out.about = fmt.Sprintf("`%s %s`, h2load %s for %s (after %s warm-up, which the profile includes): %.0f req/s, p99 %.2f ms. "+
		"Profile: `%s`; the full view: `go tool pprof -http=: %s %s`.",
		pt.prog, strings.Join(args, " "), l.name, b.opt.duration, b.opt.warmup, res.rps, res.p99, prof, b.built[pt.prog], prof)
	out.top = string(top)
	return out, nil
}
