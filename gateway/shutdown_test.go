package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func sawGoAway(_ map[uint32]*response, g []*http2.GoAwayFrame) bool { return len(g) > 0 }

// TestShutdownDrainsUpgraded: an upgraded connection — hijacked, so invisible
// to net/http's Shutdown — gets GOAWAY, and its in-flight stream 1 and
// stream 3 both complete before Shutdown returns.
func TestShutdownDrainsUpgraded(t *testing.T) {
	tg := startGateway(t, Config{})
	h := upgradeTo(t, tg.addr, upgradeHead("GET", "/slow"))
	h.get(3, "/slow")
	<-tg.rec.arrived
	<-tg.rec.arrived

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- tg.g.Shutdown(ctx)
	}()
	_, goaways, err := h.readUntil(sawGoAway)
	if err != nil {
		t.Fatalf("reading for GOAWAY: %v", err)
	}
	if g := goaways[0]; g.ErrCode != http2.ErrCodeNo || g.LastStreamID < 3 {
		t.Errorf("GOAWAY %v last stream %d; want NO_ERROR covering stream 3", g.ErrCode, g.LastStreamID)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with two streams in flight", err)
	default:
	}
	close(tg.rec.release)
	resps, _, err := h.readUntil(ended(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint32{1, 3} {
		if r := resps[id]; r.status != "200" || r.reset != nil {
			t.Errorf("stream %d: %+v; want 200", id, r)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v; want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the streams completed")
	}
}

// TestShutdownDrainsPriorKnowledge: the same for a prior-knowledge
// connection, which net/http tracks itself.
func TestShutdownDrainsPriorKnowledge(t *testing.T) {
	tg := startGateway(t, Config{})
	c := dial(t, tg.addr)
	h := newH2Client(t, c, nil)
	h.preface()
	h.get(1, "/slow")
	<-tg.rec.arrived
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- tg.g.Shutdown(ctx)
	}()
	if _, _, err := h.readUntil(sawGoAway); err != nil {
		t.Fatalf("reading for GOAWAY: %v", err)
	}
	close(tg.rec.release)
	resps, _, err := h.readUntil(ended(1))
	if err != nil || resps[1].status != "200" {
		t.Fatalf("stream 1: %+v %v; want 200", resps[1], err)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v; want nil", err)
	}
}

// TestShutdownGraceExpires: a stream that outlives the grace period is cut,
// and Shutdown says so.
func TestShutdownGraceExpires(t *testing.T) {
	tg := startGateway(t, Config{})
	defer close(tg.rec.release)
	h := upgradeTo(t, tg.addr, upgradeHead("GET", "/slow"))
	c, br := h.c, h.br
	<-tg.rec.arrived
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := tg.g.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v; want context.DeadlineExceeded", err)
	}
	expectClosed(t, c, br, 5*time.Second)
}

// TestShutdownDeclinesNewUpgrades: once shutdown has begun, an upgrade asked
// for on a kept-alive connection is served on HTTP/1.1 instead.
func TestShutdownDeclinesNewUpgrades(t *testing.T) {
	tg := startGateway(t, Config{})
	c := dial(t, tg.addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-tg.rec.arrived
	tg.g.conns.close() // the first step of Shutdown, without its waiting
	close(tg.rec.release)
	readHTTP1(t, br, "GET")
	io.WriteString(c, upgradeHead("GET", "/late"))
	resp, _ := readHTTP1(t, br, "GET")
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
		t.Errorf("got %s %s; want HTTP/1.1 200", resp.Proto, resp.Status)
	}
	waitFor(t, "shutdown decline", func() bool { return tg.events.has(EventUpgradeDeclined, ReasonShutdown) })
}

// TestMaxConnections: past the cap, a new connection waits until one closes,
// an upgraded connection counting like any other.
func TestMaxConnections(t *testing.T) {
	tg := startGateway(t, Config{MaxConnections: 1})
	c1 := dial(t, tg.addr)
	br1 := bufio.NewReader(c1)
	io.WriteString(c1, upgradeHead("GET", "/one"))
	expect101(t, br1)
	h := newH2Client(t, c1, br1)
	h.preface()
	if _, _, err := h.readUntil(ended(1)); err != nil {
		t.Fatal(err)
	}

	c2 := dial(t, tg.addr)
	io.WriteString(c2, "GET /two HTTP/1.1\r\nHost: a\r\n\r\n")
	c2.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c2.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("second connection answered (%d bytes, %v) while the first holds the only slot", n, err)
	}
	c1.Close()
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, _ := readHTTP1(t, bufio.NewReader(c2), "GET"); resp.StatusCode != 200 {
		t.Errorf("second connection after the first closed: %s; want 200", resp.Status)
	}
}
