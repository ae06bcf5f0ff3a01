package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	builtin "github.com/h2cgw/h2cgw/internal/echo"
)

// Bounds on every wait in this package. They are generous so that a loaded
// 2-core CI machine does not flake, and finite so that a hang fails.
const (
	startTimeout = 15 * time.Second // process start to its "listening" line
	stopTimeout  = 20 * time.Second // SIGTERM to exit; above --shutdown-timeout
	toolTimeout  = 60 * time.Second // one run of an external client
	ioTimeout    = 10 * time.Second // one read or round trip on a socket
)

// gatewayBin is the binary under test, built once by TestMain.
var gatewayBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if bin := os.Getenv("H2CGW_BIN"); bin != "" {
		gatewayBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "h2cgw-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	gatewayBin = filepath.Join(dir, "h2cgw")
	build := exec.Command("go", "build", "-o", gatewayBin, "github.com/h2cgw/h2cgw/cmd/h2cgw")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: go build ./cmd/h2cgw: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// gatewayProc is one running h2cgw process.
type gatewayProc struct {
	// Addr is the cleartext listener's bound address ("127.0.0.1:port");
	// Admin the admin listener's.
	Addr, Admin string

	cmd    *exec.Cmd
	stderr *lineLog
	exited chan struct{} // closed when cmd.Wait returns
	err    error         // cmd.Wait's result; read after exited is closed

	stopOnce sync.Once
	stopErr  error
}

// startGateway starts the binary on loopback port 0 with args appended to
// the defaults, waits for its "listening" line and registers a cleanup that
// stops it with SIGTERM and asserts a clean exit.
func startGateway(t *testing.T, args ...string) *gatewayProc {
	t.Helper()
	return startGatewayWith(t, procLimits{}, args...)
}

// procLimits are what a test sets of the gateway process's environment:
// extra variables (GOMEMLIMIT=…), and a lower RLIMIT_NOFILE (0: unchanged),
// set by the shell that execs the binary.
type procLimits struct {
	env    []string
	nofile int
}

// startGatewayWith is startGateway with the process's limits set.
func startGatewayWith(t *testing.T, lim procLimits, args ...string) *gatewayProc {
	t.Helper()
	all := append([]string{
		"--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0",
		// Below stopTimeout, so that a stuck drain shows as exit status 1
		// rather than as a test timeout. A later value in args wins.
		"--shutdown-timeout", "10s",
	}, args...)
	g := &gatewayProc{
		cmd:    exec.Command(gatewayBin, all...),
		stderr: newLineLog(),
		exited: make(chan struct{}),
	}
	if lim.nofile > 0 {
		// ulimit, then exec: the gateway keeps the shell's pid.
		g.cmd = exec.Command("/bin/sh", append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, lim.nofile), gatewayBin}, all...)...)
	}
	g.cmd.Env = append(cleanEnv(), lim.env...)
	g.cmd.Stderr = g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", gatewayBin, err)
	}
	go func() {
		g.err = g.cmd.Wait()
		g.stderr.close()
		close(g.exited)
	}()
	t.Cleanup(func() {
		if err := g.stop(); err != nil {
			t.Errorf("stopping the gateway: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway %v stderr:\n%s", all, g.stderr.String())
		}
	})

	line, err := g.stderr.wait(startTimeout, func(m map[string]any) bool {
		return m["message"] == "listening"
	})
	if err != nil {
		t.Fatalf("waiting for the listening line: %v\nstderr:\n%s", err, g.stderr.String())
	}
	g.Addr, _ = line["listen"].(string)
	g.Admin, _ = line["admin"].(string)
	if g.Addr == "" {
		t.Fatalf("listening line without a listen address: %v", line)
	}
	return g
}

// URL returns the gateway's http:// URL for path.
func (g *gatewayProc) URL(path string) string { return "http://" + g.Addr + path }

// stop sends SIGTERM once and waits, bounded, for the process to exit; it
// reports an exit status other than 0. Later calls return the first result.
func (g *gatewayProc) stop() error {
	g.stopOnce.Do(func() {
		g.stopErr = g.signalAndWait()
	})
	return g.stopErr
}

func (g *gatewayProc) signalAndWait() error {
	select {
	case <-g.exited:
		return fmt.Errorf("the gateway had already exited: %v", g.err)
	default:
	}
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case <-g.exited:
	case <-time.After(stopTimeout):
		g.cmd.Process.Kill()
		<-g.exited
		return fmt.Errorf("no exit within %v of SIGTERM; killed", stopTimeout)
	}
	if code := g.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("exit status %d after SIGTERM; want 0", code)
	}
	return nil
}

// cleanEnv is the test's environment without H2CGW_* variables, so that a
// developer's settings do not change the flags a test passes.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "H2CGW_") {
			env = append(env, kv)
		}
	}
	return env
}

