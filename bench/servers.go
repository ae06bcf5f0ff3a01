package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/h2cgw/h2cgw/bench/internal/proc"
)

// server is a started contender or upstream.
type server struct {
	name string
	addr string // host:port it listens on
	p    *proc.Proc
}

// stop ends the server's whole process group.
func (s *server) stop() {
	if s != nil && s.p != nil {
		s.p.Stop(3 * time.Second)
	}
}

// mem is the server's process tree memory.
func (s *server) mem() (proc.Mem, error) { return proc.TreeMem(s.p.Pid()) }

// contender is one row of a table: how to start it and how to count it.
type contender struct {
	name string
	// group is the set of rows compared with each other: ratios are only
	// computed inside a group.
	group string
	// ours marks h2cgw rows (the numerators of the ratios).
	ours bool
	// path is the request path the load uses.
	path string
	// start starts it, fresh.
	start func(ctx context.Context) (*server, error)
	// missing says why it cannot run ("" when it can).
	missing string
}

const startTimeout = 15 * time.Second

// startGo starts one of the built Go programs (h2cgw, a baseline, h2cgwlib)
// on 127.0.0.1:0 and waits for its "listening" line (CONTRACTS: the binary's
// startup line; the harness's own programs write the same).
func (b *bench) startGo(ctx context.Context, name, prog string, args ...string) (*server, error) {
	path := b.built[prog]
	if path == "" {
		return nil, fmt.Errorf("%s did not build", prog)
	}
	p, err := b.g.Start(name, append([]string{path}, args...), proc.Options{})
	if err != nil {
		return nil, err
	}
	m, err := p.WaitJSONLine(ctx, startTimeout, func(m map[string]any) bool {
		return m["message"] == "listening"
	})
	if err != nil {
		p.Stop(time.Second)
		return nil, err
	}
	addr, _ := m["listen"].(string)
	if addr == "" {
		p.Stop(time.Second)
		return nil, fmt.Errorf("%s: startup line without \"listen\"", name)
	}
	return &server{name: name, addr: addr, p: p}, nil
}

// h2cgwArgs are the flags every h2cgw contender gets: loopback, port 0, no
// admin listener (nothing scrapes it during the run).
func h2cgwArgs(extra ...string) []string {
	return append([]string{"--listen=127.0.0.1:0", "--admin-listen="}, extra...)
}

// freePort returns a loopback port nothing listens on now, for the peers
// that cannot report a port 0 choice. Ports are not handed out twice in a
// run.
func (b *bench) freePort() (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		key := fmt.Sprint(port)
		if !b.ports[key] {
			b.ports[key] = true
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}

// waitPort waits until addr accepts a connection.
func waitPort(ctx context.Context, p *proc.Proc, addr string) error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("%s exited (%v); log tail:\n%s", p.Name, p.Err(), p.Tail(2048))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %s not accepting after %s; log tail:\n%s", p.Name, addr, startTimeout, p.Tail(2048))
}

// startNghttpx starts nghttpx as an h2c reverse proxy: a cleartext frontend
// (HTTP/1.1, the h2c upgrade and prior knowledge) to one backend, HTTP/1.1 or
// (proto "h2") h2c. Access log off, as in nghttpx's defaults; workers from
// -nghttpx-workers.
func (b *bench) startNghttpx(ctx context.Context, name, backend, proto string) (*server, error) {
	if b.tools.nghttpx == "" {
		return nil, errors.New("nghttpx not installed")
	}
	port, err := b.freePort()
	if err != nil {
		return nil, err
	}
	host, bport, err := net.SplitHostPort(backend)
	if err != nil {
		return nil, err
	}
	be := fmt.Sprintf("backend=%s,%s", host, bport)
	if proto == "h2" {
		be += ";;proto=h2"
	}
	conf := strings.Join([]string{
		fmt.Sprintf("frontend=127.0.0.1,%d;no-tls", port),
		be,
		fmt.Sprintf("workers=%d", b.opt.nghttpxWorkers),
		"",
	}, "\n")
	confPath := filepath.Join(b.out, "conf", fmt.Sprintf("nghttpx-%d.conf", port))
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := b.g.Start(name, []string{b.tools.nghttpx, "--conf=" + confPath}, proc.Options{})
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitPort(ctx, p, addr); err != nil {
		p.Stop(time.Second)
		return nil, err
	}
	return &server{name: name, addr: addr, p: p}, nil
}

