package gateway

import "net/http"

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
	// EventRefused: a limit turned work away (README "Security"). Reason
	// says which; Request is the request refused, when there is one.
	EventRefused
	// EventOverloadStart: a resource's limit was reached and the gateway
	// began shedding work. Resource names it.
	EventOverloadStart
	// EventOverloadEnd: the resource is back under its limit.
	EventOverloadEnd
)

var eventKindNames = [...]string{
	EventConnOpen:        "conn_open",
	EventConnClose:       "conn_close",
	EventUpgradeAccepted: "upgrade_accepted",
	EventUpgradeDeclined: "upgrade_declined",
	EventUpgradeRejected: "upgrade_rejected",
	EventProtocolError:   "protocol_error",
	EventHTTP2Error:      "http2_error",
	EventRefused:         "refused",
	EventOverloadStart:   "overload_start",
	EventOverloadEnd:     "overload_end",
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
	Reason Reason    // why, for declines, rejections, refusals and errors
	// Resource is what an EventOverloadStart or EventOverloadEnd is of.
	Resource Resource
	Err      error // detail, when there is one

	// Status is the status of a response the gateway wrote itself instead
	// of the wrapped handler (a rejection, a misplaced preface, an
	// unreadable upgrade body), and Request the request it answered;
	// zero and nil otherwise. A caller that logs or counts requests in the
	// wrapped handler counts these from here.
	Status  int
	Request *http.Request
}
