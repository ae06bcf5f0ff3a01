package proc

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestStartStopAll(t *testing.T) {
	g := &Group{LogDir: t.TempDir()}
	p, err := g.Start("sh", []string{"sh", "-c", `echo '{"message":"listening","listen":"x"}' >&2; sleep 30 & wait`}, Options{})
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
