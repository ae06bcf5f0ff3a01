package proxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestProxyReadyProbes: readiness reflects whether an upstream accepts
// connections now, before any request has failed against it.
func TestProxyReadyProbes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens there any more

	live := httptest.NewServer(http.NotFoundHandler())
	defer live.Close()

	cases := []struct {
		name      string
		upstreams []string
		want      bool
	}{
		{"only a dead upstream", []string{"http://" + dead}, false},
		{"dead and live", []string{"http://" + dead, live.URL}, true},
		{"live h2c address", []string{"h2c://" + live.Listener.Addr().String()}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(Config{Upstreams: tc.upstreams})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if got := p.Ready(); got != tc.want {
				t.Errorf("Ready() = %v before any request; want %v", got, tc.want)
			}
		})
	}
}
