//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// machine is what the report's machine line says.
type machine struct {
	nproc     int
	cpu       string
	kernel    string
	goVersion string
	nofile    string
	loadStart string
	loadEnd   string
}

func (m machine) line() string {
	return fmt.Sprintf("%d CPUs (%s), Linux %s, %s, RLIMIT_NOFILE %s, loadavg at start %s",
		m.nproc, m.cpu, m.kernel, m.goVersion, m.nofile, m.loadStart)
}

func readMachine(root string) machine {
	m := machine{nproc: runtime.NumCPU(), cpu: "unknown CPU", kernel: "unknown", loadStart: readLoadavg()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	cmd := exec.Command("go", "env", "GOVERSION")
	cmd.Dir = root
	if b, err := cmd.Output(); err == nil {
		m.goVersion = strings.TrimSpace(string(b))
	} else {
		m.goVersion = runtime.Version()
	}
	return m
}

func readLoadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// raiseNofile raises the harness's RLIMIT_NOFILE to its hard limit (or, as
// root, to want if the hard limit is lower). Setting it explicitly matters:
// Go raises its own soft limit at start but restores the original one in the
// children it starts unless the program called Setrlimit itself, and the
// servers (nghttpx does not raise its own) and load clients of scenario 5
// inherit it.
func raiseNofile(want int) string {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return "unknown"
	}
	if r.Max < uint64(want) && os.Geteuid() == 0 {
		nr := syscall.Rlimit{Cur: uint64(want), Max: uint64(want)}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nr) == nil {
			return fmt.Sprintf("%d (raised as root)", want)
		}
	}
	r.Cur = r.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return fmt.Sprintf("%d (could not raise: %v)", r.Cur, err)
	}
	s := fmt.Sprint(r.Cur)
	if r.Cur < uint64(want) {
		s += fmt.Sprintf(" (below the %d scenario 5 wants: raise the hard limit, ulimit -Hn)", want)
	}
	return s
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run the harness inside the h2cgw module (go run ./bench)")
	}
	return filepath.Dir(gomod), nil
}

// tools maps each external program the harness looks for (toolNames) to
// its path, "" when missing.
type tools map[string]string

// toolNames are the external programs, in the order the harness names them.
var toolNames = []string{"h2load", "nghttpx", "h2o"}

// debPackages maps each tool to the Debian package that has it.
var debPackages = map[string]string{
	"h2load":  "nghttp2-client",
	"nghttpx": "nghttp2-proxy",
	"h2o":     "h2o",
}

func findTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	// /usr/sbin is not on every user's PATH; nghttpx lives there.
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func (b *bench) findTools() (missing []string) {
	b.tools = tools{}
	for _, t := range toolNames {
		if b.tools[t] = findTool(t); b.tools[t] == "" {
			missing = append(missing, t)
		}
	}
	return missing
}

// checkTools finds h2load, nghttpx and h2o; with -install (as root) it
// installs the missing ones, otherwise it says how and goes on without them.
func (b *bench) checkTools(ctx context.Context) error {
	missing := b.findTools()
	if len(missing) == 0 {
		b.logf("tools: h2load %s, nghttpx %s, h2o %s", b.tools["h2load"], b.tools["nghttpx"], b.tools["h2o"])
		return nil
	}
	var pkgs []string
	for _, m := range missing {
		pkgs = append(pkgs, debPackages[m])
	}
	install := "apt-get install -y " + strings.Join(pkgs, " ")
	if !b.opt.install {
		b.logf("missing: %s — install with: sudo %s (or rerun with -install as root)", strings.Join(missing, ", "), install)
		b.note("Missing on this machine: %s. Install with `sudo %s`; the rows that need them are marked n/a.", strings.Join(missing, ", "), install)
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("-install needs root; run: sudo %s", install)
	}
	b.logf("installing: %s", install)
	ictx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for _, argv := range [][]string{{"apt-get", "update"}, append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, pkgs...)} {
		cmd := exec.CommandContext(ictx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
	}
	if missing := b.findTools(); len(missing) > 0 {
		b.note("Still missing after installing: %s.", strings.Join(missing, ", "))
	}
	return nil
}

// programs are the Go programs the harness builds, by name.
var programs = []struct{ name, pkg string }{
	{"h2cgw", "./cmd/h2cgw"},
	{"xnetbare", "./bench/baselines/xnetbare"},
	{"xneth2c", "./bench/baselines/xneth2c"},
	{"naiveproxy", "./bench/baselines/naiveproxy"},
	{"upstream", "./bench/baselines/upstream"},
	{"h2cgwlib", "./bench/h2cgwlib"},
	{"upgradeload", "./bench/upgradeload"},
}

// buildAll builds every program; one that does not build is reported and its
// rows are marked n/a, the rest run.
func (b *bench) buildAll(ctx context.Context) error {
	for _, p := range programs {
		out := filepath.Join(b.bin, p.name)
		// As the Makefile's build target does: static, trimmed paths.
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, p.pkg)
		cmd.Dir = b.root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		msg, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			b.failed[p.name] = strings.TrimSpace(string(msg))
			b.logf("build %s (%s) failed:\n%s", p.name, p.pkg, msg)
			b.note("`%s` (%s) did not build, its rows are n/a: %s", p.name, p.pkg, firstLine(string(msg)))
			continue
		}
		b.built[p.name] = out
	}
	if b.built["upgradeload"] == "" {
		b.note("Without upgradeload, scenarios 4–6 cannot run.")
	}
	b.logf("built: %d of %d programs", len(b.built), len(programs))
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "#") && strings.TrimSpace(l) != "" {
			return strings.TrimSpace(l)
		}
	}
	return s
}
