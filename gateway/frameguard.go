package gateway

// The frame guard (README "Security"): per cleartext HTTP/2 connection, it
// follows the frames in both directions, without changing what either
// HTTP/2 implementation does with them, to bound two things neither bounds:
//
//   - The decoded request headers of streams not yet answered. A header
//     block's decoded size is what the server holds, not its wire size (an
//     HPACK reference of one octet can stand for a 4 KiB field); the guard
//     decodes each block with a mirror of the server's HPACK decoder, and
//     reserves its size in the memory budget (budget.go) until the stream's
//     response is complete or the stream is reset. A new stream the budget
//     cannot take is refused with REFUSED_STREAM (RFC 9113 §8.7: the
//     client may retry it), before any handler sees it.
//   - Glitches: streams reset before their response was complete, by the
//     client (rapid reset, CVE-2023-44487) or by the server for the
//     client's protocol errors (MadeYouReset, CVE-2025-8671). Past
//     Config.GlitchLimit within Config.GlitchWindow the connection ends
//     with GOAWAY ENHANCE_YOUR_CALM (RFC 9113 §5.4.1).
//
// Refusing a stream must keep the server's HPACK decoder in step with the
// client's encoder (RFC 7541 §2.2: every header block is decoded, in
// order), so the block still reaches the server. The guard appends to it,
// in a CONTINUATION frame of its own, one field the server cannot have
// received from anyone else — a literal without indexing (RFC 7541 §6.2.2),
// which leaves the dynamic table as it was — naming a secret token. The
// stream handler sees the token and aborts the stream at once
// (http.ErrAbortHandler), which both servers answer with RST_STREAM
// INTERNAL_ERROR; the guard, which knows the stream it marked, rewrites that
// code on the way out to REFUSED_STREAM.

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// refuseField is the name of the field the guard appends to a refused
// stream's header block; its value is the Gateway's refuseToken.
const refuseField = "h2cgw-refuse"

// refuseHeaderKey is refuseField as net/http canonicalises it in
// Request.Header.
var refuseHeaderKey = http.CanonicalHeaderKey(refuseField)

// newRefuseToken returns a token no client can guess.
func newRefuseToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errCalm ends the server's reads on a connection the guard sent GOAWAY
// ENHANCE_YOUR_CALM on.
var errCalm = errors.New("gateway: connection ended for too many resets and protocol errors")

const (
	frameHeaderLen = 9
	// calmGoAwayWait bounds how long the reader waits for the GOAWAY to be
	// queued behind a frame the server is half way through writing.
	calmGoAwayWait = time.Second
	// calmLinger bounds the drain after that GOAWAY.
	calmLinger = time.Second
)

// Frame types and flags (RFC 9113 §6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameGoAway       = 0x7
	frameContinuation = 0x9

	flagEndStream  = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
)

// glitchCode reports whether a server's RST_STREAM with this code answers
// a protocol error of the client's. The others — NO_ERROR (a handler done
// before the request body), INTERNAL_ERROR (a handler aborted), CANCEL —
// are the server's own doing.
func glitchCode(code http2.ErrCode) bool {
	switch code {
	case http2.ErrCodeProtocol, http2.ErrCodeFlowControl, http2.ErrCodeStreamClosed,
		http2.ErrCodeFrameSize, http2.ErrCodeRefusedStream, http2.ErrCodeCompression,
		http2.ErrCodeEnhanceYourCalm:
		return true
	}
	return false
}

// connGuard is the guard of one connection.
type connGuard struct {
	g      *Gateway
	bc     *batchConn
	conn   net.Conn // the raw connection, whose read deadline wakes the reader
	remote string
	path   EntryPath

	// Read side: touched only by the server's reader goroutine.
	hdr      [frameHeaderLen]byte
	out      []byte // what the server reads next: a frame header, or a whole header-block frame
	frame    []byte // the buffer out points into for header-block frames
	remain   int    // payload octets of the current frame still to pass through
	maxFrame uint32
	hdec     *hpack.Decoder
	decodeOK bool // false after a decoding error: the server ends the connection
	block    headerBlock

	mu sync.Mutex
	// streams holds the client's streams whose response is not complete,
	// with the header octets each has reserved in the budget. refused
	// holds the streams marked refused whose reset is not yet written.
	streams map[uint32]int64
	refused map[uint32]struct{}
	// held is what streams hold together, against share: one connection's
	// part of the decoded headers, so that a few connections cannot take
	// the whole budget (connShare).
	held   int64
	share  int64
	maxID  uint32
	tokens float64 // the glitch bucket
	refill time.Time
	calm   atomic.Bool   // set under mu
	calmed chan struct{} // closed once the GOAWAY is queued
}

