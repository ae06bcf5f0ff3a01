package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// newLogger builds the root logger: JSON lines on w, or zerolog's console
// format for people, at the configured level. Everything else logs through
// loggers derived from it.
func newLogger(c config, w io.Writer) zerolog.Logger {
	if c.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !isTerminal(w)}
	}
	return zerolog.New(w).Level(c.LogLevel).With().Timestamp().Logger()
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
