package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"

	"golang.org/x/net/http2"
)

// TestErrorStatus: each failure maps to its status and cause, by type where
// net/http, x/net or crypto/tls give one, and by the text of net/http's
// unexported errors otherwise (the fallback, kept tested).
func TestErrorStatus(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	timeoutErr := &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		err    error
		status int
		cause  string
	}{
		{"unsolicited 101", nil, fmt.Errorf("x: %w", errUnsolicited101), 502, causeUnsolicited101},
		{"client gone", canceled, errors.New("anything"), 502, causeCanceled},
		{"deadline", nil, context.DeadlineExceeded, 504, causeTimeout},
		{"net timeout", nil, timeoutErr, 504, causeTimeout},
		{"refused", nil, &dialError{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}, 502, causeRefused},
		{"dial, other", nil, &dialError{errors.New("no route")}, 502, causeOther},
		{"reset", nil, &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, 502, causeReset},
		{"EOF", nil, io.ErrUnexpectedEOF, 502, causeReset},
		{"typed stream reset", nil, fmt.Errorf("rt: %w", http2.StreamError{StreamID: 1, Code: http2.ErrCodeRefusedStream}), 502, causeReset},
		{"typed GOAWAY", nil, http2.GoAwayError{ErrCode: http2.ErrCodeNo}, 502, causeReset},
		{"typed stream PROTOCOL_ERROR", nil, http2.StreamError{StreamID: 1, Code: http2.ErrCodeProtocol}, 502, causeBadResponse},
		{"typed connection error", nil, http2.ConnectionError(http2.ErrCodeFrameSize), 502, causeBadResponse},
		{"typed TLS record header", nil, fmt.Errorf("tls: %w", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), 502, causeBadResponse},
		{"typed scheme mismatch", nil, http.ErrSchemeMismatch, 502, causeBadResponse},
		{"text: stream reset", nil, errors.New("stream error: stream ID 3; CANCEL; received from peer"), 502, causeReset},
		{"text: malformed HTTP/1.1", nil, errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP status code "x"`), 502, causeBadResponse},
		{"text: frame too large", nil, errors.New("http2: frame too large"), 502, causeBadResponse},
		{"other", nil, errors.New("something else"), 502, causeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			status, cause := errorStatus(ctx, tc.err)
			if status != tc.status || cause != tc.cause {
				t.Errorf("errorStatus(%v) = %d %s; want %d %s", tc.err, status, cause, tc.status, tc.cause)
			}
		})
	}
}