// headerBlock is the header block being read: HEADERS and its
// CONTINUATION frames (RFC 9113 §4.3).
type headerBlock struct {
	active    bool
	stream    uint32
	newStream bool
	size      int64
}

func (g *Gateway) newConnGuard(conn net.Conn, remote string, path EntryPath) *connGuard {
	cg := &connGuard{
		g: g, conn: conn, remote: remote, path: path,
		maxFrame: g.cfg.maxReadFrameSize(),
		streams:  make(map[uint32]int64),
		refused:  make(map[uint32]struct{}),
		tokens:   float64(g.cfg.glitchLimit()),
		share:    connShare(g),
		refill:   time.Now(),
		decodeOK: true,
		frame:    make([]byte, 0, 64),
	}
	if n := g.hs.HTTP2.MaxReadFrameSize; n > 0 {
		cg.maxFrame = uint32(n)
	}
	tableSize := uint32(4096) // RFC 9113 §6.5.2's initial SETTINGS_HEADER_TABLE_SIZE
	if n := g.hs.HTTP2.MaxDecoderHeaderTableSize; n > 0 && n < 4<<20 {
		tableSize = uint32(n)
	}
	cg.hdec = hpack.NewDecoder(tableSize, cg.emit)
	// No longer than the server's own limit (its header list size, which
	// is larger than MaxHeaderBytes): whatever this decoder refuses, the
	// server's refuses too, and ends the connection.
	cg.hdec.SetMaxStringLength(2 * cg.maxHeaderBytes())
	if path == PathUpgrade {
		// Stream 1 is the upgrade request's (RFC 9113 §3.2), already
		// read on HTTP/1.1.
		cg.maxID = 1
		cg.streams[1] = 0
	}
	return cg
}

// serverHeaderAllowance is what both HTTP/2 servers add to MaxHeaderBytes
// for the header list size they advertise and enforce (x/net server.go,
// maxHeaderListSize: ten fields' 32-octet overhead).
const serverHeaderAllowance = 10 * 32

// connShareMin is the least decoded header memory one connection may hold
// across its streams not yet answered: a client with hundreds of streams in
// flight and ordinary headers needs far less.
const connShareMin = 1 << 20

// connShare returns one connection's part of the decoded headers: at least
// connShareMin, and room for four requests at the header limit.
func connShare(g *Gateway) int64 {
	return max(connShareMin, 4*(int64(cmp.Or(g.hs.MaxHeaderBytes, http.DefaultMaxHeaderBytes))+serverHeaderAllowance))
}

func (cg *connGuard) maxHeaderBytes() int {
	return cmp.Or(cg.g.hs.MaxHeaderBytes, http.DefaultMaxHeaderBytes)
}

// emit counts a decoded field. Each name a Trailer field declares counts
// as a field of its own (RFC 7541 §4.1's 32 octets): the server makes room
// for each in Request.Trailer before the handler runs.
func (cg *connGuard) emit(f hpack.HeaderField) {
	cg.block.size += int64(f.Size())
	if f.Name == "trailer" {
		cg.block.size += 32 * int64(strings.Count(f.Value, ",")+1)
	}
}

// read is the server's Read, after the preface.
func (cg *connGuard) read(p []byte, src readerFunc) (int, error) {
	if len(cg.out) > 0 {
		n := copy(p, cg.out)
		cg.out = cg.out[n:]
		return n, nil
	}
	if cg.remain > 0 {
		n, err := src(p[:min(len(p), cg.remain)])
		cg.remain -= n
		return n, cg.readErr(err)
	}
	if _, err := io.ReadFull(src, cg.hdr[:]); err != nil {
		return 0, cg.readErr(err)
	}
	length := uint32(cg.hdr[0])<<16 | uint32(cg.hdr[1])<<8 | uint32(cg.hdr[2])
	typ, flags := cg.hdr[3], cg.hdr[4]
	stream := binary.BigEndian.Uint32(cg.hdr[5:]) & (1<<31 - 1)
	if (typ == frameHeaders || typ == frameContinuation) && length <= cg.maxFrame && cg.decodeOK {
		if err := cg.readHeaderFrame(src, int(length), typ, flags, stream); err != nil {
			return 0, cg.readErr(err)
		}
	} else {
		if typ == frameRSTStream {
			cg.clientReset(stream)
		}
		cg.out = append(cg.frame[:0], cg.hdr[:]...)
		cg.remain = int(length)
	}
	if cg.isCalm() {
		return 0, errCalm
	}
	n := copy(p, cg.out)
	cg.out = cg.out[n:]
	return n, nil
}

