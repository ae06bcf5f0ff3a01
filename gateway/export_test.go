package gateway

import (
	"bufio"
	"net"
	"testing"

	"golang.org/x/net/http2"
)

// What the external tests of this directory (package gateway_test, which
// may import the proxy without an import cycle) use of the frame-level test
// client and its helpers.

type (
	H2Client = h2client
	Response = response
)

var (
	Dial         = dial
	UpgradeHead  = upgradeHead
	Expect101    = expect101
	ReadHTTP1    = readHTTP1
	ExpectClosed = expectClosed
	Ended        = ended
	WaitFor      = waitFor
)

func NewH2Client(t *testing.T, c net.Conn, br *bufio.Reader) *H2Client { return newH2Client(t, c, br) }

func (h *h2client) Preface() { h.t.Helper(); h.preface() }
func (h *h2client) Get(id uint32, path string, extra ...string) {
	h.t.Helper()
	h.get(id, path, extra...)
}
func (h *h2client) Framer() *http2.Framer      { return h.fr }
func (h *h2client) SetFramer(fr *http2.Framer) { h.fr = fr }
func (h *h2client) ReadUntil(cond func(map[uint32]*response, []*http2.GoAwayFrame) bool) (map[uint32]*response, []*http2.GoAwayFrame, error) {
	return h.readUntil(cond)
}

func (r *response) Status() string               { return r.status }
func (r *response) Reset() *http2.RSTStreamFrame { return r.reset }

// OpenConns reports the connections g's shutdown registry holds.
func OpenConns(g *Gateway) int {
	open, _ := g.conns.counts()
	return open
}
