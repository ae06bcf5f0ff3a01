//go:build go1.27 && !http2legacy

package gateway

// The HTTP/2 server built with Go 1.27 or later: net/http's own, which
// golang.org/x/net/http2's Server wraps (x/net http2/README.md,
// http2/server_wrap.go). This file and http2_xnet.go are the only code that
// differs between the two implementations; seams_test.go checks on every
// toolchain that what each relies on still holds.

// Seams that both implementations share, held by tests on either toolchain:
//   - the server registers a connection for graceful shutdown before its
//     first write (preface.go, upgradedConn.started; TestShutdownDrainsUpgraded,
//     TestShutdownDeclinesNewUpgrades);
//   - it runs stream 1's handler with the context of
//     ServeConnOpts.UpgradeRequest (stream1.go, stream1Key), and closes
//     stream 1's CloseNotify channel when the stream is reset or the
//     connection ends (streamHandler; TestClientGone,
//     TestStream1ContextCancelledOnReset).

import "net/http"

// HTTP2Engine names the HTTP/2 server implementation this build serves
// with: golang.org/x/net/http2's own code when built with Go 1.26 (or with
// the http2legacy build tag), net/http's when built with Go 1.27 or later.
// The gateway behaves the same on both (README "Supported Go versions").
const HTTP2Engine = "net/http"

// serveConnBase returns nil. With ServeConnOpts.BaseConfig set, x/net's
// wrapper serves the connection through a one-off copy of that http.Server,
// which the gateway's Shutdown never reaches (server_wrap.go, serveConn).
// Without it, ServeConn serves through the http.Server that ConfigureServer
// bound, with its limits and hooks, and that server's Shutdown sends the
// connection GOAWAY (net/http http2.go: configureHTTP2 registers the HTTP/2
// server's GracefulShutdown). TestSeamUpgradedServedByServer checks both.
func (g *Gateway) serveConnBase() *http.Server { return nil }
