// Package testwait bounds the waits of the gateway's and the proxy's tests,
// so that a hang fails the test with what it was waiting for instead of
// running into go test's own timeout.
package testwait

import (
	"testing"
	"time"
)

// Timeout bounds each wait of a test.
const Timeout = 5 * time.Second

// Recv receives from ch, failing the test after Timeout.
func Recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Timeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
