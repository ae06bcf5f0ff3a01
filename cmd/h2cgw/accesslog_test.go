package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/proxy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// chainServer serves h behind the binary's per-stream chain (access log,
// then metrics) on an HTTP/1.1 test server.
func chainServer(t *testing.T, h http.Handler) (*httptest.Server, *logSink, *metrics) {
	t.Helper()
	logs := newLogSink(t)
	m := newMetrics("test")
	srv := httptest.NewServer(accessLog(zerolog.New(logs).Hook(timestamp{}), new(atomic.Bool), m.middleware(h)))
	t.Cleanup(srv.Close)
	return srv, logs, m
}

func TestAccessLogFields(t *testing.T) {
	srv, logs, m := chainServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		proxy.NoteFromContext(r.Context()).Upstream = "http://up:1"
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "short and stout")
	}))
	resp, err := http.Post(srv.URL+"/tea?x=1", "text/plain", strings.NewReader("twelve bytes"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	line := logs.waitMessage(t, "request", nil)
	for k, want := range map[string]any{
		"level": "info", "via": "", "proto": "HTTP/1.1", "method": "POST", "path": "/tea",
		"host": strings.TrimPrefix(srv.URL, "http://"), "status": float64(418),
		"bytes_in": float64(12), "bytes_out": float64(15), "upstream": "http://up:1", "aborted": false,
	} {
		if line[k] != want {
			t.Errorf("%s = %v (%T); want %v", k, line[k], line[k], want)
		}
	}
	if d, ok := line["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("duration_ms = %v; want a number of milliseconds", line["duration_ms"])
	}
	if _, err := time.Parse(timeFormat, fmt.Sprint(line["time"])); err != nil || !strings.Contains(fmt.Sprint(line["time"]), ".") {
		t.Errorf("time = %v; want a timestamp to the millisecond (%v)", line["time"], err)
	}
	if ua, _ := line["user_agent"].(string); !strings.HasPrefix(ua, "Go-http-client/") {
		t.Errorf("user_agent = %q; want Go's client", ua)
	}
	if id, _ := line["request_id"].(string); len(id) != 32 {
		t.Errorf("request_id = %q; want a generated 32-digit id", id)
	}
	if _, ok := line["query"]; ok {
		t.Errorf("query = %v; want none without --access-log-query", line["query"])
	}
	if r, _ := line["remote"].(string); !strings.HasPrefix(r, "127.0.0.1:") {
		t.Errorf("remote = %q; want the client's address", r)
	}
	// The access line is written after the metrics middleware returned.
	if got := testutil.ToFloat64(m.requests.WithLabelValues("unknown", "4xx")); got != 1 {
		t.Errorf("requests_total{unknown,4xx} = %v; want 1", got)
	}
	if got := testutil.ToFloat64(m.inFlight); got != 0 {
		t.Errorf("requests_in_flight = %v; want 0", got)
	}
}

func TestAccessLogAborted(t *testing.T) {
	srv, logs, m := chainServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler) // what ReverseProxy does when an upstream dies midway
	}))
	// A POST, which the client does not retry.
	if resp, err := http.Post(srv.URL, "text/plain", strings.NewReader("x")); err == nil {
		resp.Body.Close()
		t.Errorf("an aborted handler answered %d; want the connection cut", resp.StatusCode)
	}
	line := logs.waitMessage(t, "request", nil)
	if line["aborted"] != true {
		t.Errorf("aborted = %v; want true", line["aborted"])
	}
	if got := testutil.ToFloat64(m.inFlight); got != 0 {
		t.Errorf("requests_in_flight = %v after a panic; want 0", got)
	}
}

