package main

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// TestCgroupMemoryMax: the container's limit is read from cgroup v2's
// memory.max or v1's memory.limit_in_bytes; "max" and v1's page-rounded
// MaxInt64 mean none.
func TestCgroupMemoryMax(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		want                int64
	}{
		{"v2", "memory.max", "268435456\n", 256 << 20},
		{"v2 none", "memory.max", "max\n", 0},
		{"v1", "memory/memory.limit_in_bytes", "536870912\n", 512 << 20},
		{"v1 none", "memory/memory.limit_in_bytes", "9223372036854771712\n", 0},
		{"absent", "", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.file != "" {
				p := filepath.Join(root, tc.file)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := cgroupMemoryMax(root); got != tc.want {
				t.Errorf("got %d; want %d", got, tc.want)
			}
		})
	}
}

// TestMemoryLimit: without GOMEMLIMIT the runtime's limit is set to 90% of
// the container's; GOMEMLIMIT, when set, is left as it is and reported.
func TestMemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })

	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "memory.max"), []byte("1000000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOMEMLIMIT", "")
	os.Unsetenv("GOMEMLIMIT")
	debug.SetMemoryLimit(math.MaxInt64)
	if l, from := memoryLimit(root); l != 900000000 || from != "cgroup" || debug.SetMemoryLimit(-1) != 900000000 {
		t.Errorf("cgroup 1e9: %d from %s (runtime %d); want 9e8 from cgroup, set", l, from, debug.SetMemoryLimit(-1))
	}
	t.Setenv("GOMEMLIMIT", "200MiB")
	debug.SetMemoryLimit(200 << 20) // as the runtime read it at start
	if l, from := memoryLimit(root); l != 200<<20 || from != "GOMEMLIMIT" {
		t.Errorf("GOMEMLIMIT 200MiB: %d from %s; want 200 MiB from GOMEMLIMIT", l, from)
	}
	os.Unsetenv("GOMEMLIMIT")
	debug.SetMemoryLimit(math.MaxInt64)
	if l, from := memoryLimit(t.TempDir()); l != 0 || from != "none" {
		t.Errorf("no limit: %d from %s; want 0 from none", l, from)
	}
}

// TestConnectionCap: the default cap leaves the headroom and the upstream
// connections of RLIMIT_NOFILE, and never less than half of it.
func TestConnectionCap(t *testing.T) {
	for _, tc := range []struct {
		nofile   uint64
		upstream int
		want     int
	}{
		{1 << 20, 0, 1<<20 - descriptorHeadroom},
		{1 << 20, 512, 1<<20 - descriptorHeadroom - 512},
		{1024, 512, 512},
		{256, 0, 256 - descriptorHeadroom},
		{0, 0, 0},
	} {
		if got := connectionCap(tc.nofile, tc.upstream); got != tc.want {
			t.Errorf("connectionCap(%d, %d) = %d; want %d", tc.nofile, tc.upstream, got, tc.want)
		}
	}
}
