//go:build linux

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/h2cgw/h2cgw/bench/internal/proc"
)

const mib = 1 << 20

// warmServer makes a few upgrades so that what a server allocates once (the
// first connection, lazily built tables) is in the "before" memory.
func (b *bench) warmServer(ctx context.Context, s *server, path string) error {
	_, err := b.upgradeload(ctx, s.addr, 30*time.Second, "-mode", "upgrade", "-c", "4", "-d", "300ms", "-path", path)
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// scenarioIdle is scenario 5: the server memory each idle upgraded
// connection costs.
func (b *bench) scenarioIdle(ctx context.Context) error {
	b.logf("scenario 5: idle upgraded connections")
	n := b.opt.idleConns
	cs := b.upgradeContenders(ctx)
	t := b.res.table(&table{
		id:    "5",
		title: fmt.Sprintf("Idle connection cost: %d upgraded connections held open", n),
		about: []string{fmt.Sprintf("A fresh server per round; a few upgrades to warm it, then VmRSS of its process tree before, "+
			"and %s after `bench/upgradeload -mode idle` has %d connections upgraded (stream 1 answered) and open. "+
			"Per connection = (after − before) / open. The harness raised RLIMIT_NOFILE to %s; the servers inherit it.",
			b.opt.settle, n, b.machine.nofile)},
		variants:   []string{""},
		contenders: cs,
		metrics: []metric{
			{key: "perconn", header: "KiB per connection", digits: 1},
			{key: "before", header: "RSS before (MiB)", digits: 1},
			{key: "after", header: "RSS with conns open (MiB)", digits: 1},
			{key: "open", header: "open", digits: 0},
			{key: "errors", header: "errors (sum)", digits: 0, sum: true},
		},
		ratios: []ratio{{ref: "h2cgw", metric: "perconn", header: "h2cgw / this, per connection"}},
	})
	return b.measure(ctx, t, func(_, _ int, c *contender) (map[string]float64, string, error) {
		return b.idleOnce(ctx, c, n)
	})
}

func (b *bench) idleOnce(ctx context.Context, c *contender, n int) (map[string]float64, string, error) {
	s, before, err := b.startSettled(ctx, c)
	if err != nil {
		return nil, "", err
	}
	defer s.stop()
	release, lr, err := b.holdConnections(ctx, s.addr, 3*time.Minute, "-n", fmt.Sprint(n), "-c", "64", "-path", c.path)
	if err != nil {
		return nil, "", err
	}
	defer release()
	if lr.Open == 0 {
		return nil, "", fmt.Errorf("no connection stayed open: %s", lr.FirstError)
	}
	if err := sleepCtx(ctx, b.opt.settle); err != nil {
		return nil, "", err
	}
	after, err := s.mem()
	if err != nil {
		return nil, "", fmt.Errorf("server gone with %d connections open: %w", lr.Open, err)
	}
	if lr.Open < n {
		b.note("Scenario 5, %s: only %d of %d connections opened (%s).", c.name, lr.Open, n, lr.FirstError)
	}
	sample := map[string]float64{
		"before":  float64(before.RSS) / mib,
		"after":   float64(after.RSS) / mib,
		"perconn": float64(after.RSS-before.RSS) / float64(lr.Open) / 1024,
		"open":    float64(lr.Open),
		"errors":  float64(lr.Errors),
	}
	return sample, fmt.Sprintf("%6.1f KiB/conn (%.1f → %.1f MiB, %v open)", sample["perconn"], sample["before"], sample["after"], sample["open"]), nil
}

// scenarioBodies is scenario 6: many concurrent upgrades with bodies at the
// limit (buffered before the 101) and past it (served on HTTP/1.1).
func (b *bench) scenarioBodies(ctx context.Context) error {
	b.logf("scenario 6: upgrade bodies")
	n, size := b.opt.bodyConns, b.opt.bodySize
	cs := b.upgradeContenders(ctx, fmt.Sprintf("--max-upgrade-body=%d", size))
	at := fmt.Sprintf("at the limit: %d B", size)
	past := fmt.Sprintf("past it: %d B", size+1)
	t := b.res.table(&table{
		id:    "6",
		title: fmt.Sprintf("Upgrade bodies: %d concurrent POSTs asking for h2c", n),
		about: []string{fmt.Sprintf("A fresh server per run; `bench/upgradeload -mode body` connects %d times, then sends on all at once "+
			"a POST with `Upgrade: h2c` and a body, and reads the answer (101 + HTTP/2, or HTTP/1.1 when declined). "+
			"Peak = VmHWM of the server's process tree after the run; growth = peak − VmRSS before. "+
			"h2cgw runs with --max-upgrade-body=%d; limit × concurrency = %.0f MiB. "+
			"x/net's h2c has no limit (its h2c.go reads the body with io.ReadAll); nghttpx forwards to the upstream (static file, which refuses POST).",
			n, size, float64(size)*float64(n)/mib)},
		variants:   []string{at, past},
		contenders: cs,
		metrics: []metric{
			{key: "peak", header: "peak RSS (MiB)", digits: 1},
			{key: "growth", header: "growth (MiB)", digits: 1},
			{key: "perconn", header: "growth per upgrade (KiB)", digits: 1},
			{key: "upgraded", header: "upgraded", digits: 0},
			{key: "h1", header: "served on h1", digits: 0},
			{key: "errors", header: "errors (sum)", digits: 0, sum: true},
		},
		ratios: []ratio{{ref: "h2cgw", metric: "peak", header: "h2cgw / this, peak"}},
	})
	return b.measure(ctx, t, func(_, vi int, c *contender) (map[string]float64, string, error) {
		return b.bodiesOnce(ctx, c, n, size+vi)
	})
}

func (b *bench) bodiesOnce(ctx context.Context, c *contender, n, size int) (map[string]float64, string, error) {
	s, before, err := b.startSettled(ctx, c)
	if err != nil {
		return nil, "", err
	}
	defer s.stop()
	lr, err := b.upgradeload(ctx, s.addr, 5*time.Minute,
		"-mode", "body", "-n", fmt.Sprint(n), "-size", fmt.Sprint(size), "-c", "64", "-timeout", "60s", "-path", c.path)
	if err != nil {
		return nil, "", err
	}
	after, err := s.mem()
	if err != nil {
		return nil, "", fmt.Errorf("server gone after the bodies: %w", err)
	}
	if lr.OK == 0 {
		return nil, "", fmt.Errorf("no request answered: %s", lr.FirstError)
	}
	if lr.Errors > 0 {
		b.note("Scenario 6, %s, %d-byte bodies: %d errors (%s).", c.name, size, lr.Errors, lr.FirstError)
	}
	growth := float64(after.HWM - before.RSS)
	sample := map[string]float64{
		"peak":     float64(after.HWM) / mib,
		"growth":   growth / mib,
		"perconn":  growth / float64(n) / 1024,
		"upgraded": float64(lr.Upgraded),
		"h1":       float64(lr.H1),
		"errors":   float64(lr.Errors),
	}
	return sample, fmt.Sprintf("peak %7.1f MiB  upgraded %v  h1 %v  errors %v", sample["peak"], sample["upgraded"], sample["h1"], sample["errors"]), nil
}

// startSettled starts a fresh server for c, warms it with a few upgrades,
// lets it settle, and returns it with its memory at that point: the baseline
// of scenarios 5 and 6. On error nothing is left running.
func (b *bench) startSettled(ctx context.Context, c *contender) (*server, proc.Mem, error) {
	s, err := c.start(ctx)
	if err != nil {
		return nil, proc.Mem{}, err
	}
	fail := func(err error) (*server, proc.Mem, error) {
		s.stop()
		return nil, proc.Mem{}, err
	}
	if err := b.warmServer(ctx, s, c.path); err != nil {
		return fail(fmt.Errorf("warm-up: %w", err))
	}
	if err := sleepCtx(ctx, b.opt.settle); err != nil {
		return fail(err)
	}
	before, err := s.mem()
	if err != nil {
		return fail(err)
	}
	return s, before, nil
}
