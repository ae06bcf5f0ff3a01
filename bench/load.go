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
	if b.tools.h2load == "" {
		return r, fmt.Errorf("h2load not installed")
	}
	logFile := filepath.Join(b.out, "tmp", "h2load-requests.log")
	os.Remove(logFile) // h2load appends
	defer os.Remove(logFile)
	argv := []string{b.tools.h2load,
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
	select {
	case <-p.Done():
	case <-ctx.Done():
		p.Stop(time.Second)
		return nil, ctx.Err()
	case <-time.After(limit):
		p.Stop(time.Second)
		return nil, fmt.Errorf("%s still running after %s; killed", name, limit)
	}
	if err := p.Err(); err != nil {
		return out.Bytes(), fmt.Errorf("%s: %v; log tail:\n%s%s", name, err, p.Tail(1000), tail(out.String(), 1000))
	}
	return out.Bytes(), nil
}

// loadResult is upgradeload's JSON line.
type loadResult struct {
	Mode       string         `json:"mode"`
	OK         int            `json:"ok"`
	Errors     int            `json:"errors"`
	Upgraded   int            `json:"upgraded"`
	H1         int            `json:"h1"`
	Open       int            `json:"open"`
	ElapsedS   float64        `json:"elapsed_s"`
	Rate       float64        `json:"rate"`
	Status     map[string]int `json:"status"`
	FirstError string         `json:"first_error"`
}

// upgradeload runs the in-repo load client to completion.
func (b *bench) upgradeload(ctx context.Context, addr string, limit time.Duration, args ...string) (loadResult, error) {
	var r loadResult
	bin := b.built["upgradeload"]
	if bin == "" {
		return r, fmt.Errorf("upgradeload did not build")
	}
	out, err := b.runClient(ctx, "upgradeload", append([]string{bin, "-addr", addr}, args...), nil, limit)
	if err != nil {
		return r, err
	}
	return parseLoadResult(out)
}

func parseLoadResult(out []byte) (loadResult, error) {
	var r loadResult
	line := bytes.TrimSpace(out)
	if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("upgradeload output not understood: %q", tail(string(out), 500))
	}
	return r, nil
}

// heldClient is an upgradeload -mode idle run: its connections stay open
// until release.
type heldClient struct {
	p     *proc.Proc
	stdin *io.PipeWriter
	out   *syncBuffer
}

// holdConnections starts upgradeload -mode idle and waits (up to limit) for
// its result line: the connections are open then, and stay so until
// release.
func (b *bench) holdConnections(ctx context.Context, addr string, limit time.Duration, args ...string) (*heldClient, loadResult, error) {
	var r loadResult
	bin := b.built["upgradeload"]
	if bin == "" {
		return nil, r, fmt.Errorf("upgradeload did not build")
	}
	pr, pw := io.Pipe()
	out := &syncBuffer{}
	argv := append([]string{bin, "-addr", addr, "-mode", "idle"}, args...)
	p, err := b.g.Start("upgradeload-idle", argv, proc.Options{Stdout: out, Stdin: pr})
	if err != nil {
		return nil, r, err
	}
	h := &heldClient{p: p, stdin: pw, out: out}
	deadline := time.Now().Add(limit)
	for !bytes.Contains(out.Bytes(), []byte("\n")) {
		if p.Exited() {
			h.release()
			return nil, r, fmt.Errorf("upgradeload -mode idle exited: %v; log tail:\n%s", p.Err(), p.Tail(1000))
		}
		if time.Now().After(deadline) {
			h.release()
			return nil, r, fmt.Errorf("upgradeload -mode idle: connections not open after %s", limit)
		}
		select {
		case <-ctx.Done():
			h.release()
			return nil, r, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	r, err = parseLoadResult(out.Bytes())
	if err != nil {
		h.release()
	}
	return h, r, err
}

// release closes the client's stdin, its signal to close the connections
// and exit, and makes sure it is gone.
func (h *heldClient) release() {
	h.stdin.Close()
	select {
	case <-h.p.Done():
	case <-time.After(10 * time.Second):
	}
	h.p.Stop(time.Second)
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
