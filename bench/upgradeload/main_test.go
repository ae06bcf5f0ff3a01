//go:build linux

package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// startH2C serves x/net's h2c handler on loopback: the client must complete
// an upgrade against it, and plain HTTP/1.1.
func startH2C(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Body-Bytes", fmt.Sprint(n))
		io.WriteString(w, "ok\n")
	})
	hs := &http.Server{Handler: h2c.NewHandler(h, &http2.Server{})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

func TestOnce(t *testing.T) {
	addr := startH2C(t)
	tests := []struct {
		name         string
		mode         string
		body         int
		wantUpgraded bool
	}{
		{"upgrade", "upgrade", 0, true},
		{"plain h1", "h1", 0, false},
		{"upgrade with body", "body", 100 << 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(addr, "/", tt.mode, tt.body, 5*time.Second)
			conn, err := c.dial()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var body []byte
			if tt.body > 0 {
				body = make([]byte, tt.body)
			}
			status, upgraded, err := c.exchange(conn, body)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if status != 200 || upgraded != tt.wantUpgraded {
				t.Errorf("exchange = status %d, upgraded %v; want 200, %v", status, upgraded, tt.wantUpgraded)
			}
		})
	}
}

func TestLoop(t *testing.T) {
	addr := startH2C(t)
	c := newClient(addr, "/", "upgrade", 0, 5*time.Second)
	r := loop(c, "upgrade", 2, 200*time.Millisecond)
	if r.OK == 0 || r.Errors != 0 || r.Upgraded != r.OK || r.Status["200"] != r.OK {
		t.Errorf("loop = %+v; want some upgrades, all 200, no errors", r)
	}
}

func TestEncodeSettings(t *testing.T) {
	got := encodeSettings([]http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 100}})
	if want := "AAMAAABk"; got != want {
		t.Errorf("encodeSettings = %q; want %q", got, want)
	}
}
