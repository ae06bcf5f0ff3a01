//go:build linux

// Command upgradeload is the benchmark's load client for what h2load cannot
// do: the h2c upgrade of RFC 7540 §3.2. Modes:
//
//	upgrade  c workers loop for -d: connect, GET with Upgrade: h2c, read the
//	         101, exchange prefaces and SETTINGS, read stream 1's response,
//	         close. Reports handshakes/s.
//	h1       the same loop as plain HTTP/1.1: connect, GET, read the
//	         response, close. The reference connection rate.
//	idle     open -n upgraded connections (stream 1 answered), print the
//	         result line, then hold them until stdin closes, SIGTERM, or
//	         -hold passes.
//	body     connect -n connections, then on all at once send a POST of -size
//	         bytes asking to upgrade, and read the answer (101 and HTTP/2, or
//	         HTTP/1.1 when the server declines).
//
// It prints one JSON line with the result on stdout.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/h2cgw/h2cgw/bench/internal/stats"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

type client struct {
	addr    string
	path    string
	timeout time.Duration
	// head is the request head, built once.
	head []byte
	// clientStart is the client preface and SETTINGS frame, built once.
	clientStart []byte
}

// upgradeSettings is what the client offers in HTTP2-Settings and in its
// SETTINGS frame: push off, 100 streams, the default window.
var upgradeSettings = []http2.Setting{
	{ID: http2.SettingEnablePush, Val: 0},
	{ID: http2.SettingMaxConcurrentStreams, Val: 100},
	{ID: http2.SettingInitialWindowSize, Val: 65535},
}

