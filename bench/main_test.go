//go:build linux

package main

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// h2loadOutput is h2load 1.52's summary as printed on this machine (a run
// against a 404, so every response counts as failed).
const h2loadOutput = `finished in 1.30s, 305320.00 req/s, 10.19MB/s
requests: 305320 total, 305320 started, 305320 done, 0 succeeded, 305320 failed, 0 errored, 0 timeout
status codes: 0 2xx, 0 3xx, 305320 4xx, 0 5xx
traffic: 10.19MB (10683736) total, 5.82MB (6106400) headers (space savings 90.02%), 2.62MB (2747880) data
                     min         max         mean         sd        +/- sd
time for request:       41us      2.85ms       1.17ms       398us    64.86%
`

func TestParseH2load(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantRPS float64
		wantBad int
		wantErr bool
	}{
		{"all failed", h2loadOutput, 0, 305320, false},
		{"in-flight 2xx beyond done", `finished in 2.02s, 4587.50 req/s, 4.77MB/s
requests: 9175 total, 15575 started, 9175 done, 9175 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 9776 2xx, 0 3xx, 0 4xx, 0 5xx`, 4587.5, 0, false},
		{"half failed", `finished in 1.00s, 1000.00 req/s, 1MB/s
requests: 1000 total, 1000 started, 1000 done, 500 succeeded, 500 failed, 0 errored, 0 timeout
status codes: 500 2xx, 0 3xx, 0 4xx, 500 5xx`, 500, 500, false},
		{"nothing done", `finished in 1.00s, 0.00 req/s, 0B/s
requests: 0 total, 0 started, 0 done, 0 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 0 2xx, 0 3xx, 0 4xx, 0 5xx`, 0, 0, true},
		{"garbage", "connect: connection refused", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseH2load(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseH2load error = %v; want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if r.rps != tt.wantRPS || r.bad != tt.wantBad {
				t.Errorf("parseH2load: rps %v, bad %d; want %v, %d", r.rps, r.bad, tt.wantRPS, tt.wantBad)
			}
		})
	}
}

func TestReadLatencies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("1795692125326262\t200\t2680\n1795692125326261\t200\t1000\nbad line\n1\t-1\t-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readLatencies(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{2.68, 1}; !slices.Equal(got, want) {
		t.Errorf("readLatencies = %v; want %v", got, want)
	}
}

func TestParseLoadResult(t *testing.T) {
	out := []byte("some noise\n" + `{"mode":"idle","ok":10,"errors":1,"upgraded":10,"h1":0,"open":10,"elapsed_s":0.5,"rate":20,"status":{"200":10},"first_error":"x"}` + "\n")
	r, err := parseLoadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Open != 10 || r.Errors != 1 || r.Status["200"] != 10 {
		t.Errorf("parseLoadResult = %+v; want open 10, errors 1, 10 × 200", r)
	}
	if _, err := parseLoadResult([]byte("not json")); err == nil {
		t.Error("parseLoadResult(not json): no error; want one")
	}
}

func TestRotate(t *testing.T) {
	in := []string{"a", "b", "c"}
	for _, tt := range []struct {
		r    int
		want string
	}{{0, "abc"}, {1, "bca"}, {2, "cab"}, {4, "bca"}} {
		if got := strings.Join(rotate(in, tt.r), ""); got != tt.want {
			t.Errorf("rotate(abc, %d) = %s; want %s", tt.r, got, tt.want)
		}
	}
	if got := strings.Join(in, ""); got != "abc" {
		t.Errorf("rotate changed its input: %s", got)
	}
}

func TestReportRatios(t *testing.T) {
	b := &bench{res: newResults(), opt: options{rounds: 2}}
	cs := []*contender{
		{name: "h2cgw", group: "g", ours: true},
		{name: "peer", group: "g"},
		{name: "other", group: "h"},
		{name: "gone", group: "g", missing: "not installed"},
	}
	tb := b.res.table(&table{id: "9", title: "t", variants: []string{""}, contenders: cs,
		metrics: []metric{{key: "rps", header: "req/s"}},
		ratios:  []ratio{{ref: "h2cgw", metric: "rps", header: "h2cgw / this"}}})
	for _, v := range []float64{100, 300} {
		b.res.add(tb, "", "h2cgw", map[string]float64{"rps": v})
	}
	b.res.add(tb, "", "peer", map[string]float64{"rps": 100})
	b.res.add(tb, "", "other", map[string]float64{"rps": 50})
	var w strings.Builder
	b.writeTable(&w, tb)
	got := w.String()
	for _, want := range []string{
		"| **h2cgw** | 200 | 1.00× | 2/2 |",
		"| peer | 100 | 2.00× | 1/1 |",
		"| other | 50 |  | 1/1 |",
		"| gone | n/a: not installed |  | 0 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

func TestTargets(t *testing.T) {
	b := &bench{res: newResults(), opt: options{rounds: 1, bodySize: 1 << 20, bodyConns: 10}}
	t1 := b.res.table(&table{id: "1", variants: loadVariants()})
	t5 := b.res.table(&table{id: "5", variants: []string{""}})
	b.res.add(t1, loads[0].name, "h2cgw (log off)", map[string]float64{"rps": 110})
	b.res.add(t1, loads[0].name, "x/net bare", map[string]float64{"rps": 100})
	b.res.add(t5, "", "h2cgw", map[string]float64{"perconn": 25})
	got := map[string]float64{}
	for _, r := range b.targets() {
		got[r.what] = r.met
	}
	if v := got["local handler, log off / bare x/net, req/s, "+loads[0].name]; v != 1 {
		t.Errorf("local log off target: %v; want met (1)", v)
	}
	if v := got["idle upgraded connection, h2cgw"]; v != 0 {
		t.Errorf("idle target at 25 KiB: %v; want missed (0)", v)
	}
	if v := got["local handler, log on / bare x/net, req/s, "+loads[0].name]; !math.IsNaN(v) {
		t.Errorf("log on target without data: %v; want unknown (NaN)", v)
	}
}
