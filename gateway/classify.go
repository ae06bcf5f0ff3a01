package gateway

// Whether an h2c upgrade is performed or declined (README "What each input gets"), and the
// bounded read of its body.

import (
	"errors"
	"net/http"

	"github.com/h2cgw/h2cgw/settings"
	"golang.org/x/net/http/httpguts"
)

// classify checks every condition of README "What each input gets" that can be checked before the
// body is read, and returns the decoded HTTP2-Settings payload or the reason
// to decline.
func (g *Gateway) classify(r *http.Request) (settings.Payload, Reason, error) {
	switch {
	case g.cfg.DisableUpgrade:
		return nil, ReasonDisabled, nil
	case r.ProtoMinor == 0:
		// RFC 9110 §7.8: a server must ignore Upgrade in an HTTP/1.0 request.
		return nil, ReasonHTTP10, nil
	case r.TLS != nil:
		return nil, ReasonTLS, nil
	case r.Method == http.MethodConnect:
		return nil, ReasonConnect, nil
	case !httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade"):
		// RFC 9110 §7.8: a sender of Upgrade must list it in Connection; a
		// proxy that dropped the token has consumed the upgrade.
		return nil, ReasonNoConnectionToken, nil
	}
	p, err := settings.FromHeader(r.Header)
	switch {
	case errors.Is(err, settings.ErrMissing):
		return nil, ReasonMissingSettings, err
	case errors.Is(err, settings.ErrDuplicate):
		return nil, ReasonDuplicateSettings, err
	case err != nil:
		return nil, ReasonBadSettings, err
	}
	if g.conns.isClosing() {
		return nil, ReasonShutdown, nil
	}
	limit := g.cfg.maxUpgradeBody()
	if (limit < 0 && r.ContentLength != 0) || (limit >= 0 && r.ContentLength > limit) {
		// Declared too large: decline without reading a byte of it.
		return nil, ReasonBodyTooLarge, nil
	}
	return p, "", nil
}
