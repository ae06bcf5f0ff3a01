package gateway

import (
	"context"
	"net"
	"sync/atomic"
)

// EntryPath names how a connection reached the gateway. The spellings are part
// of the public surface: they appear in logs, metrics and the built-in
// handler's answer.
type EntryPath string

// The entry paths of a cleartext listener.
const (
	// PathH1 is an HTTP/1.x connection that was not upgraded.
	PathH1 EntryPath = "h1"
	// PathUpgrade is a connection upgraded with "Upgrade: h2c" (RFC 7540 §3.2).
	PathUpgrade EntryPath = "h2c-upgrade"
	// PathPriorKnowledge is a connection that started with the HTTP/2 client
	// preface (RFC 9113 §3.3).
	PathPriorKnowledge EntryPath = "h2c-prior-knowledge"
	// PathH2 is HTTP/2 negotiated with TLS ALPN, seen only when a caller's own
	// TLS server is configured with [Configure].
	PathH2 EntryPath = "h2"
)

// connInfo is what the gateway knows of one connection. It rides in the
// connection's base context, so every request on it — HTTP/1.1 or any HTTP/2
// stream — reaches the same value without a per-request allocation.
type connInfo struct {
	conn net.Conn
	// g is the Gateway serving the connection, for Hijack.
	g *Gateway
	// path is the connection's entry path; empty until its first request.
	path atomic.Pointer[EntryPath]
}

type connInfoKey struct{}

func connInfoFrom(ctx context.Context) *connInfo {
	ci, _ := ctx.Value(connInfoKey{}).(*connInfo)
	return ci
}

var (
	pathH1       = PathH1
	pathUpgrade  = PathUpgrade
	pathPrior    = PathPriorKnowledge
	pathH2       = PathH2
	pathsByValue = map[EntryPath]*EntryPath{PathH1: &pathH1, PathUpgrade: &pathUpgrade, PathPriorKnowledge: &pathPrior, PathH2: &pathH2}
)

// setPath records p as the connection's entry path and reports whether the
// connection had none before (its first request).
func (ci *connInfo) setPath(p EntryPath) bool {
	old := ci.path.Swap(pathsByValue[p])
	return old == nil
}

// pathIfUnset records p only when the connection has no path yet and reports
// whether it did so.
func (ci *connInfo) pathIfUnset(p EntryPath) bool {
	return ci.path.CompareAndSwap(nil, pathsByValue[p])
}

func (ci *connInfo) entryPath() EntryPath {
	if p := ci.path.Load(); p != nil {
		return *p
	}
	return ""
}

// EntryPathFromContext returns the entry path of the connection that carried
// the request whose context is ctx, or "" when ctx did not come from a
// gateway.
func EntryPathFromContext(ctx context.Context) EntryPath {
	if ci := connInfoFrom(ctx); ci != nil {
		return ci.entryPath()
	}
	return ""
}
