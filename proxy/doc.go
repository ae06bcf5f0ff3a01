// Package proxy is h2cgw's gateway mode (README "Gateway mode"): an
// http.Handler that forwards each request to one of its upstreams —
// HTTP/1.1, h2c with prior knowledge, or HTTPS with ALPN — and copies the
// response back, streaming both ways.
//
// What it forwards carries no h2c upgrade: Upgrade, HTTP2-Settings,
// Connection and every other hop-by-hop field are removed whether or not the
// client listed them (h2c smuggling). WebSocket handshakes on HTTP/1.1 are
// tunnelled to HTTP/1.1 upstreams, the tunnel taken with gateway.Hijack so
// that the Gateway's Shutdown ends it. A failed upstream gives 502, a slow
// one 504, with a log line and a Config.OnUpstreamError call naming the
// upstream and the cause.
//
// Files: proxy.go (Config, New, ServeHTTP), upstream.go (the upstream URLs),
// balancer.go (round robin and passive health), transport.go (attempts and
// retries), dialrate.go (the bound on new upstream connections),
// h2cpool.go (the h2c upstream connections), headers.go
// (forwarding fields), tunnel.go (WebSocket), errors.go (failure to status
// and cause), note.go (the upstream's name for the access log).
package proxy
