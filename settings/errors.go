package settings

import (
	"errors"

	"golang.org/x/net/http2"
)

// ErrMissing is returned by [FromHeader] when the request has no
// HTTP2-Settings field. RFC 7540 §3.2.1 requires exactly one in an h2c
// upgrade request.
var ErrMissing = errors.New("no HTTP2-Settings field")

// ErrDuplicate is returned by [FromHeader] when the request has more than
// one HTTP2-Settings field line. RFC 7540 §3.2.1: "A server MUST NOT
// upgrade the connection to HTTP/2 if this header field is not present or
// if more than one is present."
var ErrDuplicate = errors.New("more than one HTTP2-Settings field")

// ErrorKind says what is wrong with an HTTP2-Settings value.
type ErrorKind int

const (
	// KindEncoding means the value is not base64url (RFC 4648 §5): a character
	// outside the URL-safe alphabet (including the standard alphabet's '+'
	// and '/', and a ',' joining several values into a list), or a length
	// that cannot encode whole bytes.
	KindEncoding ErrorKind = iota + 1
	// KindTooLong means the value is longer than the encoding of
	// [MaxPayloadLen] bytes. It is rejected before any decoding.
	KindTooLong
	// KindLength means the decoded payload is not a whole number of 6-octet
	// settings (RFC 9113 §6.5).
	KindLength
	// KindValue means a known parameter is out of its range (RFC 9113 §6.5.2,
	// RFC 8441 §3, RFC 9218 §2.1). [Error.Setting] holds it.
	KindValue
)

// String returns a short name for k, fit for a log field.
func (k ErrorKind) String() string {
	switch k {
	case KindEncoding:
		return "encoding"
	case KindTooLong:
		return "too_long"
	case KindLength:
		return "length"
	case KindValue:
		return "value"
	}
	return "unknown"
}

// Error is an HTTP2-Settings value that cannot be used. Every error
// [Decode] returns is an *Error; [FromHeader] also returns [ErrMissing]
// and [ErrDuplicate]. Use [errors.As] to reach it.
type Error struct {
	// Kind says what is wrong.
	Kind ErrorKind

	// Setting is the first offending parameter, in payload order, when
	// Kind is KindValue; the zero Setting otherwise.
	Setting http2.Setting

	// Err is the underlying protocol error, if any: for KindValue, the
	// http2.ConnectionError (PROTOCOL_ERROR or FLOW_CONTROL_ERROR) that
	// x/net would reset the connection with had the value reached it.
	Err error

	// detail is the message after the field name; it says exactly what is
	// wrong (which character, which length, which parameter).
	detail string
}

// Error returns a message of the form "HTTP2-Settings: <what is wrong>".
func (e *Error) Error() string {
	if e.detail == "" {
		return FieldName + ": invalid value (" + e.Kind.String() + ")"
	}
	return FieldName + ": " + e.detail
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }
