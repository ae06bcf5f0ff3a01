//go:build linux

// Command bench is h2cgw's benchmark harness: it builds h2cgw, the
// Go baselines under bench/baselines and the load client bench/upgradeload,
// starts the peers nghttpx and h2o where installed, runs every scenario with
// the contenders alternating inside each round, and prints one markdown table
// per scenario with the median over rounds and the ratio h2cgw/peer.
//
//	go run ./bench -rounds 3 -duration 5s
//
// Everything listens on 127.0.0.1. Every process the harness starts is in
// its own process group and is killed when the harness ends, also on Ctrl-C.
// Builds, logs, profiles and the results file go to bench/out/<time>/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/h2cgw/h2cgw/bench/internal/proc"
)

type options struct {
	rounds         int
	duration       time.Duration
	warmup         time.Duration
	scenarios      string
	h2loadThreads  int
	upgradeWorkers int
	idleConns      int
	bodyConns      int
	bodySize       int
	staticSize     int
	nghttpxWorkers int
	h2oThreads     int
	settle         time.Duration
	profile        string
	out            string
	install        bool
	timeout        time.Duration
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; every contender runs once per round, in rotating order")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time of each load run")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each load run (h2load --warm-up-time; a discarded upgradeload run)")
	fs.StringVar(&o.scenarios, "scenarios", "1,2,3,4,5,6", "scenarios to run, comma-separated: 1 local, 2 proxy-h1, 3 proxy-h2c, 4 upgrade, 5 idle, 6 bodies")
	fs.IntVar(&o.h2loadThreads, "h2load-threads", 1, "h2load -t")
	fs.IntVar(&o.upgradeWorkers, "upgrade-workers", 16, "scenario 4: concurrent connect→request→close workers")
	fs.IntVar(&o.idleConns, "idle-conns", 5000, "scenario 5: upgraded connections held open")
	fs.IntVar(&o.bodyConns, "body-conns", 1000, "scenario 6: concurrent upgrades with bodies")
	fs.IntVar(&o.bodySize, "body-size", 1<<20, "scenario 6: body size at the limit (h2cgw's --max-upgrade-body is set to it); past the limit is this + 1")
	fs.IntVar(&o.staticSize, "static-size", 1024, "size of the upstream's static file (scenarios 2, 3)")
	fs.IntVar(&o.nghttpxWorkers, "nghttpx-workers", 1, "nghttpx --workers (1: one core of two for the proxy, one for h2load and the upstream)")
	fs.IntVar(&o.h2oThreads, "h2o-threads", 1, "h2o num-threads of the upstream")
	fs.DurationVar(&o.settle, "settle", time.Second, "scenarios 5, 6: wait before reading a server's memory")
	fs.StringVar(&o.profile, "profile", "proxy-h1", "CPU profiles to take after the scenarios (comma-separated: proxy-h1, proxy-h2c, local, naive-proxy-h1; \"\" for none)")
	fs.StringVar(&o.out, "out", "", "output directory (default bench/out/<time> in the module)")
	fs.BoolVar(&o.install, "install", false, "apt-get install missing peers and load tools (needs root)")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Hour, "bound on the whole run")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.rounds < 1 || o.rounds > 100 {
		return o, errors.New("-rounds must be 1…100")
	}
	if o.duration <= 0 || o.warmup < 0 {
		return o, errors.New("-duration must be positive and -warmup not negative")
	}
	if o.idleConns < 1 || o.bodyConns < 1 || o.bodySize < 1 || o.upgradeWorkers < 1 {
		return o, errors.New("-idle-conns, -body-conns, -body-size and -upgrade-workers must be positive")
	}
	return o, nil
}

func main() {
	o, err := parseOptions(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	b, err := newBench(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	// Whatever happens — the end, an error, Ctrl-C — every process started
	// goes: as soon as the context ends, so that a run blocked on a child
	// returns at once, and at the end.
	unwatch := context.AfterFunc(ctx, b.g.StopAll)
	err = b.run(ctx)
	unwatch()
	b.g.StopAll()
	if n := b.g.Running(); n > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d processes could not be stopped\n", n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if ctx.Err() != nil {
			os.Exit(130)
		}
		os.Exit(1)
	}
}

// bench is one run of the harness.
type bench struct {
	opt     options
	root    string // the module root
	out     string // this run's output directory
	bin     string // built programs
	g       *proc.Group
	tools   tools
	machine machine

	// built maps a program name to its binary; failed to why it did not
	// build.
	built  map[string]string
	failed map[string]string

	res   *results
	notes []string
	// profiles are the pprof -top outputs, by target.
	profiles []profileOut

	upstream *server // h2o (or the Go fallback), shared by scenarios 2–6
	ports    map[string]bool
}

func newBench(o options) (*bench, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	out := o.out
	if out == "" {
		out = filepath.Join(root, "bench", "out", time.Now().Format("20060102-150405"))
	}
	for _, d := range []string{out, filepath.Join(out, "bin"), filepath.Join(out, "logs"), filepath.Join(out, "conf"), filepath.Join(out, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return &bench{
		opt:    o,
		root:   root,
		out:    out,
		bin:    filepath.Join(out, "bin"),
		g:      &proc.Group{LogDir: filepath.Join(out, "logs")},
		built:  map[string]string{},
		failed: map[string]string{},
		res:    newResults(),
		ports:  map[string]bool{},
	}, nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (b *bench) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

func (b *bench) run(ctx context.Context) error {
	b.machine = readMachine(b.root)
	b.machine.nofile = raiseNofile(2*b.opt.idleConns + 4096)
	b.logf("machine: %s", b.machine.line())
	b.logf("output: %s", b.out)

	if err := b.checkTools(ctx); err != nil {
		return err
	}
	if err := b.buildAll(ctx); err != nil {
		return err
	}

	want := map[string]bool{}
	for _, s := range strings.Split(b.opt.scenarios, ",") {
		want[strings.TrimSpace(s)] = true
	}
	scenarios := []struct {
		id  string
		run func(context.Context) error
	}{
		{"1", b.scenarioLocal},
		{"2", func(ctx context.Context) error { return b.scenarioProxy(ctx, "http") }},
		{"3", func(ctx context.Context) error { return b.scenarioProxy(ctx, "h2c") }},
		{"4", b.scenarioUpgrade},
		{"5", b.scenarioIdle},
		{"6", b.scenarioBodies},
	}
	var runErr error
	for _, s := range scenarios {
		if !want[s.id] {
			continue
		}
		if err := s.run(ctx); err != nil {
			if ctx.Err() != nil {
				runErr = ctx.Err()
				break
			}
			b.logf("scenario %s failed: %v", s.id, err)
			b.note("Scenario %s stopped early: %v", s.id, oneLine(err))
		}
	}
	if runErr == nil && b.opt.profile != "" {
		if err := b.runProfiles(ctx); err != nil && ctx.Err() != nil {
			runErr = ctx.Err()
		}
	}
	if b.upstream != nil {
		b.upstream.stop()
	}
	b.machine.loadEnd = readLoadavg()
	report := b.report()
	fmt.Print(report)
	path := filepath.Join(b.out, "results.md")
	if err := os.WriteFile(path, []byte(report), 0o644); err == nil {
		b.logf("results written to %s", path)
	}
	return runErr
}

func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
