package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/internal/echo"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// waitTimeout bounds every wait on the process under test: generous for a
// loaded CI machine, finite so that a hang fails rather than stalls.
const waitTimeout = 10 * time.Second

func TestMain(m *testing.M) {
	// run reads the environment twins of its flags: a developer's
	// H2CGW_* settings must not change what the tests pass.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix) {
			os.Unsetenv(k)
		}
	}
	os.Exit(m.Run())
}

// logSink collects the JSON lines run writes to stderr, echoes them to the
// test log, and lets a test wait, without polling, for a line that matches.
type logSink struct {
	mu      sync.Mutex    // guards the fields below
	t       *testing.T    // nil once the test is over
	partial []byte        // an unterminated last line
	lines   []string      // complete lines, in order
	changed chan struct{} // closed and replaced on every new line
}

func newLogSink(t *testing.T) *logSink {
	s := &logSink{t: t, changed: make(chan struct{})}
	t.Cleanup(func() {
		s.mu.Lock()
		s.t = nil // goroutines cut by a shutdown may still log
		s.mu.Unlock()
	})
	return s
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		line := string(s.partial[:i])
		s.partial = s.partial[i+1:]
		s.lines = append(s.lines, line)
		if s.t != nil {
			s.t.Log(line)
		}
		added = true
	}
	if added {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	return len(p), nil
}

// wait returns the first JSON line, from the start of the log, for which
// match is true, waiting for new lines as they come.
func (s *logSink) wait(t *testing.T, match func(map[string]any) bool) map[string]any {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	next := 0
	for {
		s.mu.Lock()
		lines, changed := s.lines[next:], s.changed
		next = len(s.lines)
		s.mu.Unlock()
		for _, l := range lines {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && match(m) {
				return m
			}
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("no matching log line within %v", waitTimeout)
		}
	}
}

// waitMessage waits for a line with the message msg and the given fields.
func (s *logSink) waitMessage(t *testing.T, msg string, fields map[string]any) map[string]any {
	t.Helper()
	return s.wait(t, func(m map[string]any) bool {
		if m["message"] != msg {
			return false
		}
		for k, v := range fields {
			if m[k] != v {
				return false
			}
		}
		return true
	})
}

// instance is one run of the binary's run function, on loopback port 0.
type instance struct {
	addr, admin string // bound addresses from the "listening" line
	logs        *logSink
	cancel      context.CancelFunc
	done        chan error // run's result
}

// startRun starts run with args after defaults for tests (port 0, debug
// logs) and waits for its "listening" line. Cleanup stops it.
func startRun(t *testing.T, args ...string) *instance {
	t.Helper()
	return startRunArgs(t, append([]string{
		"--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0",
		"--log-level", "debug",
		"--shutdown-timeout", "5s",
	}, args...))
}

// startRunArgs runs the binary's run with exactly all and waits for its
// listening line.
func startRunArgs(t *testing.T, all []string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{logs: newLogSink(t), cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- run(ctx, all, io.Discard, in.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-in.done:
		case <-time.After(waitTimeout):
			t.Errorf("run did not return within %v of cancel", waitTimeout)
		}
	})
	line := in.logs.waitMessage(t, "listening", nil)
	in.addr, _ = line["listen"].(string)
	in.admin, _ = line["admin"].(string)
	if in.addr == "" {
		t.Fatalf("listening line without listen: %v", line)
	}
	return in
}

// stop cancels run's context and returns its result.
func (in *instance) stop(t *testing.T) error {
	t.Helper()
	in.cancel()
	select {
	case err := <-in.done:
		in.done <- err // for Cleanup
		return err
	case <-time.After(waitTimeout):
		t.Fatalf("run did not return within %v of cancel", waitTimeout)
		return nil
	}
}

func (in *instance) url(path string) string { return "http://" + in.addr + path }

// h1Client is an HTTP/1.1 client; its idle connections close with the test.
func h1Client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// h2cClient speaks HTTP/2 with prior knowledge over plain TCP.
func h2cClient(t *testing.T) *http.Client {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// echoOf decodes the built-in handler's answer.
func echoOf(t *testing.T, resp *http.Response) echo.Response {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %q; want 200", resp.StatusCode, body)
	}
	var e echo.Response
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("decoding %q: %v", body, err)
	}
	return e
}

// h2Response is a response read frame by frame.
type h2Response struct {
	status  string
	header  http.Header
	body    []byte
	trailer http.Header
}

// upgradeRequest performs an h2c upgrade on a raw connection: it writes head
// (an HTTP/1.1 request head ending in a blank line), expects the exact 101,
// sends the client preface and an empty SETTINGS frame, and reads stream 1's
// response with http2.Framer and hpack.
func upgradeRequest(t *testing.T, addr, head string) h2Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return upgradeRequestOn(t, c, head)
}

// upgradeRequestOn is upgradeRequest on a connection the caller dialled
// (and may have written to already); it closes c.
func upgradeRequestOn(t *testing.T, c net.Conn, head string) h2Response {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		t.Fatalf("reading the status line: %v", err)
	}
	if line != "HTTP/1.1 101 Switching Protocols" {
		t.Fatalf("status line %q; want HTTP/1.1 101 Switching Protocols", line)
	}
	if _, err := tp.ReadMIMEHeader(); err != nil {
		t.Fatalf("reading the 101's header: %v", err)
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var resp h2Response
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					t.Fatal(err)
				}
			}
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v before stream 1 ended", f.ErrCode)
		case *http2.RSTStreamFrame:
			t.Fatalf("RST_STREAM %v on stream %d", f.ErrCode, f.StreamID)
		case *http2.MetaHeadersFrame:
			if f.StreamID != 1 {
				t.Fatalf("HEADERS on stream %d; want 1", f.StreamID)
			}
			h := make(http.Header)
			for _, hf := range f.RegularFields() {
				h.Add(hf.Name, hf.Value)
			}
			if resp.header == nil {
				resp.status, resp.header = f.PseudoValue("status"), h
			} else {
				resp.trailer = h
			}
			if f.StreamEnded() {
				return resp
			}
		case *http2.DataFrame:
			resp.body = append(resp.body, f.Data()...)
			if f.StreamEnded() {
				return resp
			}
		}
	}
}

// metricsText scrapes the admin listener's /metrics.
func metricsText(t *testing.T, admin string) string {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: status %d; want 200", resp.StatusCode)
	}
	return string(b)
}

// metricValue returns the value of the series named exactly series (name and
// labels as the text format writes them), or fails.
func metricValue(t *testing.T, text, series string) string {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	t.Fatalf("no series %s in /metrics", series)
	return ""
}

func get(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp
}

// statusOf GETs url and returns the status code and body.
func statusOf(t *testing.T, url string) (int, string) {
	t.Helper()
	resp := get(t, http.DefaultClient, url)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func upgradeHead(addr, method, target string, extra ...string) string {
	h := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n", method, target, addr)
	for _, e := range extra {
		h += e + "\r\n"
	}
	return h + "\r\n"
}
