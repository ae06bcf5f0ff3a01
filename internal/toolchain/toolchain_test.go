package toolchain

import (
	"runtime"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"go1.26.8", false},
		{"go1.26.10", false},
		{"go1.26.11", true},
		{"go1.26.12", true},
		{"go1.27.0", false},
		{"go1.27.3", false},
		{"go1.27.4", true},
		{"go1.28.0", true},
		{"go1.25.9", false},
		{"go1.27rc1", false},
		{"devel go1.28-abcdef", true},
	} {
		if err := Check(tc.v); (err == nil) != tc.ok {
			t.Errorf("Check(%q) = %v; want ok %v", tc.v, err, tc.ok)
		}
	}
}

// TestThisToolchain fails when the tests run on a toolchain below its floor.
func TestThisToolchain(t *testing.T) {
	if err := Check(runtime.Version()); err != nil {
		t.Error(err)
	}
}
