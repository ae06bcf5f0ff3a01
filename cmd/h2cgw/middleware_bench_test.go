package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/h2cgw/h2cgw/internal/echo"
	"github.com/rs/zerolog"
)

// discardWriter is a ResponseWriter that keeps nothing, so that the
// benchmarks below count the middleware's allocations, not a recorder's.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkMiddleware measures the per-request chain of the binary (access
// log, then metrics) around a handler that writes a short body, as in
// run.go: the cost every request pays on top of the handler.
func BenchmarkMiddleware(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	m := newMetrics("bench")
	log := zerolog.New(io.Discard).Hook(timestamp{})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"metrics", m.middleware(h)},
		{"accesslog+metrics", accessLog(log, new(atomic.Bool), m.middleware(h))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "http://example.test/bench", nil)
			w := &discardWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				tc.h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkEcho measures the built-in handler (README "Running it") on a GET with a
// browser's worth of header fields.
func BenchmarkEcho(b *testing.B) {
	h := echo.Handler(nil)
	req := httptest.NewRequest(http.MethodGet, "http://example.test/bench?q=1", nil)
	for k, v := range map[string]string{
		"Accept": "*/*", "User-Agent": "bench/1.0", "Accept-Encoding": "gzip",
		"Cookie": "a=b", "X-Request-Id": "0123456789abcdef",
	} {
		req.Header.Set(k, v)
	}
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}
