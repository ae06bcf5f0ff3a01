//go:build linux

// Command naiveproxy is baseline (c) of the benchmark: the gateway a Go
// programmer writes in ten lines — x/net's h2c.NewHandler around
// httputil.NewSingleHostReverseProxy with the default http.Transport (two
// idle connections per host: http.DefaultMaxIdleConnsPerHost) and a default http2.Server. For
// an h2c:// upstream the transport is x/net's http2.Transport with AllowHTTP
// and a plain dialer, the usual recipe.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/h2cgw/h2cgw/bench/internal/progs"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

func main() {
	cmd := progs.NewCommand("naiveproxy").WithCPUProfile()
	upstream := flag.String("upstream", "", "http://host:port or h2c://host:port")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "h2c") || u.Host == "" {
		cmd.Usagef("-upstream must be http://host:port or h2c://host:port, got %q", *upstream)
	}
	useH2C := u.Scheme == "h2c"
	u.Scheme = "http"
	rp := httputil.NewSingleHostReverseProxy(u)
	if useH2C {
		rp.Transport = &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
		}
	}
	hs := &http.Server{Handler: h2c.NewHandler(rp, &http2.Server{})}
	cmd.Serve(hs.Serve)
}
