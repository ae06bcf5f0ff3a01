// Package leaktest checks that a test leaves no goroutine behind: none of
// the goroutines it names by their stack frames, and no more than a small
// slack of any other. The gateway's and the proxy's tests share it.
package leaktest

import (
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// Slack is how many goroutines above the baseline still count as "back to
// baseline": runtime timers and the testing package may start and end a
// goroutine at any moment, independently of the test. The goroutines a
// check names by frame get no slack at all.
const Slack = 3

// Goroutines returns the goroutines whose stack, "created by" line
// included, names one of frames, by id, each with its stack.
func Goroutines(frames []string) map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		id, _, _ := strings.Cut(strings.TrimPrefix(g, "goroutine "), " ")
		for _, f := range frames {
			if strings.Contains(g, f) {
				out[id] = g
				break
			}
		}
	}
	return out
}

// Check records the goroutines at its start; Done waits for the test's to
// end.
type Check struct {
	t      testing.TB
	frames []string
	base   int
	named  map[string]string
}

// Start records the goroutine count and the goroutines that name one of
// frames. Call it once the test's servers are up and before any client
// connection is open.
func Start(t testing.TB, frames ...string) *Check {
	t.Helper()
	return &Check{t: t, frames: frames, base: runtime.NumGoroutine(), named: Goroutines(frames)}
}

// Done polls until no goroutine that names one of the frames is left that
// was not there at Start, and the goroutine count is back within Slack of
// the baseline. It fails with the goroutines left if that takes longer
// than a generous bound: the server side of a closed connection takes a
// moment to notice the close, more so under the race detector on a busy
// machine. It also means no server goroutine of the test outlives it (and
// logs to its finished t).
func (c *Check) Done() {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []string
		for id, g := range Goroutines(c.frames) {
			if _, ok := c.named[id]; !ok {
				left = append(left, g)
			}
		}
		n := runtime.NumGoroutine()
		if len(left) == 0 && n <= c.base+Slack {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			c.t.Fatalf("10s after the connections closed: %d goroutines (want at most %d, baseline %d + %d), "+
				"%d of the test's left:\n%s\n\nall goroutines:\n%s",
				n, c.base+Slack, c.base, Slack, len(left), strings.Join(left, "\n\n"), b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Baseline returns the goroutines that named one of the frames at Start.
func (c *Check) Baseline() map[string]string { return c.named }
