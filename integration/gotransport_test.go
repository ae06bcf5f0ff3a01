package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestGoHTTP2Transport: Go's own HTTP/2 client, prior knowledge, with 50
// streams open at once on one connection.
func TestGoHTTP2Transport(t *testing.T) {
	t.Parallel()
	g := startGateway(t)

	var dials atomic.Int32
	tr := &http2.Transport{
		AllowHTTP: true,
		// Prior knowledge: a plain TCP connection where the transport
		// expects TLS.
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 2 * ioTimeout}
	// One request first, so that the connection is up, with the server's
	// SETTINGS (250 streams) read, before the 50 start: built with Go 1.27
	// the transport is net/http's, which may dial once per request that
	// finds no connection yet, a client's choice the gateway cannot see.
	if resp, err := client.Get(g.URL("/warm")); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	// Each body is a pipe: the first half is written, and the write
	// returns, only once the transport has opened the stream and is
	// sending it; the stream stays open until the second half and the
	// close. Closing the bodies only after all 50 first halves went out
	// proves 50 streams were open at once.
	const streams = 50
	const half = 4 << 10
	type result struct {
		body []byte
		resp *http.Response
		data []byte
		err  error
	}
	results := make([]result, streams)
	writers := make([]*io.PipeWriter, streams)
	var wg sync.WaitGroup
	for i := range streams {
		body := randomBytes(t, 2*half)
		pr, pw := io.Pipe()
		writers[i] = pw
		results[i].body = body
		req, err := http.NewRequest("POST", g.URL(fmt.Sprintf("/stream/%d", i)), pr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			r.resp, r.err = client.Do(req)
			if r.err == nil {
				r.data, r.err = io.ReadAll(r.resp.Body)
				r.resp.Body.Close()
			}
			// Unblock a writer whose request failed.
			pr.CloseWithError(io.ErrClosedPipe)
		}()
	}
	firstHalves := make(chan error, streams)
	for i, pw := range writers {
		go func() {
			_, err := pw.Write(results[i].body[:half])
			firstHalves <- err
		}()
	}
	timeout := time.After(ioTimeout)
	for range streams {
		select {
		case err := <-firstHalves:
			if err != nil {
				t.Fatalf("writing a first half: %v", err)
			}
		case <-timeout:
			t.Fatalf("the 50 streams were not all open within %v", ioTimeout)
		}
	}
	for i, pw := range writers {
		if _, err := pw.Write(results[i].body[half:]); err != nil {
			t.Fatalf("writing a second half: %v", err)
		}
		pw.Close()
	}
	wg.Wait()

	if n := dials.Load(); n != 1 {
		t.Errorf("the transport dialled %d connections; want 1", n)
	}
	for i, r := range results {
		if r.err != nil {
			t.Errorf("stream %d: %v", i, r.err)
			continue
		}
		if r.resp.StatusCode != http.StatusOK || r.resp.Proto != "HTTP/2.0" {
			t.Errorf("stream %d: got %s %d; want HTTP/2.0 200", i, r.resp.Proto, r.resp.StatusCode)
		}
		parseEcho(t, r.data).check(t, "h2c-prior-knowledge", "HTTP/2.0", "POST", fmt.Sprintf("/stream/%d", i), r.body)
	}
}
