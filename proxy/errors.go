package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/h2cgw/h2cgw/gateway"
	"golang.org/x/net/http2"
)

// Causes of an upstream failure, as logged and passed to
// Config.OnUpstreamError.
const (
	causeRefused        = "refused"
	causeTimeout        = "timeout"
	causeReset          = "reset"
	causeBadResponse    = "bad_response"
	causeUnsolicited101 = "unsolicited_101"
	causeCanceled       = "canceled"
	causeOther          = "other"
)

// errUnsolicited101 is an upstream's 101 to a request that asked for no
// WebSocket tunnel, or an HTTP/2 upstream's 101, which RFC 9113 §8.6 removed.
var errUnsolicited101 = errors.New("upstream switched protocols unasked")

// upstreamError names the upstream an error came from, which the request
// alone does not tell after a retry moved it to another.
type upstreamError struct {
	up  *upstream // nil if unknown
	err error
}

func (e *upstreamError) Error() string {
	if e.up == nil {
		return e.err.Error()
	}
	return e.up.name + ": " + e.err.Error()
}

func (e *upstreamError) Unwrap() error { return e.err }

// dialError marks a failure to connect: nothing of the request was sent, so
// an idempotent one may go to another upstream, and the upstream is taken
// out of the pool.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func isDialError(err error) bool {
	var de *dialError
	return errors.As(err, &de)
}

// errorStatus maps an upstream failure to the status the client gets and
// the cause reported (README "Gateway mode": 502 or 504, a log line naming
// the upstream and the cause). ctx is the request's.
func errorStatus(ctx context.Context, err error) (status int, cause string) {
	var ne net.Error
	switch {
	case errors.Is(err, errUnsolicited101):
		// The upstream answered 101 to a request that asked for no tunnel
		// (README "Gateway mode"), or spoke 101 on HTTP/2: its connection (HTTP/1.1) or
		// stream (HTTP/2) is gone.
		return http.StatusBadGateway, causeUnsolicited101
	case errors.Is(ctx.Err(), context.Canceled):
		// The client reset its stream or closed its connection first: no
		// one reads the answer, which is written for the access log only
		// (nginx's 499).
		return http.StatusBadGateway, causeCanceled
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		// A deadline set around the proxy ran out.
		return http.StatusGatewayTimeout, causeTimeout
	case errors.As(err, &ne) && ne.Timeout():
		// No response headers within Config.Timeout (either
		// transport's ResponseHeaderTimeout), or no connection within
		// DialTimeout.
		return http.StatusGatewayTimeout, causeTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		// Nothing listens at the upstream's address.
		return http.StatusBadGateway, causeRefused
	case isDialError(err):
		// Could not connect otherwise: no route, name not resolved.
		return http.StatusBadGateway, causeOther
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		isHTTP2Reset(err):
		// The upstream closed or reset the connection, or reset the
		// stream, before its response headers.
		return http.StatusBadGateway, causeReset
	case isMalformedResponse(err):
		// The upstream's response did not parse: a garbage status line,
		// oversized headers, an HTTP/2 protocol error (illegal SETTINGS,
		// an HTTP/1.1 answer to the HTTP/2 preface).
		return http.StatusBadGateway, causeBadResponse
	default:
		return http.StatusBadGateway, causeOther
	}
}

// net/http reports most of these failures with unexported error types (its
// HTTP/1.1 parser's and its bundled HTTP/2 client's, which the h2c pool's
// http.ClientConn uses), so their messages, stable since those packages
// began, are the fallback that tells them apart once the typed errors
// (isHTTP2Reset, isMalformedResponse) have not. Only error paths read them.
var (
	// http2ResetMarks: the peer reset the stream or went away.
	http2ResetMarks = []string{"received from peer", "GOAWAY", "client connection lost"}
	// malformedMarks: an HTTP/1.1 response that does not parse, an HTTP/2
	// protocol error on the connection or stream, an HTTP/2 handshake that
	// failed after the connect (illegal SETTINGS), or an HTTP/1.1 answer to
	// the HTTP/2 preface (its head read as a frame that is too large).
	malformedMarks = []string{
		"malformed", "invalid", "exceeded", "bogus", "unexpected",
		"PROTOCOL_ERROR", "FRAME_SIZE_ERROR", "frame too large", "could not be established",
	}
)

