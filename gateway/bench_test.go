package gateway

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/h2cgw/h2cgw/internal/hopbyhop"
	"golang.org/x/net/http/httpguts"
)

func benchRequest(b *testing.B) *http.Request {
	b.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(
		"GET /index.html HTTP/1.1\r\nHost: example.test\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n" +
			"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")))
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkClassify is the decision made for every HTTP/1.1 request that
// asks for h2c, before anything is written.
func BenchmarkClassify(b *testing.B) {
	g := New(http.NotFoundHandler(), Config{})
	r := benchRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, reason, _ := g.classify(r); reason != "" {
			b.Fatalf("declined: %s", reason)
		}
	}
}

// BenchmarkStripConnectionFields is the header rewrite stream 1 gets.
func BenchmarkStripConnectionFields(b *testing.B) {
	r := benchRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		h := r.Header.Clone()
		hopbyhop.Strip(h)
	}
}

// BenchmarkUpgradeSignal is the check every HTTP/2 request passes.
func BenchmarkUpgradeSignal(b *testing.B) {
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"h2load"}}
	b.ReportAllocs()
	for b.Loop() {
		if hasUpgradeSignal(h) != "" {
			b.Fatal("signal found")
		}
	}
}

// BenchmarkHeaderHasToken is the list parsing of Upgrade and Connection.
func BenchmarkHeaderHasToken(b *testing.B) {
	vals := []string{"keep-alive", "TE, Upgrade, HTTP2-Settings"}
	b.ReportAllocs()
	for b.Loop() {
		if !httpguts.HeaderValuesContainsToken(vals, "upgrade") {
			b.Fatal("token not found")
		}
	}
}
