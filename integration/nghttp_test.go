package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestNghttpUpgradeGET: nghttp -u upgrades with the GET itself, which is
// then served as stream 1.
func TestNghttpUpgradeGET(t *testing.T) {
	t.Parallel()
	nghttp := requireTool(t, "nghttp", hintNghttp)
	g := startGateway(t)

	out, errOut, err := runTool(t, nghttp, "-v", "-u", g.URL("/nghttp?a=b"))
	if err != nil {
		t.Fatalf("nghttp: %v\n%s%s", err, out, errOut)
	}
	// What the client saw: the upgrade request, the 101, HTTP/2 after it
	// and a 200 on stream 1.
	if msg := inOrder(trimTimestamps(out), []string{
		"GET /nghttp?a=b HTTP/1.1",
		"upgrade: h2c",
		"HTTP/1.1 101 Switching Protocols",
		"HTTP Upgrade success",
		"recv (stream_id=1) :status: 200",
	}); msg != "" {
		t.Errorf("nghttp -v: %s\n%s", msg, out)
	}

	// What the handler saw.
	bodies := jsonBodies(out)
	if len(bodies) != 1 {
		t.Fatalf("nghttp printed %d JSON bodies; want 1\n%s", len(bodies), out)
	}
	e := parseEcho(t, []byte(bodies[0]))
	e.check(t, "h2c-upgrade", "HTTP/2.0", "GET", "/nghttp", nil)
	if e.Query != "a=b" {
		t.Errorf("handler saw query %q; want %q", e.Query, "a=b")
	}
}

// TestNghttpUpgradePOST: nghttp -u -d upgrades with "OPTIONS *" (so that
// the body need not travel before the 101) and sends the POST as a second
// stream. Both must reach the handler: net/http's own "OPTIONS *" answer
// must not shadow it (http.Server.DisableGeneralOptionsHandler).
func TestNghttpUpgradePOST(t *testing.T) {
	t.Parallel()
	nghttp := requireTool(t, "nghttp", hintNghttp)
	g := startGateway(t)

	body := randomBytes(t, 40<<10)
	file := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runTool(t, nghttp, "-v", "-u", "-d", file, g.URL("/upload"))
	if err != nil {
		t.Fatalf("nghttp: %v\n%s%s", err, out, errOut)
	}
	clean := trimTimestamps(out)
	if msg := inOrder(clean, []string{
		"OPTIONS * HTTP/1.1",
		"HTTP/1.1 101 Switching Protocols",
		"HTTP Upgrade success",
	}); msg != "" {
		t.Errorf("nghttp -v: %s\n%s", msg, out)
	}
	postID := postStreamID(clean)
	if postID == "" {
		t.Fatalf("nghttp -v shows no POST stream\n%s", out)
	}
	for _, id := range []string{"1", postID} {
		if want := "recv (stream_id=" + id + ") :status: 200"; !hasLinePrefix(clean, want) {
			t.Errorf("nghttp -v: no %q\n%s", want, out)
		}
	}

	// The POST, as the handler saw it.
	bodies := jsonBodies(out)
	if len(bodies) != 1 {
		t.Fatalf("nghttp printed %d JSON bodies; want 1 (the POST's)\n%s", len(bodies), out)
	}
	parseEcho(t, []byte(bodies[0])).check(t, "h2c-upgrade", "HTTP/2.0", "POST", "/upload", body)

	// nghttp does not print stream 1's body, so the OPTIONS * request is
	// checked in the access log: it reached the handler chain, upgraded.
	_, err = g.stderr.wait(ioTimeout, func(m map[string]any) bool {
		return accessLine(m, "h2c-upgrade", "OPTIONS", "*", 200)
	})
	if err != nil {
		t.Errorf("no access log line for OPTIONS * on h2c-upgrade with status 200: %v", err)
	}
}

// TestH2load: many streams on a few prior-knowledge connections; every
// request succeeds and each one reaches the handler chain.
func TestH2load(t *testing.T) {
	t.Parallel()
	h2load := requireTool(t, "h2load", hintNghttp)
	g := startGateway(t)

	const n = 2000
	out, errOut, err := runTool(t, h2load, "-n", strconv.Itoa(n), "-c", "8", "-m", "10", g.URL("/load"))
	if err != nil {
		t.Fatalf("h2load: %v\n%s%s", err, out, errOut)
	}
	m := regexp.MustCompile(`(?m)^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("h2load printed no requests line\n%s", out)
	}
	want := []string{strconv.Itoa(n), strconv.Itoa(n), strconv.Itoa(n), strconv.Itoa(n), "0", "0", "0"}
	for i, name := range []string{"total", "started", "done", "succeeded", "failed", "errored", "timeout"} {
		if m[i+1] != want[i] {
			t.Errorf("h2load %s: got %s; want %s\n%s", name, m[i+1], want[i], m[0])
		}
	}
	if want := "status codes: " + strconv.Itoa(n) + " 2xx, 0 3xx, 0 4xx, 0 5xx"; !strings.Contains(out, want) {
		t.Errorf("h2load: no %q\n%s", want, out)
	}

	// The handler side: one access log line per request, on the
	// prior-knowledge path. The lines may trail the responses a little.
	seen := 0
	_, err = g.stderr.wait(ioTimeout, func(m map[string]any) bool {
		if accessLine(m, "h2c-prior-knowledge", "GET", "/load", 200) {
			seen++
		}
		return seen == n
	})
	if err != nil {
		t.Errorf("access log lines for /load on h2c-prior-knowledge with 200: got %d; want %d (%v)", seen, n, err)
	}
}

var timestamp = regexp.MustCompile(`(?m)^\[ *\d+\.\d+\] `)

// trimTimestamps removes nghttp's "[  0.001] " prefixes and the indentation
// of its frame dumps, so lines can be matched by prefix.
func trimTimestamps(out string) string {
	lines := strings.Split(timestamp.ReplaceAllString(out, ""), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}

var sendHeaders = regexp.MustCompile(`^send HEADERS frame <.*stream_id=(\d+)>`)

// postStreamID returns the id of the stream on which nghttp sent its POST.
func postStreamID(clean string) string {
	id := ""
	for _, l := range strings.Split(clean, "\n") {
		if m := sendHeaders.FindStringSubmatch(l); m != nil {
			id = m[1]
		}
		if l == ":method: POST" && id != "" {
			return id
		}
	}
	return ""
}

// jsonBodies returns the lines of nghttp's output that are response bodies
// of the built-in handler.
func jsonBodies(out string) []string {
	var b []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, `{"`) {
			b = append(b, l)
		}
	}
	return b
}
