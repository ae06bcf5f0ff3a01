package gateway

import "net/http"

// upgradeSignals are the fields whose presence on an HTTP/2 request is an
// attempt to upgrade a connection that already speaks HTTP/2 (RFC 9113 §8.2.2).
var upgradeSignals = [...]string{"Upgrade", "Connection", "Http2-Settings"}

// hasUpgradeSignal reports the first upgrade signal h carries, or "".
func hasUpgradeSignal(h http.Header) string {
	for _, k := range upgradeSignals {
		if _, ok := h[k]; ok {
			return k
		}
	}
	return ""
}
