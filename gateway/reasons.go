package gateway

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
	// ReasonMemory: the gateway's memory budget (Config.MemoryBudget)
	// cannot take the upgrade body; the request is served on HTTP/1.1 with
	// its body streamed.
	ReasonMemory Reason = "memory"
	// ReasonDisabled: upgrades are switched off.
	ReasonDisabled Reason = "disabled"
	// ReasonHijackFailed: the connection could not be taken from net/http
	// (a ResponseWriter wrapper in front of the gateway hides
	// http.Hijacker); the request is served on HTTP/1.1 rather than lost.
	ReasonHijackFailed Reason = "hijack_failed"
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

// Refusal reasons (README "Security"), reported with [EventRefused]: work a
// limit turned away.
const (
	// ReasonMemoryUpgrade: an upgrade with a body was declined, the memory
	// budget being exhausted (the decline itself is reported as
	// ReasonMemory).
	ReasonMemoryUpgrade Reason = "memory_upgrade"
	// ReasonMemoryStream: a new HTTP/2 stream got REFUSED_STREAM, the memory
	// budget being exhausted.
	ReasonMemoryStream Reason = "memory_stream"
	// ReasonMemoryAccept: Serve paused accepting connections, the memory
	// budget being exhausted; reported once per pause.
	ReasonMemoryAccept Reason = "memory_accept"
	// ReasonHeaderFields: a request had more header fields than
	// Config.MaxHeaderFields and was answered 431.
	ReasonHeaderFields Reason = "header_fields"
	// ReasonGlitches: an HTTP/2 connection passed Config.GlitchLimit and
	// was ended with GOAWAY ENHANCE_YOUR_CALM.
	ReasonGlitches Reason = "glitches"
)

// Resource names what an overload is of, in [EventOverloadStart] and
// [EventOverloadEnd].
type Resource string

// ResourceMemory: the memory budget (Config.MemoryBudget).
const ResourceMemory Resource = "memory"

// DeclineReasons returns every reason an upgrade may be declined with
// ([EventUpgradeDeclined]), in the order of README "What each input gets".
// It is the list metrics and tests enumerate.
func DeclineReasons() []Reason {
	return []Reason{
		ReasonDisabled, ReasonHTTP10, ReasonTLS, ReasonConnect, ReasonNoConnectionToken,
		ReasonMissingSettings, ReasonDuplicateSettings, ReasonBadSettings, ReasonShutdown,
		ReasonBodyTooLarge, ReasonMemory, ReasonHijackFailed,
	}
}

// RejectReasons returns every reason of an [EventUpgradeRejected].
func RejectReasons() []Reason { return []Reason{ReasonUpgradeOnHTTP2} }

// RefuseReasons returns every reason of an [EventRefused].
func RefuseReasons() []Reason {
	return []Reason{ReasonMemoryUpgrade, ReasonMemoryStream, ReasonMemoryAccept, ReasonHeaderFields, ReasonGlitches}
}

// OverloadResources returns every resource of [EventOverloadStart] and
// [EventOverloadEnd].
func OverloadResources() []Resource { return []Resource{ResourceMemory} }

// ProtocolErrorReasons returns every reason of an [EventProtocolError].
func ProtocolErrorReasons() []Reason {
	return []Reason{
		ReasonBadPreface, ReasonPrefaceTimeout, ReasonWrite101, ReasonLatePreface,
		ReasonPriorKnowledgeDisabled, ReasonUpgradeBody,
	}
}
