package main

import (
	"net/http"
	"time"

	"github.com/h2cgw/h2cgw/gateway"
	"github.com/rs/zerolog"
)

// accessLog logs one line per request when the handler has returned. It runs
// inside the gateway, per stream (PITFALLS 12): wrapped around the upgrading
// handler it would log once per connection with the 101's status lost.
//
// It gives the request a gateway.Note, so that the proxy can report the
// upstream it chose.
//
// Fields: via (entry path), proto, method, host, path, status, bytes_in and
// bytes_out (body bytes), duration (milliseconds), upstream ("" for the
// built-in handler), remote, aborted (the handler panicked, so the client
// got a reset stream or a cut connection rather than the status logged).
func accessLog(log zerolog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, note := gateway.WithNote(r.Context())
		rec, r := newRecorder(w, r.WithContext(ctx))
		defer func() {
			// A handler that panics is logged too, then the panic goes
			// on to net/http: httputil.ReverseProxy aborts a response
			// whose upstream failed midway with http.ErrAbortHandler.
			p := recover()
			log.Info().
				Str("via", string(gateway.EntryPathFromContext(ctx))).
				Str("proto", r.Proto).
				Str("method", r.Method).
				Str("host", r.Host).
				Str("path", r.URL.Path).
				Int("status", rec.code()).
				Int64("bytes_in", rec.bytesIn()).
				Int64("bytes_out", rec.written.Load()).
				Dur("duration", time.Since(start)).
				Str("upstream", note.Upstream).
				Str("remote", r.RemoteAddr).
				Bool("aborted", p != nil).
				Msg("request")
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}
