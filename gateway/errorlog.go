package gateway

import (
	"bytes"
	"log"

	"github.com/rs/zerolog"
)

// newErrorLog bridges net/http's and x/net's error log (http.Server.ErrorLog,
// which x/net falls back from to the global log package) into zerolog, so
// their messages land in the structured log (http.Server.ErrorLog).
func newErrorLog(l zerolog.Logger) *log.Logger {
	return log.New(errorLogWriter{l}, "", 0)
}

type errorLogWriter struct{ l zerolog.Logger }

// Write logs one message. Most of what net/http and x/net log here is caused
// by clients (bad prefaces, resets, TLS handshakes) and goes to debug; a
// handler panic is an error; failing to accept is a warning.
func (w errorLogWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimRight(p, "\n"))
	ev := w.l.Debug()
	switch {
	case bytes.Contains(p, []byte("panic")):
		ev = w.l.Error()
	case bytes.HasPrefix(p, []byte("http: Accept error")):
		ev = w.l.Warn()
	}
	ev.Str("source", "net/http").Msg(msg)
	return len(p), nil
}
