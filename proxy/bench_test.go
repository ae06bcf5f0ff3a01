package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkProxy measures one proxied GET per iteration against each kind of
// upstream, the proxy called directly (no front server). Allocations include
// the upstream server's, which runs in the same process.
func BenchmarkProxy(b *testing.B) {
	for _, h2c := range []bool{false, true} {
		name := "http"
		if h2c {
			name = "h2c"
		}
		b.Run(name, func(b *testing.B) {
			s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "ok")
			}))
			url := "http://" + s.Listener.Addr().String()
			if h2c {
				var p http.Protocols
				p.SetHTTP1(true)
				p.SetUnencryptedHTTP2(true)
				s.Config.Protocols = &p
				url = "h2c://" + s.Listener.Addr().String()
			}
			s.Start()
			defer s.Close()
			p, err := New(Config{Upstreams: []string{url}})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			req := httptest.NewRequest(http.MethodGet, "http://example.test/bench", nil)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w := httptest.NewRecorder()
				p.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
