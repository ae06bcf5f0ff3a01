package integration

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// upgradeLimit is the --max-upgrade-body of the gateway that serves the
// over-the-limit rows; their bodies are bigBody long.
const (
	upgradeLimit = 1024
	bigBody      = 64 << 10
)

// TestCurl drives curl through each entry path (README "What each input gets") and each way a
// body can come with an upgrade (README "What each input gets"), checking the status lines
// curl printed, in order, and what the built-in handler saw.
func TestCurl(t *testing.T) {
	t.Parallel()
	curl := requireTool(t, "curl", hintCurl)
	def := startGateway(t)
	limited := startGateway(t, "--max-upgrade-body", strconv.Itoa(upgradeLimit))

	small := []byte("hello, h2c")
	medium := randomBytes(t, 10<<10)
	big := randomBytes(t, bigBody)

	tests := []struct {
		name    string
		gw      *gatewayProc
		args    []string // curl flags before the URL
		method  string
		path    string // request target, with the query
		body    []byte // sent with --data-binary when non-nil
		lines   []string
		noLines []string // verbose lines that must not appear
		version string   // curl's %{http_version}
		via     string
		proto   string
	}{{
		name:    "http2 GET upgrades",
		gw:      def,
		args:    []string{"--http2"},
		method:  "GET",
		path:    "/get?x=1&y=2",
		lines:   []string{"< HTTP/1.1 101 Switching Protocols", "< HTTP/2 200"},
		version: "2", via: "h2c-upgrade", proto: "HTTP/2.0",
	}, {
		name:    "http2 POST small body upgrades",
		gw:      def,
		args:    []string{"--http2"},
		method:  "POST",
		path:    "/post",
		body:    small,
		lines:   []string{"< HTTP/1.1 101 Switching Protocols", "< HTTP/2 200"},
		version: "2", via: "h2c-upgrade", proto: "HTTP/2.0",
	}, {
		name:    "http2 POST chunked body upgrades",
		gw:      def,
		args:    []string{"--http2", "-H", "Transfer-Encoding: chunked"},
		method:  "POST",
		path:    "/chunked",
		body:    medium,
		lines:   []string{"> Transfer-Encoding: chunked", "< HTTP/1.1 101 Switching Protocols", "< HTTP/2 200"},
		version: "2", via: "h2c-upgrade", proto: "HTTP/2.0",
	}, {
		name:   "http2 POST Expect 100-continue gets 100 before 101",
		gw:     def,
		args:   []string{"--http2", "-H", "Expect: 100-continue"},
		method: "POST",
		path:   "/expect",
		body:   medium,
		lines: []string{"> Expect: 100-continue", "< HTTP/1.1 100 Continue",
			"< HTTP/1.1 101 Switching Protocols", "< HTTP/2 200"},
		version: "2", via: "h2c-upgrade", proto: "HTTP/2.0",
	}, {
		name:    "http2 POST over the upgrade limit stays on HTTP/1.1",
		gw:      limited,
		args:    []string{"--http2"},
		method:  "POST",
		path:    "/big",
		body:    big,
		lines:   []string{"> Upgrade: h2c", "< HTTP/1.1 200"},
		noLines: []string{"< HTTP/1.1 101", "< HTTP/2"},
		version: "1.1", via: "h1", proto: "HTTP/1.1",
	}, {
		name:    "http2 POST chunked over the upgrade limit stays on HTTP/1.1",
		gw:      limited,
		args:    []string{"--http2", "-H", "Transfer-Encoding: chunked"},
		method:  "POST",
		path:    "/big-chunked",
		body:    big,
		lines:   []string{"> Upgrade: h2c", "< HTTP/1.1 200"},
		noLines: []string{"< HTTP/1.1 101", "< HTTP/2"},
		version: "1.1", via: "h1", proto: "HTTP/1.1",
	}, {
		name:    "http2-prior-knowledge GET",
		gw:      def,
		args:    []string{"--http2-prior-knowledge"},
		method:  "GET",
		path:    "/pk?q=1",
		lines:   []string{"< HTTP/2 200"},
		noLines: []string{"101 Switching Protocols", "> Upgrade:"},
		version: "2", via: "h2c-prior-knowledge", proto: "HTTP/2.0",
	}, {
		name:    "http2-prior-knowledge POST",
		gw:      def,
		args:    []string{"--http2-prior-knowledge"},
		method:  "POST",
		path:    "/pk-post",
		body:    big,
		lines:   []string{"< HTTP/2 200"},
		noLines: []string{"101 Switching Protocols"},
		version: "2", via: "h2c-prior-knowledge", proto: "HTTP/2.0",
	}, {
		name:    "http1.1 GET",
		gw:      def,
		args:    []string{"--http1.1"},
		method:  "GET",
		path:    "/h1",
		lines:   []string{"< HTTP/1.1 200 OK"},
		noLines: []string{"101 Switching Protocols", "> Upgrade:"},
		version: "1.1", via: "h1", proto: "HTTP/1.1",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			out := filepath.Join(dir, "body")
			args := append([]string{"-sS", "-v", "-o", out, "-w", "%{http_version} %{response_code}"}, tt.args...)
			if tt.body != nil {
				in := filepath.Join(dir, "request")
				if err := os.WriteFile(in, tt.body, 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--data-binary", "@"+in)
			}
			args = append(args, tt.gw.URL(tt.path))
			stdout, verbose, err := runTool(t, curl, args...)
			if err != nil {
				t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, verbose)
			}

			// What the client saw.
			if want := tt.version + " 200"; stdout != want {
				t.Errorf("curl -w: got %q; want %q", stdout, want)
			}
			if err := inOrder(verbose, tt.lines); err != "" {
				t.Errorf("curl -v: %s\n%s", err, verbose)
			}
			for _, l := range tt.noLines {
				if hasLinePrefix(verbose, l) {
					t.Errorf("curl -v shows %q; want none\n%s", l, verbose)
				}
			}

			// What the handler saw.
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			e := parseEcho(t, got)
			path, query, _ := strings.Cut(tt.path, "?")
			e.check(t, tt.via, tt.proto, tt.method, path, tt.body)
			if e.Query != query {
				t.Errorf("handler saw query %q; want %q", e.Query, query)
			}
			if want := tt.gw.Addr; e.Host != want {
				t.Errorf("handler saw host %q; want %q", e.Host, want)
			}
		})
	}
}

// inOrder checks that verbose output has a line starting with each of
// prefixes, in that order; it returns what is missing, or "".
func inOrder(out string, prefixes []string) string {
	lines := strings.Split(out, "\n")
	i := 0
	for _, p := range prefixes {
		for i < len(lines) && !strings.HasPrefix(strings.TrimRight(lines[i], "\r"), p) {
			i++
		}
		if i == len(lines) {
			return "no line " + quote(p) + " after the lines before it, in order " + quote(strings.Join(prefixes, " | "))
		}
		i++
	}
	return ""
}

func hasLinePrefix(out, prefix string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func quote(s string) string { return "\"" + s + "\"" }

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
