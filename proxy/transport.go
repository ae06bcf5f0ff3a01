package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync/atomic"
	"time"
)

// dial connects to an upstream for either transport. A failure is marked as
// a dialError: nothing was sent, which makes a retry safe.
func (p *Proxy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if p.dials != nil {
		if err := p.dials.wait(ctx); err != nil {
			return nil, err
		}
	}
	c, err := p.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &dialError{err: err}
	}
	return c, nil
}

// roundTrip is ReverseProxy's Transport. rewrite chose the upstream (the
// request's URL.Host); when connecting to it fails, the upstream is taken
// out of the pool, and an idempotent request is sent once to another one:
// nothing of it was sent yet, so the upstream cannot have acted on it.
func (p *Proxy) roundTrip(req *http.Request) (*http.Response, error) {
	u := p.pool.lookup(req.URL.Host)
	if u == nil {
		// Cannot happen: rewrite set the host from the pool.
		return nil, fmt.Errorf("proxy: no upstream at %q", req.URL.Host)
	}
	retry := len(p.pool.ups) > 1 && isIdempotent(req)
	var body *retryBody
	if retry && req.Body != nil && req.Body != http.NoBody {
		// A body the transport has not read from can go out again; the
		// transport closes it after a failed dial, which must not stop
		// the retry.
		body = &retryBody{rc: req.Body}
		r := *req
		r.Body = body
		req = &r
	}
	res, err := p.attempt(u, req)
	if err == nil {
		return res, nil
	}
	if !retry || !isDialError(err) || req.Context().Err() != nil || (body != nil && body.read.Load()) {
		return nil, &upstreamError{up: u, err: err}
	}
	_, tunnel := req.Header["Upgrade"]
	next := p.pool.pickOther(u, tunnel)
	if next == nil {
		return nil, &upstreamError{up: u, err: err}
	}
	_, cause := errorStatus(req.Context(), err)
	p.report(req, u, cause, err)
	p.log.Debug().Str("upstream", u.name).Str("next", next.name).Msg("retrying on another upstream")
	if n := NoteFromContext(req.Context()); n != nil {
		n.Upstream = next.name
	}
	r := *req
	target := *req.URL
	target.Host = next.host
	r.URL = &target
	res, err = p.attempt(next, &r)
	if err != nil {
		return nil, &upstreamError{up: next, err: err}
	}
	return res, nil
}

// attempt sends req to u, and keeps the pool's view of u current. The
// response body it returns reports a failure midway (watchedBody) and gives
// back u's request slot when closed.
func (p *Proxy) attempt(u *upstream, req *http.Request) (*http.Response, error) {
	if err := u.acquire(req.Context(), p.timeout); err != nil {
		return nil, err
	}
	if err := req.Context().Err(); err != nil {
		// The client reset the stream (or left) before the request was
		// sent: the upstream never hears of it (README "Security").
		u.release()
		return nil, err
	}
	var h2 *h2cAttempt
	if u.h2c {
		h2 = newH2CAttempt(req.Context())
		req = req.WithContext(h2)
	}
	start := time.Now()
	res, err := u.rt.RoundTrip(req)
	if err != nil {
		u.release()
		if h2 != nil && h2.saw101.Load() {
			// The transport's own error is the stream reset it sent.
			err = fmt.Errorf("%w (HTTP/2 :status 101, stream reset)", errUnsolicited101)
		}
		if isDialError(err) && req.Context().Err() == nil && p.pool.takeOut(u) {
			p.log.Warn().Str("upstream", u.name).Dur("for", p.pool.failTimeout).
				AnErr("error", err).Msg("upstream taken out")
		}
		return nil, err
	}
	if p.onResponse != nil {
		p.onResponse(u.name, time.Since(start))
	}
	if p.pool.restore(u) {
		p.log.Info().Str("upstream", u.name).Msg("upstream back in service")
	}
	if res.StatusCode == http.StatusSwitchingProtocols || res.Body == nil || res.Body == http.NoBody {
		// A tunnel's connection is no longer the transport's (nor
		// counted by it), and ReverseProxy needs its body as it is; a
		// response without a body has already given its connection
		// back.
		u.release()
		return res, nil
	}
	// ReverseProxy aborts a response whose body fails midway
	// (http.ErrAbortHandler) without calling ErrorHandler: the failure is
	// reported from the body.
	res.Body = &watchedBody{ReadCloser: res.Body, p: p, up: u, req: req}
	return res, nil
}

// isIdempotent reports whether req may be sent twice (RFC 9110 §9.2.2), as
// net/http's own transport judges it: by method, or by an Idempotency-Key
// the client sent.
func isIdempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := req.Header["X-Idempotency-Key"]
	return ok
}

// retryBody lets a request body survive a failed connect: it records
// whether the transport ever read from it, and ignores Close, which the
// transport calls after a failed attempt. The body beneath is
// ReverseProxy's, whose own Close it defers.
type retryBody struct {
	rc   io.ReadCloser
	read atomic.Bool
}

func (b *retryBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.rc.Read(p)
}

func (b *retryBody) Close() error { return nil }

// h2cAttempt is the context of one request to an h2c upstream. It keeps an
// HTTP/2 upstream's 101 from reaching the client.
//
// ReverseProxy forwards every 1xx response it hears of through the
// httptrace.ClientTrace in the request's context (Got1xxResponse), by
// calling WriteHeader with it; net/http's server takes WriteHeader(101) as
// the final status and writes "101 Switching Protocols" to the client. On
// HTTP/1.1 the transport ends the exchange at a 101 and modifyResponse
// refuses it; net/http's HTTP/2 client instead treats 101 as one more
// informational response (RFC 9113 §8.6 removed it from HTTP/2) and hands it
// to the trace. This context answers every lookup of a ClientTrace with a
// copy whose Got1xxResponse refuses 101 — the client then resets the stream
// with PROTOCOL_ERROR, as for any malformed response (RFC 9113 §8.1.1), and
// the round trip fails — and passes every other 1xx (100, 103) on.
type h2cAttempt struct {
	context.Context
	trace  httptrace.ClientTrace
	next   func(int, textproto.MIMEHeader) error
	saw101 atomic.Bool
}

func newH2CAttempt(ctx context.Context) *h2cAttempt {
	a := &h2cAttempt{Context: ctx}
	if t := httptrace.ContextClientTrace(ctx); t != nil {
		a.trace = *t
		a.next = t.Got1xxResponse
	}
	a.trace.Got1xxResponse = a.got1xx
	return a
}

// Value returns the filtering trace in place of the one ReverseProxy put in
// the context. Without one (the Proxy's ReverseProxy always puts one) no one
// forwards 1xx responses, and the client ignores a 101 like other 1xx.
func (a *h2cAttempt) Value(key any) any {
	v := a.Context.Value(key)
	if _, ok := v.(*httptrace.ClientTrace); ok {
		return &a.trace
	}
	return v
}

func (a *h2cAttempt) got1xx(code int, h textproto.MIMEHeader) error {
	if code == http.StatusSwitchingProtocols {
		a.saw101.Store(true)
		return errUnsolicited101
	}
	if a.next != nil {
		return a.next(code, h)
	}
	return nil
}
