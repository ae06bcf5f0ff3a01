package main

import (
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/h2cgw/h2cgw/gateway"
	"github.com/h2cgw/h2cgw/proxy"
	"github.com/rs/zerolog"
)

// accessLog logs one line per request when the handler has returned. It runs
// inside the gateway, per stream (README "Logs"): wrapped around the upgrading
// handler it would log once per connection with the 101's status lost.
//
// It gives the request a proxy.Note, so that the proxy can report the
// upstream it chose.
//
// Fields: time (to the millisecond), via (entry path), proto, method, host,
// path (without the query, which may carry tokens, unless query is set:
// then query too), status, bytes_in and bytes_out (body bytes),
// duration_ms, upstream ("" for the built-in handler), remote, user_agent,
// request_id (the X-Request-Id forwarded upstream, see requestID), aborted
// (the handler panicked, so the client got a reset stream or a cut
// connection rather than the status logged).
func accessLog(log zerolog.Logger, query *atomic.Bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, note := proxy.WithNote(r.Context())
		rec, r := newRecorder(w, r.WithContext(ctx))
		defer func() {
			// A handler that panics is logged too, then the panic goes
			// on to net/http: httputil.ReverseProxy aborts a response
			// whose upstream failed midway with http.ErrAbortHandler.
			p := recover()
			ev := log.Info().
				Str("via", string(gateway.EntryPathFromContext(ctx))).
				Str("proto", r.Proto).
				Str("method", r.Method).
				Str("host", r.Host).
				Str("path", r.URL.Path)
			if query.Load() && r.URL.RawQuery != "" {
				ev = ev.Str("query", r.URL.RawQuery)
			}
			ev.Int("status", rec.code()).
				Int64("bytes_in", rec.bytesIn()).
				Int64("bytes_out", rec.written.Load()).
				Float64("duration_ms", millis(time.Since(start))).
				Str("upstream", note.Upstream).
				Str("remote", r.RemoteAddr).
				Str("user_agent", r.UserAgent()).
				Str("request_id", logRequestID(r.Header)).
				Bool("aborted", p != nil).
				Msg("request")
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// logAnswered writes the access line of a response the gateway wrote itself
// (gateway.Event.Request is set): a rejection, a misplaced preface, an
// unreadable upgrade body — requests the handler chain, and so accessLog,
// never saw.
func logAnswered(log zerolog.Logger, query *atomic.Bool, e gateway.Event) {
	r := e.Request
	ev := log.Info().
		Str("via", string(e.Path)).
		Str("proto", r.Proto).
		Str("method", r.Method).
		Str("host", r.Host).
		Str("path", r.URL.Path)
	if query.Load() && r.URL.RawQuery != "" {
		ev = ev.Str("query", r.URL.RawQuery)
	}
	ev.Int("status", e.Status).
		Int64("bytes_in", 0).
		Int64("bytes_out", 0).
		Float64("duration_ms", 0).
		Str("upstream", "").
		Str("remote", r.RemoteAddr).
		Str("user_agent", r.UserAgent()).
		Str("request_id", logRequestID(r.Header)).
		Bool("aborted", false).
		Str("reason", string(e.Reason)).
		Msg("request")
}

// requestIDField is the request's id: kept when the client (or a balancer
// in front) sent a usable one, generated otherwise.
const requestIDField = "X-Request-Id"

// requestID returns the request's id, setting a new one in h when it has
// none or one that is not usable (validRequestID), so that the upstream
// gets it and its logs can be matched with the gateway's.
func requestID(h http.Header) string {
	if v := h[requestIDField]; len(v) == 1 && validRequestID(v[0]) {
		return v[0]
	}
	id := newRequestID()
	h[requestIDField] = []string{id}
	return id
}

// logRequestID is the id the access line shows: the request's, or, when
// the request had none that requestID kept (the built-in handler does not
// forward one), a fresh one, so that every line has one.
func logRequestID(h http.Header) string {
	if v := h[requestIDField]; len(v) == 1 && validRequestID(v[0]) {
		return v[0]
	}
	return newRequestID()
}

// validRequestID accepts 1 to 128 visible ASCII characters: what request
// ids are (UUIDs, hex, base64), and nothing that could forge a log line.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// newRequestID returns 128 random bits in hex. Uniqueness is what counts,
// not secrecy: math/rand/v2's generator, seeded from the system, gives it
// without a system call.
func newRequestID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], rand.Uint64())
	binary.BigEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// The access log's batching: at most this many bytes, or this long, between
// two writes to the log's destination.
const (
	accessLogBatchBytes = 32 << 10
	accessLogBatchDelay = 100 * time.Millisecond
)

// batchWriter gathers whole log lines and writes them to w in batches: one
// write(2) per ~150 access lines under load instead of one per request, which
// on a busy gateway cost as much CPU as serving the request. A line waits at
// most accessLogBatchDelay; Close writes what is left. zerolog hands each
// line to Write whole, so a batch never splits one.
type batchWriter struct {
	w     io.Writer
	delay time.Duration

	mu sync.Mutex
	// buf holds the lines not yet written; guarded by mu, which is also held
	// while writing to w so that batches keep their order.
	buf []byte
	// timer flushes buf delay after its first line; armed says it is
	// pending; closed says Close ran (lines are then written at once).
	// Guarded by mu.
	timer  *time.Timer
	armed  bool
	closed bool
}

func newBatchWriter(w io.Writer, delay time.Duration) *batchWriter {
	return &batchWriter{w: w, delay: delay, buf: make([]byte, 0, accessLogBatchBytes)}
}

// Write keeps a copy of p for the next batch. Errors of the destination are
// not reported: a log line has no one to report them to.
func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		_, _ = b.w.Write(p)
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	switch {
	case len(b.buf) >= accessLogBatchBytes:
		b.flushLocked()
	case !b.armed:
		b.armed = true
		if b.timer == nil {
			b.timer = time.AfterFunc(b.delay, b.Flush)
		} else {
			b.timer.Reset(b.delay)
		}
	}
	return len(p), nil
}

// Flush writes the pending lines now.
func (b *batchWriter) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *batchWriter) flushLocked() {
	if b.armed {
		b.armed = false
		b.timer.Stop()
	}
	if len(b.buf) == 0 {
		return
	}
	_, _ = b.w.Write(b.buf)
	if cap(b.buf) > 4*accessLogBatchBytes {
		// One huge line (a long URL) should not keep its buffer.
		b.buf = make([]byte, 0, accessLogBatchBytes)
		return
	}
	b.buf = b.buf[:0]
}

// Close writes the pending lines; later lines are written unbatched.
func (b *batchWriter) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	b.closed = true
	return nil
}

// newAccessLogger returns the access log's own logger: the root logger's
// format, writing to out in batches, at info whatever --log-level says (the
// access log is a stream of its own, switched by --access-log alone). stop
// writes the lines still pending; call it after the gateway has shut down.
func newAccessLogger(c config, out io.Writer) (log zerolog.Logger, stop func()) {
	bw := newBatchWriter(out, accessLogBatchDelay)
	var w io.Writer = bw
	if c.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: bw, TimeFormat: time.RFC3339, NoColor: !isTerminal(out)}
	}
	return zerolog.New(w).Level(zerolog.InfoLevel).Hook(timestamp{}), func() { _ = bw.Close() }
}
