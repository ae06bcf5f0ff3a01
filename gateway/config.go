package gateway

import (
	"cmp"
	"time"

	"github.com/rs/zerolog"
)

// Config configures a [Gateway]. The zero value works: every field's doc ends
// with what its zero value means. The gateway never mutates the caller's
// Config.
type Config struct {
	// Logger receives connection events and decline reasons. The zero value
	// is silent.
	Logger zerolog.Logger

	// OnEvent, if non-nil, is called for every outcome of README "What each input gets" (see
	// [EventKind]), synchronously and from many goroutines: it must be quick
	// and safe for concurrent use. Nil means events are only logged.
	OnEvent func(Event)

	// DisableUpgrade turns off the "Upgrade: h2c" path: such requests are
	// declined with reason "disabled" and served on HTTP/1.1. False means
	// upgrades are performed.
	DisableUpgrade bool

	// DisablePriorKnowledge turns off HTTP/2 with prior knowledge: a
	// connection that starts with the preface is answered 505 and closed.
	// False means prior knowledge is served.
	DisablePriorKnowledge bool

	// MaxUpgradeBody bounds the body of a request that asks to upgrade; the
	// body is read before the 101 (RFC 7540 §3.2 leaves no other place for
	// it), so this bounds memory per upgrade. A larger body declines the
	// upgrade and is served on HTTP/1.1 with every byte. Zero means
	// DefaultMaxUpgradeBody (1 MiB); NoUpgradeBody (any negative value)
	// means a request with a body is never upgraded.
	MaxUpgradeBody int64

	// UpgradeBodyTimeout bounds the time to read an upgrade body. A client
	// that does not send it in time gets 408 and the connection is closed.
	// Zero means 10s.
	UpgradeBodyTimeout time.Duration

	// PrefaceTimeout bounds the wait for the client preface after the 101,
	// and for the rest of a prior-knowledge preface after its first line
	// (the HTTP/2 servers fix their own at 10s; the gateway reads the
	// preface itself so this can be set). Zero means 10s.
	PrefaceTimeout time.Duration

	// MaxConnections caps the connections [Gateway.Serve] keeps open at
	// once, upgraded ones included; past it, new connections wait in the
	// listen backlog until one closes. Zero means no cap.
	MaxConnections int

	// MemoryBudget bounds the memory the gateway holds on clients' behalf,
	// across all its connections: buffered upgrade bodies, and the decoded
	// request headers of HTTP/2 streams not yet answered (README
	// "Security"). Upgrade bodies may fill three quarters of it; past that
	// an upgrade with a body is declined ("memory") and served on HTTP/1.1.
	// Past the whole budget, new HTTP/2 streams get REFUSED_STREAM (safe to
	// retry, RFC 9113 §8.7), every upgrade with a body is declined, and
	// Serve accepts at most four connections a second, until what is held
	// falls under 7/8 of it. Apart from it,
	// one connection's streams may hold at most 1 MiB of decoded headers
	// (or four times MaxHeaderBytes, if more); past that its new streams
	// get REFUSED_STREAM. Zero means half the Go runtime's memory
	// limit (GOMEMLIMIT; the binary sets it from the container's limit),
	// or no budget when there is no limit; NoMemoryBudget (any negative
	// value) means no budget.
	MemoryBudget int64

	// MaxHeaderFields caps the header field lines of a request, HTTP/1.1
	// or HTTP/2, counted as Go 1.27's http.Server.MaxHeaderValueCount
	// counts them: each line once, and each name a Trailer field declares.
	// A request past it is answered 431 without reaching the handler.
	// Zero means DefaultMaxHeaderFields.
	MaxHeaderFields int

	// GlitchLimit bounds, per HTTP/2 connection, the streams reset before
	// their response was complete (by the client, or by the server for the
	// client's protocol errors: "MadeYouReset", CVE-2025-8671) within
	// GlitchWindow. A connection past it is ended with GOAWAY
	// ENHANCE_YOUR_CALM (RFC 9113 §5.4.1), as nghttp2 and HAProxy do. Zero
	// means DefaultGlitchLimit; NoGlitchLimit (any negative value) means no
	// limit.
	GlitchLimit int

	// GlitchWindow is the period GlitchLimit counts over. Zero means
	// DefaultGlitchWindow.
	GlitchWindow time.Duration

	// The fields below configure the http.Server and http2.Server that [New]
	// builds; [Configure] takes them from the caller's http.Server instead,
	// except the HTTP/2 ones, which it applies when they are non-zero.

	// ReadHeaderTimeout bounds reading a request head, and the first line
	// of a prior-knowledge preface, on a new or kept-alive connection. Zero
	// means 10s.
	ReadHeaderTimeout time.Duration

	// IdleTimeout closes a connection, HTTP/1.1 or HTTP/2, with no request in
	// flight for this long. Zero means 120s.
	IdleTimeout time.Duration

	// MaxHeaderBytes bounds a request head (HTTP/1.1) and the advertised
	// SETTINGS_MAX_HEADER_LIST_SIZE (HTTP/2). Zero means 64 KiB.
	MaxHeaderBytes int

	// MaxConcurrentStreams is the HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS
	// advertised. Zero means 250.
	MaxConcurrentStreams uint32

	// MaxReadFrameSize is the HTTP/2 SETTINGS_MAX_FRAME_SIZE advertised,
	// 16384…16777215. Zero means 16384, the RFC 9113 §6.5.2 initial value
	// (x/net's own default, 1 MiB, lets a peer send HEADERS larger than the
	// RFC default, which h2spec 4.2/3 flags).
	MaxReadFrameSize uint32

	// StreamWindow is the HTTP/2 flow-control window offered to each stream
	// (SETTINGS_INITIAL_WINDOW_SIZE). Zero means 1 MiB.
	StreamWindow int32

	// ConnWindow is the HTTP/2 connection-level flow-control window. Zero
	// means 1 MiB.
	ConnWindow int32
}

