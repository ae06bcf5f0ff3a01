package settings_test

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/h2cgw/h2cgw/settings"
)

// Decode a value as curl sends it and print the settings the client asks
// for.
func ExampleDecode() {
	p, err := settings.Decode("AAMAAABkAAQAoAAAAAIAAAAA")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range p.Settings() {
		fmt.Println(s)
	}
	// Output:
	// [MAX_CONCURRENT_STREAMS = 100]
	// [INITIAL_WINDOW_SIZE = 10485760]
	// [ENABLE_PUSH = 0]
}

// A value that cannot be used tells exactly why; the caller declines the
// upgrade and serves the request over HTTP/1.1.
func ExampleFromHeader() {
	for _, v := range [][]string{
		{"AAUAAABk"},             // MAX_FRAME_SIZE = 100
		{"AAMAAABkAA"},           // 7 octets
		{"AAQAAP//"},             // standard alphabet
		{"AAMAAABk", "AAMAAABk"}, // two fields
	} {
		_, err := settings.FromHeader(http.Header{"Http2-Settings": v})
		var e *settings.Error
		switch {
		case errors.Is(err, settings.ErrDuplicate):
			fmt.Println("duplicate:", err)
		case errors.As(err, &e):
			fmt.Printf("%s: %v\n", e.Kind, err)
		}
	}
	// Output:
	// value: HTTP2-Settings: MAX_FRAME_SIZE = 100 is out of range (RFC 9113 §6.5.2)
	// length: HTTP2-Settings: payload length 7 is not a multiple of 6
	// encoding: HTTP2-Settings: '/' at offset 6 is standard base64, not base64url (RFC 4648 §5 uses '-' and '_')
	// duplicate: more than one HTTP2-Settings field
}
