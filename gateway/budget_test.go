package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/internal/testwait"
)

// TestBudget: reservations past the limit fail and exhaust the budget, which
// then refuses everything until releases bring it under 7/8 of the limit;
// each transition is reported once, and concurrent use keeps the count
// exact.
func TestBudget(t *testing.T) {
	var changes []bool
	b := newBudget(800, func(over bool) { changes = append(changes, over) })
	if !b.reserve(500) || !b.reserve(300) {
		t.Fatal("reservations within the limit failed")
	}
	if b.reserve(1) {
		t.Fatal("a reservation past the limit succeeded")
	}
	if over, _ := b.exhausted(); !over {
		t.Fatal("not exhausted after a failed reservation")
	}
	b.release(100) // 700: not yet under 7/8 of 800
	if b.reserve(1) {
		t.Fatal("took work again before falling under 7/8 of the limit")
	}
	b.release(100) // 600
	if over, _ := b.exhausted(); over {
		t.Fatal("still exhausted under 7/8 of the limit")
	}
	if fmt.Sprint(changes) != "[true false]" {
		t.Errorf("transitions %v; want [true false]", changes)
	}
	b.release(600)

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if b.reserve(100) {
					b.release(100)
				}
			}
		})
	}
	wg.Wait()
	if n := b.used.Load(); n != 0 {
		t.Errorf("%d octets counted after every reservation was released", n)
	}
	if over, _ := b.exhausted(); over {
		t.Error("exhausted with nothing held")
	}

	none := newBudget(0, nil)
	if !none.reserve(1 << 40) {
		t.Error("a zero budget refused")
	}
}

// TestMemoryBudgetDefault: zero takes half the runtime's memory limit,
// negative turns the budget off.
func TestMemoryBudgetDefault(t *testing.T) {
	if got := (&Config{MemoryBudget: 5}).memoryBudget(); got != 5 {
		t.Errorf("explicit: %d; want 5", got)
	}
	if got := (&Config{MemoryBudget: NoMemoryBudget}).memoryBudget(); got != 0 {
		t.Errorf("NoMemoryBudget: %d; want 0 (none)", got)
	}
	old := debug.SetMemoryLimit(200 << 20)
	defer debug.SetMemoryLimit(old)
	if got := (&Config{}).memoryBudget(); got != 100<<20 {
		t.Errorf("GOMEMLIMIT 200 MiB: %d; want 100 MiB", got)
	}
}

// TestUpgradeBodyMemory: an upgrade body the memory budget cannot take
// declines the upgrade ("memory") and the request is served on HTTP/1.1
// with its whole body; the refusal is reported; once the body is read its
// memory is back in the budget, and the next upgrade with a body is
// accepted.
func TestUpgradeBodyMemory(t *testing.T) {
	tg := startGateway(t, Config{MemoryBudget: 64 << 10})
	body := strings.Repeat("b", 100<<10) // within the 1 MiB limit, past the budget
	c := dial(t, tg.addr)
	br := bufio.NewReader(c)
	go io.WriteString(c, upgradeHead("POST", "/up", fmt.Sprintf("Content-Length: %d", len(body)))+body)
	res, got := readHTTP1(t, br, "POST")
	if res.StatusCode != 200 || string(got) != "ok h1 HTTP/1.1" {
		t.Fatalf("declined upgrade: %s %q; want 200 on HTTP/1.1", res.Status, got)
	}
	if s := testwait.Recv(t, tg.rec.arrived, "the request"); s.BodyLen != len(body) || s.BodySHA != sha([]byte(body)) {
		t.Errorf("handler got a body of %d octets (%s); want all %d", s.BodyLen, s.BodySHA, len(body))
	}
	if !tg.events.has(EventUpgradeDeclined, ReasonMemory) || !tg.events.has(EventRefused, ReasonMemoryUpgrade) {
		t.Error("want a memory decline and a memory_upgrade refusal reported")
	}
	waitFor(t, "the body's memory to be given back", func() bool { return tg.g.budget.used.Load() == 0 })

	small := strings.Repeat("s", 10<<10)
	h := upgradeTo(t, tg.addr, upgradeHead("POST", "/up", fmt.Sprintf("Content-Length: %d", len(small)))+small)
	resps, goaways, err := h.readUntil(ended(1))
	if err != nil || resps[1].status != "200" {
		t.Fatalf("upgrade within the budget: %s %+v; want 200", outcome(goaways, err), resps[1])
	}
	waitFor(t, "stream 1's body to be given back", func() bool { return tg.g.budget.used.Load() == 0 })
}

