package main

// The process's own limits, read at startup (README "Security"): the memory
// limit, which the memory budget's default derives from, and the descriptor
// limit, which the connection cap's default derives from.

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupMemoryFraction is the part of a container's memory limit GOMEMLIMIT
// is set to when the environment does not set it: the rest is for what the
// Go runtime does not count (stacks of threads outside Go, the binary's
// text) and for the garbage collector's lag.
const cgroupMemoryFraction = 0.9

// memoryLimit makes sure the Go runtime has a memory limit when one can be
// known, and returns it with where it came from: GOMEMLIMIT when the
// environment sets it, else cgroupMemoryFraction of the container's limit
// (cgroup v2 memory.max, or v1 memory.limit_in_bytes, under cgroupRoot),
// which it then sets; 0 and "none" without either.
func memoryLimit(cgroupRoot string) (int64, string) {
	if os.Getenv("GOMEMLIMIT") != "" {
		if l := debug.SetMemoryLimit(-1); l < math.MaxInt64 {
			return l, "GOMEMLIMIT"
		}
		return 0, "none" // GOMEMLIMIT=off
	}
	c := cgroupMemoryMax(cgroupRoot)
	if c <= 0 {
		return 0, "none"
	}
	l := int64(float64(c) * cgroupMemoryFraction)
	debug.SetMemoryLimit(l)
	return l, "cgroup"
}

// cgroupMemoryMax reads the container's memory limit: the cgroup v2
// memory.max of the process's own cgroup (from /proc/self/cgroup), else of
// the root, else cgroup v1's memory.limit_in_bytes. It returns 0 for none
// ("max", or v1's page-rounded MaxInt64).
func cgroupMemoryMax(root string) int64 {
	var candidates []string
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil && root == "/sys/fs/cgroup" {
		for _, line := range strings.Split(string(b), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok && p != "/" {
				candidates = append(candidates, filepath.Join(root, p, "memory.max"))
			}
		}
	}
	candidates = append(candidates, filepath.Join(root, "memory.max"), filepath.Join(root, "memory", "memory.limit_in_bytes"))
	for _, f := range candidates {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= math.MaxInt64/2 {
			return 0 // cgroup v1 says "none" with a page-rounded MaxInt64
		}
		return n
	}
	return 0
}

// descriptorHeadroom is what the default connection cap leaves of
// RLIMIT_NOFILE besides the upstream connections: the listeners, the admin
// server's connections, log and config files, the runtime's own.
const descriptorHeadroom = 64

// connectionCap returns the default cap on client connections for a
// descriptor limit of nofile: the limit less the headroom and what the
// upstream connections may take (upstreamConns), but never less than half
// the limit. 0 (no cap) when the limit is unknown.
func connectionCap(nofile uint64, upstreamConns int) int {
	if nofile == 0 || nofile > math.MaxInt32 {
		return 0
	}
	n := int(nofile)
	return max(n-descriptorHeadroom-upstreamConns, n/2)
}
