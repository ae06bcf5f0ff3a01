package integration

import (
	"testing"

	"golang.org/x/net/http2"
)

// TestAdvertisedSettings: the first SETTINGS frame the binary writes, on
// both HTTP/2 entry paths and with either HTTP/2 implementation, carries the
// binary's documented defaults (README "Running it": MAX_FRAME_SIZE 16384, 250
// concurrent streams, 64 KiB of headers plus 320 octets of field overhead,
// 1 MiB windows) and no ENABLE_CONNECT_PROTOCOL.
func TestAdvertisedSettings(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	want := []http2.Setting{
		{ID: http2.SettingMaxFrameSize, Val: 16384},
		{ID: http2.SettingMaxConcurrentStreams, Val: 250},
		{ID: http2.SettingMaxHeaderListSize, Val: 64<<10 + 320},
		{ID: http2.SettingHeaderTableSize, Val: 4096},
		{ID: http2.SettingInitialWindowSize, Val: 1 << 20},
		{ID: http2.SettingNoRFC7540Priorities, Val: 1},
	}

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
