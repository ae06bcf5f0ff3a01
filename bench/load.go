//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/h2cgw/h2cgw/bench/internal/proc"
	"github.com/h2cgw/h2cgw/bench/internal/stats"
)

// h2loadResult is what one h2load run measured.
type h2loadResult struct {
	rps       float64 // successful responses (status < 400) per second of the measured duration
	rawRPS    float64 // h2load's own req/s, every status
	done      int
	succeeded int
	bad       int // h2load's "failed": status ≥ 400, errors, timeouts
	status5xx int
	p50, p99  float64 // milliseconds, from --log-file
}

var (
	reFinished = regexp.MustCompile(`finished in [0-9.]+\w+, ([0-9.]+) req/s`)
	reRequests = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	reStatus   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
)

// h2load runs h2load with prior knowledge (an http:// URI) for the warm-up
// plus the duration, c clients with m streams each, and reads req/s from its
// summary and p50/p99 from its per-request log.
func (b *bench) h2load(ctx context.Context, url string, c, m int) (h2loadResult, error) {
	var r h2loadResult
	if b.tools["h2load"] == "" {
		return r, fmt.Errorf("h2load not installed")
	}
	logFile := filepath.Join(b.out, "tmp", "h2load-requests.log")
	os.Remove(logFile) // h2load appends
	defer os.Remove(logFile)
	argv := []string{b.tools["h2load"],
		"-c", fmt.Sprint(c), "-m", fmt.Sprint(m), "-t", fmt.Sprint(b.opt.h2loadThreads),
		"-D", fmt.Sprintf("%dms", b.opt.duration.Milliseconds()),
		"--log-file=" + logFile,
		url,
	}
	if b.opt.warmup > 0 {
		argv = append(argv[:len(argv)-1], fmt.Sprintf("--warm-up-time=%dms", b.opt.warmup.Milliseconds()), url)
	}
	out, err := b.runClient(ctx, "h2load", argv, nil, b.opt.warmup+b.opt.duration+30*time.Second)
	if err != nil {
		return r, err
	}
	r, err = parseH2load(string(out))
	if err != nil {
		return r, err
	}
	lat, err := readLatencies(logFile)
	if err != nil {
		return r, err
	}
	if len(lat) > 0 {
		r.p99 = stats.Percentile(lat, 99)
		r.p50 = stats.Percentile(lat, 50)
	}
	return r, nil
}

// parseH2load reads h2load's summary.
func parseH2load(text string) (h2loadResult, error) {
	var r h2loadResult
	fm := reFinished.FindStringSubmatch(text)
	rm := reRequests.FindStringSubmatch(text)
	sm := reStatus.FindStringSubmatch(text)
	if fm == nil || rm == nil || sm == nil {
		return r, fmt.Errorf("h2load output not understood:\n%s", tail(text, 1500))
	}
	// h2load counts a response with status ≥ 400 as failed (errors and
	// timeouts too), and its status-code line also counts responses whose
	// stream had not closed when the run ended: "succeeded" and "failed" of
	// the requests line are the consistent pair.
	r.rawRPS, _ = strconv.ParseFloat(fm[1], 64)
	r.done = atoi(rm[3])
	r.succeeded = atoi(rm[4])
	r.bad = atoi(rm[5])
	r.status5xx = atoi(sm[4])
	if r.done == 0 {
		return r, fmt.Errorf("h2load: no request completed:\n%s", tail(text, 1500))
	}
	r.rps = r.rawRPS * float64(r.succeeded) / float64(r.done)
	return r, nil
}

// readLatencies reads h2load's --log-file: start time (µs since the
// epoch), status, µs until the end of the response; in milliseconds.
func readLatencies(path string) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("h2load log: %w", err)
	}
	defer f.Close()
	var out []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(out) < 50_000_000 {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 3 {
			continue
		}
		us, err := strconv.ParseFloat(strings.TrimSpace(fields[2]), 64)
		if err != nil || us < 0 {
			continue // a request that never finished
		}
		out = append(out, us/1000)
	}
	return out, sc.Err()
}

// runClient runs a load client to completion (bounded by limit and ctx) and
// returns its standard output.
func (b *bench) runClient(ctx context.Context, name string, argv []string, stdin io.Reader, limit time.Duration) ([]byte, error) {
	var out syncBuffer
	p, err := b.g.Start(name, argv, proc.Options{Stdout: &out, Stdin: stdin})
	if err != nil {
		return nil, err
	}
	if err := p.Wait(ctx, limit); err != nil {
		if s := out.String(); s != "" {
			err = fmt.Errorf("%w\nstdout tail:\n%s", err, tail(s, 1000))
		}
		return nil, err
	}
	return out.Bytes(), nil
}

// upgradeload runs the in-repo load client to completion.
func (b *bench) upgradeload(ctx context.Context, addr string, limit time.Duration, args ...string) (stats.Load, error) {
	argv, err := b.upgradeloadArgv(addr, args)
	if err != nil {
		return stats.Load{}, err
	}
	out, err := b.runClient(ctx, "upgradeload", argv, nil, limit)
	if err != nil {
		return stats.Load{}, err
	}
	return parseLoadResult(out)
}

// upgradeloadArgv is the built load client's command line against addr.
func (b *bench) upgradeloadArgv(addr string, args []string) ([]string, error) {
	bin := b.built["upgradeload"]
	if bin == "" {
		return nil, fmt.Errorf("upgradeload did not build")
	}
	return append([]string{bin, "-addr", addr}, args...), nil
}

func parseLoadResult(out []byte) (stats.Load, error) {
	var r stats.Load
	line := bytes.TrimSpace(out)
	if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("upgradeload output not understood: %q", tail(string(out), 500))
	}
	return r, nil
}

// holdConnections starts upgradeload -mode idle and waits (up to limit) for
// its result line: the connections are open then, and stay so until release,
// which closes the client's stdin, its signal to close them and exit, and
// makes sure it is gone.
func (b *bench) holdConnections(ctx context.Context, addr string, limit time.Duration, args ...string) (release func(), r stats.Load, err error) {
	argv, err := b.upgradeloadArgv(addr, append([]string{"-mode", "idle"}, args...))
	if err != nil {
		return nil, r, err
	}
	pr, pw := io.Pipe()
	var out syncBuffer
	p, err := b.g.Start("upgradeload-idle", argv, proc.Options{Stdout: &out, Stdin: pr})
	if err != nil {
		return nil, r, err
	}
	release = func() {
		pw.Close()
		_ = p.Wait(context.Background(), 10*time.Second)
		p.Stop(time.Second)
	}
	err = p.WaitFor(ctx, limit, "holding its connections", func() bool {
		return bytes.Contains(out.Bytes(), []byte("\n"))
	})
	if err == nil {
		r, err = parseLoadResult(out.Bytes())
	}
	if err != nil {
		release()
		return nil, r, err
	}
	return release, r, nil
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine of os/exec and
// a polling reader.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

func (s *syncBuffer) String() string { return string(s.Bytes()) }

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
