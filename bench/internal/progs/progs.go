//go:build linux

// Package progs is what the harness's own server programs (the baselines and
// the h2cgwlib variant) share: the handlers they serve, the startup line the
// harness waits for, and CPU profiling until SIGTERM.
package progs

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/h2cgw/h2cgw/internal/echo"
)

// EchoHandler is h2cgw's built-in handler (internal/echo), so that a
// baseline does the same work per request as h2cgw's built-in handler: the
// JSON description of the request, the body streamed through SHA-256. via
// names the entry path the server knows of.
func EchoHandler(via func(*http.Request) string) http.Handler { return echo.Handler(via) }

// ViaByProto is the entry path a server without h2cgw's bookkeeping can
// guess: HTTP/2 requests as prior knowledge, the rest as h1. (x/net's h2c
// hands stream 1 of an upgrade over as the HTTP/1.1 request, unchanged, so
// it shows as h1 there.)
func ViaByProto(r *http.Request) string {
	if r.ProtoMajor == 2 {
		return "h2c-prior-knowledge"
	}
	return "h1"
}

// MinimalHandler answers "ok" with no other work: the floor of a server's
// per-request cost. It drains the body, so that upgrades with bodies are
// served completely.
func MinimalHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "3")
		io.WriteString(w, "ok\n")
	})
}

// StaticHandler serves size bytes of 'x' for every request: the fallback
// upstream when h2o is not installed.
func StaticHandler(size int) http.Handler {
	body := []byte(strings.Repeat("x", size))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
}

// Handler returns the handler named by a -handler flag value.
func Handler(name string, via func(*http.Request) string) (http.Handler, error) {
	switch name {
	case "echo":
		return EchoHandler(via), nil
	case "minimal":
		return MinimalHandler(), nil
	}
	return nil, fmt.Errorf("unknown handler %q (echo or minimal)", name)
}

// Main listens on addr, writes the startup line h2cgw writes (README "Logs":
// "message":"listening" with "listen"), runs serve, and on SIGTERM or
// SIGINT stops the CPU profile (if cpuprofile is set) and exits 0. These
// programs have no graceful shutdown: the harness kills them between runs.
func Main(name, addr, cpuprofile string, serve func(net.Listener) error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fatal(name, err)
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			fatal(name, err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(name, err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	line, _ := json.Marshal(map[string]any{
		"level": "info", "program": name, "listen": ln.Addr().String(),
		"time": time.Now().Format(time.RFC3339), "message": "listening",
	})
	fmt.Fprintf(os.Stderr, "%s\n", line)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- serve(ln) }()
	select {
	case <-sig:
	case err := <-served:
		fmt.Fprintf(os.Stderr, "%s: serve: %v\n", name, err)
	}
}

func fatal(name string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	os.Exit(1)
}

// DumpOnSignal writes, at every SIGUSR1, a line of runtime memory figures
// to stderr and, with path set, a heap profile there (after a GC): what an
// idle connection retains, by kind (heap or goroutine stacks) and by
// allocation site. With path set, every allocation is sampled (slow).
func DumpOnSignal(name, path string) {
	if path != "" {
		// Every allocation sampled: the profile is for counting bytes
		// per connection, not for speed.
		runtime.MemProfileRate = 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		for range sig {
			// Stacks shrink only in a GC, and only by half each time:
			// a few GCs show what goroutines keep once settled.
			var ms runtime.MemStats
			var stacks []uint64
			for range 4 {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				stacks = append(stacks, ms.StackInuse)
			}
			line, _ := json.Marshal(map[string]any{
				"program": name, "message": "memory",
				"heap_inuse": ms.HeapInuse, "heap_alloc": ms.HeapAlloc, "stack_inuse": ms.StackInuse,
				"sys": ms.Sys, "goroutines": runtime.NumGoroutine(), "stack_inuse_by_gc": stacks,
			})
			fmt.Fprintf(os.Stderr, "%s\n", line)
			if path == "" {
				continue
			}
			if f, err := os.Create(path); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
	}()
}
