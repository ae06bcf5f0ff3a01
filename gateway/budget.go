package gateway

// The memory budget (README "Security"): one count, for the whole Gateway,
// of the memory held on clients' behalf — buffered upgrade bodies and the
// decoded request headers of HTTP/2 streams not yet answered — against
// Config.MemoryBudget. Past it, new work is refused cheaply: an upgrade with
// a body is declined ("memory"), a new stream gets REFUSED_STREAM (frameguard.go),
// and Serve stops accepting until the count is back under the budget.

import (
	"math"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// budget counts bytes held against a limit. The zero limit never refuses.
type budget struct {
	limit int64
	used  atomic.Int64
	// bodies is the part of used that upgrade bodies hold.
	bodies atomic.Int64
	// over is set when a reservation fails and cleared when releases bring
	// used under resumeAt: between the two, every reservation fails, so a
	// gateway at its budget sheds work until a margin is free again rather
	// than taking and refusing alternately.
	over     atomic.Bool
	resumeAt int64

	mu sync.Mutex
	// under is closed when over is cleared; a new one is made when over is
	// set. Guarded by mu.
	under chan struct{}
	// onChange reports each transition, called with mu held: true when
	// the budget is exhausted, false when it recovers. Never nil.
	onChange func(over bool)
}

// resumeFraction is the part of the budget used must fall under before new
// work is taken again.
const resumeFraction = 0.875

func newBudget(limit int64, onChange func(bool)) *budget {
	if onChange == nil {
		onChange = func(bool) {}
	}
	b := &budget{limit: limit, onChange: onChange, under: make(chan struct{})}
	close(b.under)
	b.resumeAt = int64(float64(limit) * resumeFraction)
	return b
}

// reserve counts n bytes, unless that would pass the limit or the budget is
// exhausted; it reports whether it did.
func (b *budget) reserve(n int64) bool {
	if b.limit <= 0 {
		return true
	}
	if b.over.Load() {
		return false
	}
	if b.used.Add(n) <= b.limit {
		return true
	}
	b.used.Add(-n)
	b.setOver(true)
	return false
}

// bodyFraction is the part of the budget upgrade bodies may fill: the
// rest stays for the headers of new streams, so that clients uploading
// bodies they do not finish cannot, by filling the budget, get every other
// client's streams refused.
const bodyFraction = 0.75

// reserveBody counts n bytes of an upgrade body, unless the budget is
// exhausted or that would take the bodies' part past bodyFraction of the
// limit; it reports whether it did. Reaching that part alone is not an
// exhaustion: the upgrade is declined, nothing else is.
func (b *budget) reserveBody(n int64) bool {
	if b.limit <= 0 {
		return true
	}
	if b.over.Load() {
		return false
	}
	if b.bodies.Add(n) > int64(float64(b.limit)*bodyFraction) {
		b.bodies.Add(-n)
		return false
	}
	if b.reserve(n) {
		return true
	}
	b.bodies.Add(-n)
	return false
}

// releaseBody gives back n bytes of an upgrade body.
func (b *budget) releaseBody(n int64) {
	if b.limit <= 0 || n == 0 {
		return
	}
	b.bodies.Add(-n)
	b.release(n)
}

// release gives back n bytes reserved before.
func (b *budget) release(n int64) {
	if b.limit <= 0 || n == 0 {
		return
	}
	if b.used.Add(-n) < b.resumeAt && b.over.Load() {
		b.setOver(false)
	}
}

func (b *budget) setOver(over bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.over.Load() == over {
		return
	}
	b.over.Store(over)
	if !over {
		close(b.under)
		b.onChange(false)
		return
	}
	// A release that loaded over before the Store above did its Add
	// before it too: if releases have already brought the count under the
	// margin, none is left to clear over, so this does.
	if b.used.Load() < b.resumeAt {
		b.over.Store(false)
		return
	}
	b.under = make(chan struct{})
	b.onChange(true)
}

// exhausted reports whether new work is being refused, and returns a
// channel closed when it no longer is.
func (b *budget) exhausted() (bool, <-chan struct{}) {
	if !b.over.Load() {
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.over.Load(), b.under
}

// memoryBudget returns the budget a Config asks for: MemoryBudget when
// positive, none when negative, and when zero half the runtime's memory
// limit (GOMEMLIMIT, which the binary sets from the container's limit), or
// none when there is no limit.
func (c *Config) memoryBudget() int64 {
	switch {
	case c.MemoryBudget > 0:
		return c.MemoryBudget
	case c.MemoryBudget < 0:
		return 0
	}
	if l := debug.SetMemoryLimit(-1); l < math.MaxInt64 {
		return l / 2
	}
	return 0
}

// budgetListener slows accepting while the memory budget is exhausted:
// each accepted connection is held back, unread, until the budget recovers
// or acceptPause has passed, so the rest wait in the listen backlog,
// costing nothing. It slows rather than stops: a budget held by clients
// that keep their connections open would otherwise shut out every other
// client for as long as they stay, and a new client needs no budget for
// HTTP/1.1 or for an upgrade without a body.
type budgetListener struct {
	net.Listener
	g      *Gateway
	once   sync.Once
	closed chan struct{}
}

func (l *budgetListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if over, under := l.g.budget.exhausted(); over {
		l.g.refuse(nil, ReasonMemoryAccept, l.Addr().String())
		t := time.NewTimer(acceptPause)
		defer t.Stop()
		select {
		case <-under:
		case <-t.C:
		case <-l.closed:
			c.Close()
			return nil, net.ErrClosed
		}
	}
	return c, nil
}

// acceptPause is the longest an accepted connection is held back while the
// budget is exhausted: at most four new connections a second.
const acceptPause = 250 * time.Millisecond

func (l *budgetListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// MemoryBudget returns the memory budget in force (Config.MemoryBudget, or
// the default it stands for); 0 means none.
func (g *Gateway) MemoryBudget() int64 { return g.budget.limit }

// MemoryHeld returns the memory held against the budget now.
func (g *Gateway) MemoryHeld() int64 { return g.budget.used.Load() }