func encodeSettings(ss []http2.Setting) string {
	b := make([]byte, 0, 6*len(ss))
	for _, s := range ss {
		b = binary.BigEndian.AppendUint16(b, uint16(s.ID))
		b = binary.BigEndian.AppendUint32(b, s.Val)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func newClient(addr, path, mode string, bodySize int, timeout time.Duration) *client {
	c := &client{addr: addr, path: path, timeout: timeout}
	var h bytes.Buffer
	method := "GET"
	if mode == "body" {
		method = "POST"
	}
	fmt.Fprintf(&h, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: upgradeload\r\n", method, path, addr)
	if mode == "body" {
		fmt.Fprintf(&h, "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n", bodySize)
	}
	if mode != "h1" {
		fmt.Fprintf(&h, "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: %s\r\n", encodeSettings(upgradeSettings))
	}
	h.WriteString("\r\n")
	c.head = h.Bytes()

	var s bytes.Buffer
	s.WriteString(http2.ClientPreface)
	if err := http2.NewFramer(&s, nil).WriteSettings(upgradeSettings...); err != nil {
		panic(err) // a bytes.Buffer does not fail
	}
	c.clientStart = s.Bytes()
	return c
}

func (c *client) dial() (net.Conn, error) {
	return net.DialTimeout("tcp", c.addr, 5*time.Second)
}

// exchange sends the request (head and body) on conn and reads the answer:
// the 101 and stream 1's response on HTTP/2, or an HTTP/1.1 response. The
// connection stays open.
func (c *client) exchange(conn net.Conn, body []byte) (status int, upgraded bool, err error) {
	if err := conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, false, err
	}
	// The body is written while the answer is read: a server may answer
	// (or close) before it has read all of a large body.
	wrote := make(chan error, 1)
	if len(body) > 0 {
		go func() {
			bufs := net.Buffers{c.head, body}
			_, err := bufs.WriteTo(conn)
			wrote <- err
		}()
	} else {
		_, err := conn.Write(c.head)
		wrote <- err
	}
	br := bufio.NewReaderSize(conn, 8<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		if werr := <-wrote; werr != nil {
			return 0, false, fmt.Errorf("write request: %w", werr)
		}
		return 0, false, fmt.Errorf("read response head: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, false, fmt.Errorf("read HTTP/1.1 body: %w", err)
		}
		// The server answered: a write still under way gets the close.
		return resp.StatusCode, false, nil
	}
	if werr := <-wrote; werr != nil {
		return 0, false, fmt.Errorf("write request: %w", werr)
	}
	status, err = c.readStream1(conn, br)
	return status, true, err
}

// maxFrames bounds the frames read for one response.
const maxFrames = 10000

// readStream1 speaks the client side of HTTP/2 after the 101: preface and
// SETTINGS, an ACK for the server's SETTINGS, and frames until stream 1 ends.
func (c *client) readStream1(conn net.Conn, br *bufio.Reader) (int, error) {
	if _, err := conn.Write(c.clientStart); err != nil {
		return 0, fmt.Errorf("write preface: %w", err)
	}
	fr := http2.NewFramer(conn, br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	status := 0
	for range maxFrames {
		f, err := fr.ReadFrame()
		if err != nil {
			return 0, fmt.Errorf("read frame: %w", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return 0, fmt.Errorf("write SETTINGS ack: %w", err)
				}
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				if err := fr.WritePing(true, f.Data); err != nil {
					return 0, fmt.Errorf("write PING ack: %w", err)
				}
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 {
				if s, err := strconv.Atoi(f.PseudoValue("status")); err == nil && status == 0 {
					status = s
				}
				if f.StreamEnded() {
					return status, nil
				}
			}
		case *http2.DataFrame:
			if f.StreamID == 1 && f.StreamEnded() {
				return status, nil
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return 0, fmt.Errorf("stream 1 reset: %v", f.ErrCode)
			}
		case *http2.GoAwayFrame:
			if f.LastStreamID < 1 || f.ErrCode != http2.ErrCodeNo {
				return 0, fmt.Errorf("GOAWAY %v before stream 1 ended", f.ErrCode)
			}
		}
	}
	return 0, errors.New("no end of stream 1 after too many frames")
}

// loop is the upgrade and h1 modes: workers each run connect → exchange →
// close until the deadline.
func loop(c *client, mode string, workers int, d time.Duration) *stats.Load {
	const maxIterations = 10_000_000 // per worker; the deadline comes first
	start := time.Now()
	end := start.Add(d)
	parts := make([]*stats.Load, workers)
	var wg sync.WaitGroup
	for w := range workers {
		parts[w] = stats.NewLoad(mode)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := parts[w]
			failsInARow := 0
			for i := 0; i < maxIterations && time.Now().Before(end); i++ {
				status, upgraded, err := c.once()
				r.Record(status, upgraded, err)
				if err != nil {
					failsInARow++
					if failsInARow > 10 {
						time.Sleep(10 * time.Millisecond) // a dead server is not a busy loop
					}
				} else {
					failsInARow = 0
				}
			}
		}()
	}
	wg.Wait()
	r := stats.NewLoad(mode)
	for _, p := range parts {
		r.Add(p)
	}
	r.ElapsedS = time.Since(start).Seconds()
	r.Rate = float64(r.OK) / r.ElapsedS
	return r
}

func (c *client) once() (int, bool, error) {
	conn, err := c.dial()
	if err != nil {
		return 0, false, err
	}
	defer conn.Close()
	return c.exchange(conn, nil)
}

// openAll connects n times with parallelism p and, if exchange is set, runs
// an exchange (with body) on each; it returns the connections that succeeded.
func openAll(c *client, n, p int, body []byte, exchange bool, r *stats.Load, budget time.Duration) []net.Conn {
	deadline := time.Now().Add(budget)
	conns := make([]net.Conn, n)
	var mu sync.Mutex // guards r
	sem := make(chan struct{}, p)
	var wg sync.WaitGroup
	for i := range n {
		if time.Now().After(deadline) {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			conn, err := c.dial()
			if err == nil && exchange {
				var status int
				var upgraded bool
				status, upgraded, err = c.exchange(conn, body)
				mu.Lock()
				r.Record(status, upgraded, err)
				mu.Unlock()
				if err != nil {
					conn.Close()
					return
				}
			} else if err != nil {
				mu.Lock()
				r.Record(0, false, err)
				mu.Unlock()
				return
			}
			conns[i] = conn
		}()
	}
	wg.Wait()
	out := conns[:0]
	for _, c := range conns {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

func main() {
	addr := flag.String("addr", "", "server host:port (required)")
	mode := flag.String("mode", "upgrade", "upgrade, h1, idle or body")
	path := flag.String("path", "/", "request path")
	workers := flag.Int("c", 16, "concurrent workers (upgrade, h1); parallel opens (idle, body)")
	d := flag.Duration("d", 5*time.Second, "run time (upgrade, h1)")
	n := flag.Int("n", 1000, "connections (idle, body)")
	size := flag.Int("size", 1<<20, "request body bytes (body)")
	timeout := flag.Duration("timeout", 10*time.Second, "I/O deadline per exchange")
	hold := flag.Duration("hold", 5*time.Minute, "idle: longest time to hold the connections")
	flag.Parse()
	if *addr == "" || *workers < 1 || *n < 1 {
		flag.Usage()
		os.Exit(2)
	}
	c := newClient(*addr, *path, *mode, *size, *timeout)
	out := json.NewEncoder(os.Stdout)
	switch *mode {
	case "upgrade", "h1":
		out.Encode(loop(c, *mode, *workers, *d))
	case "idle":
		r := stats.NewLoad(*mode)
		start := time.Now()
		conns := openAll(c, *n, *workers, nil, true, r, 2*time.Minute)
		r.Open = len(conns)
		r.ElapsedS = time.Since(start).Seconds()
		r.Rate = float64(r.OK) / r.ElapsedS
		out.Encode(r)
		waitRelease(*hold)
		for _, conn := range conns {
			conn.Close()
		}
	case "body":
		r := stats.NewLoad(*mode)
		// All connections first, so that the bodies are in flight at
		// once: the server holds them concurrently.
		conns := openAll(c, *n, *workers, nil, false, r, time.Minute)
		body := bytes.Repeat([]byte("b"), *size)
		start := time.Now()
		var mu sync.Mutex // guards r
		var wg sync.WaitGroup
		for _, conn := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				status, upgraded, err := c.exchange(conn, body)
				mu.Lock()
				r.Record(status, upgraded, err)
				mu.Unlock()
			}()
		}
		wg.Wait()
		r.ElapsedS = time.Since(start).Seconds()
		r.Rate = float64(r.OK) / r.ElapsedS
		out.Encode(r)
	default:
		fmt.Fprintf(os.Stderr, "upgradeload: unknown -mode %q\n", *mode)
		os.Exit(2)
	}
}

// waitRelease returns when stdin reaches EOF, a SIGTERM or SIGINT arrives, or
// hold passes.
func waitRelease(hold time.Duration) {
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-eof:
	case <-sig:
	case <-time.After(hold):
	}
}
