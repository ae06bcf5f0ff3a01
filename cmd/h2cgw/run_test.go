package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/h2cgw/h2cgw/gateway"
	"github.com/h2cgw/h2cgw/internal/echo"
)

func TestRunEntryPaths(t *testing.T) {
	t.Parallel()
	in := startRun(t)
	body := bytes.Repeat([]byte("h2cgw "), 1000)
	sum := sha256.Sum256(body)

	t.Run("h1", func(t *testing.T) {
		resp, err := h1Client(t).Post(in.url("/h1?a=b"), "text/plain", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		e := echoOf(t, resp)
		want := echo.Response{Via: "h1", Proto: "HTTP/1.1", Method: "POST", Host: in.addr, Path: "/h1", Query: "a=b",
			BodyBytes: int64(len(body)), BodySHA256: hex.EncodeToString(sum[:])}
		checkEcho(t, e, want)
	})
	t.Run("prior-knowledge", func(t *testing.T) {
		resp, err := h2cClient(t).Post(in.url("/pk"), "text/plain", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		e := echoOf(t, resp)
		want := echo.Response{Via: "h2c-prior-knowledge", Proto: "HTTP/2.0", Method: "POST", Host: in.addr, Path: "/pk",
			BodyBytes: int64(len(body)), BodySHA256: hex.EncodeToString(sum[:])}
		checkEcho(t, e, want)
	})
	t.Run("upgrade", func(t *testing.T) {
		resp := upgradeRequest(t, in.addr, upgradeHead(in.addr, "GET", "/up?x=1", "X-Test: yes"))
		if resp.status != "200" {
			t.Fatalf("stream 1 status %q; want 200", resp.status)
		}
		var e echo.Response
		if err := json.Unmarshal(resp.body, &e); err != nil {
			t.Fatalf("decoding %q: %v", resp.body, err)
		}
		empty := sha256.Sum256(nil)
		want := echo.Response{Via: "h2c-upgrade", Proto: "HTTP/2.0", Method: "GET", Host: in.addr, Path: "/up", Query: "x=1",
			BodySHA256: hex.EncodeToString(empty[:])}
		checkEcho(t, e, want)
		if got := e.Headers["x-test"]; len(got) != 1 || got[0] != "yes" {
			t.Errorf("headers[x-test] = %q; want [yes]", got)
		}
		for _, k := range []string{"connection", "upgrade", "http2-settings"} {
			if v, ok := e.Headers[k]; ok {
				t.Errorf("stream 1 reached the handler with %s: %q", k, v)
			}
		}
	})

	// Each request is logged once, on the stream, with its entry path.
	for _, via := range []string{"h1", "h2c-prior-knowledge", "h2c-upgrade"} {
		line := in.logs.waitMessage(t, "request", map[string]any{"via": via})
		if line["status"] != float64(200) {
			t.Errorf("access line for %s: status %v; want 200", via, line["status"])
		}
	}
	line := in.logs.waitMessage(t, "request", map[string]any{"via": "h1"})
	for k, want := range map[string]any{
		"proto": "HTTP/1.1", "method": "POST", "host": in.addr, "path": "/h1",
		"bytes_in": float64(len(body)), "upstream": "",
	} {
		if line[k] != want {
			t.Errorf("access line %s = %v; want %v", k, line[k], want)
		}
	}
	for _, k := range []string{"bytes_out", "duration_ms", "remote", "request_id"} {
		if _, ok := line[k]; !ok {
			t.Errorf("access line has no %s: %v", k, line)
		}
	}
}

// checkEcho compares e with want, except the header map.
func checkEcho(t *testing.T, got, want echo.Response) {
	t.Helper()
	got.Headers, want.Headers = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("echo:\n got %+v\nwant %+v", got, want)
	}
}

func TestRunListeningLine(t *testing.T) {
	t.Parallel()
	in := startRun(t, "--max-concurrent-streams", "100", "--max-upgrade-body", "64KiB")
	line := in.logs.waitMessage(t, "listening", nil)
	for k, want := range map[string]any{
		"mode":                   "builtin",
		"max_concurrent_streams": float64(100),
		"max_upgrade_body":       float64(64 << 10),
		"upgrade":                true,
		"prior_knowledge":        true,
		"http2_engine":           gateway.HTTP2Engine,
	} {
		if line[k] != want {
			t.Errorf("listening line %s = %v; want %v", k, line[k], want)
		}
	}
	adv, _ := line["http2_settings"].(map[string]any)
	if adv["MAX_CONCURRENT_STREAMS"] != float64(100) || adv["MAX_FRAME_SIZE"] != float64(16384) {
		t.Errorf("http2_settings = %v; want MAX_CONCURRENT_STREAMS 100, MAX_FRAME_SIZE 16384", adv)
	}
	if in.admin == "" {
		t.Errorf("admin = %q; want the bound admin address", in.admin)
	}
}

func TestRunAdminDisabled(t *testing.T) {
	t.Parallel()
	in := startRun(t, "--admin-listen", "")
	if in.admin != "" {
		t.Errorf("admin = %q; want \"\" with --admin-listen \"\"", in.admin)
	}
	if err := in.stop(t); err != nil {
		t.Errorf("run = %v; want nil", err)
	}
}

func TestRunListenError(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var stderr bytes.Buffer
	err = run(context.Background(), []string{"--listen", l.Addr().String(), "--admin-listen", ""}, io.Discard, &stderr)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("run on a busy port = %v (exit %d); want an error, exit 1", err, exitCode(err))
	}
	if !strings.Contains(stderr.String(), `"message":"cannot listen"`) {
		t.Errorf("stderr %q; want a \"cannot listen\" line", stderr.String())
	}
}

