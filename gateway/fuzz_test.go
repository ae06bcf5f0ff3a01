package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/settings"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// The seed corpora under testdata/fuzz/ were captured from real clients;
// testdata/fuzz/README says how. `make fuzz-short` runs each target briefly;
// run one long with, for example:
//
//	go test ./gateway -run '^$' -fuzz '^FuzzClassify$' -fuzztime 1h
//	go test ./gateway -run '^$' -fuzz '^FuzzAfterUpgrade$' -fuzztime 1h -parallel 1

// listsToken is an oracle written apart from httpguts: does any of the
// field lines list tok, case-insensitively (RFC 9110 §5.6.1)?
func listsToken(lines []string, tok string) bool {
	for _, l := range lines {
		for _, e := range strings.Split(l, ",") {
			if asciiEqualFold(strings.Trim(e, " \t"), tok) {
				return true
			}
		}
	}
	return false
}

// asciiEqualFold compares case-insensitively in ASCII only: tokens are
// ASCII (RFC 9110 §5.6.2), and a non-ASCII letter that Unicode folds to an
// ASCII one (K, the Kelvin sign) names no token.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// FuzzClassify feeds whole HTTP/1.1 request heads to the gateway's upgrade
// decision — the gate serveHTTP applies (an "h2c" token in Upgrade), then
// classify — and checks it never panics and that what it accepts is what
// README "What each input gets" allows: an h2c token in Upgrade, an HTTP/1.1 (or later 1.x)
// request line, not CONNECT, "upgrade" in Connection, exactly one
// HTTP2-Settings that package settings decodes to the same payload, and a
// declared body within the limit.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		upgradeHead("GET", "/"),
		upgradeHead("POST", "/", "Content-Length: 5") + "hello",
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket, H2C\r\nConnection: keep-alive\r\nConnection: Upgrade\r\nHTTP2-Settings: AAMAAABk==\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2\r\nConnection: Upgrade\r\nHTTP2-Settings: \r\n\r\n",
		"GET / HTTP/1.0\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nHTTP2-Settings: \r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nHTTP2-Settings: \r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nHTTP2-Settings: AAQAAP//\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	gateways := []*Gateway{
		New(http.NotFoundHandler(), Config{}),
		New(http.NotFoundHandler(), Config{MaxUpgradeBody: -1}),
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil || r.ProtoMajor != 1 {
			// Unparsable, or not HTTP/1.x: net/http answers 400 or 505
			// before any handler runs.
			return
		}
		attempt := r.Method != "PRI" && httpguts.HeaderValuesContainsToken(r.Header["Upgrade"], "h2c")
		if want := r.Method != "PRI" && listsToken(r.Header["Upgrade"], "h2c"); attempt != want {
			t.Fatalf("Upgrade %q: headerHasToken says %v; want %v", r.Header["Upgrade"], attempt, want)
		}
		if !attempt {
			return // served as plain HTTP/1.1: never an upgrade
		}
		for _, g := range gateways {
			payload, reason, err := g.classify(r)
			p2, reason2, _ := g.classify(r)
			if reason != reason2 || !bytes.Equal(payload, p2) {
				t.Fatalf("classify is not deterministic: %q then %q", reason, reason2)
			}
			if reason != "" {
				if !slices.Contains(DeclineReasons(), reason) {
					t.Fatalf("decline reason %q is not a documented one", reason)
				}
				if payload != nil {
					t.Fatalf("declined (%s) with a payload %x", reason, []byte(payload))
				}
				if err != nil && reason != ReasonBadSettings && reason != ReasonMissingSettings && reason != ReasonDuplicateSettings {
					t.Fatalf("declined (%s) with an error %v; want errors only for HTTP2-Settings", reason, err)
				}
				if r.ProtoMinor == 0 && reason != ReasonHTTP10 {
					t.Fatalf("HTTP/1.0 request declined with %s; want http10", reason)
				}
				continue
			}
			// Accepted: every condition of README "What each input gets" that precedes the body.
			switch {
			case payload == nil:
				t.Fatal("accepted with a nil payload")
			case r.ProtoMinor == 0:
				t.Fatal("accepted an HTTP/1.0 request")
			case r.Method == http.MethodConnect:
				t.Fatal("accepted a CONNECT")
			case !listsToken(r.Header["Connection"], "upgrade"):
				t.Fatalf("accepted with Connection %q, which does not list upgrade", r.Header["Connection"])
			case len(r.Header.Values("HTTP2-Settings")) != 1:
				t.Fatalf("accepted with %d HTTP2-Settings fields; want exactly 1", len(r.Header.Values("HTTP2-Settings")))
			case len(payload)%6 != 0 || len(payload) > settings.MaxPayloadLen:
				t.Fatalf("accepted a payload of %d octets", len(payload))
			}
			dec, err := settings.Decode(r.Header.Get("HTTP2-Settings"))
			if err != nil || !bytes.Equal(dec, payload) {
				t.Fatalf("accepted payload %x; settings.Decode gives %x, %v", []byte(payload), []byte(dec), err)
			}
			if limit := g.cfg.maxUpgradeBody(); (limit < 0 && r.ContentLength != 0) || (limit >= 0 && r.ContentLength > limit) {
				t.Fatalf("accepted a declared body of %d with the limit at %d", r.ContentLength, limit)
			}
		}
	})
}