// startFreshUpstream starts a new upstream (h2o or the Go fallback) on a
// new port, not shared: the caller stops it.
func (b *bench) startFreshUpstream(ctx context.Context) (*server, error) {
	if b.tools.h2o != "" {
		return b.startH2O(ctx)
	}
	return b.startGo(ctx, "upstream (Go fallback)", "upstream", "-size", fmt.Sprint(b.opt.staticSize))
}

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// startUpstream starts the upstream of the proxy scenarios: h2o serving a
// static file, HTTP/1.1 and h2c with prior knowledge on one port; without
// h2o, the Go fallback (bench/baselines/upstream) doing the same.
func (b *bench) startUpstream(ctx context.Context) (*server, error) {
	if b.upstream != nil && !b.upstream.p.Exited() {
		return b.upstream, nil
	}
	var (
		s   *server
		err error
	)
	if b.tools.h2o != "" {
		s, err = b.startH2O(ctx)
	} else {
		s, err = b.startGo(ctx, "upstream (Go fallback)", "upstream", "-size", fmt.Sprint(b.opt.staticSize))
		if err == nil {
			b.note("h2o is not installed: the upstream is the Go fallback (net/http, HTTP/1.1 and h2c), not h2o.")
		}
	}
	if err != nil {
		return nil, err
	}
	b.upstream = s
	return s, nil
}

// staticPath is the file the upstream serves.
const staticPath = "/small.txt"

func (b *bench) startH2O(ctx context.Context) (*server, error) {
	port, err := b.freePort()
	if err != nil {
		return nil, err
	}
	www := filepath.Join(b.out, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(www, strings.TrimPrefix(staticPath, "/")), []byte(strings.Repeat("x", b.opt.staticSize)), 0o644); err != nil {
		return nil, err
	}
	var user string
	if os.Geteuid() == 0 {
		// h2o drops root for "nobody" by default, who may not read the
		// output directory.
		user = "user: root\n"
	}
	conf := fmt.Sprintf(`listen:
  host: 127.0.0.1
  port: %d
num-threads: %d
max-connections: 100000
%shosts:
  "default":
    paths:
      /:
        file.dir: %s
`, port, b.opt.h2oThreads, user, www)
	confPath := filepath.Join(b.out, "conf", fmt.Sprintf("h2o-%d.conf", port))
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := b.g.Start("h2o upstream", []string{b.tools.h2o, "-c", confPath}, proc.Options{})
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitPort(ctx, p, addr); err != nil {
		p.Stop(time.Second)
		return nil, err
	}
	return &server{name: "h2o", addr: addr, p: p}, nil
}

// startAll starts every contender that can run, returning them by name;
// one that fails to start is recorded as missing.
func (b *bench) startAll(ctx context.Context, cs []*contender) map[string]*server {
	out := map[string]*server{}
	for _, c := range cs {
		if c.missing != "" {
			continue
		}
		s, err := c.start(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return out
			}
			c.missing = "did not start: " + oneLine(err)
			b.logf("%s did not start: %v", c.name, err)
			continue
		}
		out[c.name] = s
	}
	return out
}

func stopAll(ss map[string]*server) {
	for _, s := range ss {
		s.stop()
	}
}

// rotate returns cs rotated by r: every contender takes every position over
// the rounds, so that no one is always first (cold) or last (after the
// others heated the machine).
func rotate[T any](cs []T, r int) []T {
	if len(cs) == 0 {
		return cs
	}
	r %= len(cs)
	return append(append([]T(nil), cs[r:]...), cs[:r]...)
}
