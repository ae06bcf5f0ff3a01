package integration

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestGracefulShutdown: SIGTERM while a slow request is in flight on an
// upgraded connection (README "Shutdown"). The client sees GOAWAY, the request still
// completes with 200, and the process exits 0 — net/http's own Shutdown
// would neither signal nor wait for the hijacked connection (golang/go#26682).
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()

	arrived := make(chan struct{})
	release := make(chan struct{})
	const slowBody = "finished after the signal"
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, slowBody)
	}))
	t.Cleanup(upstream.Close)

	g := startGateway(t, "--upstream", upstream.URL, "--shutdown-timeout", "15s")
	// However the test ends, unblock the upstream before the gateway's
	// cleanup waits for its drain (cleanups run last-registered first).
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})

	r := dialRaw(t, g.Addr)
	r.upgrade("GET", "/slow")
	r.preface()
	select {
	case <-arrived:
	case <-time.After(ioTimeout):
		t.Fatalf("the slow request did not reach the upstream within %v", ioTimeout)
	}

	exited := make(chan error, 1)
	go func() { exited <- g.stop() }()

	// Frames until the GOAWAY; stream 1 must not have ended before it.
	var goaway *http2.GoAwayFrame
	for goaway == nil {
		f, err := r.readFrame()
		if err != nil {
			t.Fatalf("waiting for GOAWAY after SIGTERM: %v", err)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			goaway = f
		case *http2.MetaHeadersFrame, *http2.DataFrame, *http2.RSTStreamFrame:
			if f.Header().StreamID == 1 {
				t.Fatalf("stream 1 answered before the GOAWAY: %v", f.Header())
			}
		}
	}
	if goaway.ErrCode != http2.ErrCodeNo {
		t.Errorf("GOAWAY error code: got %v; want NO_ERROR", goaway.ErrCode)
	}
	if goaway.LastStreamID < 1 {
		t.Errorf("GOAWAY last stream id: got %d; want ≥ 1 (stream 1 is in flight)", goaway.LastStreamID)
	}

	// The in-flight request completes after the GOAWAY.
	close(release)
	released = true
	status, body := "", []byte(nil)
	for done := false; !done; {
		f, err := r.readFrame()
		if err != nil {
			t.Fatalf("reading stream 1 after GOAWAY (status %q, body %q): %v", status, body, err)
		}
		if f.Header().StreamID != 1 {
			continue
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			status = f.PseudoValue("status")
			done = f.StreamEnded()
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			done = f.StreamEnded()
		case *http2.RSTStreamFrame:
			t.Fatalf("stream 1 reset with %v during the shutdown", f.ErrCode)
		}
	}
	if status != "200" || string(body) != slowBody {
		t.Errorf("stream 1: got %s %q; want 200 %q", status, body, slowBody)
	}

	// The server closes the drained connection, then exits 0.
	for {
		if _, err := r.readFrame(); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("after the drain: got %v; want the server to close the connection", err)
			}
			break
		}
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(stopTimeout + time.Second):
		t.Fatal("the gateway did not exit") // unreachable: stop is bounded
	}
}
