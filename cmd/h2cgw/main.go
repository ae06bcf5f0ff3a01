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
	"runtime/debug"
	"syscall"
)

// version is stamped at build time:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/h2cgw
//
// Unstamped, main takes what the Go toolchain recorded (resolveVersion).
var version = "dev"

// resolveVersion returns v, or — for an unstamped build — the module version
// (go install ...@v1.2.3) or the VCS revision the toolchain recorded, so that
// --version, the startup line and h2cgw_build_info say what runs.
func resolveVersion(v string) string {
	bi, ok := debug.ReadBuildInfo()
	if v != "dev" || !ok {
		return v
	}
	if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
		return mv
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return v
	}
	return "dev-" + rev + dirty
}

func main() {
	version = resolveVersion(version)
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