// The recorder must keep what streaming and tunnelling handlers need.
func TestRecorderFlushes(t *testing.T) {
	clientGotFirst := make(chan struct{})
	srv, _, _ := chainServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("the chain's writer is not an http.Flusher")
		}
		io.WriteString(w, "first\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		select {
		case <-clientGotFirst:
		case <-time.After(waitTimeout):
			t.Error("the client never saw the flushed line")
			return
		}
		io.WriteString(w, "second\n")
	}))
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if l, err := br.ReadString('\n'); err != nil || l != "first\n" {
		t.Fatalf("first line %q, %v", l, err)
	}
	close(clientGotFirst)
	if l, err := br.ReadString('\n'); err != nil || l != "second\n" {
		t.Fatalf("second line %q, %v", l, err)
	}
}

func TestRecorderHijacks(t *testing.T) {
	srv, logs, _ := chainServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Hijacker); !ok {
			t.Error("the chain's writer is not an http.Hijacker")
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer c.Close()
		io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		io.WriteString(c, "echo "+line)
	}))
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitTimeout))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\nping\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("response %v, %v; want 101", resp, err)
	}
	if l, err := br.ReadString('\n'); l != "echo ping\n" {
		t.Errorf("tunnel answered %q, %v; want \"echo ping\\n\"", l, err)
	}
	if line := logs.waitMessage(t, "request", nil); line["status"] != float64(101) {
		t.Errorf("access log status %v for a hijacked 101; want 101", line["status"])
	}
}

func TestRecorderTrailers(t *testing.T) {
	srv, _, _ := chainServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		io.WriteString(w, "body")
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "fine")
	}))
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
		t.Errorf("trailer Grpc-Status %q; want 0", got)
	}
	if got := resp.Trailer.Get("Grpc-Message"); got != "fine" {
		t.Errorf("trailer Grpc-Message %q; want fine", got)
	}
}

// chanWriter passes every write it gets on a channel.
type chanWriter chan string

func (c chanWriter) Write(p []byte) (int, error) {
	c <- string(p)
	return len(p), nil
}

func TestBatchWriter(t *testing.T) {
	t.Run("waits for the delay, then writes the lines in one batch", func(t *testing.T) {
		out := make(chanWriter, 4)
		b := newBatchWriter(out, 10*time.Millisecond)
		defer b.Close()
		b.Write([]byte("one\n"))
		b.Write([]byte("two\n"))
		select {
		case got := <-out:
			if got != "one\ntwo\n" {
				t.Errorf("batch: got %q; want %q", got, "one\ntwo\n")
			}
		case <-time.After(waitTimeout):
			t.Fatal("nothing written after the delay")
		}
		// The timer is armed again by the next line.
		b.Write([]byte("three\n"))
		select {
		case got := <-out:
			if got != "three\n" {
				t.Errorf("second batch: got %q; want %q", got, "three\n")
			}
		case <-time.After(waitTimeout):
			t.Fatal("second batch not written after the delay")
		}
	})
	t.Run("writes a full batch at once", func(t *testing.T) {
		out := make(chanWriter, 4)
		b := newBatchWriter(out, time.Hour)
		defer b.Close()
		line := strings.Repeat("x", 1023) + "\n"
		for range accessLogBatchBytes / len(line) {
			b.Write([]byte(line))
		}
		select {
		case got := <-out:
			if len(got) != accessLogBatchBytes {
				t.Errorf("batch: got %d bytes; want %d", len(got), accessLogBatchBytes)
			}
		default:
			t.Fatal("a full batch was not written at once")
		}
	})
	t.Run("Close writes what is left, then writes through", func(t *testing.T) {
		out := make(chanWriter, 4)
		b := newBatchWriter(out, time.Hour)
		b.Write([]byte("pending\n"))
		select {
		case got := <-out:
			t.Fatalf("written before the delay or Close: %q", got)
		default:
		}
		b.Close()
		if got := <-out; got != "pending\n" {
			t.Errorf("at Close: got %q; want %q", got, "pending\n")
		}
		b.Write([]byte("late\n"))
		if got := <-out; got != "late\n" {
			t.Errorf("after Close: got %q; want %q", got, "late\n")
		}
	})
}