// readErr turns the read error that follows a GOAWAY ENHANCE_YOUR_CALM
// (the guard sets a past read deadline to wake the reader) into errCalm.
func (cg *connGuard) readErr(err error) error {
	if err != nil && cg.isCalm() {
		return errCalm
	}
	return err
}

// isCalm reports whether the connection got GOAWAY ENHANCE_YOUR_CALM: read
// at every frame, so an atomic rather than mu.
func (cg *connGuard) isCalm() bool { return cg.calm.Load() }

// readHeaderFrame reads a HEADERS or CONTINUATION frame whole, decodes its
// fragment, and leaves in out what the server is to read of it: the frame,
// and the refusal's CONTINUATION when the block ends a new stream the
// budget cannot take.
func (cg *connGuard) readHeaderFrame(src readerFunc, length int, typ, flags byte, stream uint32) error {
	if cap(cg.frame) < frameHeaderLen+length+frameHeaderLen+len(refuseField)+64 {
		cg.frame = make([]byte, 0, frameHeaderLen+length+frameHeaderLen+len(refuseField)+64)
	}
	f := append(cg.frame[:0], cg.hdr[:]...)
	f = f[:frameHeaderLen+length]
	if _, err := io.ReadFull(src, f[frameHeaderLen:]); err != nil {
		return err
	}
	cg.out = f
	frag := f[frameHeaderLen:]
	if typ == frameHeaders {
		var ok bool
		if frag, ok = headersFragment(frag, flags); !ok || cg.block.active {
			return nil // the server answers the malformed frame
		}
		cg.mu.Lock()
		isNew := stream&1 == 1 && stream > cg.maxID
		if isNew {
			cg.maxID = stream
		}
		cg.mu.Unlock()
		cg.block = headerBlock{active: true, stream: stream, newStream: isNew}
	} else if !cg.block.active || cg.block.stream != stream {
		return nil // the server answers the stray CONTINUATION
	}
	if _, err := cg.hdec.Write(frag); err != nil {
		cg.decodeOK = false
		return nil // COMPRESSION_ERROR, from the server's own decoder too
	}
	if flags&flagEndHeaders == 0 {
		return nil
	}
	if err := cg.hdec.Close(); err != nil {
		cg.decodeOK = false
		return nil
	}
	b := cg.block
	cg.block = headerBlock{}
	if !b.newStream {
		return nil // trailers, of a stream already counted
	}
	if b.size > int64(cg.maxHeaderBytes())+serverHeaderAllowance {
		// Past its header list size the server keeps no more fields and
		// answers 431 itself, without a handler; and after such a block
		// it takes a CONTINUATION as a flood (CVE-2023-45288) and ends
		// the connection: this block is neither counted nor marked.
		return nil
	}
	size := b.size
	cg.mu.Lock()
	share := cg.held+size <= cg.share
	cg.mu.Unlock()
	if share && cg.g.budget.reserve(size) {
		cg.mu.Lock()
		cg.streams[b.stream] = size
		cg.held += size
		cg.mu.Unlock()
		return nil
	}
	cg.mu.Lock()
	cg.refused[b.stream] = struct{}{}
	cg.mu.Unlock()
	cg.out = cg.markRefused(f, b.stream)
	cg.g.refuse(nil, ReasonMemoryStream, cg.remote)
	return nil
}

// headersFragment returns the header block fragment of a HEADERS frame's
// payload (RFC 9113 §6.2), without its padding and priority fields.
func headersFragment(p []byte, flags byte) ([]byte, bool) {
	pad := 0
	if flags&flagPadded != 0 {
		if len(p) < 1 {
			return nil, false
		}
		pad = int(p[0])
		p = p[1:]
	}
	if flags&flagPriority != 0 {
		if len(p) < 5 {
			return nil, false
		}
		p = p[5:]
	}
	if pad > len(p) {
		return nil, false
	}
	return p[:len(p)-pad], true
}

