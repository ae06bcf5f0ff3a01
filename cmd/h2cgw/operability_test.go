package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunAccessLogIgnoresLevel: --log-level warn silences the info lines but
// not the access log, which --access-log alone switches; the listening
// line, which carries the bound addresses, is written whatever the level.
func TestRunAccessLogIgnoresLevel(t *testing.T) {
	t.Parallel()
	in := startRun(t, "--log-level", "warn")
	resp := get(t, h1Client(t), in.url("/quiet?token=abc"))
	resp.Body.Close()
	line := in.logs.waitMessage(t, "request", map[string]any{"path": "/quiet"})
	if line["level"] != "info" || line["query"] != nil {
		t.Errorf("access line %v; want level info and no query", line)
	}
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}
	in.logs.mu.Lock()
	defer in.logs.mu.Unlock()
	for _, l := range in.logs.lines {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil {
			continue
		}
		if m["level"] == "info" && m["message"] != "request" && m["message"] != "listening" {
			t.Errorf("info line under --log-level warn: %s", l)
		}
	}
}

// TestRunAccessLogQuery: --access-log-query adds the query string.
func TestRunAccessLogQuery(t *testing.T) {
	t.Parallel()
	in := startRun(t, "--access-log-query")
	req, _ := http.NewRequest("GET", in.url("/q?token=abc"), nil)
	req.Header.Set("X-Request-Id", "req-42")
	req.Header.Set("User-Agent", "probe/1")
	doReq(t, h1Client(t), req).Body.Close()
	line := in.logs.waitMessage(t, "request", map[string]any{"path": "/q"})
	for k, want := range map[string]any{"query": "token=abc", "request_id": "req-42", "user_agent": "probe/1"} {
		if line[k] != want {
			t.Errorf("%s = %v; want %v", k, line[k], want)
		}
	}
}

// TestRunEchoModeWarns: without an upstream the binary says, at warn, that
// it echoes every request.
func TestRunEchoModeWarns(t *testing.T) {
	t.Parallel()
	in := startRun(t)
	line := in.logs.wait(t, func(m map[string]any) bool {
		msg, _ := m["message"].(string)
		return m["level"] == "warn" && strings.Contains(msg, "built-in echo")
	})
	if line == nil {
		t.Fatal("no warning")
	}
}

// TestRunCredentialsNeverPrinted: an upstream URL with a password is refused
// with exit status 2, and the password appears nowhere in the output.
func TestRunCredentialsNeverPrinted(t *testing.T) {
	for _, args := range [][]string{
		{"--upstream", "http://user:s3cret@127.0.0.1:1"},
		{"--upstream", "http://user:s3cret@127.0.0.1:1/%zz"},
		{"--upstream", "h2c://user:s3cret@127.0.0.1:1"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"--listen", "127.0.0.1:0", "--admin-listen", ""}, args...), &stdout, &stderr)
		if exitCode(err) != 2 {
			t.Errorf("%q: exit %d (%v); want 2", args, exitCode(err), err)
		}
		out := stdout.String() + stderr.String() + fmt.Sprint(err)
		if strings.Contains(out, "s3cret") {
			t.Errorf("%q: the password was printed: %s", args, out)
		}
		if !strings.Contains(stderr.String(), "--upstream") || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%q: stderr %q; want one line naming --upstream", args, stderr.String())
		}
	}
}

// TestRunUnknownVariable: a misspelt H2CGW_ variable stops the binary with
// exit status 2 instead of starting it in echo mode.
func TestRunUnknownVariable(t *testing.T) {
	t.Setenv("H2CGW_UPSTREAMS", "http://127.0.0.1:1")
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"--listen", "127.0.0.1:0", "--admin-listen", ""}, io.Discard, &stderr)
	if exitCode(err) != 2 || !strings.Contains(stderr.String(), "H2CGW_UPSTREAMS") {
		t.Errorf("run = %v (exit %d), stderr %q; want exit 2 naming H2CGW_UPSTREAMS", err, exitCode(err), stderr.String())
	}
}

// TestRunAdminPprof: /debug/pprof/ is served on the admin listener only
// with --admin-pprof.
func TestRunAdminPprof(t *testing.T) {
	t.Parallel()
	on := startRun(t, "--admin-pprof")
	if code, body := statusOf(t, "http://"+on.admin+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ with --admin-pprof: %d; want 200 and the profile index", code)
	}
	if code, _ := statusOf(t, "http://"+on.admin+"/debug/pprof/goroutine?debug=1"); code != 200 {
		t.Errorf("/debug/pprof/goroutine: %d; want 200", code)
	}
	off := startRun(t)
	if code, _ := statusOf(t, "http://"+off.admin+"/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ without --admin-pprof: %d; want 404", code)
	}
}

