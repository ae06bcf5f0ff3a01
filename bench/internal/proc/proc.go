//go:build linux

// Package proc starts, watches and stops the processes of a benchmark run:
// every process is started in its own process group, tracked by a Group, and
// killed (its whole group) by Group.StopAll, so that nothing the harness
// started outlives it, also on Ctrl-C. It also reads a process tree's memory
// from /proc.
package proc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Group owns every process started through it.
type Group struct {
	// LogDir receives one log file per started process (stdout and stderr).
	LogDir string

	mu sync.Mutex // guards procs and seq
	// procs holds the processes started and not yet reaped.
	procs map[*Proc]struct{}
	seq   int
}

// Proc is one started process.
type Proc struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string

	g        *Group
	done     chan struct{} // closed when the process has been reaped
	waitErr  error         // valid after done
	stopOnce sync.Once
}

// Options tune Start.
type Options struct {
	// Stdin, if non-nil, is the process's standard input; nil means
	// /dev/null.
	Stdin io.Reader
	// Stdout, if non-nil, receives standard output; nil means the log file.
	Stdout io.Writer
	// Dir is the working directory; "" means the harness's.
	Dir string
	// Env is added to the harness's environment.
	Env []string
}

// Start starts argv with its output in a fresh log file under g.LogDir.
func (g *Group) Start(name string, argv []string, o Options) (*Proc, error) {
	g.mu.Lock()
	g.seq++
	seq := g.seq
	if g.procs == nil {
		g.procs = make(map[*Proc]struct{})
	}
	g.mu.Unlock()

	logPath := filepath.Join(g.LogDir, fmt.Sprintf("%03d-%s.log", seq, sanitize(name)))
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own descriptor after Start

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.Stdin = o.Stdin
	cmd.Stderr = f
	cmd.Stdout = f
	if o.Stdout != nil {
		cmd.Stdout = o.Stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own group, so that stopping it also stops what it forks
		// (nghttpx's worker, h2o's helpers), and a Ctrl-C on the terminal
		// reaches only the harness, which then stops everything in order.
		Setpgid: true,
		// If the harness itself is killed outright, the kernel kills the
		// direct child.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, LogPath: logPath, g: g, done: make(chan struct{})}
	g.mu.Lock()
	g.procs[p] = struct{}{}
	g.mu.Unlock()
	go p.reap()
	return p, nil
}

// reap waits for the process, owned by Start: it exits when the process does.
func (p *Proc) reap() {
	p.waitErr = p.Cmd.Wait()
	// Leave the group before announcing the exit, so that whoever waited
	// on done (StopAll) sees Running without this process.
	p.g.mu.Lock()
	delete(p.g.procs, p)
	p.g.mu.Unlock()
	close(p.done)
}

// Pid is the process id (also its process group id).
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Err is the process's exit error; valid once Exited reports true.
func (p *Proc) Err() error { return p.waitErr }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs
// the group. It is safe to call more than once and from several goroutines.
func (p *Proc) Stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		pgid := p.Pid()
		if !p.Exited() {
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(grace):
			}
		}
		// The leader may be gone while its group lives on (a forked
		// worker): kill the group whatever happened to the leader.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	})
	// A second caller waits too, but not forever: a process that
	// survives SIGKILL (uninterruptible sleep) must not hang the harness.
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// StopAll stops every process of the group still running, in parallel.
func (g *Group) StopAll() {
	g.mu.Lock()
	ps := make([]*Proc, 0, len(g.procs))
	for p := range g.procs {
		ps = append(ps, p)
	}
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Stop(3 * time.Second)
		}()
	}
	wg.Wait()
}

// Running is the number of processes not yet reaped.
func (g *Group) Running() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.procs)
}

// Wait waits for the process to exit and returns its exit error, with the
// log's tail. If ctx ends or limit passes first, it stops the process and
// says so: a load client that hangs must not hang the run.
func (p *Proc) Wait(ctx context.Context, limit time.Duration) error {
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("%s: %w; log tail:\n%s", p.Name, p.waitErr, p.Tail(2048))
		}
		return nil
	case <-ctx.Done():
		p.Stop(time.Second)
		return ctx.Err()
	case <-time.After(limit):
		p.Stop(time.Second)
		return fmt.Errorf("%s still running after %s; killed", p.Name, limit)
	}
}

// WaitFor polls ready until it reports true, and fails when the process
// exits, ctx ends or timeout passes, with the log's tail in the error; what
// names the awaited state there ("ready", "accepting on …"). Every wait of
// the harness for a started process goes through it, so that each notices
// a process that died at once instead of waiting out its timeout.
func (p *Proc) WaitFor(ctx context.Context, timeout time.Duration, what string, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if ready() {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("%s exited (%v) before it was %s; log tail:\n%s", p.Name, p.Err(), what, p.Tail(2048))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not %s after %s; log tail:\n%s", p.Name, what, timeout, p.Tail(2048))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitJSONLine waits (see WaitFor) for a JSON line in the process's log for
// which match is true, and returns it: how the harness learns that one of
// its Go programs listens, and where. The line comes first thing, so the
// log's start is read again at every poll.
func (p *Proc) WaitJSONLine(ctx context.Context, timeout time.Duration, match func(map[string]any) bool) (map[string]any, error) {
	var found map[string]any
	err := p.WaitFor(ctx, timeout, "ready", func() bool {
		b, _ := readFrom(p.LogPath, 0)
		for line := range bytes.Lines(b) {
			var m map[string]any
			if line = bytes.TrimSpace(line); len(line) > 0 && line[0] == '{' && json.Unmarshal(line, &m) == nil && match(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found, err
}

// readFrom reads what a file holds past off, at most 1 MiB.
func readFrom(path string, off int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 1<<20)
	n, err := f.ReadAt(b, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return b[:n], err
}

// Tail returns the last n bytes of the process's log.
func (p *Proc) Tail(n int64) string {
	fi, err := os.Stat(p.LogPath)
	if err != nil {
		return ""
	}
	off := max(fi.Size()-n, 0)
	b, _ := readFrom(p.LogPath, off)
	return string(b)
}

// TruncateLog empties the log when it is larger than limit, so that access
// logs of long runs do not fill the disk. The process writes with O_APPEND,
// so it goes on at the new end.
func (p *Proc) TruncateLog(limit int64) {
	if fi, err := os.Stat(p.LogPath); err == nil && fi.Size() > limit {
		_ = os.Truncate(p.LogPath, 0)
	}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// Mem is a process tree's memory, from /proc/PID/status, in bytes.
type Mem struct {
	RSS   int64 // VmRSS summed over the tree
	HWM   int64 // VmHWM (peak RSS) summed over the tree
	Procs int   // processes in the tree
}

// TreeMem sums VmRSS and VmHWM over pid and its descendants.
func TreeMem(pid int) (Mem, error) {
	pids := append([]int{pid}, descendants(pid)...)
	var m Mem
	for _, p := range pids {
		rss, hwm, err := statusMem(p)
		if err != nil {
			if p == pid {
				return m, err
			}
			continue // a child that just exited
		}
		m.RSS += rss
		m.HWM += hwm
		m.Procs++
	}
	return m, nil
}

func statusMem(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			rss = parseKB(v)
		case "VmHWM":
			hwm = parseKB(v)
		}
	}
	return rss, hwm, sc.Err()
}

func parseKB(v string) int64 {
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n << 10
}

// descendants lists the processes below pid, from each process's parent in
// /proc/N/stat.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces: the
		// fields after the last ')' are state, ppid, ...
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], n)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 && len(out) < 10000 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
