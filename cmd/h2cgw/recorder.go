package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// recorder wraps a stream's ResponseWriter to learn its status and size for
// the access log and the metrics. It must hide nothing the handler relies
// on: Flush (server-sent events, gRPC streaming), Hijack (the WebSocket
// tunnel of README "Gateway mode", on HTTP/1.1) and trailers (which go through Header) all
// reach the writer beneath; Unwrap lets http.ResponseController find the
// rest (deadlines, full duplex).
//
// The access log and the metrics share one recorder per request: the metrics
// middleware reuses the access log's when it finds one.
type recorder struct {
	http.ResponseWriter
	// status is the final status: the first one of 2xx–5xx, or 101 for a
	// protocol switch; 1xx informational responses (100, 103) are not final.
	// Handlers write from one goroutine at a time (net/http's rule), and the
	// middleware reads it after the handler returned.
	status int
	// written counts response body bytes. Atomic: a hijacked tunnel's copy
	// may run beyond the handler.
	written atomic.Int64
	// body counts request body bytes the handler read; nil if the request
	// had no body.
	body *countingBody
}

func newRecorder(w http.ResponseWriter, r *http.Request) (*recorder, *http.Request) {
	rec := &recorder{ResponseWriter: w}
	if r.Body != nil && r.Body != http.NoBody {
		// Replacing a NoBody would turn "no body" into "unknown length"
		// for a proxy's outgoing request.
		rec.body = &countingBody{ReadCloser: r.Body}
		r.Body = rec.body
	}
	return rec, r
}

// code returns the status the client got, 200 when the handler wrote
// nothing (net/http's answer then).
func (rec *recorder) code() int {
	if rec.status == 0 {
		return http.StatusOK
	}
	return rec.status
}

func (rec *recorder) bytesIn() int64 {
	if rec.body == nil {
		return 0
	}
	return rec.body.n.Load()
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(p)
	rec.written.Add(int64(n))
	return n, err
}

// Flush implements http.Flusher for handlers that assert it.
func (rec *recorder) Flush() {
	_ = rec.FlushError()
}

// FlushError is what http.ResponseController.Flush calls first, so that
// the error of the writer beneath is not lost.
func (rec *recorder) FlushError() error {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return http.NewResponseController(rec.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker; it fails with http.ErrNotSupported on
// HTTP/2, where there is no connection to take.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(rec.ResponseWriter).Hijack()
	if err == nil && rec.status == 0 {
		// httputil.ReverseProxy writes the upstream's 101 on the
		// hijacked connection itself.
		rec.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Unwrap serves http.ResponseController.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// countingBody counts the request body bytes a handler reads. The count is
// atomic: a proxy's transport reads the body on its own goroutine.
type countingBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
