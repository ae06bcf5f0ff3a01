package settings

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/net/http2"
)

// FieldName is the name of the header field that carries the client's
// SETTINGS in an h2c upgrade request (RFC 7540 §3.2.1).
const FieldName = "HTTP2-Settings"

// MaxPayloadLen is the longest decoded payload accepted, in octets:
// 100 settings of 6 octets. x/net's server hangs up on a SETTINGS frame
// with more than 100 entries (server.go processSettings; it does not
// apply that check to ServeConnOpts.Settings), so no honest client needs
// more, and the cap bounds the work done on a value.
const MaxPayloadLen = 600

// settingLen is the size of one setting on the wire: a 16-bit identifier
// and a 32-bit value (RFC 9113 §6.5.1). MaxPayloadLen is a multiple of it.
const settingLen = 6

// maxEncodedLen is the longest field value (after trimming whitespace and
// padding) that can decode to at most MaxPayloadLen octets:
// base64.RawURLEncoding.EncodedLen(MaxPayloadLen), as a constant so that
// Decode's buffers can live on the stack. Checking it first means an
// oversized value is rejected without being decoded.
const maxEncodedLen = (MaxPayloadLen*8 + 5) / 6

// Payload is a validated SETTINGS payload: the raw body of a SETTINGS
// frame (RFC 9113 §6.5.1), a sequence of 6-octet settings in the order the
// client sent them. A Payload returned by [Decode] or [FromHeader] has a
// length that is a multiple of 6 and at most [MaxPayloadLen], and every
// known parameter in it is in range; it is never nil, even when empty.
//
// It may be passed as is to http2.ServeConnOpts.Settings.
type Payload []byte

// FromHeader decodes the request's HTTP2-Settings field. The field must
// appear exactly once (RFC 7540 §3.2.1): no field gives [ErrMissing], more
// than one field line gives [ErrDuplicate]. A single line whose value is a
// comma-separated list is not base64url and gives a KindEncoding [*Error].
// Otherwise the value is decoded as by [Decode].
func FromHeader(h http.Header) (Payload, error) {
	// Values canonicalises the key ("Http2-Settings"), as net/http does
	// when it parses a request, and sees every field line under it.
	v := h.Values(FieldName)
	switch len(v) {
	case 0:
		return nil, ErrMissing
	case 1:
		return Decode(v[0])
	default:
		return nil, ErrDuplicate
	}
}

// Decode decodes and validates one HTTP2-Settings field value.
//
// The value is the base64url encoding (RFC 4648 §5) of a SETTINGS
// payload. Spaces and tabs around it are trimmed (RFC 9110 §5.5). RFC 7540
// §3.2.1 says trailing '=' padding is omitted; up to two trailing '='
// (all that RFC 4648 §3.2 padding can be) are tolerated. The standard
// alphabet's '+' and '/' are rejected, with a message that says so.
//
// The decoded payload must be a whole number of 6-octet settings
// (RFC 9113 §6.5) and at most [MaxPayloadLen] octets; the length limit is
// checked on the encoded value, before decoding. Each known parameter must
// be valid per [http2.Setting.Valid] (RFC 9113 §6.5.2), and
// NO_RFC7540_PRIORITIES must be 0 or 1 (RFC 9218 §2.1): x/net's server
// checks that one too, but Setting.Valid does not, so without it a bad
// value would pass here and fail only after the 101.
//
// Unknown identifiers are legal and kept in the payload: the receiver
// ignores them (RFC 9113 §6.5.2). Repeated identifiers are legal too:
// settings are processed in order (RFC 9113 §6.5.3), so the last one
// wins, which is what x/net's ServeConn does with an upgrade payload. (x/net
// does hang up on repeated identifiers in a SETTINGS frame, a check the RFC
// does not ask for, but it does not apply it to the upgrade payload.)
//
// An empty value is a valid, empty (non-nil) payload. On error the payload
// is nil and the error is an [*Error].
func Decode(value string) (Payload, error) {
	v := strings.TrimLeft(value, " \t")
	lead := len(value) - len(v) // offsets in messages count from the raw value
	v = strings.TrimRight(v, " \t")
	for range 2 {
		v = strings.TrimSuffix(v, "=")
	}

	if len(v) > maxEncodedLen {
		return nil, &Error{Kind: KindTooLong, detail: fmt.Sprintf(
			"value of %d characters is longer than %d, the encoding of %d octets (%d settings)",
			len(v), maxEncodedLen, MaxPayloadLen, MaxPayloadLen/settingLen)}
	}
	// Check the alphabet ourselves rather than rely on encoding/base64: it
	// silently skips '\r' and '\n', and its error names an offset but not
	// the reason.
	for i := 0; i < len(v); i++ {
		if !isBase64URL(v[i]) {
			return nil, badChar(v[i], lead+i)
		}
	}
	if len(v)%4 == 1 {
		// One leftover character carries 6 bits: not a whole octet.
		return nil, &Error{Kind: KindEncoding, detail: fmt.Sprintf(
			"base64url value of %d characters is truncated (RFC 4648 §5)", len(v))}
	}

	// Decode into a fixed buffer so that a bad payload allocates nothing
	// but its error; only a good one is copied out.
	var src [maxEncodedLen]byte
	var dst [MaxPayloadLen]byte
	n, err := base64.RawURLEncoding.Decode(dst[:], src[:copy(src[:], v)])
	if err != nil {
		// Unreachable after the checks above; kept so that a change in
		// encoding/base64 cannot turn into a silently wrong payload.
		return nil, &Error{Kind: KindEncoding, Err: err, detail: "invalid base64url (RFC 4648 §5): " + err.Error()}
	}
	if n%settingLen != 0 {
		return nil, &Error{Kind: KindLength, detail: fmt.Sprintf(
			"payload length %d is not a multiple of %d", n, settingLen)}
	}
	for i := 0; i < n; i += settingLen {
		s := settingAt(dst[i:])
		if err := valid(s); err != nil {
			return nil, err
		}
	}
	return append(Payload{}, dst[:n]...), nil
}

