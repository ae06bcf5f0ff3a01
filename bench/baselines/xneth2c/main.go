// Command xneth2c is baseline (b) of the benchmark: the deprecated
// golang.org/x/net/http2/h2c.NewHandler on a plain http.Server — HTTP/1.1,
// the h2c upgrade and prior knowledge, the way most Go h2c servers are built
// today — serving the same handler as h2cgw's built-in one. MaxReadFrameSize
// is 16384, as h2cgw advertises.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"

	"github.com/h2cgw/h2cgw/bench/internal/progs"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	handler := flag.String("handler", "echo", "echo (h2cgw's built-in JSON) or minimal")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here until SIGTERM")
	flag.Parse()
	h, err := progs.Handler(*handler, progs.ViaByProto)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	hs := &http.Server{Handler: h2c.NewHandler(h, &http2.Server{MaxReadFrameSize: 16384})}
	progs.Main("xneth2c", *listen, *cpuprofile, hs.Serve)
}