// markRefused moves END_HEADERS from the frame f, which ends the block of
// stream, to a CONTINUATION appended after it that carries the refusal
// field.
func (cg *connGuard) markRefused(f []byte, stream uint32) []byte {
	f[4] &^= flagEndHeaders
	tok := cg.g.refuseToken
	// A literal field without indexing, new name (RFC 7541 §6.2.2): 0x00,
	// then the name and the value, each with a 7-bit length (both < 127).
	field := make([]byte, 0, 3+len(refuseField)+len(tok))
	field = append(field, 0, byte(len(refuseField)))
	field = append(field, refuseField...)
	field = append(field, byte(len(tok)))
	field = append(field, tok...)
	var h [frameHeaderLen]byte
	h[0], h[1], h[2] = 0, 0, byte(len(field))
	h[3], h[4] = frameContinuation, flagEndHeaders
	binary.BigEndian.PutUint32(h[5:], stream)
	f = append(f, h[:]...)
	return append(f, field...)
}

// refusedStream reports whether r carries the guard's refusal field, and
// removes any such field a client sent itself.
func (g *Gateway) refusedStream(r *http.Request) bool {
	v, ok := r.Header[refuseHeaderKey]
	if !ok {
		return false
	}
	delete(r.Header, refuseHeaderKey)
	return len(v) == 1 && v[0] == g.refuseToken
}

// clientReset counts a RST_STREAM from the client.
func (cg *connGuard) clientReset(stream uint32) {
	cg.mu.Lock()
	size, open := cg.streams[stream]
	if open {
		delete(cg.streams, stream)
		cg.held -= size
	}
	calm := open && cg.glitchLocked()
	cg.mu.Unlock()
	if open {
		cg.g.budget.release(size)
	}
	if calm {
		cg.enhanceYourCalm(false)
	}
}

// serverFrame is told of each frame the server writes, by the batchConn's
// frame scanner: stream ends release their reservation, and the server's
// resets for the client's errors count as glitches. It returns whether the
// connection must now get GOAWAY ENHANCE_YOUR_CALM.
func (cg *connGuard) serverFrame(typ, flags byte, stream uint32, code http2.ErrCode) bool {
	switch {
	case typ == frameRSTStream:
	case (typ == frameHeaders || typ == frameData) && flags&flagEndStream != 0:
	default:
		return false
	}
	cg.mu.Lock()
	size, open := cg.streams[stream]
	delete(cg.streams, stream)
	cg.held -= size
	_, refused := cg.refused[stream]
	delete(cg.refused, stream)
	calm := false
	if typ == frameRSTStream && !refused && glitchCode(code) {
		calm = cg.glitchLocked()
	}
	cg.mu.Unlock()
	if open {
		cg.g.budget.release(size)
	}
	return calm
}

// isRefused reports whether stream was marked refused: its INTERNAL_ERROR
// reset is rewritten to REFUSED_STREAM.
func (cg *connGuard) isRefused(stream uint32) bool {
	cg.mu.Lock()
	defer cg.mu.Unlock()
	_, ok := cg.refused[stream]
	return ok
}

// glitchLocked takes one glitch from the bucket — GlitchLimit deep, refilled
// at GlitchLimit per GlitchWindow — and reports whether it was the one too
// many. Called with mu held.
func (cg *connGuard) glitchLocked() bool {
	limit := cg.g.cfg.glitchLimit()
	if limit < 0 || cg.calm.Load() {
		return false
	}
	now := time.Now()
	cg.tokens += now.Sub(cg.refill).Seconds() * float64(limit) / cg.g.cfg.glitchWindow().Seconds()
	cg.tokens = min(cg.tokens, float64(limit))
	cg.refill = now
	cg.tokens--
	if cg.tokens >= 0 {
		return false
	}
	cg.calm.Store(true)
	cg.calmed = make(chan struct{})
	return true
}

// goAwayFrame returns GOAWAY ENHANCE_YOUR_CALM naming the last stream the
// client opened (RFC 9113 §6.8).
func (cg *connGuard) goAwayFrame() []byte {
	cg.mu.Lock()
	last := cg.maxID
	cg.mu.Unlock()
	f := make([]byte, frameHeaderLen+8)
	f[2], f[3] = 8, frameGoAway
	binary.BigEndian.PutUint32(f[9:], last)
	binary.BigEndian.PutUint32(f[13:], uint32(http2.ErrCodeEnhanceYourCalm))
	return f
}

// enhanceYourCalm ends the connection: GOAWAY ENHANCE_YOUR_CALM is queued
// at the next frame boundary of the server's writes, and the server's
// reads end with errCalm, after which it closes the connection (the
// batchConn writes what is queued first). fromWriter is true when called
// from the batchConn's scanner, which queues the GOAWAY itself.
func (cg *connGuard) enhanceYourCalm(fromWriter bool) {
	cg.g.refuse(nil, ReasonGlitches, cg.remote)
	if fromWriter {
		// The reader may be waiting for the client: wake it.
		_ = cg.conn.SetReadDeadline(time.Now())
		return
	}
	cg.bc.queueFrame(cg.goAwayFrame(), cg.goAwayQueued)
	select {
	case <-cg.calmed:
	case <-time.After(calmGoAwayWait):
	}
}

