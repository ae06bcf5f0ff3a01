package gateway

import (
	"context"
	"net/http"

	"github.com/h2cgw/h2cgw/internal/hopbyhop"
)

// Stream 1 of an upgraded connection: the HTTP/1.1 request as HTTP/2
// (RFC 7540 §3.2), and the handler every stream of a cleartext HTTP/2
// connection runs through.

// stream1Request turns the HTTP/1.1 upgrade request into what it is after the
// 101: stream 1 of an HTTP/2 connection, half-closed (remote), its body
// already read (RFC 7540 §3.2). The HTTP/2 server hands stream 1's handler
// the header of ServeConnOpts.UpgradeRequest as given (x/net's h2c adapter
// passes the HTTP/1.1 request on unchanged), so the HTTP/2 view is built
// here: the proto fields, and the header without the connection-specific
// fields that HTTP/2 forbids (RFC 9113 §8.2.2).
func stream1Request(r *http.Request, body *heldBody) *http.Request {
	r1 := r.Clone(r.Context())
	r1.Proto, r1.ProtoMajor, r1.ProtoMinor = "HTTP/2.0", 2, 0
	hopbyhop.Strip(r1.Header)
	r1.TransferEncoding = nil
	r1.Close = false
	r1.ContentLength = body.len()
	if r1.ContentLength == 0 {
		r1.Body = http.NoBody
	} else {
		r1.Body = body
	}
	return r1
}

// stream1Key marks stream 1's context. The handler cannot tell stream 1 by
// its *http.Request: built with Go 1.27, net/http hands every stream's
// handler a Request of its own (net/http http2.go, http2Handler), copied
// from the one passed as ServeConnOpts.UpgradeRequest, context included.
type stream1Key struct{}

// streamHandler is the handler the HTTP/2 server runs for every stream of a
// cleartext HTTP/2 connection: the same chain as every other request, so
// that nothing reaches the wrapped handler without passing it, and never the
// upgrading handler itself, so that no stream can upgrade again (x/net's
// h2c package passes its own upgrading handler, so a stream could).
type streamHandler struct {
	g    *Gateway
	path EntryPath
}

func (sh streamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if sh.g.refusedStream(r) {
		// Refused by the guard: the stream's reset, INTERNAL_ERROR from
		// either server, leaves as REFUSED_STREAM (frameguard.go).
		panic(http.ErrAbortHandler)
	}
	if !sh.g.headerFieldsOK(w, r) {
		return
	}
	if r.Context().Value(stream1Key{}) != nil {
		// Stream 1's context is the one given with the upgrade request,
		// which neither HTTP/2 implementation cancels when the stream is
		// reset or the connection dies; both close the CloseNotify
		// channel then.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		//lint:ignore SA1019 CloseNotify is the only signal of a reset stream 1.
		if cn, ok := w.(http.CloseNotifier); ok {
			closed := cn.CloseNotify()
			go func() {
				select {
				case <-closed:
					cancel()
				case <-ctx.Done():
				}
			}()
		}
		r = r.WithContext(ctx)
	}
	sh.g.serveHTTP2(w, r, sh.path)
}
