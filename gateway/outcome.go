package gateway

// Outcome reporting (README "What each input gets"): every decline,
// rejection, protocol error and answer the gateway gives itself is logged
// and reported to Config.OnEvent here, with its reason (reasons.go).

import (
	"errors"
	"net"
	"net/http"
	"time"
)

// emit reports e to Config.OnEvent.
func (g *Gateway) emit(e Event) {
	if g.cfg.OnEvent != nil {
		g.cfg.OnEvent(e)
	}
}

// decline serves an upgrade request on HTTP/1.1, through the wrapped
// handler, and reports why it was not upgraded.
func (g *Gateway) decline(w http.ResponseWriter, r *http.Request, reason Reason, err error) {
	ev := g.log.Debug().Str("reason", string(reason)).Str("remote", r.RemoteAddr)
	if err != nil {
		ev = ev.Err(err)
	}
	ev.Msg("upgrade declined")
	g.emit(Event{Kind: EventUpgradeDeclined, Path: PathH1, Reason: reason, Err: err})
	g.next.ServeHTTP(w, r)
}

// answer writes a response the gateway gives itself, never the wrapped
// handler's, and reports it with its status and request, so that whatever
// logs and counts requests sees these too (README "Logs": one access line per
// request).
func (g *Gateway) answer(w http.ResponseWriter, r *http.Request, e Event, status int, msg string) {
	ev := g.log.Debug()
	if e.Kind == EventUpgradeRejected {
		ev = g.log.Warn()
	}
	ev = ev.Str("reason", string(e.Reason)).Str("via", string(e.Path)).Str("remote", r.RemoteAddr).Int("status", status)
	if e.Err != nil {
		ev = ev.Err(e.Err)
	}
	ev.Msg(e.Kind.String())
	e.Status, e.Request = status, r
	g.emit(e)
	http.Error(w, msg, status)
}

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

// protocolError reports a connection ended for a protocol error the gateway
// itself saw.
func (g *Gateway) protocolError(r *http.Request, path EntryPath, reason Reason, err error) {
	g.protocolErrorFrom(r.RemoteAddr, path, reason, err)
}

// protocolErrorFrom is protocolError for a connection whose request is no
// longer kept: only its remote address is.
func (g *Gateway) protocolErrorFrom(remote string, path EntryPath, reason Reason, err error) {
	ev := g.log.Debug().Str("reason", string(reason)).Str("via", string(path)).Str("remote", remote)
	if err != nil {
		ev = ev.Err(err)
	}
	ev.Msg("protocol error")
	g.emit(Event{Kind: EventProtocolError, Path: path, Reason: reason, Err: err})
}

// refuse reports work a limit turned away (README "Security"): r is the
// request refused, when there is one.
func (g *Gateway) refuse(r *http.Request, reason Reason, remote string) {
	g.log.Debug().Str("reason", string(reason)).Str("remote", remote).Msg("refused")
	g.emit(Event{Kind: EventRefused, Reason: reason, Request: r})
}

// overload reports the memory budget's transitions, once each, at warn
// level: an operator alerts on them (README "Security").
func (g *Gateway) overload(over bool) {
	if over {
		g.log.Warn().Str("resource", string(ResourceMemory)).Int64("budget", g.budget.limit).
			Msg("memory budget exhausted: refusing upgrade bodies and new streams, slowing accept")
		g.emit(Event{Kind: EventOverloadStart, Resource: ResourceMemory})
		return
	}
	g.log.Warn().Str("resource", string(ResourceMemory)).Int64("budget", g.budget.limit).
		Int64("held", g.budget.used.Load()).Msg("memory budget recovered")
	g.emit(Event{Kind: EventOverloadEnd, Resource: ResourceMemory})
}
