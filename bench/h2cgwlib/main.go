//go:build linux

// Command h2cgwlib is h2cgw built from the library rather than the binary:
// gateway.New around the echo handler, a minimal handler, or proxy.New,
// with default gateway.Config and proxy.Config, and no access log or metrics
// (those live in cmd/h2cgw). The harness uses it for the "minimal handler"
// rows of scenario 1 and, with -cpuprofile, to profile the gateway under
// load, since the binary does not expose pprof.
package main

import (
	"flag"
	"net/http"

	"github.com/h2cgw/h2cgw/bench/internal/progs"
	"github.com/h2cgw/h2cgw/gateway"
	"github.com/h2cgw/h2cgw/proxy"
)

func main() {
	cmd := progs.NewCommand("h2cgwlib").WithCPUProfile()
	handler := flag.String("handler", "echo", "echo (the built-in JSON), minimal, or proxy")
	upstream := flag.String("upstream", "", "with -handler proxy: http://host:port or h2c://host:port")
	memprofile := flag.String("memprofile", "", "at SIGUSR1, write a heap profile here (and memory figures to stderr)")
	maxConns := flag.Int("max-conns", 0, "with -handler proxy: proxy.Config.MaxConnsPerHost (0: the default)")
	flag.Parse()
	progs.DumpOnSignal("h2cgwlib", *memprofile)

	var h http.Handler
	if *handler == "proxy" {
		p, err := proxy.New(proxy.Config{Upstreams: []string{*upstream}, MaxConnsPerHost: *maxConns})
		if err != nil {
			cmd.Usagef("%v", err)
		}
		h = p
	} else {
		var err error
		h, err = progs.Handler(*handler, nil)
		if err != nil {
			cmd.Usagef("%v", err)
		}
	}
	g := gateway.New(h, gateway.Config{})
	cmd.Serve(g.Serve)
}
