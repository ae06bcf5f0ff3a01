package main

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

// echoResponse is the built-in handler's answer (README "Running it"): what reached the
// handler, field for field.
type echoResponse struct {
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

// echoHandler answers every request with 200 and a JSON description of it
// (README "Running it"): the entry path, the request line as the handler saw it, the
// header with lower-case names, and the body's length and SHA-256. The body
// is streamed through the hash, so any size is fine.
func echoHandler() http.Handler {
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
		resp := echoResponse{
			Via:        string(gateway.EntryPathFromContext(r.Context())),
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
