//go:build linux

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

// startServer starts argv and waits until ready, which returns the address
// it serves on; a server that does not come up is stopped, so that no
// failed start is left running.
func (b *bench) startServer(ctx context.Context, name string, argv []string, ready func(*proc.Proc) (string, error)) (*server, error) {
	p, err := b.g.Start(name, argv, proc.Options{})
	if err != nil {
		return nil, err
	}
	addr, err := ready(p)
	if err != nil {
		p.Stop(time.Second)
		return nil, err
	}
	return &server{addr: addr, p: p}, nil
}

// startGo starts one of the built Go programs (h2cgw, a baseline, h2cgwlib)
// on 127.0.0.1:0 and waits for its "listening" line (README "Logs": the binary's
// startup line; the harness's own programs write the same).
func (b *bench) startGo(ctx context.Context, name, prog string, args ...string) (*server, error) {
	path := b.built[prog]
	if path == "" {
		return nil, fmt.Errorf("%s did not build", prog)
	}
	return b.startServer(ctx, name, append([]string{path}, args...), func(p *proc.Proc) (string, error) {
		m, err := p.WaitJSONLine(ctx, startTimeout, func(m map[string]any) bool {
			return m["message"] == "listening"
		})
		if err != nil {
			return "", err
		}
		addr, _ := m["listen"].(string)
		if addr == "" {
			return "", fmt.Errorf("%s: startup line without \"listen\"", name)
		}
		return addr, nil
	})
}

// goServer is a contender's start for startGo.
func (b *bench) goServer(name, prog string, args ...string) func(context.Context) (*server, error) {
	return func(ctx context.Context) (*server, error) { return b.startGo(ctx, name, prog, args...) }
}

// startPeer starts a peer (nghttpx, h2o) on a free port, with the
// configuration conf makes for that port written to conf/KIND-PORT.conf and
// passed by argv, and waits until the port accepts: the peers cannot report
// a port 0 choice.
func (b *bench) startPeer(ctx context.Context, name, kind string, conf func(port int) string, argv func(confPath string) []string) (*server, error) {
	port, err := b.freePort()
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(b.out, "conf", fmt.Sprintf("%s-%d.conf", kind, port))
	if err := os.WriteFile(confPath, []byte(conf(port)), 0o644); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return b.startServer(ctx, name, argv(confPath), func(p *proc.Proc) (string, error) {
		return addr, p.WaitFor(ctx, startTimeout, "accepting on "+addr, func() bool {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	})
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

// startNghttpx starts nghttpx as an h2c reverse proxy: a cleartext frontend
// (HTTP/1.1, the h2c upgrade and prior knowledge) to one backend, HTTP/1.1 or
// (proto "h2") h2c. Access log off, as in nghttpx's defaults; workers from
// -nghttpx-workers.
func (b *bench) startNghttpx(ctx context.Context, name, backend, proto string) (*server, error) {
	if b.tools["nghttpx"] == "" {
		return nil, errors.New("nghttpx not installed")
	}
	host, bport, err := net.SplitHostPort(backend)
	if err != nil {
		return nil, err
	}
	be := fmt.Sprintf("backend=%s,%s", host, bport)
	if proto == "h2" {
		be += ";;proto=h2"
	}
	conf := func(port int) string {
		return strings.Join([]string{
			fmt.Sprintf("frontend=127.0.0.1,%d;no-tls", port),
			be,
			fmt.Sprintf("workers=%d", b.opt.nghttpxWorkers),
			"",
		}, "\n")
	}
	return b.startPeer(ctx, name, "nghttpx", conf, func(confPath string) []string {
		return []string{b.tools["nghttpx"], "--conf=" + confPath}
	})
}

// startFreshUpstream starts a new upstream (h2o or the Go fallback) on a
// new port, not shared: the caller stops it.
func (b *bench) startFreshUpstream(ctx context.Context) (*server, error) {
	if b.tools["h2o"] != "" {
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
// h2o, the Go fallback (bench/baselines/upstream) doing the same. It is
// started once and shared (b.upstream) while it runs.
func (b *bench) startUpstream(ctx context.Context) (*server, error) {
	if b.upstream != nil && !b.upstream.p.Exited() {
		return b.upstream, nil
	}
	s, err := b.startFreshUpstream(ctx)
	if err != nil {
		return nil, err
	}
	if b.tools["h2o"] == "" {
		b.note("h2o is not installed: the upstream is the Go fallback (net/http, HTTP/1.1 and h2c), not h2o.")
	}
	b.upstream = s
	return s, nil
}

// staticPath is the file the upstream serves.
const staticPath = "/small.txt"

func (b *bench) startH2O(ctx context.Context) (*server, error) {
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
	conf := func(port int) string {
		return fmt.Sprintf(`listen:
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
	}
	return b.startPeer(ctx, "h2o upstream", "h2o", conf, func(confPath string) []string {
		return []string{b.tools["h2o"], "-c", confPath}
	})
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
