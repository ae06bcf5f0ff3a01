package proxy

import (
	"net"
	"net/http"
	"strings"

	"github.com/h2cgw/h2cgw/internal/hopbyhop"
	"golang.org/x/net/http/httpguts"
)

// Header values the proxy sets. The slices are shared by every request and
// never written to: an http.Header value that is only read (by the
// transports) or replaced (by Set, append on a full slice) can be, and it
// saves an allocation per field per request. Their capacity equals their
// length, so an append copies.
var (
	connectionUpgrade = []string{"Upgrade"}
	upgradeWebSocket  = []string{"websocket"}
	protoHTTP         = []string{"http"}
	protoHTTPS        = []string{"https"}
	via10             = []string{"1.0 " + viaPseudonym}
	via11             = []string{"1.1 " + viaPseudonym}
	via2              = []string{"2 " + viaPseudonym}
)

// viaPseudonym names the gateway in Via (RFC 9110 §7.6.3), in place of a
// host name that would tell clients about the inside of the network.
const viaPseudonym = "h2cgw"

// forwardHeader removes from an outgoing request every field that belongs to
// the hop from the client rather than to the request: the hop-by-hop fields
// of RFC 9110 §7.6.1 and the connection-specific fields of RFC 9113 §8.2.2
// (Connection, Upgrade, Keep-Alive, Proxy-Connection, Transfer-Encoding, TE
// other than "trailers", which gRPC needs), HTTP2-Settings (RFC 7540 §3.2.1),
// and every field the client named in Connection. It does so whether or not
// the client listed them in Connection: httputil.ReverseProxy forwards an
// unlisted HTTP2-Settings and re-adds "Connection: Upgrade" and the client's
// Upgrade, which would carry an h2c upgrade to the upstream (h2c smuggling,
// golang/go#80416).
//
// With tunnel — an HTTP/1.1 WebSocket handshake going to an HTTP/1.1
// upstream, the one upgrade the gateway passes on (README "Gateway mode") — it then sets
// exactly "Connection: Upgrade" and "Upgrade: websocket", whatever other
// tokens the client offered. ReverseProxy keys its 101 handling on the
// outgoing request's Upgrade, so any other request goes out with none.
func forwardHeader(h http.Header, tunnel bool) {
	hopbyhop.Strip(h)
	if tunnel {
		h["Connection"] = connectionUpgrade
		h["Upgrade"] = upgradeWebSocket
	}
}

// wantsWebSocket reports whether r is a WebSocket opening handshake the
// proxy can tunnel: a GET on HTTP/1.1 with "Upgrade: websocket" and
// "Connection: upgrade" (RFC 6455 §4.1). HTTP/2 has no Upgrade (RFC 9113
// §8.6), and its extended CONNECT (RFC 8441) is off.
func wantsWebSocket(r *http.Request) bool {
	up := r.Header["Upgrade"]
	return len(up) > 0 &&
		r.ProtoMajor == 1 && r.ProtoMinor == 1 &&
		r.Method == http.MethodGet &&
		httpguts.HeaderValuesContainsToken(up, "websocket") &&
		httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade")
}

// upgradeType is the protocol ReverseProxy reads from h: Upgrade's first
// line when Connection lists "upgrade", else "".
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade") {
		return ""
	}
	if v := h["Upgrade"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// validUpgradeValue reports whether ReverseProxy will accept the upgrade
// type of h: printable ASCII, or none.
func validUpgradeValue(h http.Header) bool {
	if _, ok := h["Upgrade"]; !ok {
		return true
	}
	for _, c := range []byte(upgradeType(h)) {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// tunnelAccepted reports whether res, a 101, completes the WebSocket tunnel
// its request asked for. The test is ReverseProxy's own (the same
// upgradeType on both sides, compared case-insensitively), so that a 101 let
// through here is never one ReverseProxy refuses after.
func tunnelAccepted(res *http.Response) bool {
	if res.Request == nil {
		return false
	}
	return strings.EqualFold(upgradeType(res.Request.Header), "websocket") &&
		strings.EqualFold(upgradeType(res.Header), "websocket")
}

// setForwarded sets the X-Forwarded-* fields of an outgoing request from the
// incoming one: the client's address appended to X-Forwarded-For, its Host
// in X-Forwarded-Host, its scheme in X-Forwarded-Proto; and appends the
// gateway to Via (RFC 9110 §7.6.3). ReverseProxy has already removed the
// client's X-Forwarded-* and Forwarded from out (a Rewrite hook's contract);
// X-Forwarded-For is appended to, as proxies chain it.
func setForwarded(in *http.Request, out http.Header) {
	host := in.Host
	if host == "" {
		host = in.URL.Host
	}
	// One allocation for both single-valued fields.
	vals := new([2]string)
	if host != "" {
		vals[1] = host
		out["X-Forwarded-Host"] = vals[1:2:2]
	}
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		vals[0] = ip
		out["X-Forwarded-For"] = vals[0:1:1]
	} else if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
		out["X-Forwarded-For"] = prior[:len(prior):len(prior)]
	}
	if in.TLS != nil {
		out["X-Forwarded-Proto"] = protoHTTPS
	} else {
		out["X-Forwarded-Proto"] = protoHTTP
	}
	addVia(out, in.ProtoMajor, in.ProtoMinor)
}

// addVia appends the gateway, with the protocol version the message was
// received with, to h's Via (RFC 9110 §7.6.3).
func addVia(h http.Header, major, minor int) {
	v := via11
	switch {
	case major >= 2:
		v = via2
	case major == 1 && minor == 0:
		v = via10
	}
	prior := h["Via"]
	if len(prior) == 0 {
		h["Via"] = v
		return
	}
	h["Via"] = append(prior[:len(prior):len(prior)], v[0])
}
