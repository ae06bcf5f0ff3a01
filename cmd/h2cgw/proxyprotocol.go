package main

// The PROXY protocol (v1 and v2, https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt)
// on the cleartext listener, for h2cgw behind an L4 load balancer: HAProxy
// in TCP mode with send-proxy(-v2), a cloud NLB. The balancer opens each
// connection with one header that names the client; without it every request
// would seem to come from the balancer, in X-Forwarded-For, the access log
// and the metrics alike.
//
// The binary owns its listeners, so the header is read here, in a
// net.Conn wrapper that package gateway never sees as anything but a conn.
// The parser is github.com/pires/go-proxyproto's: a well-kept, fuzzed
// parser of both versions beats a hand-written one. Its own Conn is not used
// because it hides the outcome this file must log and count: it maps a
// timeout to "no header" (then serves the connection under every policy but
// REQUIRE) and returns the balancer's address from RemoteAddr when the header
// was refused.

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"github.com/rs/zerolog"
)

// The outcomes of h2cgw_proxy_protocol_total: one per accepted connection.
const (
	// proxyOK: a trusted peer sent a valid header (PROXY, or LOCAL for the
	// balancer's own health checks); its client address is the
	// connection's remote address from then on.
	proxyOK = "ok"
	// proxyDirect: a peer outside the trusted ranges sent no header; it is
	// served as it is, under its own address.
	proxyDirect = "direct"
	// proxyMissing: a trusted peer sent something else first; closed.
	proxyMissing = "missing"
	// proxyRejected: a peer outside the trusted ranges sent a header;
	// closed, so that no client can choose the address it is logged
	// and forwarded under.
	proxyRejected = "rejected"
	// proxyMalformed: a header that does not parse, or is cut short; closed.
	proxyMalformed = "malformed"
	// proxyTimeout: the header (or, from an untrusted peer, the first bytes
	// that show there is none) did not arrive within the read-header
	// timeout; closed.
	proxyTimeout = "timeout"
	// proxyEmpty: the connection ended before its first byte (a TCP health
	// check, a port scan, a shutdown).
	proxyEmpty = "empty"
)

var proxyOutcomes = []string{proxyOK, proxyDirect, proxyMissing, proxyRejected, proxyMalformed, proxyTimeout, proxyEmpty}

// proxyBufferSize holds a whole v1 line (at most 107 bytes: the parser wants
// it from one read) and a v2 header with its usual TLVs. Bytes read past the
// header stay in the buffer and are served first.
const proxyBufferSize = 256

// msgProxyRefused is the log message of every connection closed over its
// PROXY header; the outcome field says why.
const msgProxyRefused = "proxy protocol: connection refused and closed"

// proxyListener wraps the cleartext listener when --proxy-protocol is on.
// Accept does no I/O: the header is read by the connection's own goroutine
// (net/http asks for RemoteAddr first thing), so a slow peer never holds up
// the accept loop.
type proxyListener struct {
	net.Listener
	// trusted are the balancers' ranges: a peer in them must send a
	// header, a peer outside must not.
	trusted []netip.Prefix
	// timeout bounds the wait for the header; net/http's read-header
	// timeout starts only after it, for the request head.
	timeout time.Duration
	log     zerolog.Logger
	// count is told each connection's outcome; nil counts nothing.
	count func(outcome string)
}

// Accept returns the next connection, wrapped.
func (l *proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &proxyConn{
		Conn:    c,
		l:       l,
		trusted: l.isTrusted(c.RemoteAddr()),
		br:      bufio.NewReaderSize(c, proxyBufferSize),
	}, nil
}

