//go:build linux

// Command xneth2c is baseline (b) of the benchmark: the deprecated
// golang.org/x/net/http2/h2c.NewHandler on a plain http.Server — HTTP/1.1,
// the h2c upgrade and prior knowledge, the way most Go h2c servers are built
// today — serving the same handler as h2cgw's built-in one. MaxReadFrameSize
// is 16384, as h2cgw advertises.
package main

import (
	"flag"
	"net/http"

	"github.com/h2cgw/h2cgw/bench/internal/progs"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

func main() {
	cmd := progs.NewCommand("xneth2c").WithCPUProfile().WithHandler()
	flag.Parse()
	h := cmd.Handler(progs.ViaByProto)
	hs := &http.Server{Handler: h2c.NewHandler(h, &http2.Server{MaxReadFrameSize: 16384})}
	cmd.Serve(hs.Serve)
}
