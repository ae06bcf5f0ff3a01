package proxy

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// upstream is one member of a [Proxy]'s pool.
type upstream struct {
	// name is the upstream as configured, normalised with its port
	// ("h2c://127.0.0.1:50051"): what logs, the access log's Note and
	// OnUpstreamError call it.
	name string
	// host is host:port, the URL.Host of every request sent to it. Two
	// upstreams never share one (New refuses it), so it identifies the
	// upstream a request went to.
	host string
	// h2c says the upstream speaks HTTP/2 with prior knowledge (RFC 9113
	// §3.3); tls, that it is reached over TLS, where ALPN settles HTTP/2 or
	// HTTP/1.1 (RFC 9113 §3.2); neither, that it speaks HTTP/1.1.
	h2c bool
	tls bool
	// rt is the transport for its kind, shared by every upstream of that
	// kind.
	rt http.RoundTripper
	// slots holds one token per request in flight to an HTTP/1.1 upstream,
	// up to Config.MaxConnsPerHost; nil for h2c.
	slots chan struct{}
	// downUntil is when an upstream taken out after a failed connect may be
	// tried again, in nanoseconds since the pool's epoch; 0 while it is in
	// service.
	downUntil atomic.Int64
}

// pool picks upstreams round robin, skipping the ones taken out. Its only
// health check is passive: an upstream that refused a connection (or could
// not be reached) is taken out for failTimeout, then tried again by the next
// request that falls on it.
type pool struct {
	ups         []*upstream
	hasH1       bool // some upstream speaks HTTP/1.1 (can carry a WebSocket tunnel)
	failTimeout time.Duration
	// next counts picks; the pick starts at next mod len(ups).
	next atomic.Uint64
	// epoch and now give a monotonic clock for downUntil; tests replace now.
	epoch time.Time
	now   func() time.Time
}

func newPool(ups []*upstream, failTimeout time.Duration) *pool {
	p := &pool{ups: ups, failTimeout: failTimeout, epoch: time.Now(), now: time.Now}
	for _, u := range ups {
		if !u.h2c {
			p.hasH1 = true
		}
	}
	return p
}

// elapsed is the pool's clock; it is read only when some upstream is out.
func (p *pool) elapsed() int64 {
	return int64(p.now().Sub(p.epoch))
}

// inService reports whether u may take requests at the time now (nanoseconds
// since the epoch, or -1 if not read yet; it is read and stored on demand).
func (p *pool) inService(u *upstream, now *int64) bool {
	d := u.downUntil.Load()
	if d == 0 {
		return true
	}
	if *now < 0 {
		*now = p.elapsed()
	}
	return *now >= d
}

// pick returns the next upstream round robin, skipping those taken out.
// With wantH1 (a WebSocket tunnel), only HTTP/1.1 upstreams are considered,
// when there are any. When every candidate is taken out, the round-robin
// choice is returned all the same: refusing every request until some
// failTimeout ran out would keep the pool down after its upstreams came back.
func (p *pool) pick(wantH1 bool) *upstream {
	n := len(p.ups)
	if n == 1 {
		return p.ups[0]
	}
	wantH1 = wantH1 && p.hasH1
	start := int((p.next.Add(1) - 1) % uint64(n))
	var fallback *upstream
	now := int64(-1)
	for i := range n {
		u := p.ups[(start+i)%n]
		if wantH1 && u.h2c {
			continue
		}
		if fallback == nil {
			fallback = u
		}
		if p.inService(u, &now) {
			return u
		}
	}
	return fallback
}

// pickOther returns an upstream other than failed and in service, for a
// retry, or nil. With wantH1 it returns only an HTTP/1.1 upstream.
func (p *pool) pickOther(failed *upstream, wantH1 bool) *upstream {
	n := len(p.ups)
	start := int(p.next.Load() % uint64(n))
	now := int64(-1)
	for i := range n {
		u := p.ups[(start+i)%n]
		if u == failed || (wantH1 && u.h2c) {
			continue
		}
		if p.inService(u, &now) {
			return u
		}
	}
	return nil
}

// lookup returns the upstream whose host:port is host, or nil. A linear
// scan: pools are small, and it allocates nothing.
func (p *pool) lookup(host string) *upstream {
	for _, u := range p.ups {
		if u.host == host {
			return u
		}
	}
	return nil
}

// takeOut takes u out of service for failTimeout from now and reports
// whether it was in service until then (so the caller logs the change once).
func (p *pool) takeOut(u *upstream) bool {
	now := p.elapsed()
	old := u.downUntil.Swap(now + int64(p.failTimeout))
	return old == 0 || now >= old
}

// restore puts u back in service after a success, and reports whether it was
// taken out before. A success before failTimeout ran out (on a connection
// made earlier) does not end it: an upstream that refuses new connections
// while it drains old ones stays out.
func (p *pool) restore(u *upstream) bool {
	d := u.downUntil.Load()
	if d == 0 || p.elapsed() < d {
		return false
	}
	return u.downUntil.CompareAndSwap(d, 0)
}

// ready reports whether at least one upstream is in service.
func (p *pool) ready() bool {
	now := int64(-1)
	for _, u := range p.ups {
		if p.inService(u, &now) {
			return true
		}
	}
	return false
}

// errNoFreeConn: every connection to an HTTP/1.1 upstream stayed busy for
// the whole of Config.Timeout. It is a timeout (504).
var errNoFreeConn error = &noFreeConnError{}

type noFreeConnError struct{}

func (*noFreeConnError) Error() string   { return "no upstream connection came free in time" }
func (*noFreeConnError) Timeout() bool   { return true }
func (*noFreeConnError) Temporary() bool { return true }

// acquire takes one of u's request slots (Config.MaxConnsPerHost), or
// waits for one at most timeout; it fails with the context's error or
// errNoFreeConn. An h2c upstream has no slots. The free-slot case allocates
// nothing: the timer is made only when a request has to wait.
func (u *upstream) acquire(ctx context.Context, timeout time.Duration) error {
	if u.slots == nil {
		return nil
	}
	select {
	case u.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case u.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errNoFreeConn
	}
}

// release gives back a slot taken by acquire.
func (u *upstream) release() {
	if u.slots != nil {
		<-u.slots
	}
}
