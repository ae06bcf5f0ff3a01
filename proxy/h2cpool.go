package proxy

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// h2cPool is the connection pool of h2c upstreams: HTTP/2 with prior
// knowledge (RFC 9113 §3.3), many streams on each connection, and one more
// connection dialled only when every open one is at the upstream's stream
// limit (SETTINGS_MAX_CONCURRENT_STREAMS), one dial at a time per upstream,
// shared by the requests that wait for it.
//
// It is built on net/http's Transport.NewClientConn and ClientConn, the
// documented way to pool connections yourself, so that the pool behaves the
// same whichever HTTP/2 client the toolchain brings (x/net's on Go 1.26,
// net/http's own on Go 1.27). x/net's http2.Transport, which the gateway used
// before, only wraps net/http's transport on Go 1.27, and there a load of
// 6,400 concurrent streams to one h2c upstream ran at a third of the Go 1.26
// rate (bench/README.md, "Results").
type h2cPool struct {
	// t makes the connections: its Protocols say HTTP/2 with prior
	// knowledge, its DialContext is the proxy's.
	t *http.Transport

	mu sync.Mutex
	// hosts holds each upstream's connections by address; guarded by mu.
	hosts map[string]*h2cHost
}

// h2cHost is one upstream's connections. Guarded by h2cPool.mu.
type h2cHost struct {
	conns []*h2cConn
	// dial is the dial in progress, nil when there is none.
	dial *h2cDial
	// changed is closed, and replaced, when a connection settles or a dial
	// ends: what a request waiting for a stream waits for.
	changed chan struct{}
}

// h2cConn is one connection. Until the upstream's first SETTINGS frame has
// come (settled), the client assumes 100 streams (RFC 9113 §6.5.2 leaves
// it unlimited; net/http's client caps it): the pool puts one request on
// it and no more, so that it does not queue requests on a connection whose
// real limit may be lower while another connection could take them.
type h2cConn struct {
	cc      *http.ClientConn
	settled atomic.Bool
}

// h2cSettleTime is how long a new connection counts as unsettled at most:
// net/http calls the state hook when the SETTINGS frame changes how many
// streams are free, not when it leaves them as they were.
const h2cSettleTime = 250 * time.Millisecond

// h2cDial is one dial, whose outcome every request waiting for it reads once
// done is closed.
type h2cDial struct {
	done chan struct{}
	err  error
}

func newH2CPool(t *http.Transport) *h2cPool {
	return &h2cPool{t: t, hosts: make(map[string]*h2cHost)}
}

// RoundTrip sends req on a connection with a free stream. A request that
// the upstream refused before acting on it — its connection went away
// (GOAWAY, closed) before the request was sent, or the stream was refused
// (RFC 9113 §8.7) — is sent again once on another connection, when its body
// can be sent again.
func (p *h2cPool) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		cc, err := p.reserve(req.Context(), req.URL.Host)
		if err != nil {
			return nil, err
		}
		res, err := cc.RoundTrip(req)
		if err == nil {
			return res, nil
		}
		if cc.Err() != nil {
			p.remove(req.URL.Host, cc)
		}
		if attempt > 0 || req.Context().Err() != nil || !refusedBeforeSent(cc, err) || !replayable(req) {
			return nil, err
		}
		if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			r := *req
			r.Body = body
			req = &r
		}
	}
}

// refusedBeforeSent reports whether err says the upstream cannot have acted
// on the request: the stream was refused (RFC 9113 §8.7 makes it safe to
// retry), or the connection was no longer usable when the request came.
// net/http's HTTP/2 errors are not exported types: their text is all there
// is to tell them by.
func refusedBeforeSent(cc *http.ClientConn, err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "REFUSED_STREAM") ||
		strings.Contains(msg, "client conn not usable") ||
		strings.Contains(msg, "client conn could not be established") ||
		(cc.Err() != nil && strings.Contains(msg, "GOAWAY"))
}

// replayable reports whether req's body can go out again.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// reserve returns a connection to addr with a stream reserved for the
// caller, dialling one when none has a free stream and none is settling.
func (p *h2cPool) reserve(ctx context.Context, addr string) (*http.ClientConn, error) {
	for {
		p.mu.Lock()
		h := p.hosts[addr]
		if h == nil {
			h = &h2cHost{changed: make(chan struct{})}
			p.hosts[addr] = h
		}
		settling := false
		for i := 0; i < len(h.conns); i++ {
			c := h.conns[i]
			if c.cc.Err() != nil {
				h.conns = append(h.conns[:i], h.conns[i+1:]...)
				i--
				continue
			}
			if !c.settled.Load() && c.cc.InFlight() > 0 {
				settling = true
				continue
			}
			if c.cc.Available() > 0 && c.cc.Reserve() == nil {
				p.mu.Unlock()
				return c.cc, nil
			}
		}
		var wait <-chan struct{}
		var d *h2cDial
		switch {
		case settling:
			wait = h.changed
		case h.dial != nil:
			d = h.dial
		default:
			d = &h2cDial{done: make(chan struct{})}
			h.dial = d
			go p.dial(addr, h, d)
		}
		p.mu.Unlock()
		if d != nil {
			wait = d.done
		}
		select {
		case <-wait:
			if d != nil && d.err != nil {
				return nil, d.err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// dial opens one connection to addr and adds it to h. It runs on a
// goroutine of its own, so that a request that gives up waiting does not
// abandon a dial other requests wait for; it is bounded by the transport's
// dial timeout.
func (p *h2cPool) dial(addr string, h *h2cHost, d *h2cDial) {
	cc, err := p.t.NewClientConn(context.Background(), "http", addr)
	var c *h2cConn
	if err == nil {
		c = &h2cConn{cc: cc}
		settle := func() {
			if c.settled.CompareAndSwap(false, true) {
				// Not under the hook's call: net/http runs the hook
				// synchronously inside ClientConn methods (Reserve,
				// Close) that reserve and CloseIdleConnections call
				// with mu held.
				go func() {
					p.mu.Lock()
					p.notifyLocked(h)
					p.mu.Unlock()
				}()
			}
		}
		// Called when the SETTINGS frame (or a finished request) changes
		// the connection's free streams.
		cc.SetStateHook(func(*http.ClientConn) { settle() })
		time.AfterFunc(h2cSettleTime, settle)
	}
	p.mu.Lock()
	if c != nil {
		h.conns = append(h.conns, c)
	}
	h.dial = nil
	p.notifyLocked(h)
	p.mu.Unlock()
	d.err = err
	close(d.done)
}

// notifyLocked wakes the requests waiting on h. Called with mu held.
func (p *h2cPool) notifyLocked(h *h2cHost) {
	close(h.changed)
	h.changed = make(chan struct{})
}

// remove forgets cc.
func (p *h2cPool) remove(addr string, cc *http.ClientConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h := p.hosts[addr]; h != nil {
		for i, c := range h.conns {
			if c.cc == cc {
				h.conns = append(h.conns[:i], h.conns[i+1:]...)
				return
			}
		}
	}
}

// CloseIdleConnections closes the connections with no request in flight.
func (p *h2cPool) CloseIdleConnections() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.hosts {
		kept := h.conns[:0]
		for _, c := range h.conns {
			if c.cc.InFlight() == 0 {
				c.cc.Close()
				continue
			}
			kept = append(kept, c)
		}
		h.conns = kept
	}
}
