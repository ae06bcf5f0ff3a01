// Command h2cgw is a cleartext HTTP/2 (h2c) gateway: one listener serves
// HTTP/1.1, the "Upgrade: h2c" handshake of RFC 7540 §3.2 and HTTP/2 with
// prior knowledge, in front of HTTP/1.1 or h2c upstreams, or a built-in JSON
// echo when none is configured. It owns the process: flags, listeners,
// signals, logs, metrics and the admin endpoints; package gateway does the
// protocol work.
//
// Run "h2cgw --help" for the flags.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// version is stamped at build time:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/h2cgw
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process at once
		// rather than waiting for the grace period.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err))
}

// exitCode maps run's error to the exit status: 2 for a bad command line, 1
// for any other failure (run has already reported it).
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}
