//go:build linux

package proc

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStartStopAll(t *testing.T) {
	g := &Group{LogDir: t.TempDir()}
	p, err := g.Start("sh", []string{"sh", "-c", `sleep 30 & echo '{"message":"listening","listen":"x"}' >&2; wait`}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.WaitJSONLine(context.Background(), 5*time.Second, func(m map[string]any) bool { return m["message"] == "listening" })
	if err != nil {
		t.Fatal(err)
	}
	if m["listen"] != "x" {
		t.Errorf("listen = %v; want x", m["listen"])
	}
	mem, err := TreeMem(p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if mem.Procs < 2 || mem.RSS <= 0 || mem.HWM < mem.RSS {
		t.Errorf("TreeMem = %+v; want the shell and its sleep, RSS > 0, HWM ≥ RSS", mem)
	}
	g.StopAll()
	if !p.Exited() {
		t.Error("process still running after StopAll")
	}
	if n := g.Running(); n != 0 {
		t.Errorf("Running = %d after StopAll; want 0", n)
	}
}

func TestWaitJSONLineExited(t *testing.T) {
	g := &Group{LogDir: t.TempDir()}
	p, err := g.Start("false", []string{"sh", "-c", "echo boom >&2; exit 3"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.StopAll)
	if _, err := p.WaitJSONLine(context.Background(), 5*time.Second, func(map[string]any) bool { return true }); err == nil {
		t.Fatal("WaitJSONLine on an exiting process: no error; want one")
	}
	if _, err := os.Stat(p.LogPath); err != nil {
		t.Errorf("log file: %v", err)
	}
}

func TestWait(t *testing.T) {
	g := &Group{LogDir: t.TempDir()}
	t.Cleanup(g.StopAll)
	ok, err := g.Start("true", []string{"true"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ok.Wait(context.Background(), 5*time.Second); err != nil {
		t.Errorf("Wait(true) = %v; want nil", err)
	}
	bad, err := g.Start("fails", []string{"sh", "-c", "echo boom >&2; exit 3"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Wait(context.Background(), 5*time.Second); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Wait(exit 3) = %v; want the exit error with the log tail", err)
	}
	slow, err := g.Start("sleep", []string{"sleep", "30"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := slow.Wait(context.Background(), 50*time.Millisecond); err == nil {
		t.Error("Wait past the limit: no error; want one")
	}
	if !slow.Exited() {
		t.Error("Wait past the limit left the process running")
	}
}