// TestRunHistograms: request durations are bucketed from 100µs, and each
// upstream's response time has a histogram of its own.
func TestRunHistograms(t *testing.T) {
	t.Parallel()
	up, seenc := recordingUpstream(t)
	in := startRun(t, "--upstream", up.URL)
	resp := get(t, h1Client(t), in.url("/timed"))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	<-seenc
	in.logs.waitMessage(t, "request", map[string]any{"path": "/timed"})
	text := metricsText(t, in.admin)
	metricValue(t, text, `h2cgw_request_duration_seconds_bucket{via="h1",le="0.0001"}`)
	if got := metricValue(t, text, `h2cgw_upstream_duration_seconds_count{upstream="`+up.URL+`"}`); got != "1" {
		t.Errorf("upstream duration count = %s; want 1", got)
	}
	metricValue(t, text, `h2cgw_upstream_duration_seconds_bucket{upstream="`+up.URL+`",le="0.00025"}`)
}

// nameUpstream answers every request with its name, so a client can tell
// which pool served it.
func nameUpstream(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// loadLoop sends GETs from workers over both HTTP/1.1 and HTTP/2 until stop
// is closed (at most limit), counting failures and the answers' bodies.
type loadLoop struct {
	failed atomic.Int64
	mu     sync.Mutex
	bodies map[string]int
	errs   []string
	done   sync.WaitGroup
	stop   chan struct{}
}

func startLoad(t *testing.T, url string, workers int, limit time.Duration) *loadLoop {
	t.Helper()
	l := &loadLoop{bodies: map[string]int{}, stop: make(chan struct{})}
	clients := []*http.Client{h1Client(t), h2cClient(t)}
	deadline := time.Now().Add(limit)
	for i := range workers {
		c := clients[i%len(clients)]
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for time.Now().Before(deadline) {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					l.fail(fmt.Sprintf("%d %s %v", resp.StatusCode, b, err))
					continue
				}
				l.mu.Lock()
				l.bodies[string(b)]++
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(l.end)
	return l
}

func (l *loadLoop) fail(why string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, why)
	}
	l.mu.Unlock()
}

func (l *loadLoop) count(body string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bodies[body]
}

func (l *loadLoop) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.done.Wait()
}

// waitServed waits until the load has seen n more answers from body.
func (l *loadLoop) waitServed(t *testing.T, body string, n int) {
	t.Helper()
	start := l.count(body)
	deadline := time.Now().Add(waitTimeout)
	for l.count(body) < start+n {
		if time.Now().After(deadline) {
			t.Fatalf("the load got no %d answers from %s within %v (failures %d: %v)", n, body, waitTimeout, l.failed.Load(), l.errs)
		}
		time.Sleep(5 * time.Millisecond) // polling the load's own counters
	}
}

// postReload asks the admin listener to reload and decodes its answer.
func postReload(t *testing.T, admin string) (int, reloadResult) {
	t.Helper()
	resp, err := http.Post("http://"+admin+"/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res reloadResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatalf("POST /reload: %v", err)
	}
	return resp.StatusCode, res
}

