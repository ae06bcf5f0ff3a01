package gateway

// HTTP/2 with prior knowledge (RFC 9113 §3.3) on the cleartext listener.

import (
	"context"
	"net/http"

	"golang.org/x/net/http2"
)

// prefaceHead is the part of the client preface (RFC 9113 §3.4) that
// net/http's HTTP/1.1 parser reads as a request, "PRI * HTTP/2.0" with no
// header field; "SM\r\n\r\n" follows it.
const prefaceHead = "PRI * HTTP/2.0\r\n\r\n"

// priorKnowledge serves a connection whose first bytes are the client
// preface. net/http's HTTP/1.1 server hands "PRI * HTTP/2.0" to the handler
// so that handlers can wire up HTTP/2 themselves (net/http server.go,
// http1ServerSupportsRequest); the gateway hijacks the connection and hands
// it to the HTTP/2 server as it does an upgraded one: the same preface
// check, write batching, read-ahead, shutdown tracking and stream handler,
// whichever HTTP/2 implementation the toolchain brings (README "Supported Go
// versions"). net/http's own prior-knowledge path
// (Protocols.SetUnencryptedHTTP2) is not used: it reaches the HTTP/2 server
// through a hand-off that only x/net's own server had, and that no wrapper
// can reach on Go 1.27.
//
// The head was read under the server's ReadHeaderTimeout; the rest of the
// preface is read under Config.PrefaceTimeout.
func (g *Gateway) priorKnowledge(w http.ResponseWriter, r *http.Request, ci *connInfo) {
	if !g.conns.add(ci.conn) {
		// Shutting down: a new HTTP/2 connection would only get GOAWAY.
		// Close it, as a listener closed a moment earlier would have.
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (a wrapper hid it): answered as with prior
		// knowledge switched off.
		g.conns.remove(ci.conn, true)
		w.Header().Set("Connection", "close")
		g.answer(w, r, Event{Kind: EventProtocolError, Path: PathH1, Reason: ReasonPriorKnowledgeDisabled, Err: err},
			http.StatusHTTPVersionNotSupported, "HTTP/2 with prior knowledge is not served here")
		return
	}
	// net/http consumed the preface's head; the HTTP/2 server is told the
	// preface was seen, and upgradedConn checks it whole: the head again,
	// then what net/http had buffered behind it, then the socket.
	n := brw.Reader.Buffered()
	pending := make([]byte, 0, len(prefaceHead)+n)
	pending = append(pending, prefaceHead...)
	if n > 0 {
		b, _ := brw.Reader.Peek(n)
		pending = append(pending, b...)
	}
	uc := g.newUpgradedConn(conn, r.RemoteAddr, PathPriorKnowledge, pending)
	ci.setPath(PathPriorKnowledge)
	g.emit(Event{Kind: EventConnOpen, Path: PathPriorKnowledge})
	// As for an upgrade, net/http's connection goroutine returns and lets
	// its HTTP/1.1 buffers go; the connection keeps its context's values.
	go g.serveHTTP2Conn(context.WithoutCancel(r.Context()), conn, uc, PathPriorKnowledge, "", &http2.ServeConnOpts{})
}
