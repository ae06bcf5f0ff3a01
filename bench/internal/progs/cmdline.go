//go:build linux

package progs

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
)

// Command is the command line the baselines share, on flag.CommandLine:
// -listen always, -cpuprofile and -handler where a program offers them.
// The harness starts every one of its programs the same way (port 0, the
// startup line of Main, SIGTERM), so these flags mean the same everywhere
// and are declared once, here.
type Command struct {
	name       string
	listen     *string
	cpuprofile *string // nil without -cpuprofile
	handler    *string // nil without -handler
}

// NewCommand declares -listen for the program name, the name its startup
// line and its errors carry. The program declares its own flags next, then
// calls flag.Parse.
func NewCommand(name string) *Command {
	return &Command{name: name, listen: flag.String("listen", "127.0.0.1:0", "address to listen on")}
}

// WithCPUProfile declares -cpuprofile, for the programs the harness
// profiles.
func (c *Command) WithCPUProfile() *Command {
	c.cpuprofile = flag.String("cpuprofile", "", "write a CPU profile here until SIGTERM")
	return c
}

// WithHandler declares -handler, the choice of Handler (echo or minimal),
// for the programs that serve a local handler.
func (c *Command) WithHandler() *Command {
	c.handler = flag.String("handler", "echo", "echo (h2cgw's built-in JSON) or minimal")
	return c
}

// Handler is the handler -handler (WithHandler) names, with via as in
// Handler; an unknown name ends the program as a usage error.
func (c *Command) Handler(via func(*http.Request) string) http.Handler {
	h, err := Handler(*c.handler, via)
	if err != nil {
		c.Usagef("%v", err)
	}
	return h
}

// Usagef reports a bad command line and exits with status 2, as the flag
// package does, so that the harness's log shows which program refused what.
func (c *Command) Usagef(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", c.name, fmt.Sprintf(format, args...))
	os.Exit(2)
}

// Serve runs Main with -listen and -cpuprofile: it serves with serve until
// SIGTERM.
func (c *Command) Serve(serve func(net.Listener) error) {
	var prof string
	if c.cpuprofile != nil {
		prof = *c.cpuprofile
	}
	Main(c.name, *c.listen, prof, serve)
}