// isHTTP2Reset reports a reset stream or a GOAWAY: by type where the error
// has one (x/net's http2.StreamError with a code other than
// PROTOCOL_ERROR, http2.GoAwayError), else by its text.
func isHTTP2Reset(err error) bool {
	var se http2.StreamError
	if errors.As(err, &se) {
		return se.Code != http2.ErrCodeProtocol
	}
	var ge http2.GoAwayError
	if errors.As(err, &ge) {
		return true
	}
	return containsAny(err.Error(), http2ResetMarks)
}

// isMalformedResponse reports a response that did not parse: by type where
// the error has one (http.ErrSchemeMismatch and tls.RecordHeaderError, an
// HTTP/1.1 answer where TLS was spoken; x/net's http2.ConnectionError and a
// PROTOCOL_ERROR stream error), else by its text.
func isMalformedResponse(err error) bool {
	var rhe tls.RecordHeaderError
	var ce http2.ConnectionError
	var se http2.StreamError
	switch {
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &rhe), errors.As(err, &ce):
		return true
	case errors.As(err, &se):
		return se.Code == http2.ErrCodeProtocol
	}
	return containsAny(err.Error(), malformedMarks)
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// errorBodies are the plain-text bodies of the proxy's own answers, by
// cause. They do not name the upstream: its address is for the log, not for
// clients.
var errorBodies = map[string]string{
	causeRefused:        "502 Bad Gateway: upstream refused the connection",
	causeTimeout:        "504 Gateway Timeout: upstream did not answer in time",
	causeReset:          "502 Bad Gateway: upstream closed the connection",
	causeBadResponse:    "502 Bad Gateway: upstream sent a malformed response",
	causeUnsolicited101: "502 Bad Gateway: upstream switched protocols unasked",
	causeOther:          "502 Bad Gateway: upstream unreachable",
}

// handleError is ReverseProxy's ErrorHandler: it answers a request whose
// upstream failed before its response headers were copied, logs the
// failure, and reports it. r is the outgoing request.
func (p *Proxy) handleError(w http.ResponseWriter, r *http.Request, err error) {
	var u *upstream
	var ue *upstreamError
	if errors.As(err, &ue) {
		u = ue.up
	} else {
		u = p.pool.lookup(r.URL.Host)
	}
	status, cause := errorStatus(r.Context(), err)
	p.report(r, u, cause, err)
	if cause == causeCanceled {
		w.WriteHeader(status)
		return
	}
	http.Error(w, errorBodies[cause], status)
}

// report logs one failed attempt and passes it to OnUpstreamError. A client
// that went away is no upstream's fault: it is logged at debug.
func (p *Proxy) report(r *http.Request, u *upstream, cause string, err error) {
	name := ""
	if u != nil {
		name = u.name
	}
	ev := p.log.Warn()
	if cause == causeCanceled {
		ev = p.log.Debug()
	}
	ev.Str("upstream", name).
		Str("cause", cause).
		AnErr("error", err).
		Str("via", string(gateway.EntryPathFromContext(r.Context()))).
		Str("method", r.Method).
		Str("host", r.Host).
		Str("path", r.URL.Path).
		Msg("upstream error")
	if p.onError != nil {
		p.onError(name, cause)
	}
}

// watchedBody reports an upstream's response body that fails after the
// headers were sent on (reset mid-response): the client's stream is cut by
// ReverseProxy, and the upstream and cause are logged and reported like a
// failure before the headers. A client that went away meanwhile is not
// reported: leaving a stream early is what clients of server-sent events do.
// Closing it gives back the upstream's request slot.
type watchedBody struct {
	io.ReadCloser
	p        *Proxy
	up       *upstream
	req      *http.Request
	reported bool        // read and written by the copying goroutine only
	closed   atomic.Bool // the slot was given back
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && !b.reported && b.req.Context().Err() == nil {
		b.reported = true
		_, cause := errorStatus(b.req.Context(), err)
		b.p.report(b.req, b.up, cause, err)
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.ReadCloser.Close()
	if !b.closed.Swap(true) {
		b.up.release()
	}
	return err
}
