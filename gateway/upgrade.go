package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/h2cgw/h2cgw/settings"
	"golang.org/x/net/http2"
)

// response101 is the whole answer to an accepted upgrade (RFC 7540 §3.2):
// after it the server speaks HTTP/2, starting with its SETTINGS.
const response101 = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"

// serveHTTP is the handler net/http runs for every HTTP/1.x request and for
// every stream of a prior-knowledge connection.
func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ci := connInfoFrom(r.Context())
	if r.ProtoMajor == 2 && !isH1PRI(w, r) {
		// net/http handed the connection to x/net: prior knowledge, or
		// ALPN "h2" on a caller's TLS server. Upgraded connections run
		// streamHandler instead and never come here.
		path := PathPriorKnowledge
		if r.TLS != nil {
			path = PathH2
		}
		if ci != nil && ci.pathIfUnset(path) {
			g.emit(Event{Kind: EventConnOpen, Path: path})
		}
		g.serveHTTP2(w, r, path)
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
	if !headerHasToken(r.Header["Upgrade"], "h2c") {
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

// servePRI answers "PRI * HTTP/2.0" that reached the HTTP/1.1 parser: net/http
// takes the preface at the very start of a connection (when prior knowledge is
// on) before any request is parsed, so anything here is either the preface
// with prior knowledge switched off, a mangled preface, or a preface after
// the first request, where RFC 9113 §3.4 gives it no meaning.
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

// answer writes a response the gateway gives itself, never the wrapped
// handler's, and reports it with its status and request, so that whatever
// logs and counts requests sees these too (SPEC §7: one access line per
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

// serveHTTP2 serves one HTTP/2 request on any entry path, after rejecting
// upgrade signals: HTTP/2 removed the Upgrade mechanism, and a request that
// carries its fields is malformed (RFC 9113 §8.2.2). x/net answers 400 to
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

// classify checks every condition of SPEC §2 that can be checked before the
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
	case !headerHasToken(r.Header["Connection"], "upgrade"):
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

// upgrade performs an accepted upgrade: hijack, 101, client preface, then the
// connection is x/net's, with the original request as stream 1.
func (g *Gateway) upgrade(w http.ResponseWriter, r *http.Request, ci *connInfo, payload settings.Payload, body []byte) {
	var tracked net.Conn
	if ci != nil {
		// Track before the hijack so that Shutdown, from here on, waits
		// for this connection to be registered with x/net before it
		// broadcasts GOAWAY.
		if !g.conns.add(ci.conn) {
			r.Body = io.NopCloser(bytes.NewReader(body))
			g.decline(w, r, ReasonShutdown, nil)
			return
		}
		tracked = ci.conn
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (a wrapper hid it): serve on HTTP/1.1 rather than
		// lose the request.
		if tracked != nil {
			g.conns.remove(tracked, true)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		g.decline(w, r, ReasonDisabled, err)
		return
	}
	if tracked == nil {
		if !g.conns.add(conn) {
			conn.Close()
			return
		}
	}
	started := false
	defer func() {
		if !started {
			g.conns.remove(conn, true)
			conn.Close()
		}
	}()

	// net/http leaves nothing unflushed before a hijack unless the handler
	// wrote; flush it all the same so that nothing precedes the 101.
	_ = conn.SetWriteDeadline(time.Now().Add(g.cfg.prefaceTimeout()))
	if err := brw.Writer.Flush(); err != nil {
		g.protocolError(r, PathH1, ReasonWrite101, err)
		return
	}
	if _, err := io.WriteString(conn, response101); err != nil {
		g.protocolError(r, PathH1, ReasonWrite101, err)
		return
	}
	_ = conn.SetWriteDeadline(time.Time{})

	// Whatever the client sent after the request — its preface, SETTINGS,
	// more streams — is already in net/http's reader; keep it, and let the
	// 4 KiB reader go.
	var pending []byte
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		pending = bytes.Clone(b)
	}
	// The connection outlives the HTTP/1.1 request: what it keeps of it is
	// the remote address, not the request (its header, URL and body).
	remote := r.RemoteAddr
	uc := &upgradedConn{
		Conn:           conn,
		pending:        pending,
		onStarted:      g.conns.started,
		prefaceTimeout: g.cfg.prefaceTimeout(),
		onBadPreface: func(reason Reason, err error) {
			g.protocolErrorFrom(remote, PathUpgrade, reason, err)
		},
	}
	started = true

	if ci != nil {
		ci.setPath(PathUpgrade)
	}
	g.emit(Event{Kind: EventUpgradeAccepted, Path: PathUpgrade})
	g.emit(Event{Kind: EventConnOpen, Path: PathUpgrade})
	g.log.Debug().Str("remote", r.RemoteAddr).Int("settings_bytes", len(payload)).Msg("upgrade accepted")

	// Serve HTTP/2 on a goroutine of the gateway's and let net/http's
	// connection goroutine return: it would otherwise hold the HTTP/1.1
	// request, response and buffers for the connection's whole life. The
	// HTTP/1.1 request's context ends when its handler returns, so the
	// connection keeps its values without its cancellation.
	ctx := context.WithoutCancel(r.Context())
	first := stream1Request(r.WithContext(ctx), body)
	go g.serveUpgraded(ctx, uc, first, payload)
}

// serveUpgraded runs x/net's server on an upgraded connection until it ends.
// The connection is tracked from before its hijack, so Shutdown waits for this
// goroutine's connection and closes it when the grace period ends.
func (g *Gateway) serveUpgraded(ctx context.Context, uc *upgradedConn, first *http.Request, payload settings.Payload) {
	// x/net's writes are batched (batchConn); its reads go to uc.
	g.h2.ServeConn(newBatchConn(uc), &http2.ServeConnOpts{
		Context:        ctx,
		BaseConfig:     g.hs,
		Handler:        newStreamHandler(g, first),
		UpgradeRequest: first,
		Settings:       payload,
		// The preface is checked by upgradedConn, under the gateway's
		// own timeout rather than x/net's fixed 10s.
		SawClientPreface: true,
	})
	g.conns.remove(uc.Conn, !uc.started.Load())
	g.emit(Event{Kind: EventConnClose, Path: PathUpgrade})
}

// stream1Request turns the HTTP/1.1 upgrade request into what it is after the
// 101: stream 1 of an HTTP/2 connection, half-closed (remote), its body
// already read (RFC 7540 §3.2). x/net passes the request to the handler as it
// is (PITFALLS 4), so the HTTP/2 view is built here: the proto fields, and the
// header without the connection-specific fields that HTTP/2 forbids (RFC 9113
// §8.2.2).
func stream1Request(r *http.Request, body []byte) *http.Request {
	r1 := r.Clone(r.Context())
	r1.Proto, r1.ProtoMajor, r1.ProtoMinor = "HTTP/2.0", 2, 0
	stripConnectionFields(r1.Header)
	r1.TransferEncoding = nil
	r1.Close = false
	r1.ContentLength = int64(len(body))
	if len(body) == 0 {
		r1.Body = http.NoBody
	} else {
		r1.Body = io.NopCloser(bytes.NewReader(body))
	}
	return r1
}

// streamHandler is the handler x/net runs for every stream of an upgraded
// connection: the same chain as every other request, so that nothing reaches
// the wrapped handler without passing it, and never the upgrading handler
// itself, so that no stream can upgrade again (PITFALLS 5).
type streamHandler struct {
	g *Gateway
	// first is stream 1's request, which x/net hands back as given, until
	// stream 1 starts: then it is dropped, so that a long-lived connection
	// does not keep it (its header, URL, context) once answered.
	first atomic.Pointer[http.Request]
}

func newStreamHandler(g *Gateway, first *http.Request) *streamHandler {
	sh := &streamHandler{g: g}
	sh.first.Store(first)
	return sh
}

func (sh *streamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if sh.first.Load() == r && sh.first.CompareAndSwap(r, nil) {
		// Stream 1's context is the HTTP/1.1 request's, which x/net does
		// not cancel when the stream is reset or the connection dies
		// (PITFALLS 16). x/net closes the CloseNotify channel on both.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		//lint:ignore SA1019 CloseNotify is x/net's only signal of a reset stream 1.
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
	sh.g.serveHTTP2(w, r, PathUpgrade)
}
