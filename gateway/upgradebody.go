package gateway

// The upgrade body: read whole, within its limit, before the 101
// (RFC 7540 §3.2), or put back for HTTP/1.1 when it does not fit.

import (
	"bytes"
	"io"
	"net/http"
	"time"
)

// readUpgradeBody reads the body of an upgrade request before the 101, the
// only place RFC 7540 §3.2 leaves for it, within the body limit. Reading it is
// also what sends "100 Continue" (net/http answers Expect on the first read),
// so 100 comes before 101. A body past the limit declines the upgrade: the
// bytes read are put back in front of the rest and the request is served on
// HTTP/1.1 with all of it. A body that cannot be read (malformed chunking, too
// slow, the client gone) is answered here and the error returned.
func (g *Gateway) readUpgradeBody(w http.ResponseWriter, r *http.Request) ([]byte, Reason, error) {
	if r.ContentLength == 0 {
		return nil, "", nil
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
	buf, err := readAtMost(r.Body, n)
	if err == nil && r.ContentLength > 0 && int64(len(buf)) < r.ContentLength {
		err = io.ErrUnexpectedEOF // as io.ReadFull would say
	}
	var restore time.Time
	if g.hs.ReadTimeout > 0 {
		restore = time.Now().Add(g.hs.ReadTimeout)
	}
	_ = rc.SetReadDeadline(restore)
	if err != nil {
		g.bodyError(w, r, err)
		return nil, "", err
	}
	if int64(len(buf)) > limit {
		r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(buf), r.Body), body: r.Body}
		return nil, ReasonBodyTooLarge, nil
	}
	return buf, "", nil
}

// readAtMost reads r to its end or until it has n bytes, growing its buffer
// only as data arrives so that memory follows what the client sent.
func readAtMost(r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, 0, min(n, 4096))
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
			if int64(cap(buf)) > n {
				buf = buf[:len(buf):n]
			}
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// replayBody serves the part of a body read for an upgrade, then the rest.
type replayBody struct {
	io.Reader
	body io.ReadCloser
}

func (b *replayBody) Close() error { return b.body.Close() }
