package settings_test

import (
	"context"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/h2cgw/h2cgw/settings"
)

// advertisedCases are the configurations pinned against the real server.
var advertisedCases = []struct {
	name string
	h1   *http.Server
	h2   *http2.Server
}{
	{"defaults", nil, nil},
	{"zero servers", &http.Server{}, &http2.Server{}},
	{"gateway limits", &http.Server{MaxHeaderBytes: 8192}, &http2.Server{MaxReadFrameSize: 16384, MaxConcurrentStreams: 100}},
	{"http2.Server fields", nil, &http2.Server{
		MaxReadFrameSize:          1<<24 - 1,
		MaxConcurrentStreams:      1,
		MaxDecoderHeaderTableSize: 65536,
		MaxUploadBufferPerStream:  65535,
	}},
	{"h1.HTTP2 overrides", &http.Server{HTTP2: &http.HTTP2Config{
		MaxConcurrentStreams:      100,
		MaxReadFrameSize:          32768,
		MaxDecoderHeaderTableSize: 8192,
		MaxReceiveBufferPerStream: 1 << 16,
	}}, &http2.Server{MaxConcurrentStreams: 50, MaxReadFrameSize: 65536, MaxDecoderHeaderTableSize: 1, MaxUploadBufferPerStream: 1}},
	{"h1.HTTP2 zero keeps h2", &http.Server{HTTP2: &http.HTTP2Config{}}, &http2.Server{MaxConcurrentStreams: 50}},
	{"out of range falls back", nil, &http2.Server{MaxReadFrameSize: 16383, MaxUploadBufferPerStream: -1}},
	{"frame size above 2^24 falls back", &http.Server{HTTP2: &http.HTTP2Config{MaxReadFrameSize: 1 << 24}}, nil},
	{"negative int wraps", &http.Server{HTTP2: &http.HTTP2Config{MaxConcurrentStreams: -1}}, nil},
	{"header bytes wrap at 2^32", &http.Server{MaxHeaderBytes: 1 << 32}, nil},
	{"negative header bytes", &http.Server{MaxHeaderBytes: -1}, nil},
	{"RFC 7540 scheduler", nil, &http2.Server{NewWriteScheduler: func() http2.WriteScheduler { return http2.NewPriorityWriteScheduler(nil) }}},
	{"random scheduler", nil, &http2.Server{NewWriteScheduler: http2.NewRandomWriteScheduler}},
}

// TestAdvertisedMatchesServer pins Advertised against the first SETTINGS
// frame of a real x/net server on a loopback connection.
func TestAdvertisedMatchesServer(t *testing.T) {
	for _, tt := range advertisedCases {
		t.Run(tt.name, func(t *testing.T) {
			got := settings.Advertised(tt.h1, tt.h2)
			want := firstServerSettings(t, tt.h1, tt.h2)
			if !slices.Equal(got, want) {
				t.Errorf("Advertised:\ngot  %v\nwant %v (the server's first SETTINGS frame)", got, want)
			}
			has := slices.Contains(got, http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1})
			// x/net reads GODEBUG once, at init; so must the test.
			if wantX := strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1"); has != wantX {
				t.Errorf("ENABLE_CONNECT_PROTOCOL advertised: got %v; want %v (GODEBUG=%q)", has, wantX, os.Getenv("GODEBUG"))
			}
		})
	}
}

