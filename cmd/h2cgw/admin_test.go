package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestReadyz(t *testing.T) {
	up := true
	tests := []struct {
		name     string
		draining bool
		up       func() bool
		want     int
		body     string
	}{
		{"builtin", false, nil, http.StatusOK, "ok\n"},
		{"gateway, upstream up", false, func() bool { return up }, http.StatusOK, "ok\n"},
		{"gateway, no upstream", false, func() bool { return !up }, http.StatusServiceUnavailable, "no upstream available\n"},
		{"draining", true, nil, http.StatusServiceUnavailable, "shutting down\n"},
		{"draining, upstream up", true, func() bool { return up }, http.StatusServiceUnavailable, "shutting down\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := &readiness{upstreamsUp: tt.up}
			rd.draining.Store(tt.draining)
			h := adminHandler(newMetrics("test").reg, rd, zerolog.New(zerolog.NewTestWriter(t)), adminOptions{})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != tt.want || rec.Body.String() != tt.body {
				t.Errorf("/readyz = %d %q; want %d %q", rec.Code, rec.Body, tt.want, tt.body)
			}
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("/healthz = %d; want 200 whatever readiness says", rec.Code)
			}
		})
	}
}

func TestAdminMetricsFormat(t *testing.T) {
	h := adminHandler(newMetrics("test").reg, &readiness{}, zerolog.New(zerolog.NewTestWriter(t)), adminOptions{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("/metrics = %d %q; want 200 text/plain", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !strings.Contains(rec.Body.String(), "# HELP h2cgw_upgrades_total ") {
		t.Errorf("/metrics has no h2cgw_upgrades_total help")
	}
}

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "http://" + refused.Addr().String() + "/healthz"
	refused.Close()

	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"2xx", []string{"healthcheck", srv.URL + "/healthz"}, 0, ""},
		{"503", []string{"healthcheck", srv.URL + "/readyz"}, 1, "503"},
		{"refused", []string{"healthcheck", refusedURL}, 1, "refused"},
		{"no URL", []string{"healthcheck"}, 2, "usage: h2cgw healthcheck URL"},
		{"bad URL", []string{"healthcheck", "localhost:9901"}, 2, "invalid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr)
			if got := exitCode(err); got != tt.code {
				t.Errorf("exit code %d (%v); want %d", got, err, tt.code)
			}
			if !strings.Contains(stderr.String(), tt.stderr) || (tt.stderr == "") != (stderr.Len() == 0) {
				t.Errorf("stderr %q; want it to contain %q", stderr.String(), tt.stderr)
			}
		})
	}
}
