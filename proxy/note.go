package proxy

import "context"

// Note carries facts a handler learns while serving a request back to
// whatever wrapped it, such as an access log. Handlers fill it in place.
type Note struct {
	// Upstream is the upstream that served the request, empty for a local
	// handler.
	Upstream string
}

type noteKey struct{}

// WithNote returns a context carrying a fresh Note, and the Note.
func WithNote(ctx context.Context) (context.Context, *Note) {
	n := new(Note)
	return context.WithValue(ctx, noteKey{}, n), n
}

// NoteFromContext returns the Note carried by ctx, or nil if it has none.
func NoteFromContext(ctx context.Context) *Note {
	n, _ := ctx.Value(noteKey{}).(*Note)
	return n
}
