package integration

import (
	"net/http"
	"testing"

	"github.com/h2cgw/h2cgw/settings"
	"golang.org/x/net/http2"
)

// TestAdvertisedSettings: the first SETTINGS frame the binary writes, on
// both HTTP/2 entry paths, is what settings.Advertised says x/net writes
// for the binary's documented defaults (SPEC §7: MAX_FRAME_SIZE 16384, 250
// concurrent streams, 64 KiB of headers, 1 MiB windows).
func TestAdvertisedSettings(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	want := settings.Advertised(
		&http.Server{MaxHeaderBytes: 64 << 10},
		&http2.Server{MaxReadFrameSize: 16384, MaxConcurrentStreams: 250, MaxUploadBufferPerStream: 1 << 20},
	)

	for _, tt := range []struct {
		name    string
		upgrade bool
	}{
		{"prior knowledge", false},
		{"upgrade", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := dialRaw(t, g.Addr)
			if tt.upgrade {
				r.upgrade("GET", "/")
			}
			r.preface()
			f, err := r.readFrame()
			if err != nil {
				t.Fatalf("read the server's first frame: %v", err)
			}
			sf, ok := f.(*http2.SettingsFrame)
			if !ok || sf.IsAck() {
				t.Fatalf("the server's first frame is %v; want SETTINGS", f.Header())
			}
			var got []http2.Setting
			sf.ForeachSetting(func(s http2.Setting) error {
				got = append(got, s)
				return nil
			})
			if !equalSettings(got, want) {
				t.Errorf("advertised SETTINGS:\n got  %v\n want %v", got, want)
			}
		})
	}
}

func equalSettings(a, b []http2.Setting) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
