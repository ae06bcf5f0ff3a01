package gateway

import (
	"context"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// The tests here pin what the gateway relies on from its HTTP/2
// implementation beyond documented behaviour (http2_xnet.go,
// http2_nethttp.go). Each runs on every toolchain and fails when the seam it
// names moves.

// TestSeamServedByServer: a hijacked connection, upgraded or prior
// knowledge, handed to http2.Server.ServeConn with serveConnBase as
// BaseConfig, is served by the gateway's own http.Server: that server's
// Shutdown alone, without the gateway's, sends it GOAWAY.
func TestSeamServedByServer(t *testing.T) {
	for _, path := range []EntryPath{PathUpgrade, PathPriorKnowledge} {
		t.Run(string(path), func(t *testing.T) {
			tg := startGateway(t, Config{})
			h := openHTTP2(t, tg.addr, path, "/slow")
			<-tg.rec.arrived
			// The connection is registered once the server has written
			// its first frame (tracker.started); wait for that as
			// Shutdown does.
			waitFor(t, "the connection to start", func() bool {
				_, starting := tg.g.conns.counts()
				return starting == 0
			})
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				tg.g.HTTPServer().Shutdown(ctx)
			}()
			_, goaways, err := h.readUntil(sawGoAway)
			if err != nil {
				t.Fatalf("http.Server.Shutdown sent the %s connection no GOAWAY (%v): with %s, ServeConn no longer serves through the gateway's http.Server", path, err, HTTP2Engine)
			}
			if goaways[0].ErrCode != http2.ErrCodeNo {
				t.Errorf("GOAWAY %v; want NO_ERROR", goaways[0].ErrCode)
			}
			close(tg.rec.release)
			if _, _, err := h.readUntil(ended(1)); err != nil {
				t.Errorf("stream 1 after GOAWAY: %v", err)
			}
		})
	}
}
