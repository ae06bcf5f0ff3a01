package gateway

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// defaultSettings is the first SETTINGS frame of a gateway built with a zero
// Config, the same on every supported toolchain: MAX_FRAME_SIZE at the RFC
// 9113 §6.5.2 initial value, 250 streams, 64 KiB of header list plus the 320
// octets both HTTP/2 implementations add for field overhead, 1 MiB stream
// windows, and no ENABLE_CONNECT_PROTOCOL (extended CONNECT stays off).
var defaultSettings = []http2.Setting{
	{ID: http2.SettingMaxFrameSize, Val: 16384},
	{ID: http2.SettingMaxConcurrentStreams, Val: 250},
	{ID: http2.SettingMaxHeaderListSize, Val: 64<<10 + 320},
	{ID: http2.SettingHeaderTableSize, Val: 4096},
	{ID: http2.SettingInitialWindowSize, Val: 1 << 20},
	{ID: http2.SettingNoRFC7540Priorities, Val: 1},
}

// firstSettings opens an HTTP/2 connection by path and returns the
// parameters of the server's first frame, which must be SETTINGS.
func firstSettings(t *testing.T, addr string, path EntryPath) []http2.Setting {
	t.Helper()
	c := dial(t, addr)
	br := bufio.NewReader(c)
	if path == PathUpgrade {
		io.WriteString(c, upgradeHead("GET", "/"))
		expect101(t, br)
	} else {
		io.WriteString(c, http2.ClientPreface)
	}
	f, err := http2.NewFramer(c, br).ReadFrame()
	if err != nil {
		t.Fatalf("%s: reading the first frame: %v", path, err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		t.Fatalf("%s: first frame %v; want SETTINGS", path, f.Header())
	}
	var s []http2.Setting
	sf.ForeachSetting(func(st http2.Setting) error { s = append(s, st); return nil })
	return s
}

// TestAdvertisedSettings: AdvertisedSettings is what both HTTP/2 entry paths
// really send first, and it follows the configuration.
func TestAdvertisedSettings(t *testing.T) {
	custom := []http2.Setting{
		{ID: http2.SettingMaxFrameSize, Val: 1 << 20},
		{ID: http2.SettingMaxConcurrentStreams, Val: 10},
		{ID: http2.SettingMaxHeaderListSize, Val: 8<<10 + 320},
		{ID: http2.SettingHeaderTableSize, Val: 4096},
		{ID: http2.SettingInitialWindowSize, Val: 65535},
		{ID: http2.SettingNoRFC7540Priorities, Val: 1},
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want []http2.Setting
	}{
		{"defaults", Config{}, defaultSettings},
		{"configured", Config{MaxHeaderBytes: 8 << 10, MaxConcurrentStreams: 10, MaxReadFrameSize: 1 << 20, StreamWindow: 65535}, custom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, tc.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			adv, err := tg.g.AdvertisedSettings(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(adv, tc.want) {
				t.Errorf("AdvertisedSettings:\n got  %v\n want %v", adv, tc.want)
			}
			for _, path := range []EntryPath{PathUpgrade, PathPriorKnowledge} {
				if got := firstSettings(t, tg.addr, path); !reflect.DeepEqual(got, adv) {
					t.Errorf("%s sends %v; AdvertisedSettings says %v", path, got, adv)
				}
			}
		})
	}
}

// TestAdvertisedSettingsConfigure: on a caller's server, the caller's own
// HTTP2Config wins over Config, and Config fills what it leaves zero.
func TestAdvertisedSettingsConfigure(t *testing.T) {
	hs := &http.Server{Handler: newRecorder(), HTTP2: &http.HTTP2Config{MaxConcurrentStreams: 7}}
	g, err := Configure(hs, Config{MaxConcurrentStreams: 99, StreamWindow: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	adv, err := g.AdvertisedSettings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[http2.SettingID]uint32{
		http2.SettingMaxConcurrentStreams: 7,
		http2.SettingInitialWindowSize:    1 << 16,
		http2.SettingMaxFrameSize:         16384,
		http2.SettingMaxHeaderListSize:    http.DefaultMaxHeaderBytes + 320,
	}
	for _, s := range adv {
		if v, ok := want[s.ID]; ok && s.Val != v {
			t.Errorf("%v = %d; want %d", s.ID, s.Val, v)
		}
	}
	if hs.HTTP2.MaxConcurrentStreams != 7 {
		t.Errorf("caller's HTTP2Config changed: MaxConcurrentStreams %d", hs.HTTP2.MaxConcurrentStreams)
	}
}
