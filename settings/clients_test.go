package settings_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/h2cgw/h2cgw/settings"
)

// TestClients decodes the values real clients send (testdata/clients.txt).
func TestClients(t *testing.T) {
	for _, c := range readClients(t) {
		t.Run(c.name, func(t *testing.T) {
			p, err := settings.Decode(c.value)
			if err != nil {
				t.Fatalf("Decode(%q): got error %v; want nil", c.value, err)
			}
			if got := formatSettings(p.Settings()); got != c.want {
				t.Errorf("Decode(%q): got %s; want %s", c.value, got, c.want)
			}
			if got := settings.Encode(p.Settings()...); got != c.value {
				t.Errorf("Encode(Decode(%q)): got %q; want the same value", c.value, got)
			}
		})
	}
}

// FuzzDecode checks that Decode never panics, that every error is an
// *Error, and that an accepted value round-trips through Encode.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"",
		"AAMAAABkAAQAoAAAAAIAAAAA", // curl, 10 MiB window
		"AAMAAABkAAQCAAAAAAIAAAAA", // curl 7.88.1, from the wire
		"AAMAAABkAARAAAAAAAIAAAAA", // curl, 1 GiB window
		"AAMAAABkAAQAAP__",         // nghttp 1.52.0, from the wire
		"AAMAAABk==",
		" AAQAAP__\t",
		"AAQAAP//",
		"AAMAAABk,AAQAAP__",
		"AAMAAABkAA",
		"AAUAAEAA", // MAX_FRAME_SIZE 16384
		"AAUAAD__", // MAX_FRAME_SIZE 16383
		"AAkAAAAC", // NO_RFC7540_PRIORITIES 2
		"AP8AAAAH", // unknown id
		strings.Repeat("AAIAAAAA", 100),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		p, err := settings.Decode(value)
		if err != nil {
			var e *settings.Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode(%q): got error %v (%T); want *settings.Error", value, err, err)
			}
			if p != nil {
				t.Fatalf("Decode(%q): got payload %x with error; want nil", value, []byte(p))
			}
			return
		}
		if p == nil || len(p)%6 != 0 || len(p) > settings.MaxPayloadLen {
			t.Fatalf("Decode(%q): got payload %x (len %d); want non-nil, a multiple of 6, at most %d",
				value, []byte(p), len(p), settings.MaxPayloadLen)
		}
		again := settings.Encode(p.Settings()...)
		p2, err := settings.Decode(again)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = Decode(%q): got error %v; want nil", value, again, err)
		}
		if !bytes.Equal(p, p2) {
			t.Fatalf("round trip of %q: got %x; want %x", value, []byte(p2), []byte(p))
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	const curl = "AAMAAABkAAQAoAAAAAIAAAAA"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := settings.Decode(curl); err != nil {
			b.Fatal(err)
		}
	}
}

type client struct{ name, value, want string }

// readClients reads testdata/clients.txt.
func readClients(t *testing.T) []client {
	t.Helper()
	b, err := os.ReadFile("testdata/clients.txt")
	if err != nil {
		t.Fatal(err)
	}
	var cs []client
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("testdata/clients.txt: got %d tab-separated fields in %q; want 3", len(f), line)
		}
		cs = append(cs, client{f[0], f[1], f[2]})
	}
	if len(cs) == 0 {
		t.Fatal("testdata/clients.txt: no clients")
	}
	return cs
}

func formatSettings(s []http2.Setting) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = x.String()
	}
	return strings.Join(parts, " ")
}
