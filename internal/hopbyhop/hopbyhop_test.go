package hopbyhop

import (
	"net/http"
	"reflect"
	"testing"
)

func TestStrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in, out http.Header
	}{
		{"every listed field",
			http.Header{"Connection": {"Upgrade, HTTP2-Settings"}, "Upgrade": {"h2c"}, "Http2-Settings": {"AAMAAABk"},
				"Keep-Alive": {"timeout=5"}, "Proxy-Connection": {"keep-alive"}, "Transfer-Encoding": {"chunked"}, "Accept": {"*/*"}},
			http.Header{"Accept": {"*/*"}}},
		{"fields named in Connection, any case, split lines",
			http.Header{"Connection": {"x-hop , ,X-Other", "close"}, "X-Hop": {"1"}, "X-Other": {"2"}, "X-Kept": {"3"}},
			http.Header{"X-Kept": {"3"}}},
		{"TE trailers kept", http.Header{"Te": {"trailers"}}, http.Header{"Te": {"trailers"}}},
		{"TE trailers among others", http.Header{"Te": {"gzip, Trailers"}}, http.Header{"Te": {"trailers"}}},
		{"TE without trailers", http.Header{"Te": {"gzip"}}, http.Header{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			Strip(tc.in)
			if !reflect.DeepEqual(tc.in, tc.out) {
				t.Errorf("got %v; want %v", tc.in, tc.out)
			}
		})
	}
}

// BenchmarkStrip is the header rewrite stream 1 gets.
func BenchmarkStrip(b *testing.B) {
	h := http.Header{"Connection": {"Upgrade, HTTP2-Settings"}, "Upgrade": {"h2c"}, "Http2-Settings": {"AAMAAABk"},
		"Accept": {"*/*"}, "User-Agent": {"curl/8"}, "Te": {"trailers"}}
	b.ReportAllocs()
	for b.Loop() {
		Strip(h.Clone())
	}
}