// goAwayQueued is called by the batchConn once the GOAWAY is queued.
func (cg *connGuard) goAwayQueued() {
	cg.mu.Lock()
	defer cg.mu.Unlock()
	if cg.calmed != nil {
		select {
		case <-cg.calmed:
		default:
			close(cg.calmed)
		}
	}
}

// linger keeps a connection ended with GOAWAY ENHANCE_YOUR_CALM open for
// reading, up to calmLinger, after its write side is shut: closing a socket
// with unread input makes the kernel send RST, and the client's kernel then
// drops the GOAWAY before its application reads it (x/net's server lingers
// after its own GOAWAY for the same reason).
func (cg *connGuard) linger() {
	cw, ok := cg.conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = cg.conn.SetReadDeadline(time.Now().Add(calmLinger))
	var buf [4096]byte
	for {
		if _, err := cg.conn.Read(buf[:]); err != nil {
			return
		}
	}
}

// close gives back what the connection's open streams still hold.
func (cg *connGuard) close() {
	cg.mu.Lock()
	var held int64
	for _, n := range cg.streams {
		held += n
	}
	clear(cg.streams)
	cg.held = 0
	cg.mu.Unlock()
	cg.g.budget.release(held)
}

// frameScan follows the frame boundaries of what the server writes, for the
// guard: it tells the guard of stream ends and resets, rewrites a refused
// stream's INTERNAL_ERROR to REFUSED_STREAM, and holds a frame to queue
// (the GOAWAY) until a boundary. Used under the batchConn's mutex.
type frameScan struct {
	guard   *connGuard
	hdr     [frameHeaderLen]byte
	hdrN    int
	remain  int
	payload int // payload octets seen of the current frame
	typ     byte
	flags   byte
	stream  uint32
	code    uint32 // a RST_STREAM's error code, as its octets pass
	// pending is a frame to queue at the next boundary, and done what to
	// signal then.
	pending []byte
	done    func()
}

// atBoundary reports whether the octets scanned end a frame.
func (s *frameScan) atBoundary() bool { return s.hdrN == 0 && s.remain == 0 }

// scan follows b, octets the server just wrote, rewriting them in place
// where a refused stream's reset code passes. It returns the octets it
// followed: all of b, or fewer when a frame it followed made a frame
// pending, which then goes right after it.
func (s *frameScan) scan(b []byte) int {
	total := len(b)
	for len(b) > 0 {
		if s.pending != nil && s.atBoundary() {
			return total - len(b)
		}
		if s.remain == 0 {
			n := copy(s.hdr[s.hdrN:], b)
			s.hdrN += n
			b = b[n:]
			if s.hdrN < frameHeaderLen {
				return total
			}
			s.hdrN = 0
			s.remain = int(s.hdr[0])<<16 | int(s.hdr[1])<<8 | int(s.hdr[2])
			s.typ, s.flags = s.hdr[3], s.hdr[4]
			s.stream = binary.BigEndian.Uint32(s.hdr[5:]) & (1<<31 - 1)
			s.payload, s.code = 0, 0
			if s.typ != frameRSTStream || s.remain == 0 {
				s.frameDone()
			}
			continue
		}
		n := min(len(b), s.remain)
		if s.typ == frameRSTStream {
			for i := range n {
				if s.payload+i >= 4 {
					break
				}
				if s.payload+i == 3 && s.code == 0 && b[i] == byte(http2.ErrCodeInternal) && s.guard.isRefused(s.stream) {
					b[i] = byte(http2.ErrCodeRefusedStream)
				}
				s.code = s.code<<8 | uint32(b[i])
			}
		}
		s.payload += n
		s.remain -= n
		b = b[n:]
		if s.remain == 0 && s.typ == frameRSTStream {
			s.frameDone()
		}
	}
	return total
}

// frameDone reports a frame to the guard: at its header, or for
// RST_STREAM once its code has passed.
func (s *frameScan) frameDone() {
	if s.guard.serverFrame(s.typ, s.flags, s.stream, http2.ErrCode(s.code)) {
		s.pending, s.done = s.guard.goAwayFrame(), s.guard.goAwayQueued
		s.guard.enhanceYourCalm(true)
	}
}