// TestUpgradeBodyHeld: an upgrade body costs its length, rounded up to one
// chunk at most, however it arrives: declared and sent one octet short
// (the body never completes), or chunked likewise. What each connection holds is
// what the budget counts.
func TestUpgradeBodyHeld(t *testing.T) {
	const size = 300 << 10
	for _, tc := range []struct {
		name string
		head string
		body string
	}{
		{"one octet short", upgradeHead("POST", "/up", fmt.Sprintf("Content-Length: %d", size)), strings.Repeat("x", size-1)},
		{"chunked, one octet short", upgradeHead("POST", "/up", "Transfer-Encoding: chunked"), fmt.Sprintf("%x\r\n%s", size, strings.Repeat("x", size-1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, Config{MemoryBudget: 64 << 20})
			const conns = 8
			var cs []net.Conn
			for range conns {
				c := dial(t, tg.addr)
				io.WriteString(c, tc.head+tc.body)
				cs = append(cs, c)
			}
			want := int64(conns * (size - 1))
			waitFor(t, "the bodies to be read", func() bool { return tg.g.budget.used.Load() >= want })
			time.Sleep(50 * time.Millisecond)
			if got, max := tg.g.budget.used.Load(), int64(conns*(size+bodyChunk)); got > max {
				t.Errorf("%d connections hold %d octets for %d-octet bodies; want at most %d", conns, got, size, max)
			}
			for _, c := range cs {
				c.Close()
			}
			waitFor(t, "the memory to be given back", func() bool { return tg.g.budget.used.Load() == 0 })
		})
	}
}

// TestAcceptPausedOverBudget: while the budget is exhausted Serve holds
// each new connection back for acceptPause (and reports it), then serves
// it; once memory is given back, new connections are served at once.
func TestAcceptPausedOverBudget(t *testing.T) {
	tg, sh := guardGateway(t, Config{MemoryBudget: 16 << 10})
	_, h := h2conn(t, tg.addr)
	h.handshake()
	// About 2 KiB decoded each: the budget is exhausted when one fails
	// within 2 KiB of the limit, past the 7/8 at which it recovers.
	big := strings.Repeat("v", 1000)
	for i := uint32(1); i < 40; i += 2 {
		h.writeRequest(i, true, h.req("/block", "x-a", big, "x-b", big)...)
	}
	waitFor(t, "the budget to be exhausted", func() bool { over, _ := tg.g.budget.exhausted(); return over })
	c := dial(t, tg.addr)
	io.WriteString(c, "GET /waiting HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	waitFor(t, "the accept pause to be reported", func() bool { return tg.events.has(EventRefused, ReasonMemoryAccept) })
	start := time.Now()
	res, _ := readHTTP1(t, bufio.NewReader(c), "GET")
	if res.StatusCode != 200 {
		t.Fatalf("connection while over budget: %s; want 200", res.Status)
	}
	if over, _ := tg.g.budget.exhausted(); !over {
		t.Fatal("the budget recovered by itself")
	}
	if waited := time.Since(start); waited > acceptPause+time.Second {
		t.Errorf("connection held back %v while over budget; want about %v", waited, acceptPause)
	}
	sh.unblock()
	waitFor(t, "the budget to recover", func() bool { over, _ := tg.g.budget.exhausted(); return !over })
	start = time.Now()
	expectServing(t, tg.addr, "ok")
	if d := time.Since(start); d > acceptPause {
		t.Errorf("served in %v after recovery; want at once", d)
	}
}

// TestBudgetBodies: upgrade bodies fill at most three quarters of the
// budget, and reaching that is no exhaustion: headers still find room.
func TestBudgetBodies(t *testing.T) {
	var changes []bool
	b := newBudget(1000, func(over bool) { changes = append(changes, over) })
	if !b.reserveBody(700) || b.reserveBody(100) {
		t.Fatal("bodies: want 700 taken and 100 more refused (past 750)")
	}
	if over, _ := b.exhausted(); over || len(changes) > 0 {
		t.Fatal("bodies at their part exhausted the budget")
	}
	if !b.reserve(250) {
		t.Fatal("headers found no room beside the bodies")
	}
	b.releaseBody(700)
	b.release(250)
	if b.used.Load() != 0 || b.bodies.Load() != 0 {
		t.Errorf("used %d, bodies %d after every release; want 0", b.used.Load(), b.bodies.Load())
	}
}
