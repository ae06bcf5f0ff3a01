package settings

import (
	"math"
	"net/http"
	"os"
	"reflect"
	"strings"

	"golang.org/x/net/http2"
)

// Defaults x/net v0.62.0 falls back on when a configured value is zero or
// out of range (http2.go, server.go, frame.go, config.go).
const (
	defaultMaxStreams       = 250     // server.go defaultMaxStreams
	defaultHeaderTableSize  = 4096    // http2.go initialHeaderTableSize, RFC 9113 §6.5.2
	defaultMaxReadFrameSize = 1 << 20 // http2.go defaultMaxReadFrameSize
	defaultStreamRecvWindow = 1 << 20 // config.go setConfigDefaults, server side
	minMaxFrameSize         = 1 << 14 // RFC 9113 §6.5.2
	maxMaxFrameSize         = 1<<24 - 1
	// typicalHeaderOverhead is what config.go adjustHTTP1MaxHeaderSize
	// adds to http.Server.MaxHeaderBytes: 10 fields of 32 octets
	// (RFC 9113 §6.5.2 counts 32 octets of overhead per field).
	typicalHeaderOverhead = 10 * 32
)

// extendedConnect mirrors x/net's disableExtendedConnectProtocol
// (http2.go init, golang/go#71128): ENABLE_CONNECT_PROTOCOL (RFC 8441) is
// advertised only when the GODEBUG environment variable, as it was at
// start-up, contains "http2xconnect=1". x/net reads the variable once, in
// init, with a substring match, and ignores //go:debug directives and the
// go.mod godebug block; so does this.
var extendedConnect = strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1")

// randomScheduler is the type of the one exported write scheduler that
// x/net's serverConn.writeSchedIgnoresRFC7540 counts as ignoring RFC 7540
// priorities. The others it counts (round-robin, RFC 9218) cannot be
// built outside x/net.
var randomScheduler = reflect.TypeOf(http2.NewRandomWriteScheduler())

// Advertised returns the settings, in order and with the values, that the
// HTTP/2 server of golang.org/x/net v0.62.0 (server.go, the file built on
// Go 1.26) writes in its first SETTINGS frame when h2.ServeConn serves a
// connection with ServeConnOpts.BaseConfig set to h1.
//
// A nil h1 stands for the new(http.Server) x/net uses when BaseConfig is
// nil; a nil h2 for a zero http2.Server. h1.HTTP2, when set, overrides h2
// field by field, and zero or out-of-range values fall back on x/net's
// defaults, as configFromServer does. The frame holds, in this order:
//
//   - MAX_FRAME_SIZE: MaxReadFrameSize, default 1 MiB;
//   - MAX_CONCURRENT_STREAMS: MaxConcurrentStreams, default 250;
//   - MAX_HEADER_LIST_SIZE: h1.MaxHeaderBytes (default
//     http.DefaultMaxHeaderBytes) plus 320, truncated to 32 bits;
//   - HEADER_TABLE_SIZE: MaxDecoderHeaderTableSize, default 4096;
//   - INITIAL_WINDOW_SIZE: MaxUploadBufferPerStream
//     (HTTP2Config.MaxReceiveBufferPerStream), default 1 MiB;
//   - ENABLE_CONNECT_PROTOCOL = 1, only when GODEBUG has http2xconnect=1;
//   - NO_RFC7540_PRIORITIES = 1, unless h2.NewWriteScheduler builds a
//     scheduler other than x/net's random one. Advertised calls
//     NewWriteScheduler once to learn which; on Go 1.26 a nil
//     NewWriteScheduler means round-robin, which ignores RFC 7540
//     priorities.
//
// This is a mirror, not a query: x/net has no API for it. A test starts a
// real http2.Server on loopback and compares its first SETTINGS frame with
// Advertised for several configurations, so an x/net upgrade that changes
// the frame fails that test rather than drifting silently.
func Advertised(h1 *http.Server, h2 *http2.Server) []http2.Setting {
	if h1 == nil {
		h1 = new(http.Server)
	}
	if h2 == nil {
		h2 = new(http2.Server)
	}
	c := configFromServer(h1, h2)
	s := []http2.Setting{
		{ID: http2.SettingMaxFrameSize, Val: c.maxReadFrameSize},
		{ID: http2.SettingMaxConcurrentStreams, Val: c.maxConcurrentStreams},
		{ID: http2.SettingMaxHeaderListSize, Val: maxHeaderListSize(h1)},
		{ID: http2.SettingHeaderTableSize, Val: c.maxDecoderHeaderTableSize},
		{ID: http2.SettingInitialWindowSize, Val: uint32(c.maxUploadBufferPerStream)},
	}
	if extendedConnect {
		s = append(s, http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1})
	}
	if ignoresRFC7540Priorities(h2) {
		s = append(s, http2.Setting{ID: http2.SettingNoRFC7540Priorities, Val: 1})
	}
	return s
}

