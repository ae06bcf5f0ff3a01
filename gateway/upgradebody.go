package gateway

// The upgrade body: read whole, within its limit, before the 101
// (RFC 7540 §3.2), or put back for HTTP/1.1 when it does not fit.

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// readUpgradeBody reads the body of an upgrade request before the 101, the
// only place RFC 7540 §3.2 leaves for it, within the body limit and the
// memory budget. Reading it is also what sends "100 Continue" (net/http
// answers Expect on the first read), so 100 comes before 101. A body past
// the limit, or one the budget cannot take, declines the upgrade: the bytes
// read are put back in front of the rest and the request is served on
// HTTP/1.1 with all of it. A body that cannot be read (malformed chunking,
// too slow, the client gone) is answered here and the error returned. The
// caller closes the body returned, which gives its memory back to the
// budget.
func (g *Gateway) readUpgradeBody(w http.ResponseWriter, r *http.Request) (*heldBody, Reason, error) {
	hb := &heldBody{b: g.budget}
	if r.ContentLength == 0 {
		return hb, "", nil
	}
	if over, _ := g.budget.exhausted(); over {
		hb.rest = r.Body
		return hb, ReasonMemory, nil
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
	reason, err := hb.readFrom(r.Body, n)
	if err == nil && reason == "" && r.ContentLength > 0 && hb.n < r.ContentLength {
		err = io.ErrUnexpectedEOF // as io.ReadFull would say
	}
	var restore time.Time
	if g.hs.ReadTimeout > 0 {
		restore = time.Now().Add(g.hs.ReadTimeout)
	}
	_ = rc.SetReadDeadline(restore)
	if err != nil {
		hb.Close()
		g.bodyError(w, r, err)
		return nil, "", err
	}
	if reason == "" && hb.n > limit {
		reason = ReasonBodyTooLarge
	}
	if reason != "" {
		hb.rest = r.Body
	}
	return hb, reason, nil
}

// bodyChunk is the unit an upgrade body is read and held in: a body costs
// its length, rounded up to at most one chunk, however it is sent (a
// buffer grown by doubling would cost up to twice the limit while it is
// copied).
const bodyChunk = 16 << 10

// heldBody is an upgrade body read before the 101, held in chunks each
// reserved in the memory budget, then served as stream 1's body, or, when
// the upgrade is declined, in front of the rest of the HTTP/1.1 body
// (rest). Each chunk is let go, and given back to the budget, once read;
// Close gives back the rest.
type heldBody struct {
	b      *budget
	mu     sync.Mutex
	chunks []heldChunk
	n      int64 // the octets read, all chunks together
	held   int64 // the octets reserved for the chunks not yet let go
	rest   io.ReadCloser
}

// heldChunk is one chunk: what is left of it to read, and its reserved size.
type heldChunk struct {
	b    []byte
	size int64
}

// readFrom reads body until its end or until n octets, chunk by chunk,
// reserving each before it is allocated. It stops with ReasonMemory when
// the budget cannot take the next chunk.
func (hb *heldBody) readFrom(body io.Reader, n int64) (Reason, error) {
	for hb.n < n {
		size := min(bodyChunk, n-hb.n)
		if !hb.b.reserveBody(size) {
			return ReasonMemory, nil
		}
		hb.held += size
		c := make([]byte, 0, size)
		var err error
		for len(c) < cap(c) && err == nil {
			var m int
			m, err = body.Read(c[len(c):cap(c)])
			c = c[:len(c)+m]
		}
		hb.chunks = append(hb.chunks, heldChunk{c, size})
		hb.n += int64(len(c))
		if err == io.EOF {
			return "", nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", nil
}

// len returns the body's length.
func (hb *heldBody) len() int64 { return hb.n }

func (hb *heldBody) Read(p []byte) (int, error) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	for len(hb.chunks) > 0 {
		c := &hb.chunks[0]
		if len(c.b) > 0 {
			n := copy(p, c.b)
			c.b = c.b[n:]
			return n, nil
		}
		hb.letGoLocked()
	}
	if hb.rest != nil {
		return hb.rest.Read(p)
	}
	return 0, io.EOF
}

// letGoLocked drops the first chunk, read to its end.
func (hb *heldBody) letGoLocked() {
	size := hb.chunks[0].size
	hb.chunks[0] = heldChunk{}
	hb.chunks = hb.chunks[1:]
	hb.held -= size
	hb.b.releaseBody(size)
}

// Close gives back what is still held, and closes the rest of the body.
func (hb *heldBody) Close() error {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	hb.chunks = nil
	hb.b.releaseBody(hb.held)
	hb.held = 0
	if hb.rest != nil {
		return hb.rest.Close()
	}
	return nil
}
