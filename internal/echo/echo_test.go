package echo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"testing"
)

func TestEchoHandler(t *testing.T) {
	body := bytes.Repeat([]byte{0, 1, 2, 3, 4, 5, 6, 7}, 1<<17) // 1 MiB, streamed through the hash
	sum := sha256.Sum256(body)
	req := httptest.NewRequest("PUT", "http://example.test/a%2Fb/c?x=1&y=%20", bytes.NewReader(body))
	req.Header.Set("X-Mixed-Case", "v1")
	req.Header.Add("X-Mixed-Case", "v2")
	rec := httptest.NewRecorder()
	Handler(nil).ServeHTTP(rec, req)

	if rec.Code != http.StatusOK {
		t.Fatalf("status %d; want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q; want application/json", ct)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &fields); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body, err)
	}
	var keys []string
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	wantKeys := []string{"body_bytes", "body_sha256", "headers", "host", "method", "path", "proto", "query", "via"}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("fields %v; want exactly %v (README \"Running it\")", keys, wantKeys)
	}

	var got Response
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := Response{
		Via:        "", // not served by a gateway
		Proto:      "HTTP/1.1",
		Method:     "PUT",
		Host:       "example.test",
		Path:       "/a%2Fb/c",
		Query:      "x=1&y=%20",
		Headers:    map[string][]string{"x-mixed-case": {"v1", "v2"}},
		BodyBytes:  int64(len(body)),
		BodySHA256: hex.EncodeToString(sum[:]),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("echo:\n got %+v\nwant %+v", got, want)
	}
}

// errReader fails like a reset stream.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, http.ErrBodyReadAfterClose }

func TestEchoHandlerBodyError(t *testing.T) {
	req := httptest.NewRequest("POST", "/", errReader{})
	rec := httptest.NewRecorder()
	Handler(nil).ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("status %d for an unreadable body; want 400", rec.Code)
	}
}
