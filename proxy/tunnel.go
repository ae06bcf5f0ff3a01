package proxy

import (
	"bufio"
	"net"
	"net/http"

	"github.com/h2cgw/h2cgw/gateway"
)

// tunnelWriter wraps the ResponseWriter of a WebSocket handshake so that the
// connection httputil.ReverseProxy hijacks for the tunnel is taken with
// gateway.Hijack: it joins the Gateway's shutdown registry, which
// net/http's Shutdown would not have waited for nor closed
// (golang/go#26682). Everything else reaches the writer beneath through
// Unwrap (http.ResponseController).
type tunnelWriter struct {
	http.ResponseWriter
	r *http.Request
}

// Hijack takes the client connection for the tunnel.
func (w *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return gateway.Hijack(w.ResponseWriter, w.r)
}

// Unwrap serves http.ResponseController (Flush, deadlines).
func (w *tunnelWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
