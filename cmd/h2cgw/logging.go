package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// timeFormat stamps every log line, access lines included, to the
// millisecond: zerolog's default, whole seconds, cannot order the lines of
// one busy second.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// timestamp is a zerolog hook adding "time" in timeFormat. It stands in for
// Context.Timestamp, whose format is zerolog's process-wide
// TimeFieldFormat.
type timestamp struct{}

func (timestamp) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().Format(timeFormat))
}

// newLogger builds the root logger: JSON lines on w, or zerolog's console
// format for people. Everything else logs through loggers derived from it.
// Its level is the returned levelFilter's, which a reload may change; the
// access log has a logger of its own (newAccessLogger), which the level
// does not govern.
func newLogger(c config, w io.Writer) (zerolog.Logger, *levelFilter) {
	if c.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !isTerminal(w)}
	}
	f := &levelFilter{w: w}
	f.set(c.LogLevel)
	// The logger itself lets every level the flag can name through; the
	// filter drops what is below the current level. A debug line below it
	// is built and dropped: none is logged per request.
	return zerolog.New(f).Level(zerolog.DebugLevel).Hook(timestamp{}), f
}

// levelFilter passes on the lines at or above its level, which can change
// while loggers derived from the root one are in use (zerolog fixes a
// Logger's own level when it is built).
type levelFilter struct {
	w     io.Writer
	level atomic.Int32 // a zerolog.Level
}

func (f *levelFilter) set(l zerolog.Level) { f.level.Store(int32(l)) }
func (f *levelFilter) get() zerolog.Level  { return zerolog.Level(f.level.Load()) }

// Write passes on a line without a level.
func (f *levelFilter) Write(p []byte) (int, error) { return f.w.Write(p) }

// WriteLevel passes on a line at or above the current level and drops the
// rest, reporting them written.
func (f *levelFilter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l < f.get() {
		return len(p), nil
	}
	return f.w.Write(p)
}

// isTerminal reports whether w is a character device, where colours help.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// newStdLogger bridges a *log.Logger (http.Server.ErrorLog of the admin
// server) to zerolog at debug level: what net/http logs there is caused by
// clients.
func newStdLogger(l zerolog.Logger) *log.Logger {
	return log.New(stdLogWriter{l}, "", 0)
}

type stdLogWriter struct{ l zerolog.Logger }

func (w stdLogWriter) Write(p []byte) (int, error) {
	w.l.Debug().Str("source", "net/http").Msg(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func sprintln(v ...any) string {
	return strings.TrimSuffix(fmt.Sprintln(v...), "\n")
}