// serverConfig holds the fields of x/net's http2Config that reach the
// first SETTINGS frame, with x/net's types, so conversions wrap the same
// way.
type serverConfig struct {
	maxConcurrentStreams      uint32
	maxDecoderHeaderTableSize uint32
	maxReadFrameSize          uint32
	maxUploadBufferPerStream  int32
}

// configFromServer mirrors x/net config.go configFromServer,
// fillNetHTTPConfig and setConfigDefaults(conf, true), for the fields in
// serverConfig. The Deprecated http2.Server fields are read on purpose:
// x/net still honours them.
func configFromServer(h1 *http.Server, h2 *http2.Server) serverConfig {
	c := serverConfig{
		maxConcurrentStreams:      h2.MaxConcurrentStreams,
		maxDecoderHeaderTableSize: h2.MaxDecoderHeaderTableSize,
		maxReadFrameSize:          h2.MaxReadFrameSize,
		maxUploadBufferPerStream:  h2.MaxUploadBufferPerStream,
	}
	if n := h1.HTTP2; n != nil {
		// A non-zero net/http value wins; ints are converted as x/net
		// converts them, so a negative value wraps rather than clamps.
		if n.MaxConcurrentStreams != 0 {
			c.maxConcurrentStreams = uint32(n.MaxConcurrentStreams)
		}
		if n.MaxDecoderHeaderTableSize != 0 {
			c.maxDecoderHeaderTableSize = uint32(n.MaxDecoderHeaderTableSize)
		}
		if n.MaxReadFrameSize != 0 {
			c.maxReadFrameSize = uint32(n.MaxReadFrameSize)
		}
		if n.MaxReceiveBufferPerStream != 0 {
			c.maxUploadBufferPerStream = int32(n.MaxReceiveBufferPerStream)
		}
	}
	setDefault(&c.maxConcurrentStreams, 1, math.MaxUint32, defaultMaxStreams)
	setDefault(&c.maxDecoderHeaderTableSize, 1, math.MaxUint32, defaultHeaderTableSize)
	setDefault(&c.maxReadFrameSize, minMaxFrameSize, maxMaxFrameSize, defaultMaxReadFrameSize)
	setDefault(&c.maxUploadBufferPerStream, 1, math.MaxInt32, defaultStreamRecvWindow)
	return c
}

// setDefault mirrors x/net config.go setDefault: a value outside
// [minval, maxval] becomes defval.
func setDefault[T ~int32 | ~uint32](v *T, minval, maxval, defval T) {
	if *v < minval || *v > maxval {
		*v = defval
	}
}

// maxHeaderListSize mirrors x/net server.go serverConn.maxHeaderListSize
// and config.go adjustHTTP1MaxHeaderSize, including the final truncation
// to 32 bits.
func maxHeaderListSize(h1 *http.Server) uint32 {
	n := h1.MaxHeaderBytes
	if n <= 0 {
		n = http.DefaultMaxHeaderBytes
	}
	return uint32(int64(n) + typicalHeaderOverhead)
}

// ignoresRFC7540Priorities mirrors x/net server.go serveConn's choice of
// write scheduler and serverConn.writeSchedIgnoresRFC7540.
func ignoresRFC7540Priorities(h2 *http2.Server) bool {
	if h2.NewWriteScheduler == nil {
		// client_priority_go126.go: before Go 1.27 clientPriorityDisabled
		// is always true, so x/net picks its round-robin scheduler.
		return true
	}
	return reflect.TypeOf(h2.NewWriteScheduler()) == randomScheduler
}