// fuzzGateway is the one gateway a FuzzAfterUpgrade worker process serves,
// for all its inputs; it lives as long as the process.
var fuzzGateway struct {
	once sync.Once
	addr string
	err  error
}

func fuzzGatewayAddr(t *testing.T) string {
	fuzzGateway.once.Do(func() {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "ok")
		})
		// Short timeouts: an input that stalls a connection must not
		// hold the worker.
		g := New(h, Config{PrefaceTimeout: time.Second, UpgradeBodyTimeout: time.Second, ReadHeaderTimeout: time.Second, IdleTimeout: 2 * time.Second})
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fuzzGateway.err = err
			return
		}
		go g.Serve(l)
		fuzzGateway.addr = l.Addr().String()
	})
	if fuzzGateway.err != nil {
		t.Fatal(fuzzGateway.err)
	}
	return fuzzGateway.addr
}

// FuzzAfterUpgrade is a connection-level target: for each input it performs
// a real upgrade on a fresh loopback connection, sends the client preface and
// then the input, half-closes, and reads until the gateway closes or sends
// GOAWAY (or 3s).
// Whatever the bytes, the gateway must not crash (a panic in any of its
// goroutines kills the fuzz worker), must answer the upgrade with the exact
// 101, and must serve a fresh connection afterwards. Run it with -parallel 1
// on a shared machine.
func FuzzAfterUpgrade(f *testing.F) {
	var seed bytes.Buffer
	fr := http2.NewFramer(&seed, nil)
	fr.WriteSettings()
	f.Add(bytes.Clone(seed.Bytes()))
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndStream: true, EndHeaders: true,
		BlockFragment: []byte{0x82, 0x86, 0x84, 0x41, 0x01, 'a'}}) // GET http / a
	f.Add(bytes.Clone(seed.Bytes()))
	f.Add([]byte("GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		addr := fuzzGatewayAddr(t)
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		var out bytes.Buffer
		out.WriteString(upgradeHead("GET", "/fuzz"))
		out.WriteString(http2.ClientPreface)
		out.Write(data)
		if _, err := c.Write(out.Bytes()); err != nil {
			t.Fatalf("writing the upgrade and %d bytes: %v", len(data), err)
		}
		c.(*net.TCPConn).CloseWrite()
		br := bufio.NewReader(c)
		got := make([]byte, len(response101))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != response101 {
			t.Fatalf("response %q, %v; want the 101", got, err)
		}
		// Read frames until the gateway closes or says GOAWAY: after a
		// connection error x/net lingers a second before it closes, which
		// would cap the fuzzer at one input a second.
		rf := http2.NewFramer(nil, br)
		for {
			f, err := rf.ReadFrame()
			if err != nil {
				if _, ok := err.(http2.StreamError); ok {
					continue
				}
				break
			}
			if _, ok := f.(*http2.GoAwayFrame); ok {
				break
			}
		}
		c.Close()

		// The gateway still serves.
		c2, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("gateway gone: %v", err)
		}
		defer c2.Close()
		c2.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c2, "GET /alive HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("fresh request after the input: %v %v; want 200", resp, err)
		}
		// Connections ended by GOAWAY linger a second on the server (x/net's
		// goAwayTimeout): let them drain now and then, and fail if they
		// do not — that would be a leak.
		if runtime.NumGoroutine() > 3000 {
			deadline := time.Now().Add(20 * time.Second)
			for runtime.NumGoroutine() > 1000 {
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines 20s after the last connections closed: a leak", runtime.NumGoroutine())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
}
