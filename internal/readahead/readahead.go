// Package readahead serves an HTTP/2 frame reader's small reads from one
// read(2) of whatever the socket holds.
//
// An HTTP/2 framer reads every frame in two calls — the 9-octet header
// (RFC 9113 §4.1), then the payload — and on a plain connection each is a
// system call, though the peer sent a burst of frames in one segment. On
// unix systems [New] wraps a socket so that one read(2) fills a pooled
// buffer, taken only while the socket has bytes; elsewhere it returns the
// connection as it is. bench/README.md "Results" gives what it buys.
package readahead

// readAheadSize is the most a read takes from the socket at once: a few
// request frames, or the tail of one large frame.
const readAheadSize = 4 << 10