// The values a zero Config field stands for. The binary's flags take their
// defaults from here.
const (
	DefaultMaxUpgradeBody       int64  = 1 << 20
	DefaultUpgradeBodyTimeout          = 10 * time.Second
	DefaultPrefaceTimeout              = 10 * time.Second
	DefaultReadHeaderTimeout           = 10 * time.Second
	DefaultIdleTimeout                 = 120 * time.Second
	DefaultMaxHeaderBytes              = 64 << 10
	DefaultMaxConcurrentStreams uint32 = 250
	// DefaultMaxReadFrameSize is RFC 9113 §6.5.2's initial value, the
	// largest frame every peer accepts.
	DefaultMaxReadFrameSize uint32 = 16384
	// DefaultWindow is both the stream and the connection window.
	DefaultWindow int32 = 1 << 20
	// DefaultMaxHeaderFields is below Go 1.27's DefaultMaxHeaderValueCount
	// (500): browsers send about 20 fields, gRPC a few more.
	DefaultMaxHeaderFields = 200
	DefaultGlitchLimit     = 100
	DefaultGlitchWindow    = 10 * time.Second
)

// NoMemoryBudget, as Config.MemoryBudget, turns the memory budget off.
const NoMemoryBudget int64 = -1

// NoGlitchLimit, as Config.GlitchLimit, turns the glitch limit off.
const NoGlitchLimit = -1

// NoUpgradeBody, as Config.MaxUpgradeBody, upgrades only requests without a
// body: one with a body is served on HTTP/1.1. The binary's
// --max-upgrade-body 0 sets it.
const NoUpgradeBody int64 = -1

// maxUpgradeBody returns the body limit; negative means no body at all.
func (c *Config) maxUpgradeBody() int64 { return cmp.Or(c.MaxUpgradeBody, DefaultMaxUpgradeBody) }

func (c *Config) upgradeBodyTimeout() time.Duration {
	return cmp.Or(c.UpgradeBodyTimeout, DefaultUpgradeBodyTimeout)
}

func (c *Config) prefaceTimeout() time.Duration {
	return cmp.Or(c.PrefaceTimeout, DefaultPrefaceTimeout)
}

func (c *Config) readHeaderTimeout() time.Duration {
	return cmp.Or(c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
}

func (c *Config) idleTimeout() time.Duration { return cmp.Or(c.IdleTimeout, DefaultIdleTimeout) }
func (c *Config) maxHeaderBytes() int        { return cmp.Or(c.MaxHeaderBytes, DefaultMaxHeaderBytes) }
func (c *Config) maxConcurrentStreams() uint32 {
	return cmp.Or(c.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
}
func (c *Config) maxReadFrameSize() uint32 {
	return cmp.Or(c.MaxReadFrameSize, DefaultMaxReadFrameSize)
}
func (c *Config) maxHeaderFields() int { return cmp.Or(c.MaxHeaderFields, DefaultMaxHeaderFields) }
func (c *Config) glitchLimit() int     { return cmp.Or(c.GlitchLimit, DefaultGlitchLimit) }
func (c *Config) glitchWindow() time.Duration {
	return cmp.Or(c.GlitchWindow, DefaultGlitchWindow)
}
func (c *Config) streamWindow() int32 { return cmp.Or(c.StreamWindow, DefaultWindow) }
func (c *Config) connWindow() int32   { return cmp.Or(c.ConnWindow, DefaultWindow) }