// TestRunReload: POST /reload switches the upstream pool under a steady
// load without a failed request, applies the log level and the access log,
// reports what needs a restart, and refuses a broken file while the
// process keeps serving.
func TestRunReload(t *testing.T) {
	t.Parallel()
	a, b := nameUpstream(t, "A"), nameUpstream(t, "B")
	path := filepath.Join(t.TempDir(), "h2cgw.yaml")
	writeFile(t, path, "upstream: "+a.URL+"\nlog-level: info\n")
	in := startRun(t, "--config", path, "--log-level", "debug")

	load := startLoad(t, in.url("/load"), 8, 30*time.Second)
	load.waitServed(t, "A", 50)

	// The command line's --log-level beats the file: a file change to it
	// is no change. An HTTP/2 limit needs a restart.
	writeFile(t, path, "upstream: ["+b.URL+"]\nlog-level: error\naccess-log: false\nmax-concurrent-streams: 100\n")
	code, res := postReload(t, in.admin)
	if code != 200 || res.Result != "ok" {
		t.Fatalf("POST /reload: %d %+v; want 200 ok", code, res)
	}
	if !containsPrefix(res.Changed, "upstream: "+a.URL+" → "+b.URL) || !containsPrefix(res.Changed, "access-log: true → false") || containsPrefix(res.Changed, "log-level") {
		t.Errorf("changed %q; want the upstream and the access log, not the log level", res.Changed)
	}
	if !containsPrefix(res.NeedsRestart, "max-concurrent-streams: 250 → 100") || len(res.NeedsRestart) != 1 {
		t.Errorf("needs_restart %q; want max-concurrent-streams alone", res.NeedsRestart)
	}
	load.waitServed(t, "B", 200)
	in.logs.waitMessage(t, "configuration reloaded", map[string]any{"trigger": "POST /reload"})

	// A file that does not parse is refused; the running pool stays.
	writeFile(t, path, "upstream: ["+a.URL+"\n")
	code, res = postReload(t, in.admin)
	if code != http.StatusUnprocessableEntity || res.Result != "error" || !strings.Contains(res.Error, "YAML") {
		t.Errorf("POST /reload with a broken file: %d %+v; want 422 error", code, res)
	}
	load.waitServed(t, "B", 50)
	load.end()
	if n := load.failed.Load(); n != 0 {
		t.Errorf("%d requests failed across the reloads: %v", n, load.errs)
	}
	text := metricsText(t, in.admin)
	if ok, bad := metricValue(t, text, `h2cgw_config_reloads_total{result="ok"}`), metricValue(t, text, `h2cgw_config_reloads_total{result="error"}`); ok != "1" || bad != "1" {
		t.Errorf("reloads ok %s, error %s; want 1 and 1", ok, bad)
	}

	// The access log went off with the first reload: no line for /after.
	get(t, h1Client(t), in.url("/after")).Body.Close()
	writeFile(t, path, "upstream: ["+b.URL+"]\naccess-log: true\n")
	if code, res := postReload(t, in.admin); code != 200 || !containsPrefix(res.Changed, "access-log: false → true") {
		t.Fatalf("POST /reload: %d %+v", code, res)
	}
	get(t, h1Client(t), in.url("/marker")).Body.Close()
	in.logs.waitMessage(t, "request", map[string]any{"path": "/marker"})
	in.logs.mu.Lock()
	for _, l := range in.logs.lines {
		if strings.Contains(l, `"path":"/after"`) {
			t.Errorf("access line while the access log was off: %s", l)
		}
	}
	in.logs.mu.Unlock()
}

// TestRunReloadLogLevel: a reload changes the level of the loggers already
// in use: the gateway's decline lines (debug) appear once the file says
// debug.
func TestRunReloadLogLevel(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "h2cgw.yaml")
	writeFile(t, path, "log-level: error\n")
	in := startRunArgs(t, []string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--config", path})
	decline := func(target string) {
		req, _ := http.NewRequest("GET", in.url(target), nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "h2c") // no HTTP2-Settings: declined
		doReq(t, h1Client(t), req).Body.Close()
	}
	decline("/before")
	writeFile(t, path, "log-level: debug\n")
	if code, res := postReload(t, in.admin); code != 200 || !containsPrefix(res.Changed, "log-level: error → debug") {
		t.Fatalf("POST /reload: %d %+v; want the log level changed", code, res)
	}
	decline("/after")
	in.logs.waitMessage(t, "upgrade declined", map[string]any{"reason": "missing_settings"})
	in.logs.mu.Lock()
	defer in.logs.mu.Unlock()
	n := 0
	for _, l := range in.logs.lines {
		if strings.Contains(l, `"message":"upgrade declined"`) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d decline lines; want 1, the one after the reload", n)
	}
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// TestRunUpstreamTLS: https:// upstreams, verified with --upstream-ca and
// --upstream-server-name, over HTTP/2 or HTTP/1.1 as ALPN settles.
func TestRunUpstreamTLS(t *testing.T) {
	t.Parallel()
	for _, h2 := range []bool{true, false} {
		up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", r.Proto, r.Header.Get("X-Request-Id"))
		}))
		up.EnableHTTP2 = h2
		up.StartTLS()
		t.Cleanup(up.Close)
		ca := filepath.Join(t.TempDir(), "ca.pem")
		writeFile(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw})))
		target := "https://" + up.Listener.Addr().String()

		in := startRun(t, "--upstream", target, "--upstream-ca", ca, "--upstream-server-name", "example.com")
		resp := get(t, h2cClient(t), in.url("/tls"))
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantProto := "HTTP/1.1"
		if h2 {
			wantProto = "HTTP/2.0"
		}
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), wantProto+" ") || len(body) < len(wantProto)+2 {
			t.Errorf("h2 %v: %d %q; want 200 from the upstream over %s with a request id", h2, resp.StatusCode, body, wantProto)
		}

		// Without the CA the upstream's certificate is not trusted: 502.
		bad := startRun(t, "--upstream", target)
		if code, _ := statusOf(t, bad.url("/untrusted")); code != http.StatusBadGateway {
			t.Errorf("h2 %v, no --upstream-ca: %d; want 502", h2, code)
		}
	}
}
