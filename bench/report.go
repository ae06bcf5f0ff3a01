//go:build linux

package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/h2cgw/h2cgw/bench/internal/stats"
)

// metric is one measured column of a table.
type metric struct {
	key    string
	header string
	digits int
	// sum shows the total over rounds instead of the median (error
	// counts).
	sum bool
}

// ratio is one ratio column: ref's median of metric over the row's, for rows
// in ref's group.
type ratio struct {
	ref    string
	metric string
	header string
}

// table is a scenario's report.
type table struct {
	id         string
	title      string
	variants   []string // sub-cases (loads); one "" when there are none
	contenders []*contender
	metrics    []metric
	ratios     []ratio
	about      []string // lines printed under the title
}

type cellKey struct{ table, variant, contender string }

type cell struct {
	samples map[string][]float64
	rounds  int      // rounds that produced a sample
	errs    []string // one per failed round
}

type results struct {
	tables []*table
	cells  map[cellKey]*cell
}

func newResults() *results { return &results{cells: map[cellKey]*cell{}} }

func (r *results) table(t *table) *table {
	r.tables = append(r.tables, t)
	return t
}

func (r *results) cell(t *table, variant, contender string) *cell {
	k := cellKey{t.id, variant, contender}
	c := r.cells[k]
	if c == nil {
		c = &cell{samples: map[string][]float64{}}
		r.cells[k] = c
	}
	return c
}

// add records one round's measurements.
func (r *results) add(t *table, variant, contender string, m map[string]float64) {
	c := r.cell(t, variant, contender)
	c.rounds++
	for k, v := range m {
		c.samples[k] = append(c.samples[k], v)
	}
}

// fail records a failed round.
func (r *results) fail(t *table, variant, contender string, err error) {
	c := r.cell(t, variant, contender)
	c.errs = append(c.errs, oneLine(err))
}

func (r *results) value(t *table, variant, contender string, m metric) float64 {
	c := r.cells[cellKey{t.id, variant, contender}]
	if c == nil || len(c.samples[m.key]) == 0 {
		return math.NaN()
	}
	if m.sum {
		s := 0.0
		for _, v := range c.samples[m.key] {
			s += v
		}
		return s
	}
	return stats.Median(c.samples[m.key])
}

func format(v float64, digits int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	if digits == 0 && math.Abs(v) >= 1000 {
		return groupThousands(fmt.Sprintf("%.0f", v))
	}
	return fmt.Sprintf("%.*f", digits, v)
}

func groupThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func (b *bench) report() string {
	var w strings.Builder
	fmt.Fprintf(&w, "\n# h2cgw benchmark\n\n")
	fmt.Fprintf(&w, "- Machine: %s; loadavg at end %s.\n", b.machine.line(), b.machine.loadEnd)
	fmt.Fprintf(&w, "- Command: `%s`\n", commandLine())
	fmt.Fprintf(&w, "- %d round(s); in each round every contender runs once, in an order rotated by one every round; "+
		"each table shows the median over rounds. Ratios are h2cgw's median over the row's median, inside a group "+
		"(for latency and memory, lower is better, so a ratio below 1 favours h2cgw).\n", b.opt.rounds)
	fmt.Fprintf(&w, "- Load runs: %s measured after %s of warm-up; h2load -t %d, prior knowledge (http://).\n",
		b.opt.duration, b.opt.warmup, b.opt.h2loadThreads)
	fmt.Fprintf(&w, "- Go servers run with GOMAXPROCS = %d (the default); nghttpx with %d worker(s); the h2o upstream with %d thread(s). All on 127.0.0.1.\n",
		b.machine.nproc, b.opt.nghttpxWorkers, b.opt.h2oThreads)
	fmt.Fprintf(&w, "- Logs, configs and profiles: `%s`.\n", b.out)
	if len(b.res.tables) > 0 {
		b.writeTargets(&w)
	}
	for _, t := range b.res.tables {
		b.writeTable(&w, t)
	}
	if len(b.profiles) > 0 {
		fmt.Fprintf(&w, "\n## CPU profiles\n")
		for _, p := range b.profiles {
			fmt.Fprintf(&w, "\n### %s\n\n%s\n\n```\n%s\n```\n", p.title, p.about, strings.TrimRight(p.top, "\n"))
		}
	}
	if len(b.notes) > 0 {
		fmt.Fprintf(&w, "\n## Notes\n\n")
		for _, n := range b.notes {
			fmt.Fprintf(&w, "- %s\n", n)
		}
	}
	return w.String()
}

func (b *bench) writeTable(w *strings.Builder, t *table) {
	fmt.Fprintf(w, "\n## %s. %s\n\n", t.id, t.title)
	for _, a := range t.about {
		fmt.Fprintf(w, "%s\n", a)
	}
	if len(t.about) > 0 {
		w.WriteString("\n")
	}
	hasVariant := len(t.variants) > 1 || (len(t.variants) == 1 && t.variants[0] != "")
	head := []string{"contender"}
	if hasVariant {
		head = append(head, "case")
	}
	for _, m := range t.metrics {
		head = append(head, m.header)
	}
	for _, r := range t.ratios {
		head = append(head, r.header)
	}
	head = append(head, "rounds")
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	seps := make([]string, len(head))
	for i := range seps {
		seps[i] = "---"
		if i > 0 {
			seps[i] = "---:"
		}
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	byName := map[string]*contender{}
	for _, c := range t.contenders {
		byName[c.name] = c
	}
	var failures []string
	for _, v := range t.variants {
		for _, c := range t.contenders {
			row := []string{c.name}
			if c.ours {
				row[0] = "**" + c.name + "**"
			}
			if hasVariant {
				row = append(row, v)
			}
			cl := b.res.cells[cellKey{t.id, v, c.name}]
			if c.missing != "" && (cl == nil || cl.rounds == 0) {
				row = append(row, "n/a: "+c.missing)
				for range len(t.metrics) - 1 + len(t.ratios) {
					row = append(row, "")
				}
				row = append(row, "0")
				fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
				continue
			}
			for _, m := range t.metrics {
				row = append(row, format(b.res.value(t, v, c.name, m), m.digits))
			}
			for _, r := range t.ratios {
				ref := byName[r.ref]
				if ref == nil || ref.group != c.group {
					row = append(row, "")
					continue
				}
				var m metric
				for _, x := range t.metrics {
					if x.key == r.metric {
						m = x
					}
				}
				num := b.res.value(t, v, ref.name, m)
				den := b.res.value(t, v, c.name, m)
				if math.IsNaN(num) || math.IsNaN(den) || den == 0 {
					row = append(row, "–")
					continue
				}
				row = append(row, fmt.Sprintf("%.2f×", num/den))
			}
			rounds, nerr := 0, 0
			if cl != nil {
				rounds, nerr = cl.rounds, len(cl.errs)
				for _, e := range slices.Compact(slices.Clone(cl.errs)) {
					label := c.name
					if hasVariant {
						label += ", " + v
					}
					failures = append(failures, fmt.Sprintf("%s: %s", label, e))
				}
			}
			row = append(row, fmt.Sprintf("%d/%d", rounds, rounds+nerr))
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
	}
	if len(failures) > 0 {
		fmt.Fprintf(w, "\nFailed rounds:\n")
		for _, f := range failures {
			fmt.Fprintf(w, "- %s\n", f)
		}
	}
}

// commandLine is how this run was started, as the user would type it.
func commandLine() string {
	args := []string{"go", "run", "./bench"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " \t\"'$;&|") || a == "" {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}