func (l *proxyListener) isTrusted(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	// A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
	ip := ta.AddrPort().Addr().Unmap()
	for _, p := range l.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// proxyConn reads the PROXY header once, before anything else touches the
// connection: on the first RemoteAddr, Read or Write. A refused connection
// is closed at once; its reads and writes fail from then on.
type proxyConn struct {
	net.Conn
	l       *proxyListener
	trusted bool
	// br holds what was read while looking for the header; Read serves
	// it before reading the connection again: buffered bytes are never
	// dropped. Only the one reader at a time uses it.
	br *bufio.Reader

	once sync.Once
	// err and remote are set once, by detect.
	err    error    // non-nil: the connection was refused and is closed
	remote net.Addr // the client: the header's source, or the peer

	mu sync.Mutex
	// readDeadline is the read deadline the conn's user set last; guarded
	// by mu, like detecting, which is true while the header is read under
	// a deadline of its own (set again from readDeadline after).
	readDeadline time.Time
	detecting    bool
}

// RemoteAddr returns the client's address: the source the header names, when
// a trusted peer sent one; the peer's own address otherwise.
func (c *proxyConn) RemoteAddr() net.Addr {
	c.once.Do(c.detect)
	return c.remote
}

func (c *proxyConn) Read(p []byte) (int, error) {
	c.once.Do(c.detect)
	if c.err != nil {
		return 0, c.opError("read", c.err)
	}
	if c.br.Buffered() > 0 {
		return c.br.Read(p) // never reads the connection while bytes are buffered
	}
	return c.Conn.Read(p)
}

func (c *proxyConn) Write(p []byte) (int, error) {
	c.once.Do(c.detect)
	if c.err != nil {
		return 0, c.opError("write", c.err)
	}
	return c.Conn.Write(p)
}

// opError dresses a refusal like the read error of a closed connection, so
// that net/http drops the connection without trying to answer 400.
func (c *proxyConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.Conn.LocalAddr(), Addr: c.Conn.RemoteAddr(), Err: err}
}

func (c *proxyConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDeadline = t
	if c.detecting {
		return c.Conn.SetWriteDeadline(t)
	}
	return c.Conn.SetDeadline(t)
}

func (c *proxyConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDeadline = t
	if c.detecting {
		return nil // applied when the header has been read
	}
	return c.Conn.SetReadDeadline(t)
}

// errNoHeader is a trusted peer's connection that did not start with a
// header.
var errNoHeader = errors.New("no PROXY protocol header from a trusted peer")

// errUntrustedHeader is a header from a peer outside the trusted ranges.
var errUntrustedHeader = errors.New("PROXY protocol header from a peer outside --proxy-protocol-trusted")

// detect reads the header, under the listener's timeout, and decides.
func (c *proxyConn) detect() {
	peer := c.Conn.RemoteAddr()
	c.remote = peer

	c.mu.Lock()
	c.detecting = true
	deadline := time.Now().Add(c.l.timeout)
	if !c.readDeadline.IsZero() && c.readDeadline.Before(deadline) {
		deadline = c.readDeadline
	}
	c.mu.Unlock()
	_ = c.Conn.SetReadDeadline(deadline)

	outcome, h, err := c.readHeader()

	c.mu.Lock()
	c.detecting = false
	_ = c.Conn.SetReadDeadline(c.readDeadline)
	c.mu.Unlock()

	if c.l.count != nil {
		c.l.count(outcome)
	}
	switch outcome {
	case proxyOK:
		// A LOCAL header (the balancer's own health check) or one without
		// TCP addresses (PROXY UNKNOWN, a Unix socket) names no client.
		if src, _, ok := h.TCPAddrs(); ok && h.Command.IsProxy() {
			c.remote = src
		}
		c.l.log.Debug().Stringer("peer", peer).Stringer("client", c.remote).
			Uint8("version", h.Version).Bool("local", h.Command.IsLocal()).
			Msg("proxy protocol header")
		return
	case proxyDirect:
		return
	}

	c.err = err
	c.Conn.Close()
	ev := c.l.log.Warn()
	if outcome == proxyEmpty || (outcome == proxyTimeout && !c.trusted) {
		// Health checks, scans and idle clients: what a listener without
		// the PROXY protocol would close as quietly.
		ev = c.l.log.Debug()
	}
	ev.Str("outcome", outcome).Stringer("peer", peer).Bool("trusted", c.trusted).
		Err(err).Msg(msgProxyRefused)
}

// readHeader reads what the connection starts with and returns the outcome,
// the header when there is one, and the error that refuses the connection.
func (c *proxyConn) readHeader() (string, *proxyproto.Header, error) {
	// The first byte apart, to tell a connection that ended or stalled
	// before it from a stream that is not a header.
	if _, err := c.br.Peek(1); err != nil {
		if isTimeout(err) {
			return proxyTimeout, nil, err
		}
		return proxyEmpty, nil, err
	}
	h, err := proxyproto.Read(c.br)
	switch {
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		if c.trusted {
			return proxyMissing, nil, errNoHeader
		}
		return proxyDirect, nil, nil
	case isTimeout(err):
		return proxyTimeout, nil, err
	case err != nil:
		return proxyMalformed, nil, err
	case !c.trusted:
		return proxyRejected, h, errUntrustedHeader
	}
	return proxyOK, h, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