func TestRunMetrics(t *testing.T) {
	t.Parallel()
	in := startRun(t)

	// Accepted upgrade.
	upgradeRequest(t, in.addr, upgradeHead(in.addr, "GET", "/accepted"))
	in.logs.waitMessage(t, "request", map[string]any{"path": "/accepted"})

	// Declined: no HTTP2-Settings; served on HTTP/1.1 all the same.
	req, _ := http.NewRequest("GET", in.url("/declined"), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "h2c")
	e := echoOf(t, doReq(t, h1Client(t), req))
	if e.Via != "h1" {
		t.Errorf("declined upgrade via %q; want h1", e.Via)
	}
	in.logs.waitMessage(t, "request", map[string]any{"path": "/declined"})

	// Rejected: an upgrade signal on HTTP/2 is a 400 that never reaches
	// the handler (RFC 9113 §8.2.2); the event is counted before the 400 is sent.
	req, _ = http.NewRequest("GET", in.url("/rejected"), nil)
	req.Header.Set("HTTP2-Settings", "")
	resp := doReq(t, h2cClient(t), req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("HTTP2-Settings over HTTP/2: status %d; want 400", resp.StatusCode)
	}

	// A late preface on an HTTP/1.1 connection is a protocol error.
	c, err := net.Dial("tcp", in.addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	io.Copy(io.Discard, c) // the server closes after the 400
	c.Close()
	in.logs.waitMessage(t, "request", map[string]any{"path": "/first"})
	// The gateway's own answers get an access line too (README "Logs").
	in.logs.waitMessage(t, "request", map[string]any{"path": "/rejected", "status": float64(400), "reason": "upgrade_on_http2"})
	in.logs.waitMessage(t, "request", map[string]any{"method": "PRI", "status": float64(400), "reason": "late_preface"})

	text := metricsText(t, in.admin)
	for series, want := range map[string]string{
		`h2cgw_upgrades_total{outcome="accepted",reason=""}`:                                "1",
		`h2cgw_upgrades_total{outcome="declined",reason="missing_settings"}`:                "1",
		`h2cgw_upgrades_total{outcome="rejected",reason="upgrade_on_http2"}`:                "1",
		`h2cgw_upgrades_total{outcome="declined",reason="bad_settings"}`:                    "0",
		`h2cgw_protocol_errors_total{reason="late_preface"}`:                                "1",
		`h2cgw_requests_total{code_class="2xx",via="h2c-upgrade"}`:                          "1",
		`h2cgw_requests_total{code_class="2xx",via="h1"}`:                                   "2",
		`h2cgw_requests_total{code_class="2xx",via="h2c-prior-knowledge"}`:                  "0",
		`h2cgw_requests_total{code_class="4xx",via="h2c-prior-knowledge"}`:                  "1",
		`h2cgw_requests_total{code_class="4xx",via="h1"}`:                                   "1",
		`h2cgw_connections_total{via="h2c-upgrade"}`:                                        "1",
		`h2cgw_connections_total{via="h2c-prior-knowledge"}`:                                "1",
		`h2cgw_request_duration_seconds_count{via="h2c-upgrade"}`:                           "1",
		`h2cgw_requests_in_flight`:                                                          "0",
		`h2cgw_build_info{goversion="` + runtime.Version() + `",version="` + version + `"}`: "1",
	} {
		if got := metricValue(t, text, series); got != want {
			t.Errorf("%s = %s; want %s", series, got, want)
		}
	}
	for _, name := range []string{"h2cgw_connections_open", "go_goroutines", "process_open_fds"} {
		if !strings.Contains(text, "# TYPE "+name+" ") {
			t.Errorf("/metrics has no %s", name)
		}
	}
}

func doReq(t *testing.T, c *http.Client, req *http.Request) *http.Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return resp
}

func TestRunAdminEndpoints(t *testing.T) {
	t.Parallel()
	in := startRun(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := statusOf(t, "http://"+in.admin+path); code != http.StatusOK {
			t.Errorf("%s: %d %q; want 200", path, code, body)
		}
	}
	if code, _ := statusOf(t, "http://"+in.admin+"/nope"); code != http.StatusNotFound {
		t.Errorf("/nope: %d; want 404", code)
	}
}

// slowResult is the outcome of a request started by startSlowRequest.
type slowResult struct {
	resp *http.Response
	err  error
}

