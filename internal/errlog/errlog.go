// Package errlog bridges the *log.Logger that net/http and x/net write to
// (http.Server.ErrorLog, http.Transport's and ReverseProxy's ErrorLog) into
// zerolog, so that their lines land in the structured log with a level.
package errlog

import (
	"bytes"
	"log"

	"github.com/rs/zerolog"
)

// New returns a *log.Logger whose lines go to l. Most of what net/http and
// x/net log there is caused by peers (bad prefaces, resets, TLS handshakes)
// and goes to debug; a handler panic is an error; failing to accept is a
// warning.
func New(l zerolog.Logger) *log.Logger {
	return log.New(writer{l}, "", 0)
}

type writer struct{ l zerolog.Logger }

// Write logs one line, at the level its text calls for.
func (w writer) Write(p []byte) (int, error) {
	ev := w.l.Debug()
	switch {
	case bytes.Contains(p, []byte("panic")):
		ev = w.l.Error()
	case bytes.HasPrefix(p, []byte("http: Accept error")):
		ev = w.l.Warn()
	}
	ev.Str("source", "net/http").Msg(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
