package settings_test

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/h2cgw/h2cgw/settings"
)

// TestDecodeAgreesWithServer checks that Decode accepts exactly the
// upgrade payloads x/net's ServeConn accepts as ServeConnOpts.Settings:
// a payload Decode passes must not make x/net hang up after the 101.
func TestDecodeAgreesWithServer(t *testing.T) {
	tests := []struct {
		name string
		s    []http2.Setting
	}{
		{"empty", nil},
		{"curl", []http2.Setting{st(http2.SettingMaxConcurrentStreams, 100), st(http2.SettingInitialWindowSize, 10<<20), st(http2.SettingEnablePush, 0)}},
		{"unknown id", []http2.Setting{st(0xff, 1<<31)}},
		{"duplicated ids", []http2.Setting{st(http2.SettingEnablePush, 1), st(http2.SettingEnablePush, 0)}},
		{"bounds", []http2.Setting{st(http2.SettingMaxFrameSize, 16384), st(http2.SettingMaxFrameSize, 1<<24-1), st(http2.SettingInitialWindowSize, 1<<31-1)}},
		{"NO_RFC7540_PRIORITIES 1", []http2.Setting{st(http2.SettingNoRFC7540Priorities, 1)}},
		{"ENABLE_CONNECT_PROTOCOL 1", []http2.Setting{st(http2.SettingEnableConnectProtocol, 1)}},
		{"ENABLE_PUSH 2", []http2.Setting{st(http2.SettingEnablePush, 2)}},
		{"INITIAL_WINDOW_SIZE 2^31", []http2.Setting{st(http2.SettingInitialWindowSize, 1<<31)}},
		{"MAX_FRAME_SIZE 16383", []http2.Setting{st(http2.SettingMaxFrameSize, 16383)}},
		{"MAX_FRAME_SIZE 2^24", []http2.Setting{st(http2.SettingMaxFrameSize, 1<<24)}},
		{"ENABLE_CONNECT_PROTOCOL 2", []http2.Setting{st(http2.SettingEnableConnectProtocol, 2)}},
		// Setting.Valid passes this one, x/net's server does not.
		{"NO_RFC7540_PRIORITIES 2", []http2.Setting{st(http2.SettingNoRFC7540Priorities, 2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := rawPayload(tt.s)
			_, err := settings.Decode(settings.Encode(tt.s...))
			f := firstServerFrame(t, nil, nil, raw)
			_, serverOK := f.(*http2.SettingsFrame)
			if ga, ok := f.(*http2.GoAwayFrame); !serverOK && (!ok || ga.ErrCode != http2.ErrCodeProtocol) {
				t.Fatalf("first server frame: got %v; want SETTINGS, or GOAWAY PROTOCOL_ERROR", f)
			}
			if decodeOK := err == nil; decodeOK != serverOK {
				t.Errorf("Decode: got error %v; want accepted = %v, as x/net, whose first frame with this payload is %v", err, serverOK, f)
			}
		})
	}
}

// rawPayload is the SETTINGS frame body for s, built without this
// package's codec.
func rawPayload(s []http2.Setting) []byte {
	b := []byte{}
	for _, x := range s {
		b = append(b, byte(x.ID>>8), byte(x.ID), byte(x.Val>>24), byte(x.Val>>16), byte(x.Val>>8), byte(x.Val))
	}
	return b
}

// firstServerFrame serves one loopback TCP connection with h2.ServeConn
// (BaseConfig h1, and upgradeSettings as ServeConnOpts.Settings when
// non-nil), sends the client preface and an empty SETTINGS frame (only
// without upgradeSettings, see below), and returns the first frame the
// server writes: its SETTINGS, or a GOAWAY if it rejected the connection.
func firstServerFrame(t *testing.T, h1 *http.Server, h2 *http2.Server, upgradeSettings []byte) http2.Frame {
	t.Helper()
	if h2 == nil {
		h2 = new(http2.Server)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		// ServeConn returns when the client side closes the connection.
		h2.ServeConn(c, &http2.ServeConnOpts{
			Context:    t.Context(),
			BaseConfig: h1,
			Handler:    http.NotFoundHandler(),
			Settings:   upgradeSettings,
		})
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		ln.Close()
		<-served
	})
	// A deadline, not a sleep: a server that never writes fails the test.
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	// x/net writes its SETTINGS before it reads the preface, and checks
	// upgrade settings before either; it may hang up at once. Writing to
	// a connection the server has closed could reset it and lose the
	// GOAWAY, so with upgrade settings read first and do not write.
	if upgradeSettings == nil {
		if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
			t.Fatalf("write preface: %v", err)
		}
		if err := fr.WriteSettings(); err != nil {
			t.Fatalf("write SETTINGS: %v", err)
		}
	}
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatalf("read first server frame: %v", err)
	}
	return f
}
