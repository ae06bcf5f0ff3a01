package gateway

// Whether an h2c upgrade is performed or declined (README "What each input gets"), and the
// bounded read of its body.

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

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

func (g *Gateway) decline(w http.ResponseWriter, r *http.Request, reason Reason, err error) {
	ev := g.log.Debug().Str("reason", string(reason)).Str("remote", r.RemoteAddr)
	if err != nil {
		ev = ev.Err(err)
	}
	ev.Msg("upgrade declined")
	g.emit(Event{Kind: EventUpgradeDeclined, Path: PathH1, Reason: reason, Err: err})
	g.next.ServeHTTP(w, r)
}

// readUpgradeBody reads the body of an upgrade request before the 101, the
// only place RFC 7540 §3.2 leaves for it, within the body limit. Reading it is
// also what sends "100 Continue" (net/http answers Expect on the first read),
// so 100 comes before 101. A body past the limit declines the upgrade: the
// bytes read are put back in front of the rest and the request is served on
// HTTP/1.1 with all of it. A body that cannot be read (malformed chunking, too
// slow, the client gone) is answered here and the error returned.
func (g *Gateway) readUpgradeBody(w http.ResponseWriter, r *http.Request) ([]byte, Reason, error) {
	if r.ContentLength == 0 {
		return nil, "", nil
	}
	limit := g.cfg.maxUpgradeBody()
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(g.cfg.upgradeBodyTimeout()))
	// Read a declared length as it arrives too, rather than allocating it
	// up front: a client that declares the limit and sends nothing must not
	// hold the limit's memory.
	n := r.ContentLength
	if n < 0 {
		n = limit + 1
	}
	buf, err := readAtMost(r.Body, n)
	if err == nil && r.ContentLength > 0 && int64(len(buf)) < r.ContentLength {
		err = io.ErrUnexpectedEOF // as io.ReadFull would say
	}
	var restore time.Time
	if g.hs.ReadTimeout > 0 {
		restore = time.Now().Add(g.hs.ReadTimeout)
	}
	_ = rc.SetReadDeadline(restore)
	if err != nil {
		g.bodyError(w, r, err)
		return nil, "", err
	}
	if int64(len(buf)) > limit {
		r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(buf), r.Body), body: r.Body}
		return nil, ReasonBodyTooLarge, nil
	}
	return buf, "", nil
}

// readAtMost reads r to its end or until it has n bytes, growing its buffer
// only as data arrives so that memory follows what the client sent.
func readAtMost(r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, 0, min(n, 4096))
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
			if int64(cap(buf)) > n {
				buf = buf[:len(buf):n]
			}
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// replayBody serves the part of a body read for an upgrade, then the rest.
type replayBody struct {
	io.Reader
	body io.ReadCloser
}

func (b *replayBody) Close() error { return b.body.Close() }

// bodyError answers a request whose upgrade body could not be read and
// closes its connection: the request cannot be served without its body.
func (g *Gateway) bodyError(w http.ResponseWriter, r *http.Request, err error) {
	// The rest of the body will not be read: keep net/http from waiting
	// for it before it closes the connection.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	w.Header().Set("Connection", "close")
	e := Event{Kind: EventProtocolError, Path: PathH1, Reason: ReasonUpgradeBody, Err: err}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		g.answer(w, r, e, http.StatusRequestTimeout, "request body not received in time")
		return
	}
	g.answer(w, r, e, http.StatusBadRequest, "request body could not be read")
}
