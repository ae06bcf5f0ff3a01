// Package echo is h2cgw's built-in handler (README "Running it"): every
// request gets 200 and a JSON description of what reached the handler. The
// binary serves it without upstreams, the bench's baselines serve it so
// that they do the same work per request, and the tests decode it.
package echo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/h2cgw/h2cgw/gateway"
)

// Response is the handler's answer: what reached the handler, field for
// field.
type Response struct {
	Via        string              `json:"via"`
	Proto      string              `json:"proto"`
	Method     string              `json:"method"`
	Host       string              `json:"host"`
	Path       string              `json:"path"`
	Query      string              `json:"query"`
	Headers    map[string][]string `json:"headers"`
	BodyBytes  int64               `json:"body_bytes"`
	BodySHA256 string              `json:"body_sha256"`
}

// Handler answers every request with 200 and a JSON description of it: the
// entry path via names, the request line as the handler saw it, the header
// with lower-case names, and the body's length and SHA-256. The body is
// streamed through the hash, so any size is fine. A nil via reports the
// gateway's entry path (gateway.EntryPathFromContext).
func Handler(via func(*http.Request) string) http.Handler {
	if via == nil {
		via = func(r *http.Request) string { return string(gateway.EntryPathFromContext(r.Context())) }
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			// The client reset the stream or sent a malformed body:
			// there is nothing true to describe.
			http.Error(w, "request body could not be read", http.StatusBadRequest)
			return
		}
		headers := make(map[string][]string, len(r.Header))
		for k, v := range r.Header {
			headers[strings.ToLower(k)] = v
		}
		resp := Response{
			Via:        via(r),
			Proto:      r.Proto,
			Method:     r.Method,
			Host:       r.Host,
			Path:       r.URL.EscapedPath(),
			Query:      r.URL.RawQuery,
			Headers:    headers,
			BodyBytes:  n,
			BodySHA256: hex.EncodeToString(h.Sum(nil)),
		}
		// One line: what tools that print bodies (nghttp, curl) and
		// log scrapers handle best; pipe it to jq for people.
		b, err := json.Marshal(resp)
		if err != nil {
			// Only strings, slices and numbers: cannot fail.
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		b = append(b, '\n')
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
	})
}
