//go:build linux

package main

import (
	"fmt"
	"math"
	"strings"
)

// targetRow is one line of the summary against the performance targets
// (README "Performance").
type targetRow struct {
	what, got, target string
	met               float64 // 1 met, 0 missed, NaN unknown
}

// median of one cell's metric, NaN when absent.
func (b *bench) median(tableID, variant, contender, key string) float64 {
	for _, t := range b.res.tables {
		if t.id == tableID {
			return b.res.value(t, variant, contender, metric{key: key})
		}
	}
	return math.NaN()
}

func verdict(ok bool, vals ...float64) float64 {
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return math.NaN()
		}
	}
	if ok {
		return 1
	}
	return 0
}

// targets compares the run with the performance targets.
func (b *bench) targets() []targetRow {
	var rows []targetRow
	ratioRow := func(what, tbl, variant, num, den, key string, min float64) {
		n, d := b.median(tbl, variant, num, key), b.median(tbl, variant, den, key)
		r := n / d
		rows = append(rows, targetRow{what: what, got: fmt.Sprintf("%s×", format(r, 2)), target: fmt.Sprintf("≥ %.1f×", min), met: verdict(r >= min, r)})
	}
	for _, l := range loads {
		ratioRow("local handler, log off / bare x/net, req/s, "+l.name, "1", l.name, "h2cgw (log off)", "x/net bare", "rps", 1.0)
	}
	for _, l := range loads {
		ratioRow("local handler, log on / bare x/net, req/s, "+l.name, "1", l.name, "h2cgw (log on)", "x/net bare", "rps", 0.9)
	}
	for _, l := range loads {
		ratioRow("proxy → HTTP/1.1, h2cgw (log off) / nghttpx, req/s, "+l.name, "2", l.name, "h2cgw (log off)", "nghttpx", "rps", 1.0)
	}
	// Scenario 4's ratio is already upgrades / h1 of the same server.
	up := b.median("4", "", "h2cgw", "ratio")
	rows = append(rows, targetRow{what: "upgrade handshakes / plain h1 connections, same h2cgw", got: format(up, 2) + "×", target: "≥ 0.8×", met: verdict(up >= 0.8, up)})
	idle := b.median("5", "", "h2cgw", "perconn")
	rows = append(rows, targetRow{what: "idle upgraded connection, h2cgw", got: format(idle, 1) + " KiB", target: "≤ 20 KiB", met: verdict(idle <= 20, idle)})
	at := fmt.Sprintf("at the limit: %d B", b.opt.bodySize)
	growth := b.median("6", at, "h2cgw", "growth")
	limit := float64(b.opt.bodySize) * float64(b.opt.bodyConns) / mib
	rows = append(rows, targetRow{
		what:   fmt.Sprintf("%d concurrent upgrades at the body limit, h2cgw peak RSS growth", b.opt.bodyConns),
		got:    format(growth, 0) + " MiB (peak " + format(b.median("6", at, "h2cgw", "peak"), 0) + " MiB)",
		target: fmt.Sprintf("≤ limit × concurrency = %.0f MiB + overhead", limit),
		met:    verdict(growth <= limit, growth),
	})
	return rows
}

func (b *bench) writeTargets(w *strings.Builder) {
	rows := b.targets()
	fmt.Fprintf(w, "\n## Targets (ratios from this run)\n\n| target | this run | wanted | |\n|---|---:|---:|---|\n")
	for _, r := range rows {
		var mark string
		switch r.met {
		case 1:
			mark = "met"
		case 0:
			mark = "**missed**"
		default:
			continue // the scenario did not run or had no h2cgw row
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.what, r.got, r.target, mark)
	}
}
