package gateway

import "net/http"

// Reason is the machine-readable reason an upgrade was declined or a request
// rejected. The spellings are those of README "What each input gets" and appear in logs and
// metrics as they are.
type Reason string

// Decline reasons (README "What each input gets") and the rejection reason (RFC 9113 §8.2.2).
const (
	// ReasonHTTP10: the request line says HTTP/1.0, which cannot upgrade.
	ReasonHTTP10 Reason = "http10"
	// ReasonNoConnectionToken: Connection does not list "Upgrade"
	// (RFC 9110 §7.8 makes Upgrade a hop-by-hop field that must be named there).
	ReasonNoConnectionToken Reason = "no_connection_token"
	// ReasonMissingSettings: no HTTP2-Settings field (RFC 7540 §3.2.1).
	ReasonMissingSettings Reason = "missing_settings"
	// ReasonDuplicateSettings: more than one HTTP2-Settings field.
	ReasonDuplicateSettings Reason = "duplicate_settings"
	// ReasonBadSettings: HTTP2-Settings undecodable, of a bad length, too long,
	// or with an out-of-range value.
	ReasonBadSettings Reason = "bad_settings"
	// ReasonConnect: CONNECT requests are never upgraded.
	ReasonConnect Reason = "connect"
	// ReasonBodyTooLarge: the body does not fit the upgrade body limit.
	ReasonBodyTooLarge Reason = "body_too_large"
	// ReasonDisabled: upgrades are switched off.
	ReasonDisabled Reason = "disabled"
	// ReasonTLS: h2c is cleartext only (RFC 9113 §3.1); an h2c upgrade asked
	// for over TLS is declined.
	ReasonTLS Reason = "tls"
	// ReasonShutdown: the gateway is shutting down and takes no new HTTP/2
	// connections; the request is served on HTTP/1.1 and the connection
	// closed after it.
	ReasonShutdown Reason = "shutdown"
	// ReasonUpgradeOnHTTP2: a request on an HTTP/2 connection carried
	// Upgrade, Connection or HTTP2-Settings (RFC 9113 §8.2.2).
	ReasonUpgradeOnHTTP2 Reason = "upgrade_on_http2"
)

// Protocol error reasons, reported with [EventProtocolError].
const (
	// ReasonBadPreface: the bytes after the 101 were not the client preface.
	ReasonBadPreface Reason = "bad_preface"
	// ReasonPrefaceTimeout: the client preface did not arrive in time.
	ReasonPrefaceTimeout Reason = "preface_timeout"
	// ReasonWrite101: the 101 could not be written.
	ReasonWrite101 Reason = "write_101"
	// ReasonLatePreface: "PRI * HTTP/2.0" arrived after the first request of
	// an HTTP/1.1 connection, where it is a bad request (README "What each input gets").
	ReasonLatePreface Reason = "late_preface"
	// ReasonPriorKnowledgeDisabled: the connection began with the HTTP/2
	// preface but prior knowledge is switched off.
	ReasonPriorKnowledgeDisabled Reason = "prior_knowledge_disabled"
	// ReasonUpgradeBody: the upgrade body could not be read (malformed,
	// too slow, or the client left); the connection is closed.
	ReasonUpgradeBody Reason = "upgrade_body"
)

// EventKind says what an [Event] reports.
type EventKind uint8

// The kinds of event a Gateway reports to [Config.OnEvent].
const (
	// EventConnOpen: a connection's entry path became known (its first
	// request, or its upgrade). An upgraded connection is first reported as
	// h1 and closed as h1 when it upgrades, then opened as h2c-upgrade.
	EventConnOpen EventKind = iota + 1
	// EventConnClose: a connection reported open has ended.
	EventConnClose
	// EventUpgradeAccepted: a 101 was written and HTTP/2 started.
	EventUpgradeAccepted
	// EventUpgradeDeclined: an h2c upgrade was asked for and declined; the
	// request was served on HTTP/1.1. Reason says why.
	EventUpgradeDeclined
	// EventUpgradeRejected: a request on HTTP/2 carried upgrade signals and
	// was answered 400 (RFC 9113 §8.2.2).
	EventUpgradeRejected
	// EventProtocolError: a connection was ended for a protocol error the
	// gateway itself saw. Reason says which.
	EventProtocolError
	// EventHTTP2Error: the HTTP/2 server counted an error; Reason is its
	// own error type (http.HTTP2Config.CountError).
	EventHTTP2Error
)

var eventKindNames = [...]string{
	EventConnOpen:        "conn_open",
	EventConnClose:       "conn_close",
	EventUpgradeAccepted: "upgrade_accepted",
	EventUpgradeDeclined: "upgrade_declined",
	EventUpgradeRejected: "upgrade_rejected",
	EventProtocolError:   "protocol_error",
	EventHTTP2Error:      "http2_error",
}

// String returns the kind's snake_case name.
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return "unknown"
}

// Event is one outcome of README "What each input gets", reported to [Config.OnEvent] so a
// caller can count it.
type Event struct {
	Kind   EventKind
	Path   EntryPath // the connection's entry path, when known
	Reason Reason    // why, for declines, rejections and errors
	Err    error     // detail, when there is one

	// Status is the status of a response the gateway wrote itself instead
	// of the wrapped handler (a rejection, a misplaced preface, an
	// unreadable upgrade body), and Request the request it answered;
	// zero and nil otherwise. A caller that logs or counts requests in the
	// wrapped handler counts these from here.
	Status  int
	Request *http.Request
}

func (g *Gateway) emit(e Event) {
	if g.cfg.OnEvent != nil {
		g.cfg.OnEvent(e)
	}
}
