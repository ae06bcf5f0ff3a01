package errlog

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"
)

func TestLevels(t *testing.T) {
	for _, tc := range []struct{ line, level string }{
		{"http2: server: error reading preface from client 127.0.0.1:1: bogus greeting\n", "debug"},
		{"http: panic serving 127.0.0.1:1: boom\n", "error"},
		{"http: Accept error: too many open files; retrying in 5ms\n", "warn"},
	} {
		var out bytes.Buffer
		New(zerolog.New(&out).Level(zerolog.DebugLevel)).Print(tc.line)
		var got struct{ Level, Source, Message string }
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatalf("%q: %v in %q", tc.line, err, out.String())
		}
		if got.Level != tc.level || got.Source != "net/http" || got.Message+"\n" != tc.line {
			t.Errorf("%q logged as %+v; want level %s, source net/http, the line without its newline", tc.line, got, tc.level)
		}
	}
}
