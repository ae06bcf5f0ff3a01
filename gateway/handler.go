package gateway

// The per-request dispatch: which entry path a request came by, and what
// the gateway answers itself (README "What each input gets").

import (
	"cmp"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// serveHTTP is the handler net/http runs for every HTTP/1.x request and for
// every stream of a prior-knowledge connection.
func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ci := connInfoFrom(r.Context())
	pri := isH1PRI(w, r)
	if !g.headerFieldsOK(w, r) {
		return
	}
	if r.ProtoMajor == 2 && !pri {
		// net/http handed the connection to its HTTP/2 server: ALPN "h2"
		// on a caller's TLS server. Cleartext HTTP/2 connections, upgraded
		// or prior knowledge, run streamHandler instead and never come
		// here.
		path := PathH2
		if r.TLS == nil {
			path = PathPriorKnowledge
		}
		if ci != nil && ci.pathIfUnset(path) {
			g.emit(Event{Kind: EventConnOpen, Path: path})
		}
		g.serveHTTP2(w, r, path)
		return
	}

	if pri && r.TLS == nil && ci != nil && ci.entryPath() == "" && !g.cfg.DisablePriorKnowledge {
		// The connection's first bytes are the HTTP/2 preface.
		g.priorKnowledge(w, r, ci)
		return
	}
	first := ci == nil || ci.pathIfUnset(PathH1)
	if first && ci != nil {
		g.emit(Event{Kind: EventConnOpen, Path: PathH1})
	}
	if r.Method == "PRI" {
		g.servePRI(w, r, first)
		return
	}
	if !httpguts.HeaderValuesContainsToken(r.Header["Upgrade"], "h2c") {
		// Not an h2c upgrade attempt (Upgrade: h2 or websocket, or none):
		// plain HTTP/1.1.
		g.next.ServeHTTP(w, r)
		return
	}

	payload, reason, err := g.classify(r)
	if reason != "" {
		g.decline(w, r, reason, err)
		return
	}
	body, reason, err := g.readUpgradeBody(w, r)
	if err != nil {
		return // answered by readUpgradeBody
	}
	if reason != "" {
		if reason == ReasonMemory {
			g.refuse(nil, ReasonMemoryUpgrade, r.RemoteAddr)
		}
		// net/http closes the body it made, not this one: close it here,
		// once the handler is done with it, to give its memory back.
		defer body.Close()
		r.Body = body
		g.decline(w, r, reason, nil)
		return
	}
	g.upgrade(w, r, ci, payload, body)
}

// isH1PRI reports whether r is "PRI * HTTP/2.0" read by net/http's HTTP/1.1
// parser, which passes it to handlers with ProtoMajor 2 (for the deprecated
// h2c package's sake). Only HTTP/1.1 response writers can be hijacked.
func isH1PRI(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != "PRI" || r.RequestURI != "*" {
		return false
	}
	_, h1 := w.(http.Hijacker)
	return h1
}

// servePRI answers "PRI * HTTP/2.0" that is not the start of a
// prior-knowledge connection (priorKnowledge takes those): the preface with
// prior knowledge switched off, over TLS, or after the first request, where
// RFC 9113 §3.4 gives it no meaning.
func (g *Gateway) servePRI(w http.ResponseWriter, r *http.Request, first bool) {
	w.Header().Set("Connection", "close")
	if first && g.cfg.DisablePriorKnowledge {
		g.answer(w, r, Event{Kind: EventProtocolError, Path: PathH1, Reason: ReasonPriorKnowledgeDisabled},
			http.StatusHTTPVersionNotSupported, "HTTP/2 with prior knowledge is not served here")
		return
	}
	g.answer(w, r, Event{Kind: EventProtocolError, Path: PathH1, Reason: ReasonLatePreface},
		http.StatusBadRequest, "the HTTP/2 preface is only valid as the first bytes of a connection")
}

// serveHTTP2 serves one HTTP/2 request on any entry path, after rejecting
// upgrade signals: HTTP/2 removed the Upgrade mechanism, and a request that
// carries its fields is malformed (RFC 9113 §8.2.2). The HTTP/2 server answers 400 to
// Connection and Upgrade itself before any handler runs; HTTP2-Settings
// reaches here.
func (g *Gateway) serveHTTP2(w http.ResponseWriter, r *http.Request, path EntryPath) {
	if k := hasUpgradeSignal(r.Header); k != "" {
		g.answer(w, r, Event{Kind: EventUpgradeRejected, Path: path, Reason: ReasonUpgradeOnHTTP2,
			Err: fmt.Errorf("field %s on an HTTP/2 request", k)},
			http.StatusBadRequest, "upgrade fields are not allowed in HTTP/2 (RFC 9113 §8.2.2)")
		return
	}
	g.next.ServeHTTP(w, r)
}

// headerFieldsOK answers 431 (RFC 6585 §5) for a request with more header
// field lines than Config.MaxHeaderFields, and reports whether it did not.
// The count is Go 1.27's http.Server.MaxHeaderValueCount's: every line,
// and every name a Trailer field declares (each stands for a field to come,
// and the server makes room for it). The gateway counts on both toolchains,
// so the answer is the same on both (headercount_go127.go keeps Go 1.27's
// own count from answering first).
func (g *Gateway) headerFieldsOK(w http.ResponseWriter, r *http.Request) bool {
	limit := g.cfg.maxHeaderFields()
	n := 0
	for k, vs := range r.Header {
		if k != "Trailer" {
			n += len(vs)
			continue
		}
		for _, v := range vs {
			n += strings.Count(v, ",") + 1
		}
	}
	if _, ok := r.Header["Trailer"]; !ok {
		// The HTTP/2 servers move the declarations to r.Trailer.
		n += len(r.Trailer)
	}
	if n <= limit {
		return true
	}
	path := PathH1
	if r.ProtoMajor == 2 {
		path = PathH2
		if ci := connInfoFrom(r.Context()); ci != nil {
			path = cmp.Or(ci.entryPath(), path)
		}
	}
	g.answer(w, r, Event{Kind: EventRefused, Path: path, Reason: ReasonHeaderFields,
		Err: fmt.Errorf("%d header fields; the limit is %d", n, limit)},
		http.StatusRequestHeaderFieldsTooLarge, "too many header fields")
	return false
}