// Settings returns the settings in p, in order. A trailing partial setting
// (only possible in a Payload not made by [Decode]) is ignored.
func (p Payload) Settings() []http2.Setting {
	s := make([]http2.Setting, len(p)/settingLen)
	for i := range s {
		s[i] = settingAt(p[i*settingLen:])
	}
	return s
}

// Encode returns the HTTP2-Settings field value for s: the settings in
// order, base64url-encoded without padding (RFC 7540 §3.2.1). It does not
// validate them.
func Encode(s ...http2.Setting) string {
	b := make([]byte, 0, len(s)*settingLen)
	for _, x := range s {
		b = binary.BigEndian.AppendUint16(b, uint16(x.ID))
		b = binary.BigEndian.AppendUint32(b, x.Val)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// settingAt reads one setting from the start of b (RFC 9113 §6.5.1).
func settingAt(b []byte) http2.Setting {
	return http2.Setting{
		ID:  http2.SettingID(binary.BigEndian.Uint16(b)),
		Val: binary.BigEndian.Uint32(b[2:]),
	}
}

// valid checks one setting's value. Setting.Valid covers RFC 9113 §6.5.2
// and ENABLE_CONNECT_PROTOCOL; NO_RFC7540_PRIORITIES is checked here
// because x/net's server rejects values above 1 (server.go processSetting)
// while Setting.Valid lets them through.
func valid(s http2.Setting) error {
	err := s.Valid()
	rfc := "RFC 9113 §6.5.2"
	switch s.ID {
	case http2.SettingEnableConnectProtocol:
		rfc = "RFC 8441 §3"
	case http2.SettingNoRFC7540Priorities:
		rfc = "RFC 9218 §2.1"
		if s.Val > 1 {
			err = http2.ConnectionError(http2.ErrCodeProtocol)
		}
	}
	if err == nil {
		return nil
	}
	return &Error{Kind: KindValue, Setting: s, Err: err, detail: fmt.Sprintf(
		"%v = %d is out of range (%s)", s.ID, s.Val, rfc)}
}

// isBase64URL reports whether c is in the base64url alphabet
// (RFC 4648 §5, Table 2).
func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// badChar describes the character c at offset off that is not base64url.
func badChar(c byte, off int) *Error {
	var d string
	switch {
	case c == '+' || c == '/':
		d = fmt.Sprintf("%q at offset %d is standard base64, not base64url (RFC 4648 §5 uses '-' and '_')", c, off)
	case c == '=':
		d = fmt.Sprintf("'=' at offset %d is not trailing padding", off)
	case c == ',':
		d = fmt.Sprintf("',' at offset %d: a list of values is not one base64url value", off)
	case c == ' ' || c == '\t':
		d = fmt.Sprintf("whitespace at offset %d inside the value", off)
	case ' ' < c && c < 0x7f:
		d = fmt.Sprintf("%q at offset %d is not base64url (RFC 4648 §5)", c, off)
	default:
		d = fmt.Sprintf("byte 0x%02x at offset %d is not base64url (RFC 4648 §5)", c, off)
	}
	return &Error{Kind: KindEncoding, detail: d}
}