// startSlowRequest starts a POST on the HTTP/1.1 path whose body the test
// holds open, and returns once the handler is reading it: the server sends
// "100 Continue" on the handler's first read of the body.
func startSlowRequest(t *testing.T, in *instance) (*io.PipeWriter, <-chan slowResult) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
	reading := make(chan struct{})
	trace := &httptrace.ClientTrace{Got100Continue: func() { close(reading) }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", in.url("/slow"), pr)
	req.Header.Set("Expect", "100-continue")
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: waitTimeout}}
	t.Cleanup(client.CloseIdleConnections)
	done := make(chan slowResult, 1)
	go func() {
		resp, err := client.Do(req)
		done <- slowResult{resp, err}
	}()
	select {
	case <-reading:
	case r := <-done:
		t.Fatalf("slow request ended before its body was read: %v, %v", r.resp, r.err)
	}
	return pw, done
}

func TestRunShutdownDrains(t *testing.T) {
	t.Parallel()
	in := startRun(t)
	if code, _ := statusOf(t, "http://"+in.admin+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before shutdown: %d; want 200", code)
	}
	pw, done := startSlowRequest(t, in)

	in.cancel() // SIGTERM
	in.logs.waitMessage(t, "shutting down", nil)
	code, body := statusOf(t, "http://"+in.admin+"/readyz")
	if code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during shutdown: %d %q; want 503", code, body)
	}

	// The request in flight when the signal came completes.
	io.WriteString(pw, "late body")
	pw.Close()
	r := <-done
	if r.err != nil {
		t.Fatalf("the in-flight request failed during shutdown: %v", r.err)
	}
	e := echoOf(t, r.resp)
	if e.BodyBytes != int64(len("late body")) {
		t.Errorf("body_bytes %d; want %d", e.BodyBytes, len("late body"))
	}
	if err := in.stop(t); err != nil {
		t.Errorf("run = %v; want nil after a drain inside the grace period", err)
	}
	in.logs.waitMessage(t, "shut down", nil)
}

func TestRunShutdownGraceExceeded(t *testing.T) {
	t.Parallel()
	in := startRun(t, "--shutdown-timeout", "100ms")
	startSlowRequest(t, in) // never finishes
	err := in.stop(t)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("run = %v (exit %d); want an error, exit 1", err, exitCode(err))
	}
	in.logs.waitMessage(t, "shutdown incomplete", nil)
}

func TestRunMaxUpgradeBodyZero(t *testing.T) {
	t.Parallel()
	in := startRun(t, "--max-upgrade-body", "0")

	// A body: never upgraded with 0, served on HTTP/1.1 with all of it.
	req, _ := http.NewRequest("POST", in.url("/with-body"), strings.NewReader("hello"))
	req.Header.Set("Connection", "Upgrade, HTTP2-Settings")
	req.Header.Set("Upgrade", "h2c")
	req.Header.Set("HTTP2-Settings", "")
	e := echoOf(t, doReq(t, h1Client(t), req))
	if e.Via != "h1" || e.BodyBytes != 5 {
		t.Errorf("upgrade with a body under --max-upgrade-body 0: via %q, %d bytes; want h1, 5", e.Via, e.BodyBytes)
	}
	in.logs.waitMessage(t, "request", map[string]any{"path": "/with-body"})

	// No body: upgraded.
	if resp := upgradeRequest(t, in.addr, upgradeHead(in.addr, "GET", "/no-body")); resp.status != "200" {
		t.Errorf("upgrade without a body: status %q; want 200", resp.status)
	}
	text := metricsText(t, in.admin)
	for series, want := range map[string]string{
		`h2cgw_upgrades_total{outcome="declined",reason="body_too_large"}`: "1",
		`h2cgw_upgrades_total{outcome="accepted",reason=""}`:               "1",
	} {
		if got := metricValue(t, text, series); got != want {
			t.Errorf("%s = %s; want %s", series, got, want)
		}
	}
}

func TestRunAccessLogOff(t *testing.T) {
	t.Parallel()
	in := startRun(t, "--access-log=false")
	e := echoOf(t, get(t, h2cClient(t), in.url("/quiet")))
	if e.Via != "h2c-prior-knowledge" {
		t.Errorf("via %q; want h2c-prior-knowledge", e.Via)
	}
	h1Client(t).CloseIdleConnections()
	if err := in.stop(t); err != nil {
		t.Fatalf("run = %v", err)
	}
	// run has returned: every handler has, and no line is still to come.
	in.logs.mu.Lock()
	defer in.logs.mu.Unlock()
	for _, l := range in.logs.lines {
		if strings.Contains(l, `"message":"request"`) {
			t.Errorf("access line with --access-log=false: %s", l)
		}
	}
}

func TestRunBadUpstreamPool(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"--listen", "127.0.0.1:0", "--admin-listen", "",
		"--upstream", "http://127.0.0.1:1", "--upstream", "http://127.0.0.1:1"}, io.Discard, &stderr)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "--upstream") {
		t.Errorf("run with a duplicate upstream = %v (exit %d); want a usage error naming --upstream, exit 2", err, exitCode(err))
	}
}
