//go:build linux

// Command xnetbare is baseline (a) of the benchmark: a bare
// golang.org/x/net/http2 Server speaking HTTP/2 with prior knowledge only
// (ServeConn on every accepted connection, no HTTP/1.1, no upgrade), serving
// the same handler as h2cgw's built-in one. MaxReadFrameSize is 16384, what
// h2cgw advertises, so that both servers read frames of the same size.
package main

import (
	"errors"
	"flag"
	"net"
	"net/http"
	"time"

	"github.com/h2cgw/h2cgw/bench/internal/progs"
	"golang.org/x/net/http2"
)

func main() {
	cmd := progs.NewCommand("xnetbare").WithCPUProfile().WithHandler()
	flag.Parse()
	h := cmd.Handler(func(*http.Request) string { return "h2c-prior-knowledge" })
	h2s := &http2.Server{MaxReadFrameSize: 16384}
	base := &http.Server{}
	cmd.Serve(func(ln net.Listener) error {
		for {
			c, err := ln.Accept()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					time.Sleep(5 * time.Millisecond) // EMFILE and the like
					continue
				}
				return err
			}
			go h2s.ServeConn(c, &http2.ServeConnOpts{Handler: h, BaseConfig: base})
		}
	})
}
