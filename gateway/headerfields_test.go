package gateway

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"testing"
)

// TestMaxHeaderFields: a request with more header field lines than
// MaxHeaderFields — or a Trailer field declaring more names — is answered
// 431 without reaching the handler, on HTTP/1.1, on an upgrade request and
// on HTTP/2, with the same answer on both toolchains (600 fields is past Go
// 1.27's own default count, which must not answer first); at the limit it
// is served, and the connection keeps serving after a 431.
func TestMaxHeaderFields(t *testing.T) {
	const limit = 20
	tg := startGateway(t, Config{MaxHeaderFields: limit})
	lines := func(n int) []string {
		var l []string
		for i := range n {
			l = append(l, fmt.Sprintf("X-F%d: v", i))
		}
		return l
	}
	// Host counts as a field line on HTTP/1.1 only as r.Host: not at all.
	for _, tc := range []struct {
		name   string
		fields []string
		status int
	}{
		{"at the limit", lines(limit), 200},
		{"one past", lines(limit + 1), 431},
		{"past Go 1.27's own count", lines(600), 431},
		{"trailer names", []string{"Trailer: " + trailerNames(limit+1)}, 431},
	} {
		t.Run("h1/"+tc.name, func(t *testing.T) {
			c := dial(t, tg.addr)
			br := bufio.NewReader(c)
			head := "GET /h HTTP/1.1\r\nHost: a\r\n" + strings.Join(tc.fields, "\r\n") + "\r\n\r\n"
			for range 2 { // the connection serves on after a 431
				before := tg.rec.count()
				io.WriteString(c, head)
				res, body := readHTTP1(t, br, "GET")
				if res.StatusCode != tc.status {
					t.Fatalf("status %d %q; want %d", res.StatusCode, body, tc.status)
				}
				if tc.status == 431 {
					if string(body) != "too many header fields\n" || tg.rec.count() != before {
						t.Errorf("431 body %q, handler calls %d → %d; want the gateway's answer, no call", body, before, tg.rec.count())
					}
				}
			}
		})
		t.Run("h2/"+tc.name, func(t *testing.T) {
			_, h := h2conn(t, tg.addr)
			var extra []string
			for _, f := range tc.fields {
				k, v, _ := strings.Cut(f, ": ")
				extra = append(extra, strings.ToLower(k), v)
			}
			h.get(1, "/h", extra...)
			h.get(3, "/h")
			resps, goaways, err := h.readUntil(ended(1, 3))
			if err != nil {
				t.Fatalf("%s", outcome(goaways, err))
			}
			if got := resps[1].status; got != fmt.Sprint(tc.status) {
				t.Errorf("status %s %q; want %d", got, resps[1].body, tc.status)
			} else if tc.status == 431 && string(resps[1].body) != "too many header fields\n" {
				t.Errorf("431 body %q; want the gateway's answer", resps[1].body)
			}
			if resps[3].status != "200" {
				t.Errorf("next stream: %+v; want 200", resps[3])
			}
		})
	}
	t.Run("upgrade", func(t *testing.T) {
		c := dial(t, tg.addr)
		io.WriteString(c, upgradeHead("GET", "/h", lines(limit+1)...))
		res, _ := readHTTP1(t, bufio.NewReader(c), "GET")
		if res.StatusCode != 431 {
			t.Fatalf("upgrade request with %d fields: %s; want 431, not upgraded", limit+1, res.Status)
		}
	})
	if !tg.events.has(EventRefused, ReasonHeaderFields) {
		t.Error("no header_fields refusal reported")
	}
}

// trailerNames is a Trailer field value declaring n distinct names.
func trailerNames(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("X-T%d", i)
	}
	return strings.Join(names, ",")
}