// TestAdvertisedValues pins the numbers themselves, so that the mirror is
// checked against what this project documents, not only against x/net.
func TestAdvertisedValues(t *testing.T) {
	s := func(id http2.SettingID, v uint32) http2.Setting { return http2.Setting{ID: id, Val: v} }
	noPrio := s(http2.SettingNoRFC7540Priorities, 1)
	tests := []struct {
		name string
		h1   *http.Server
		h2   *http2.Server
		want []http2.Setting
	}{
		{"defaults", nil, nil, []http2.Setting{
			s(http2.SettingMaxFrameSize, 1<<20),
			s(http2.SettingMaxConcurrentStreams, 250),
			s(http2.SettingMaxHeaderListSize, 1<<20+320),
			s(http2.SettingHeaderTableSize, 4096),
			s(http2.SettingInitialWindowSize, 1<<20),
			noPrio,
		}},
		{"gateway limits", &http.Server{MaxHeaderBytes: 8192}, &http2.Server{MaxReadFrameSize: 16384, MaxConcurrentStreams: 100}, []http2.Setting{
			s(http2.SettingMaxFrameSize, 16384),
			s(http2.SettingMaxConcurrentStreams, 100),
			s(http2.SettingMaxHeaderListSize, 8192+320),
			s(http2.SettingHeaderTableSize, 4096),
			s(http2.SettingInitialWindowSize, 1<<20),
			noPrio,
		}},
		{"h1.HTTP2 overrides", &http.Server{HTTP2: &http.HTTP2Config{MaxConcurrentStreams: 100, MaxReceiveBufferPerStream: 1 << 16}},
			&http2.Server{MaxConcurrentStreams: 50}, []http2.Setting{
				s(http2.SettingMaxFrameSize, 1<<20),
				s(http2.SettingMaxConcurrentStreams, 100),
				s(http2.SettingMaxHeaderListSize, 1<<20+320),
				s(http2.SettingHeaderTableSize, 4096),
				s(http2.SettingInitialWindowSize, 1<<16),
				noPrio,
			}},
		{"negative int wraps", &http.Server{HTTP2: &http.HTTP2Config{MaxConcurrentStreams: -1}}, nil, []http2.Setting{
			s(http2.SettingMaxFrameSize, 1<<20),
			s(http2.SettingMaxConcurrentStreams, math.MaxUint32),
			s(http2.SettingMaxHeaderListSize, 1<<20+320),
			s(http2.SettingHeaderTableSize, 4096),
			s(http2.SettingInitialWindowSize, 1<<20),
			noPrio,
		}},
		{"header bytes wrap at 2^32", &http.Server{MaxHeaderBytes: 1 << 32}, nil, []http2.Setting{
			s(http2.SettingMaxFrameSize, 1<<20),
			s(http2.SettingMaxConcurrentStreams, 250),
			s(http2.SettingMaxHeaderListSize, 320),
			s(http2.SettingHeaderTableSize, 4096),
			s(http2.SettingInitialWindowSize, 1<<20),
			noPrio,
		}},
		{"RFC 7540 scheduler", nil, &http2.Server{NewWriteScheduler: func() http2.WriteScheduler { return http2.NewPriorityWriteScheduler(nil) }}, []http2.Setting{
			s(http2.SettingMaxFrameSize, 1<<20),
			s(http2.SettingMaxConcurrentStreams, 250),
			s(http2.SettingMaxHeaderListSize, 1<<20+320),
			s(http2.SettingHeaderTableSize, 4096),
			s(http2.SettingInitialWindowSize, 1<<20),
		}},
	}
	// The wants assume extended CONNECT is off; with GODEBUG
	// http2xconnect=1 it comes after INITIAL_WINDOW_SIZE.
	xconnect := strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if xconnect {
				want = slices.Insert(slices.Clone(want), 5, s(http2.SettingEnableConnectProtocol, 1))
			}
			if got := settings.Advertised(tt.h1, tt.h2); !slices.Equal(got, want) {
				t.Errorf("Advertised:\ngot  %v\nwant %v", got, want)
			}
		})
	}
}

// TestAdvertisedExtendedConnect re-runs TestAdvertisedMatchesServer in a
// child process with GODEBUG=http2xconnect=1, because x/net (and this
// package) read GODEBUG once at start-up.
func TestAdvertisedExtendedConnect(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestAdvertisedMatchesServer$", "-test.v", "-test.count=1")
	godebug := "http2xconnect=1"
	if g := os.Getenv("GODEBUG"); g != "" {
		godebug = g + "," + godebug
	}
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child test run: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestAdvertisedMatchesServer") {
		t.Fatalf("child test run: got no PASS for TestAdvertisedMatchesServer; output:\n%s", out)
	}
}

// firstServerSettings returns the settings of the first frame the server
// writes, which must be a non-ACK SETTINGS frame (RFC 9113 §3.4).
func firstServerSettings(t *testing.T, h1 *http.Server, h2 *http2.Server) []http2.Setting {
	t.Helper()
	f := firstServerFrame(t, h1, h2, nil)
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		t.Fatalf("first server frame: got %v; want SETTINGS without ACK", f)
	}
	var got []http2.Setting
	if err := sf.ForeachSetting(func(s http2.Setting) error {
		got = append(got, s)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}
