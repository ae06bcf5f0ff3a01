package settings_test

import (
	"bufio"
	"errors"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/h2cgw/h2cgw/settings"
)

// enc builds a field value from settings, for readable test tables.
func enc(s ...http2.Setting) string { return settings.Encode(s...) }

// st is a short http2.Setting constructor.
func st(id http2.SettingID, v uint32) http2.Setting { return http2.Setting{ID: id, Val: v} }

func TestDecode(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []http2.Setting
	}{
		{"empty", "", []http2.Setting{}},
		{"only whitespace", " \t ", []http2.Setting{}},
		{"curl", "AAMAAABkAAQAoAAAAAIAAAAA", []http2.Setting{
			st(http2.SettingMaxConcurrentStreams, 100),
			st(http2.SettingInitialWindowSize, 10<<20),
			st(http2.SettingEnablePush, 0),
		}},
		{"unpadded", "AAMAAABk", []http2.Setting{st(http2.SettingMaxConcurrentStreams, 100)}},
		{"padded one", "AAMAAABk=", []http2.Setting{st(http2.SettingMaxConcurrentStreams, 100)}},
		{"padded two", "AAMAAABk==", []http2.Setting{st(http2.SettingMaxConcurrentStreams, 100)}},
		{"whitespace around", " \tAAMAAABk\t ", []http2.Setting{st(http2.SettingMaxConcurrentStreams, 100)}},
		{"whitespace around padding", " AAMAAABk== ", []http2.Setting{st(http2.SettingMaxConcurrentStreams, 100)}},
		{"url alphabet", "AAQAAP__", []http2.Setting{st(http2.SettingInitialWindowSize, 65535)}},
		{"unknown id kept", enc(st(0xff, 7), st(http2.SettingEnablePush, 1)), []http2.Setting{
			st(0xff, 7), st(http2.SettingEnablePush, 1),
		}},
		{"unknown id with any value", enc(st(0x7, math.MaxUint32)), []http2.Setting{st(0x7, math.MaxUint32)}},
		{"duplicated ids in order", enc(st(http2.SettingInitialWindowSize, 1), st(http2.SettingInitialWindowSize, 2)), []http2.Setting{
			st(http2.SettingInitialWindowSize, 1), st(http2.SettingInitialWindowSize, 2),
		}},
		{"bounds in range", enc(
			st(http2.SettingEnablePush, 1),
			st(http2.SettingInitialWindowSize, 1<<31-1),
			st(http2.SettingMaxFrameSize, 16384),
			st(http2.SettingMaxFrameSize, 1<<24-1),
			st(http2.SettingEnableConnectProtocol, 1),
			st(http2.SettingNoRFC7540Priorities, 1),
			st(http2.SettingHeaderTableSize, math.MaxUint32),
			st(http2.SettingMaxConcurrentStreams, 0),
			st(http2.SettingMaxHeaderListSize, math.MaxUint32),
		), []http2.Setting{
			st(http2.SettingEnablePush, 1),
			st(http2.SettingInitialWindowSize, 1<<31-1),
			st(http2.SettingMaxFrameSize, 16384),
			st(http2.SettingMaxFrameSize, 1<<24-1),
			st(http2.SettingEnableConnectProtocol, 1),
			st(http2.SettingNoRFC7540Priorities, 1),
			st(http2.SettingHeaderTableSize, math.MaxUint32),
			st(http2.SettingMaxConcurrentStreams, 0),
			st(http2.SettingMaxHeaderListSize, math.MaxUint32),
		}},
		{"100 settings, the maximum", strings.Repeat("AAIAAAAA", 100), slices.Repeat([]http2.Setting{st(http2.SettingEnablePush, 0)}, 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := settings.Decode(tt.value)
			if err != nil {
				t.Fatalf("Decode(%q): got error %v; want nil", tt.value, err)
			}
			if p == nil {
				t.Fatalf("Decode(%q): got nil Payload; want non-nil", tt.value)
			}
			if len(p)%6 != 0 {
				t.Errorf("Decode(%q): got payload length %d; want a multiple of 6", tt.value, len(p))
			}
			if got := p.Settings(); !slices.Equal(got, tt.want) {
				t.Errorf("Decode(%q).Settings(): got %v; want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		kind    settings.ErrorKind
		setting http2.Setting // for KindValue
		msg     string
	}{
		{"std alphabet plus", "AAMAAABk+AQAAP//", settings.KindEncoding, http2.Setting{},
			"HTTP2-Settings: '+' at offset 8 is standard base64, not base64url (RFC 4648 §5 uses '-' and '_')"},
		{"std alphabet slash", "AAQAAP//", settings.KindEncoding, http2.Setting{},
			"HTTP2-Settings: '/' at offset 6 is standard base64, not base64url (RFC 4648 §5 uses '-' and '_')"},
		{"offset counts leading whitespace", "  AAQAAP//", settings.KindEncoding, http2.Setting{},
			"HTTP2-Settings: '/' at offset 8 is standard base64, not base64url (RFC 4648 §5 uses '-' and '_')"},
		{"comma list", "AAMAAABk,AAQAAP__", settings.KindEncoding, http2.Setting{},
			"HTTP2-Settings: ',' at offset 8: a list of values is not one base64url value"},
		{"comma list with space", "AAMAAABk, AAQAAP__", settings.KindEncoding, http2.Setting{},
			"HTTP2-Settings: ',' at offset 8: a list of values is not one base64url value"},
		{"inner whitespace", "AAMA AABk", settings.KindEncoding, http2.Setting{},
			"HTTP2-Settings: whitespace at offset 4 inside the value"},
		{"newline is not skipped", "AAMA\nAABk", settings.KindEncoding, http2.Setting{},
			"HTTP2-Settings: byte 0x0a at offset 4 is not base64url (RFC 4648 §5)"},
		{"non-ascii", "AAMAAAB\xc3", settings.KindEncoding, http2.Setting{},
			"HTTP2-Settings: byte 0xc3 at offset 7 is not base64url (RFC 4648 §5)"},
		{"punctuation", "AAMAAAB!", settings.KindEncoding, http2.Setting{},
			"HTTP2-Settings: '!' at offset 7 is not base64url (RFC 4648 §5)"},
		{"three padding", "AAMAAABk===", settings.KindEncoding, http2.Setting{},
			"HTTP2-Settings: '=' at offset 8 is not trailing padding"},
		{"inner padding", "AAMA=AABk", settings.KindEncoding, http2.Setting{},
			"HTTP2-Settings: '=' at offset 4 is not trailing padding"},
		{"odd length", "AAMAAABkA", settings.KindEncoding, http2.Setting{},
			"HTTP2-Settings: base64url value of 9 characters is truncated (RFC 4648 §5)"},
		{"one character", "A", settings.KindEncoding, http2.Setting{},
			"HTTP2-Settings: base64url value of 1 characters is truncated (RFC 4648 §5)"},
		{"length 7", "AAMAAABkAA", settings.KindLength, http2.Setting{},
			"HTTP2-Settings: payload length 7 is not a multiple of 6"},
		{"length 1", "AA", settings.KindLength, http2.Setting{},
			"HTTP2-Settings: payload length 1 is not a multiple of 6"},
		{"length 3 padded", "AAAA==", settings.KindLength, http2.Setting{},
			"HTTP2-Settings: payload length 3 is not a multiple of 6"},
		{"101 settings", strings.Repeat("AAIAAAAA", 101), settings.KindTooLong, http2.Setting{},
			"HTTP2-Settings: value of 808 characters is longer than 800, the encoding of 600 octets (100 settings)"},
		{"too long before alphabet", strings.Repeat("+", 1<<20), settings.KindTooLong, http2.Setting{},
			"HTTP2-Settings: value of 1048576 characters is longer than 800, the encoding of 600 octets (100 settings)"},
		{"ENABLE_PUSH 2", enc(st(http2.SettingEnablePush, 2)), settings.KindValue, st(http2.SettingEnablePush, 2),
			"HTTP2-Settings: ENABLE_PUSH = 2 is out of range (RFC 9113 §6.5.2)"},
		{"INITIAL_WINDOW_SIZE 2^31", enc(st(http2.SettingInitialWindowSize, 1<<31)), settings.KindValue, st(http2.SettingInitialWindowSize, 1<<31),
			"HTTP2-Settings: INITIAL_WINDOW_SIZE = 2147483648 is out of range (RFC 9113 §6.5.2)"},
		{"MAX_FRAME_SIZE 16383", enc(st(http2.SettingMaxFrameSize, 16383)), settings.KindValue, st(http2.SettingMaxFrameSize, 16383),
			"HTTP2-Settings: MAX_FRAME_SIZE = 16383 is out of range (RFC 9113 §6.5.2)"},
		{"MAX_FRAME_SIZE 100", enc(st(http2.SettingMaxFrameSize, 100)), settings.KindValue, st(http2.SettingMaxFrameSize, 100),
			"HTTP2-Settings: MAX_FRAME_SIZE = 100 is out of range (RFC 9113 §6.5.2)"},
		{"MAX_FRAME_SIZE 2^24", enc(st(http2.SettingMaxFrameSize, 1<<24)), settings.KindValue, st(http2.SettingMaxFrameSize, 1<<24),
			"HTTP2-Settings: MAX_FRAME_SIZE = 16777216 is out of range (RFC 9113 §6.5.2)"},
		{"ENABLE_CONNECT_PROTOCOL 2", enc(st(http2.SettingEnableConnectProtocol, 2)), settings.KindValue, st(http2.SettingEnableConnectProtocol, 2),
			"HTTP2-Settings: ENABLE_CONNECT_PROTOCOL = 2 is out of range (RFC 8441 §3)"},
		{"NO_RFC7540_PRIORITIES 2", enc(st(http2.SettingNoRFC7540Priorities, 2)), settings.KindValue, st(http2.SettingNoRFC7540Priorities, 2),
			"HTTP2-Settings: NO_RFC7540_PRIORITIES = 2 is out of range (RFC 9218 §2.1)"},
		{"first bad value wins", enc(st(http2.SettingMaxConcurrentStreams, 1), st(http2.SettingEnablePush, 3), st(http2.SettingMaxFrameSize, 1)),
			settings.KindValue, st(http2.SettingEnablePush, 3),
			"HTTP2-Settings: ENABLE_PUSH = 3 is out of range (RFC 9113 §6.5.2)"},
		{"bad value then good duplicate", enc(st(http2.SettingEnablePush, 2), st(http2.SettingEnablePush, 0)),
			settings.KindValue, st(http2.SettingEnablePush, 2),
			"HTTP2-Settings: ENABLE_PUSH = 2 is out of range (RFC 9113 §6.5.2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := settings.Decode(tt.value)
			if p != nil {
				t.Errorf("Decode: got payload %x; want nil", []byte(p))
			}
			var e *settings.Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode: got error %v (%T); want *settings.Error", err, err)
			}
			if e.Kind != tt.kind {
				t.Errorf("Kind: got %v; want %v", e.Kind, tt.kind)
			}
			if e.Setting != tt.setting {
				t.Errorf("Setting: got %v; want %v", e.Setting, tt.setting)
			}
			if got := err.Error(); got != tt.msg {
				t.Errorf("message:\ngot  %s\nwant %s", got, tt.msg)
			}
			if tt.kind == settings.KindValue {
				var ce http2.ConnectionError
				if !errors.As(err, &ce) {
					t.Errorf("errors.As(err, *http2.ConnectionError): got false; want true")
				}
			}
		})
	}
}

// TestDecodeErrCodes pins the connection error each bad value would have
// caused in x/net, which Error.Err carries.
func TestDecodeErrCodes(t *testing.T) {
	tests := []struct {
		name string
		s    http2.Setting
		want http2.ErrCode
	}{
		{"ENABLE_PUSH", st(http2.SettingEnablePush, 2), http2.ErrCodeProtocol},
		{"INITIAL_WINDOW_SIZE", st(http2.SettingInitialWindowSize, 1<<31), http2.ErrCodeFlowControl},
		{"MAX_FRAME_SIZE", st(http2.SettingMaxFrameSize, 1), http2.ErrCodeProtocol},
		{"NO_RFC7540_PRIORITIES", st(http2.SettingNoRFC7540Priorities, 9), http2.ErrCodeProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := settings.Decode(enc(tt.s))
			var ce http2.ConnectionError
			if !errors.As(err, &ce) {
				t.Fatalf("Decode: got %v; want an http2.ConnectionError inside", err)
			}
			if got := http2.ErrCode(ce); got != tt.want {
				t.Errorf("error code: got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestFromHeader(t *testing.T) {
	tests := []struct {
		name    string
		h       http.Header
		want    []http2.Setting
		wantErr error // a sentinel, or nil
		kind    settings.ErrorKind
	}{
		{"one field", http.Header{"Http2-Settings": {"AAMAAABk"}}, []http2.Setting{st(http2.SettingMaxConcurrentStreams, 100)}, nil, 0},
		{"set with any case", hdr("hTTp2-sETTINGS", "AAMAAABk"), []http2.Setting{st(http2.SettingMaxConcurrentStreams, 100)}, nil, 0},
		{"empty value", http.Header{"Http2-Settings": {""}}, []http2.Setting{}, nil, 0},
		{"missing", http.Header{"Upgrade": {"h2c"}}, nil, settings.ErrMissing, 0},
		{"nil header", nil, nil, settings.ErrMissing, 0},
		{"duplicate field", http.Header{"Http2-Settings": {"AAMAAABk", "AAMAAABk"}}, nil, settings.ErrDuplicate, 0},
		{"duplicate empty fields", http.Header{"Http2-Settings": {"", ""}}, nil, settings.ErrDuplicate, 0},
		{"value with a comma", http.Header{"Http2-Settings": {"AAMAAABk,AAMAAABk"}}, nil, nil, settings.KindEncoding},
		{"bad value", http.Header{"Http2-Settings": {"AAIAAAAC"}}, nil, nil, settings.KindValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := settings.FromHeader(tt.h)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("FromHeader: got error %v; want %v", err, tt.wantErr)
				}
			case tt.kind != 0:
				var e *settings.Error
				if !errors.As(err, &e) || e.Kind != tt.kind {
					t.Fatalf("FromHeader: got error %v; want *settings.Error of kind %v", err, tt.kind)
				}
			case err != nil:
				t.Fatalf("FromHeader: got error %v; want nil", err)
			}
			if err != nil {
				if p != nil {
					t.Errorf("FromHeader: got payload %x with an error; want nil", []byte(p))
				}
				return
			}
			if got := p.Settings(); !slices.Equal(got, tt.want) {
				t.Errorf("FromHeader: got %v; want %v", got, tt.want)
			}
		})
	}
}

// TestFromHeaderWire checks the count on a header as net/http parses it
// from the wire, where repeated field lines become repeated values.
func TestFromHeaderWire(t *testing.T) {
	tests := []struct {
		name    string
		fields  string
		wantErr error
	}{
		{"one line", "HTTP2-Settings: AAMAAABk\r\n", nil},
		{"lower-case name", "http2-settings: AAMAAABk\r\n", nil},
		{"two lines", "HTTP2-Settings: AAMAAABk\r\nhttp2-settings: AAMAAABk\r\n", settings.ErrDuplicate},
		{"none", "Upgrade: h2c\r\n", settings.ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "GET / HTTP/1.1\r\nHost: x\r\n" + tt.fields + "\r\n"
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
			if err != nil {
				t.Fatalf("ReadRequest: %v", err)
			}
			_, err = settings.FromHeader(req.Header)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("FromHeader: got %v; want %v", err, tt.wantErr)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		in   []http2.Setting
		want string
	}{
		{"none", nil, ""},
		{"curl", []http2.Setting{
			st(http2.SettingMaxConcurrentStreams, 100),
			st(http2.SettingInitialWindowSize, 10<<20),
			st(http2.SettingEnablePush, 0),
		}, "AAMAAABkAAQAoAAAAAIAAAAA"},
		{"url alphabet, no padding", []http2.Setting{st(http2.SettingInitialWindowSize, 65535)}, "AAQAAP__"},
		{"not validated", []http2.Setting{st(http2.SettingEnablePush, 2)}, "AAIAAAAC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := settings.Encode(tt.in...); got != tt.want {
				t.Errorf("Encode(%v): got %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestPayloadSettingsPartial(t *testing.T) {
	p := settings.Payload{0, 3, 0, 0, 0, 100, 0, 4}
	want := []http2.Setting{st(http2.SettingMaxConcurrentStreams, 100)}
	if got := p.Settings(); !slices.Equal(got, want) {
		t.Errorf("Settings: got %v; want %v", got, want)
	}
}

func TestErrorKindString(t *testing.T) {
	tests := []struct {
		k    settings.ErrorKind
		want string
	}{
		{settings.KindEncoding, "encoding"},
		{settings.KindTooLong, "too_long"},
		{settings.KindLength, "length"},
		{settings.KindValue, "value"},
		{0, "unknown"},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("ErrorKind(%d).String(): got %q; want %q", int(tt.k), got, tt.want)
		}
	}
	e := &settings.Error{Kind: settings.KindLength}
	if got, want := e.Error(), "HTTP2-Settings: invalid value (length)"; got != want {
		t.Errorf("zero-detail Error(): got %q; want %q", got, want)
	}
}

// hdr builds a header the way Header.Add does, canonicalising the key.
func hdr(k, v string) http.Header {
	h := http.Header{}
	h.Add(k, v)
	return h
}
