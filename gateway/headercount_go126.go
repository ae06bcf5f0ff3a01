//go:build !go1.27

package gateway

import "net/http"

// leaveHeaderCountToGateway does nothing before Go 1.27, whose http.Server
// has no header count of its own (headercount_go127.go).
func leaveHeaderCountToGateway(*http.Server) {}
