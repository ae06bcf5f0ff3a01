package gateway

import (
	"net/http"
	"net/textproto"
	"strings"
)

// connectionSpecificFields are the fields RFC 9113 §8.2.2 forbids in HTTP/2
// (and RFC 9110 §7.6.1 calls hop-by-hop), plus HTTP2-Settings, which RFC 7540
// §3.2.1 makes a connection-specific field of the upgrade. TE is handled apart:
// "TE: trailers" is the one value HTTP/2 allows.
var connectionSpecificFields = [...]string{
	"Connection",
	"Upgrade",
	"Http2-Settings",
	"Keep-Alive",
	"Proxy-Connection",
	"Transfer-Encoding",
}

// upgradeSignals are the fields whose presence on an HTTP/2 request is an
// attempt to upgrade a connection that already speaks HTTP/2 (RFC 9113 §8.2.2).
var upgradeSignals = [...]string{"Upgrade", "Connection", "Http2-Settings"}

// stripConnectionFields removes from h every connection-specific field and
// every field named in Connection, leaving what an HTTP/2 request may carry
// (RFC 9113 §8.2.2). It is applied to stream 1 of an upgrade, whose head
// arrived as HTTP/1.1.
func stripConnectionFields(h http.Header) {
	for _, v := range h["Connection"] {
		forEachToken(v, func(tok string) bool {
			delete(h, textproto.CanonicalMIMEHeaderKey(tok))
			return true
		})
	}
	for _, k := range connectionSpecificFields {
		delete(h, k)
	}
	if te, ok := h["Te"]; ok {
		keep := false
		for _, v := range te {
			if hasToken(v, "trailers") {
				keep = true
			}
		}
		switch {
		case keep && len(te) == 1 && te[0] == "trailers":
			// Already what HTTP/2 allows: keep it without allocating.
		case keep:
			h["Te"] = []string{"trailers"}
		default:
			delete(h, "Te")
		}
	}
}

// hasUpgradeSignal reports the first upgrade signal h carries, or "".
func hasUpgradeSignal(h http.Header) string {
	for _, k := range upgradeSignals {
		if _, ok := h[k]; ok {
			return k
		}
	}
	return ""
}

// headerHasToken reports whether any of the field lines vals lists token,
// compared case-insensitively (RFC 9110 §5.6.1 lists; §7.8 and §7.6.1 make
// Upgrade and Connection tokens case-insensitive). Split field lines count
// as one list (RFC 9110 §5.3).
func headerHasToken(vals []string, token string) bool {
	for _, v := range vals {
		if hasToken(v, token) {
			return true
		}
	}
	return false
}

func hasToken(v, token string) bool {
	found := false
	forEachToken(v, func(tok string) bool {
		if strings.EqualFold(tok, token) {
			found = true
			return false
		}
		return true
	})
	return found
}

// forEachToken calls fn with each element of the comma-separated list v,
// optional whitespace trimmed and empty elements skipped, until fn returns
// false. It does not allocate.
func forEachToken(v string, fn func(string) bool) {
	for v != "" {
		var tok string
		if i := strings.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, ""
		}
		tok = strings.Trim(tok, " \t")
		if tok == "" {
			continue
		}
		if !fn(tok) {
			return
		}
	}
}