// lineLog collects a process's stderr line by line and lets a test wait,
// without polling, for a JSON log line that matches.
type lineLog struct {
	mu      sync.Mutex    // guards the fields below
	partial []byte        // an unterminated last line
	lines   []string      // complete lines, in order
	changed chan struct{} // closed and replaced on every new line
	closed  bool          // no more lines will come
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

// Write implements io.Writer for exec.Cmd.Stderr.
func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		added = true
	}
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

// close marks the end of the output: waits return at once from then on.
func (l *lineLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.lines = append(l.lines, string(l.partial))
		l.partial = nil
	}
	l.closed = true
	close(l.changed)
	l.changed = make(chan struct{})
}

// String returns everything written so far.
func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n") + string(l.partial)
}

// wait returns the first JSON line that matches, waiting up to timeout for
// it to be written.
func (l *lineLog) wait(timeout time.Duration, match func(map[string]any) bool) (map[string]any, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for seen := 0; ; {
		l.mu.Lock()
		lines, changed, closed := l.lines[seen:], l.changed, l.closed
		seen = len(l.lines)
		l.mu.Unlock()
		for _, s := range lines {
			var m map[string]any
			if json.Unmarshal([]byte(s), &m) == nil && match(m) {
				return m, nil
			}
		}
		if closed {
			return nil, errors.New("the process exited")
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, fmt.Errorf("no matching log line within %v", timeout)
		}
	}
}

// accessLine reports whether a log line is the binary's access log line
// (message "request", one per request, written by the per-stream handler)
// for a request on entry path via with that method, URL path and status.
func accessLine(m map[string]any, via, method, path string, status int) bool {
	return m["message"] == "request" && m["via"] == via && m["method"] == method &&
		m["path"] == path && m["status"] == float64(status)
}

// echo is the built-in handler's answer (README "Running it").
type echo builtin.Response

func parseEcho(t *testing.T, body []byte) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(bytes.TrimSpace(body), &e); err != nil {
		t.Fatalf("the body is not the echo JSON: %v\n%s", err, body)
	}
	return e
}

// connectionFields are the fields the handler must never see on a request
// that arrived over HTTP/2 (RFC 7540 §3.2, RFC 9113 §8.2.2).
var connectionFields = []string{"connection", "upgrade", "http2-settings", "keep-alive", "proxy-connection", "transfer-encoding"}

// check compares what the handler saw with what the test sent: via, proto,
// method, path and body; for HTTP/2 it also checks that no
// connection-specific field reached the handler.
func (e echo) check(t *testing.T, via, proto, method, path string, body []byte) {
	t.Helper()
	if e.Via != via {
		t.Errorf("handler saw via %q; want %q", e.Via, via)
	}
	if e.Proto != proto {
		t.Errorf("handler saw proto %q; want %q", e.Proto, proto)
	}
	if e.Method != method {
		t.Errorf("handler saw method %q; want %q", e.Method, method)
	}
	if e.Path != path {
		t.Errorf("handler saw path %q; want %q", e.Path, path)
	}
	if e.BodyBytes != int64(len(body)) {
		t.Errorf("handler saw %d body bytes; want %d", e.BodyBytes, len(body))
	}
	if want := sha256Hex(body); e.BodySHA256 != want {
		t.Errorf("handler saw body sha256 %s; want %s", e.BodySHA256, want)
	}
	if proto == "HTTP/2.0" {
		for _, f := range connectionFields {
			if v, ok := e.Headers[f]; ok {
				t.Errorf("handler saw connection-specific field %s: %q over HTTP/2", f, v)
			}
		}
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Install commands for the external clients, as scripts/install-test-tools.sh
// runs them.
const (
	hintCurl   = "apt-get install -y curl (or ./scripts/install-test-tools.sh)"
	hintNghttp = "apt-get install -y nghttp2-client (or ./scripts/install-test-tools.sh)"
	hintH2spec = "go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible (or ./scripts/install-test-tools.sh)"
)

var goBin = sync.OnceValue(func() string {
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	gopath := strings.TrimSpace(string(out))
	if i := strings.IndexByte(gopath, os.PathListSeparator); i >= 0 {
		gopath = gopath[:i]
	}
	return filepath.Join(gopath, "bin")
})

// requireTool returns the path of an external client: from PATH, else from
// $(go env GOPATH)/bin where go install puts it. A missing tool skips the
// test with installHint, or fails it when CI=true: a skipped row in CI is a
// row that silently stopped being tested.
func requireTool(t *testing.T, name, installHint string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if dir := goBin(); dir != "" {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found (CI=true, so this fails rather than skips); install it: %s", name, installHint)
	}
	t.Skipf("%s not found; install it: %s", name, installHint)
	return ""
}

// runTool runs an external client, bounded by toolTimeout, and returns its
// stdout and stderr. A non-zero exit is returned as err, with the output, so
// that a test can still show what the client printed.
func runTool(t *testing.T, path string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s did not finish within %v: %w", filepath.Base(path), toolTimeout, err)
	}
	return out.String(), errb.String(), err
}
