package gateway

// Performing an accepted upgrade (RFC 7540 §3.2): the 101, the hand-off to
// the HTTP/2 server, stream 1; and the hand-off every hijacked HTTP/2
// connection shares with prior knowledge (priorknowledge.go).

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"time"

	"github.com/h2cgw/h2cgw/internal/readahead"
	"github.com/h2cgw/h2cgw/settings"
	"golang.org/x/net/http2"
)

// response101 is the whole answer to an accepted upgrade (RFC 7540 §3.2):
// after it the server speaks HTTP/2, starting with its SETTINGS.
const response101 = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"

// upgrade performs an accepted upgrade: hijack, 101, client preface, then the
// connection is x/net's, with the original request as stream 1.
func (g *Gateway) upgrade(w http.ResponseWriter, r *http.Request, ci *connInfo, payload settings.Payload, body *heldBody) {
	var tracked net.Conn
	if ci != nil {
		// Track before the hijack so that Shutdown, from here on, waits
		// for this connection to be registered with the HTTP/2 server before it
		// broadcasts GOAWAY.
		if !g.conns.add(ci.conn) {
			defer body.Close()
			r.Body = body
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
		defer body.Close()
		r.Body = body
		g.decline(w, r, ReasonHijackFailed, err)
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
			body.Close()
		}
	}()

	// net/http leaves nothing unflushed before a hijack unless the handler
	// wrote; flush it all the same so that nothing precedes the 101.
	if brw.Writer.Buffered() > 0 {
		_ = conn.SetWriteDeadline(time.Now().Add(g.cfg.prefaceTimeout()))
		if err := brw.Writer.Flush(); err != nil {
			g.protocolError(r, PathH1, ReasonWrite101, err)
			return
		}
		_ = conn.SetWriteDeadline(time.Time{})
	}

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
	uc := g.newUpgradedConn(conn, r.RemoteAddr, PathUpgrade, pending)
	remote := r.RemoteAddr
	uc.onFirstWriteError = func(err error) {
		g.protocolErrorFrom(remote, PathH1, ReasonWrite101, err)
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
	first := stream1Request(r.WithContext(context.WithValue(ctx, stream1Key{}, true)), body)
	// The 101 opens the batch, so that it leaves in one write(2) with the
	// server's SETTINGS (RFC 9113 §3.2: the server's first HTTP/2 frame
	// follows the 101 at once), rather than as a segment of its own.
	// The body's memory goes back to the budget as stream 1 reads it, and
	// what is left when the connection ends (a handler that never read it).
	go func() {
		defer body.Close()
		g.serveHTTP2Conn(ctx, conn, uc, PathUpgrade, response101, &http2.ServeConnOpts{
			UpgradeRequest: first,
			Settings:       payload,
		})
	}()
}

// newUpgradedConn wraps a hijacked connection for the HTTP/2 server: reads
// first from pending (what net/http had buffered), through the preface
// check and a readAheadConn.
func (g *Gateway) newUpgradedConn(conn net.Conn, remote string, path EntryPath, pending []byte) *upgradedConn {
	return &upgradedConn{
		Conn:           readahead.New(conn),
		pending:        pending,
		onStarted:      g.conns.started,
		prefaceTimeout: g.cfg.prefaceTimeout(),
		onBadPreface: func(reason Reason, err error) {
			g.protocolErrorFrom(remote, path, reason, err)
		},
	}
}

// serveHTTP2Conn runs the HTTP/2 server on a hijacked connection — upgraded,
// or prior knowledge — until it ends. opts carries what is particular to the
// path (stream 1 and the client's settings of an upgrade); prime is what the
// first write leads with (the 101). The connection is tracked from before
// its hijack, so Shutdown waits for this goroutine's connection and closes it
// when the grace period ends.
func (g *Gateway) serveHTTP2Conn(ctx context.Context, conn net.Conn, uc *upgradedConn, path EntryPath, prime string, opts *http2.ServeConnOpts) {
	// The server's writes are batched (batchConn); its reads go to uc. The
	// guard follows both.
	bc := newBatchConn(uc)
	cg := g.newConnGuard(conn, conn.RemoteAddr().String(), path)
	cg.bc, bc.scan, uc.guard = bc, &frameScan{guard: cg}, cg
	defer cg.close()
	if prime != "" {
		bc.prime(prime)
	}
	opts.Context = ctx
	opts.BaseConfig = g.serveConnBase()
	opts.Handler = streamHandler{g: g, path: path}
	// The preface is checked by upgradedConn, under the gateway's own
	// timeout rather than the server's fixed 10s.
	opts.SawClientPreface = true
	g.h2.ServeConn(bc, opts)
	g.conns.remove(conn, !uc.started.Load())
	g.emit(Event{Kind: EventConnClose, Path: path})
}
