// Package gateway serves cleartext HTTP/2 (h2c) beside HTTP/1.1 on one listener.
//
// It owns the adaptation between net/http's HTTP/1.1 server and
// golang.org/x/net/http2's server: recognising the three entry paths of a
// connection (HTTP/1.1, the "Upgrade: h2c" handshake of RFC 7540 §3.2, and
// prior knowledge of RFC 9113 §3.3), deciding whether an upgrade is performed
// or declined, performing it (the 101, the client preface, stream 1), rejecting
// upgrade signals on connections that already speak HTTP/2, and draining every
// HTTP/2 connection on shutdown, upgraded ones included, with every
// connection a handler takes with [Hijack].
//
// Framing, flow control and HPACK are the HTTP/2 server's (x/net's own on Go
// 1.26, net/http's on Go 1.27 and later). The gateway only follows the frames
// of each connection, to bound what a client can make it hold or do (README
// "Security"): the memory budget, the glitch limit and the header field cap
// (budget.go, frameguard.go). The
// HTTP2-Settings codec lives in package settings. The package never listens on
// its own and never owns the process: callers pass a net.Listener to
// [Gateway.Serve], or hand their own *http.Server to [Configure].
//
// The gateway mode's handler, a reverse proxy that never forwards an h2c
// upgrade, is package proxy (README "Gateway mode").
//
// Every request — stream 1 of an upgraded connection and every later stream
// included — passes through the wrapped handler, so whatever authorises
// requests must be wrapped by the gateway, not wrap it.
package gateway
