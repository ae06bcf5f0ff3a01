//go:build linux

// Command upstream is the fallback upstream of the proxy scenarios when h2o
// is not installed: net/http serving HTTP/1.1 and HTTP/2 with prior knowledge
// (Go ≥ 1.24 Protocols) on one port, a static body of -size bytes for every
// request.
package main

import (
	"flag"
	"net/http"

	"github.com/h2cgw/h2cgw/bench/internal/progs"
)

func main() {
	cmd := progs.NewCommand("upstream")
	size := flag.Int("size", 1024, "response body size in bytes")
	flag.Parse()
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	hs := &http.Server{Handler: progs.StaticHandler(*size), Protocols: &p}
	cmd.Serve(hs.Serve)
}
