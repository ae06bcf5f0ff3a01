// Package hopbyhop removes the fields that describe one connection rather
// than the message, which neither an HTTP/2 request nor a forwarded one may
// carry (RFC 9113 §8.2.2, RFC 9110 §7.6.1): one list, one function, used by
// the gateway for stream 1 of an upgrade and by the proxy for what it
// forwards.
package hopbyhop

import (
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Fields are the fields RFC 9113 §8.2.2 forbids in HTTP/2 (and RFC 9110
// §7.6.1 calls hop-by-hop), plus HTTP2-Settings, which RFC 7540 §3.2.1
// makes a connection-specific field of the upgrade. TE is handled apart:
// "TE: trailers" is the one value HTTP/2 allows.
var Fields = [...]string{
	"Connection",
	"Upgrade",
	"Http2-Settings",
	"Keep-Alive",
	"Proxy-Connection",
	"Transfer-Encoding",
}

// Strip removes from h every field of Fields and every field named in
// Connection, and TE unless it says "trailers" (then it is exactly
// "trailers"), leaving what an HTTP/2 request may carry.
func Strip(h http.Header) {
	for _, v := range h["Connection"] {
		forEachToken(v, func(tok string) {
			delete(h, textproto.CanonicalMIMEHeaderKey(tok))
		})
	}
	for _, k := range Fields {
		delete(h, k)
	}
	if te, ok := h["Te"]; ok {
		switch {
		case !httpguts.HeaderValuesContainsToken(te, "trailers"):
			delete(h, "Te")
		case len(te) == 1 && te[0] == "trailers":
			// Already what HTTP/2 allows: kept without allocating.
		default:
			h["Te"] = []string{"trailers"}
		}
	}
}

// forEachToken calls fn with each element of the comma-separated list v,
// optional whitespace trimmed and empty elements skipped (RFC 9110 §5.6.1).
// It does not allocate.
func forEachToken(v string, fn func(string)) {
	for v != "" {
		var tok string
		if i := strings.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, ""
		}
		if tok = strings.Trim(tok, " \t"); tok != "" {
			fn(tok)
		}
	}
}
