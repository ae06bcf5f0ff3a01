//go:build linux

package integration

// The attacks of README "Security", each against the built binary with
// its default flags and a memory limit, on loopback, bounded in count and
// time. Each asserts the bound that fails when the defence is taken away:
// peak RSS (VmHWM), a normal client served within a second throughout,
// the upstream's load in gateway mode, and the frame and metric that show
// the attack was seen.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The attacked gateways run as the Deployment in deploy/kubernetes runs
// them: GOMEMLIMIT 230 MiB (90% of the container's limit, which the binary
// would set itself), so a memory budget of half that; their peak RSS must
// stay under the container's limit, 256 MiB, past which the kernel would
// kill them.
const (
	attackMemLimit = 230 << 20
	attackRSSBound = 256 << 20
)

// vmHWM returns the peak resident set of the gateway process, in bytes.
func (g *gatewayProc) vmHWM(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/pid/status")
	return 0
}

// prober is a normal client: every 100 ms a request on a new HTTP/1.1
// connection and one on its HTTP/2 (prior knowledge) connection, each
// allowed a second.
type prober struct {
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	sent   int
	failed []string
	worst  time.Duration
}

func startProber(addr string) *prober {
	p := &prober{stop: make(chan struct{}), done: make(chan struct{})}
	h1 := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var pk http.Protocols
	pk.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Timeout: time.Second, Transport: &http.Transport{Protocols: &pk}}
	go func() {
		defer close(p.done)
		defer h2.CloseIdleConnections()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for name, c := range map[string]*http.Client{"h1": h1, "h2c": h2} {
				start := time.Now()
				res, err := c.Get("http://" + addr + "/probe")
				d := time.Since(start)
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if err == nil && res.StatusCode != 200 {
						err = fmt.Errorf("status %d", res.StatusCode)
					}
				}
				p.mu.Lock()
				p.sent++
				p.worst = max(p.worst, d)
				if err != nil {
					p.failed = append(p.failed, fmt.Sprintf("%s after %v: %v", name, d.Round(time.Millisecond), err))
				}
				p.mu.Unlock()
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// check stops the prober and fails the test unless every probe was served
// within a second.
func (p *prober) check(t *testing.T) {
	t.Helper()
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.failed) > 0 || p.sent < 2 {
		t.Errorf("normal client: %d of %d probes failed: %v", len(p.failed), p.sent, p.failed)
	}
	t.Logf("normal client: %d probes, slowest %v", p.sent, p.worst.Round(time.Millisecond))
}

// attackConn is an attacking HTTP/2 connection with prior knowledge,
// announcing a zero stream window so that no response body can be sent.
type attackConn struct {
	c    net.Conn
	fr   *http2.Framer
	henc *hpack.Encoder
	hbuf bytes.Buffer
	w    bytes.Buffer // frames built before they are written at once
	wf   *http2.Framer

	// Filled by the reader: resets by code, whether a GOAWAY came (and its
	// code), the streams answered with a status.
	mu      sync.Mutex
	resets  map[http2.ErrCode]int
	goaway  *http2.ErrCode
	status  map[string]int
	readErr error
	ended   chan struct{}
}

func dialAttack(t *testing.T, addr string, window uint32) *attackConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	a := &attackConn{c: c, resets: map[http2.ErrCode]int{}, status: map[string]int{}, ended: make(chan struct{})}
	a.fr = http2.NewFramer(c, bufio.NewReader(c))
	a.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	a.henc = hpack.NewEncoder(&a.hbuf)
	a.wf = http2.NewFramer(&a.w, nil)
	io.WriteString(&a.w, http2.ClientPreface)
	a.wf.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: window})
	go a.read()
	return a
}

// read reads the server's frames until the connection ends, acknowledging
// SETTINGS, never opening a window.
func (a *attackConn) read() {
	defer close(a.ended)
	for {
		f, err := a.fr.ReadFrame()
		a.mu.Lock()
		if err != nil {
			a.readErr = err
			a.mu.Unlock()
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				a.mu.Unlock()
				a.fr.WriteSettingsAck()
				continue
			}
		case *http2.RSTStreamFrame:
			a.resets[f.ErrCode]++
		case *http2.GoAwayFrame:
			code := f.ErrCode
			a.goaway = &code
		case *http2.MetaHeadersFrame:
			a.status[f.PseudoValue("status")]++
		}
		a.mu.Unlock()
	}
}

// headers builds a HEADERS frame with the fields.
func (a *attackConn) headers(id uint32, endStream bool, fields ...string) {
	a.hbuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		a.henc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	a.wf.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: a.hbuf.Bytes(), EndStream: endStream, EndHeaders: true})
}

// flush writes the frames built so far.
func (a *attackConn) flush() error {
	_, err := a.c.Write(a.w.Bytes())
	a.w.Reset()
	return err
}

func (a *attackConn) counts() (resets map[http2.ErrCode]int, goaway *http2.ErrCode, status map[string]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := map[http2.ErrCode]int{}
	for k, v := range a.resets {
		r[k] = v
	}
	s := map[string]int{}
	for k, v := range a.status {
		s[k] = v
	}
	return r, a.goaway, s
}

// prepare opens conns attacking connections, each announcing a zero
// window, and builds each one's frames with build; fire sends them. The
// frames are built before the prober starts, so that building them does
// not take the CPU the probes are timed on.
func prepare(t *testing.T, addr string, conns int, build func(a *attackConn, c int)) ([]*attackConn, int) {
	t.Helper()
	var attack []*attackConn
	sent := 0
	for c := range conns {
		a := dialAttack(t, addr, 0)
		build(a, c)
		sent += a.w.Len()
		attack = append(attack, a)
	}
	return attack, sent
}

// fire writes each attacking connection's frames.
func fire(t *testing.T, attack []*attackConn) {
	t.Helper()
	for _, a := range attack {
		if err := a.flush(); err != nil {
			t.Fatal(err)
		}
	}
}

// bombStreams fills a with the header-list amplification: streams streams,
// each repeating one 4 KB field (in the HPACK table after the first) 15
// times, about 60 KiB decoded, just under the header list limit.
func bombStreams(a *attackConn, streams int) {
	bomb := strings.Repeat("b", 4000)
	var extra []string
	for range 15 {
		extra = append(extra, "x-bomb", bomb)
	}
	for i := range streams {
		a.headers(uint32(1+2*i), true, request("GET", "/", extra...)...)
	}
}

// checkRSS fails the test when the gateway's peak RSS passed the
// container's limit, and returns it.
func checkRSS(t *testing.T, g *gatewayProc) int64 {
	t.Helper()
	hwm := g.vmHWM(t)
	if hwm > attackRSSBound {
		t.Errorf("peak RSS %d MiB; want under the container's limit, %d MiB", hwm>>20, attackRSSBound>>20)
	}
	return hwm
}

func request(method, path string, extra ...string) []string {
	return append([]string{":method", method, ":scheme", "http", ":authority", "attack.test", ":path", path}, extra...)
}

// settle waits for the gateway to have taken in what was sent: until the
// attacking connections have had no news for a while, or the deadline.
func settle(conns []*attackConn, quiet, deadline time.Duration) {
	end := time.Now().Add(deadline)
	last := ""
	stable := time.Now()
	for time.Now().Before(end) {
		var b strings.Builder
		for _, a := range conns {
			r, g, s := a.counts()
			fmt.Fprint(&b, r, g != nil, s)
		}
		if b.String() != last {
			last, stable = b.String(), time.Now()
		} else if time.Since(stable) > quiet {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAttackHeaderAmplification: the "HTTP/2 Bomb" class. Each connection
// announces a zero window, puts one 4 KB field in the HPACK table and opens
// 250 streams that repeat its one-octet reference up to the header list
// limit: about 60 KiB decoded for 16 octets sent. The responses can never
// be sent, so whatever the gateway keeps of the headers stays. It keeps a
// connection's share (1 MiB) and refuses the rest with REFUSED_STREAM.
func TestAttackHeaderAmplification(t *testing.T) {
	const conns, streams = 40, 250
	g := startGatewayWith(t, procLimits{env: []string{fmt.Sprintf("GOMEMLIMIT=%dMiB", attackMemLimit>>20)}}, "--log-level", "warn", "--access-log=false")
	attack, sent := prepare(t, g.Addr, conns, func(a *attackConn, _ int) { bombStreams(a, streams) })
	p := startProber(g.Addr)
	fire(t, attack)
	settle(attack, time.Second, 20*time.Second)
	p.check(t)
	hwm := checkRSS(t, g)
	refused := 0
	for _, a := range attack {
		r, _, _ := a.counts()
		refused += r[http2.ErrCodeRefusedStream]
	}
	t.Logf("%d connections × %d streams, %d KB sent: peak RSS %d MiB, %d streams refused", conns, streams, sent>>10, hwm>>20, refused)
	if refused == 0 {
		t.Error("no stream refused with REFUSED_STREAM")
	}
	if n := g.metricSum(t, `h2cgw_refused_total{reason="memory_stream"} `); n == 0 {
		t.Error("h2cgw_refused_total{reason=\"memory_stream\"} did not move")
	}
}

// TestAttackTrailerDeclarations: the GO-2026-6603 class. POSTs with their
// body left open under a zero window, each declaring in Trailer 1,908
// fields (on half the connections; 1,000 on the others), just under the
// header list limit as it was counted before that fix: the server would
// make room for every declared trailer. Both are answered 431 without
// reaching the handler: 1,908 by the HTTP/2 server itself, which now
// counts each declaration against the header list limit, 1,000 by the
// gateway's header field cap (200). 24 connections rather than README's 40:
// decoding 33 MB of header blocks already takes most of a two-core CI
// machine, and the binary before these bounds peaks at 386 MiB with them.
func TestAttackTrailerDeclarations(t *testing.T) {
	const conns, streams = 24, 250
	g := startGatewayWith(t, procLimits{env: []string{fmt.Sprintf("GOMEMLIMIT=%dMiB", attackMemLimit>>20)}}, "--log-level", "warn", "--access-log=false")
	names := make([]string, 1908)
	for i := range names {
		names[i] = "t" + strconv.Itoa(i)
	}
	attack, sent := prepare(t, g.Addr, conns, func(a *attackConn, c int) {
		trailer := strings.Join(names[:[]int{1908, 1000}[c%2]], ",")
		for i := range streams {
			a.headers(uint32(1+2*i), false, request("POST", "/", "trailer", trailer)...)
		}
	})
	p := startProber(g.Addr)
	fire(t, attack)
	settle(attack, time.Second, 20*time.Second)
	p.check(t)
	hwm := checkRSS(t, g)
	answered := 0
	for _, a := range attack {
		_, _, s := a.counts()
		answered += s["431"]
	}
	t.Logf("%d connections × %d POSTs declaring 1,908 or 1,000 trailers, %d KB sent: peak RSS %d MiB, %d answered 431", conns, streams, sent>>10, hwm>>20, answered)
	if answered == 0 {
		t.Error("no request answered 431")
	}
	if n := g.metricSum(t, `h2cgw_refused_total{reason="header_fields"} `); n == 0 {
		t.Error("h2cgw_refused_total{reason=\"header_fields\"} did not move")
	}
}

// holdingUpstream is an HTTP/1.1 upstream that holds every request 5 s
// whether or not the gateway gives up on it — a backend that keeps working
// after a disconnect — and counts what it was given.
type holdingUpstream struct {
	addr     string
	started  atomic.Int64
	inFlight atomic.Int64
	peak     atomic.Int64
	mu       sync.Mutex
	accepts  []time.Time
}

func startHoldingUpstream(t *testing.T, hold time.Duration) *holdingUpstream {
	t.Helper()
	u := &holdingUpstream{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = l.Addr().String()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u.started.Add(1)
			n := u.inFlight.Add(1)
			defer u.inFlight.Add(-1)
			for p := u.peak.Load(); n > p && !u.peak.CompareAndSwap(p, n); p = u.peak.Load() {
			}
			if hold == 0 {
				w.Header().Set("Connection", "close") // every request dials
			} else if r.URL.Path != "/probe" {
				time.Sleep(hold)
			}
			io.WriteString(w, "ok")
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				u.mu.Lock()
				u.accepts = append(u.accepts, time.Now())
				u.mu.Unlock()
			}
		},
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return u
}

// maxAcceptsPerSecond returns the most connections accepted within any one
// second.
func (u *holdingUpstream) maxAcceptsPerSecond() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	most := 0
	for i, a := range u.accepts {
		n := 0
		for _, b := range u.accepts[i:] {
			if b.Sub(a) < time.Second {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// TestAttackResets: rapid reset (CVE-2023-44487) and MadeYouReset
// (CVE-2025-8671) in gateway mode, against an upstream that holds each
// request 5 s. One connection sends 5,000 streams, each reset by the
// client, or made to be reset by the server (DATA after END_STREAM, a
// body longer than its content-length). The connection ends with GOAWAY
// ENHANCE_YOUR_CALM at the glitch limit (100 in 10 s); the upstream sees
// at most MAX_CONCURRENT_STREAMS requests, at most the dial rate's new
// connections a second.
func TestAttackResets(t *testing.T) {
	const streams = 5000
	for _, tc := range []struct {
		name string
		// stream builds stream id's frames.
		stream func(a *attackConn, id uint32)
	}{
		{"rapid reset", func(a *attackConn, id uint32) {
			a.headers(id, true, request("GET", "/work")...)
			a.wf.WriteRSTStream(id, http2.ErrCodeCancel)
		}},
		{"data after end stream", func(a *attackConn, id uint32) {
			a.headers(id, true, request("GET", "/work")...)
			a.wf.WriteData(id, false, []byte("x"))
		}},
		{"content-length overrun", func(a *attackConn, id uint32) {
			a.headers(id, false, request("POST", "/work", "content-length", "1")...)
			a.wf.WriteData(id, true, []byte("xx"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startHoldingUpstream(t, 5*time.Second)
			g := startGatewayWith(t, procLimits{env: []string{fmt.Sprintf("GOMEMLIMIT=%dMiB", attackMemLimit>>20)}},
				"--upstream", "http://"+up.addr, "--log-level", "warn", "--access-log=false")
			p := startProber(g.Addr)
			a := dialAttack(t, g.Addr, 1<<20)
			for i := range streams {
				tc.stream(a, uint32(1+2*i))
			}
			sent := a.w.Len()
			go a.flush() // the gateway stops reading at the GOAWAY
			select {
			case <-a.ended:
				time.Sleep(500 * time.Millisecond)
			case <-time.After(10 * time.Second):
				t.Error("the attacking connection was not ended within 10 s")
			}
			p.check(t)
			_, goaway, _ := a.counts()
			started, peak, dials := up.started.Load(), up.peak.Load(), up.maxAcceptsPerSecond()
			t.Logf("%d streams, %d KB sent: connection ended with GOAWAY %v; upstream: %d requests started, %d at once, %d new connections in a second at most",
				streams, sent>>10, goaway, started, peak, dials)
			if goaway == nil || *goaway != http2.ErrCodeEnhanceYourCalm {
				t.Errorf("attacking connection ended with GOAWAY %v; want ENHANCE_YOUR_CALM", goaway)
			}
			if peak > 250 {
				t.Errorf("upstream had %d requests at once; want at most MAX_CONCURRENT_STREAMS (250)", peak)
			}
			if dials > 256 {
				t.Errorf("upstream got %d new connections within a second; want at most the dial rate (256)", dials)
			}
			if n := g.metricSum(t, `h2cgw_refused_total{reason="glitches"} `); n != 1 {
				t.Errorf("h2cgw_refused_total{reason=\"glitches\"} = %v; want 1", n)
			}
		})
	}
}

// TestAttackUpgradeBodies: 400 upgrade POSTs at once (1,000 in README
// "Security"; 400 keep the 400 MB the test sends within CI's time), each declaring the
// 1 MiB body limit: some send it whole and then a preface announcing a
// zero window, some one octet short (the body never completes). An
// upgrade body costs at most its length and one 16 KiB chunk, and past
// the memory budget the next ones are declined ("memory") and streamed on
// HTTP/1.1.
func TestAttackUpgradeBodies(t *testing.T) {
	const conns, size = 400, 1 << 20
	g := startGatewayWith(t, procLimits{env: []string{fmt.Sprintf("GOMEMLIMIT=%dMiB", attackMemLimit>>20)}}, "--log-level", "warn", "--access-log=false")
	p := startProber(g.Addr)
	body := bytes.Repeat([]byte("u"), size)
	head := "POST /upload HTTP/1.1\r\nHost: attack.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n" +
		"HTTP2-Settings: AAQAAAAA\r\n" + // SETTINGS_INITIAL_WINDOW_SIZE = 0
		"Content-Length: " + strconv.Itoa(size) + "\r\n\r\n"
	var wg sync.WaitGroup
	var declined, upgraded atomic.Int32
	var cs []net.Conn
	for i := range conns {
		c, err := net.DialTimeout("tcp", g.Addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		short := i%2 == 1
		wg.Go(func() {
			b := body
			if short {
				b = body[:size-1]
			}
			c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.Write(append([]byte(head), b...)); err != nil || short {
				return
			}
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return
			}
			if res.StatusCode == http.StatusSwitchingProtocols {
				upgraded.Add(1)
				io.WriteString(c, http2.ClientPreface+"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00")
				return
			}
			declined.Add(1)
		})
	}
	wg.Wait()
	time.Sleep(time.Second)
	p.check(t)
	hwm := checkRSS(t, g)
	t.Logf("%d upgrade POSTs of 1 MiB (half one octet short): peak RSS %d MiB; of the whole ones %d upgraded, %d declined", conns, hwm>>20, upgraded.Load(), declined.Load())
	if declined.Load() == 0 {
		t.Error("no whole-body upgrade declined and served on HTTP/1.1")
	}
	if n := g.metricSum(t, `h2cgw_refused_total{reason="memory_upgrade"} `); n == 0 {
		t.Error("h2cgw_refused_total{reason=\"memory_upgrade\"} did not move")
	}
	for _, c := range cs {
		c.Close()
	}
}

// TestAttackDescriptors: 1,000 idle connections against a gateway whose
// RLIMIT_NOFILE is 256, in gateway mode. The connection cap derived from
// the limit leaves descriptors for the admin listener and the upstream
// connections: /healthz and a client already connected are served
// throughout, each request of which needs a new upstream connection (the
// upstream closes each after its response).
func TestAttackDescriptors(t *testing.T) {
	const nofile, idle = 256, 1000
	up := startHoldingUpstream(t, 0)
	g := startGatewayWith(t, procLimits{nofile: nofile}, "--upstream", "http://"+up.addr, "--upstream-max-conns", "16",
		"--log-level", "warn", "--access-log=false")
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	get := func(url string) error {
		req, _ := http.NewRequest("GET", url, nil)
		req.Close = strings.Contains(url, "/healthz")
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		io.Copy(io.Discard, res.Body)
		if res.StatusCode != 200 {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	}
	line, err := g.stderr.wait(time.Second, func(m map[string]any) bool { return m["message"] == "listening" })
	if err != nil {
		t.Fatal(err)
	}
	// 256 less 64 of headroom and the 16 upstream connections.
	if got, want := line["max_connections"], float64(nofile-64-16); got != want {
		t.Errorf("startup line: max_connections %v; want %v, derived from RLIMIT_NOFILE %d", got, want, nofile)
	}
	if err := get(g.URL("/probe")); err != nil { // the client connected before the flood
		t.Fatal(err)
	}
	var flood []net.Conn
	for range idle {
		c, err := net.DialTimeout("tcp", g.Addr, ioTimeout)
		if err != nil {
			t.Fatalf("flood connection %d: %v", len(flood), err)
		}
		flood = append(flood, c)
	}
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	var failed []string
	for i := range 20 {
		if err := get(g.URL("/probe?" + strconv.Itoa(i))); err != nil {
			failed = append(failed, "request: "+err.Error())
		}
		if err := get("http://" + g.Admin + "/healthz"); err != nil {
			failed = append(failed, "/healthz: "+err.Error())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(failed) > 0 {
		t.Errorf("with %d idle connections against RLIMIT_NOFILE %d: %d failures: %v", idle, nofile, len(failed), failed)
	}
}

// TestAttackOverload: the header-list amplification against a budget small
// enough to be exhausted (--memory-budget 8MiB). The overload is logged
// once at warn, on entering and on leaving, and shown by
// h2cgw_overload_active; /readyz stays 200 throughout (a restart would
// not help). Meanwhile accepting slows but goes on: an HTTP/1.1 client
// is served within a second; new HTTP/2 streams are refused (the client
// may retry them) until the attacking connections are gone, and then
// served.
func TestAttackOverload(t *testing.T) {
	const conns, streams = 16, 250
	g := startGateway(t, "--memory-budget", "8MiB", "--log-level", "warn", "--access-log=false")
	attack, _ := prepare(t, g.Addr, conns, func(a *attackConn, _ int) { bombStreams(a, streams) })
	fire(t, attack)
	settle(attack, time.Second, 20*time.Second)
	if v := g.metricSum(t, `h2cgw_overload_active{resource="memory"} `); v != 1 {
		t.Fatalf("h2cgw_overload_active{resource=\"memory\"} = %v with the budget held; want 1", v)
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, url := range []string{"http://" + g.Admin + "/readyz", g.URL("/probe")} {
		start := time.Now()
		res, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s while overloaded: %v", url, err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("GET %s while overloaded: %s after %v; want 200 within a second", url, res.Status, time.Since(start))
		}
	}
	for _, a := range attack {
		a.c.Close()
	}
	if _, err := g.stderr.wait(5*time.Second, func(m map[string]any) bool { return m["message"] == "memory budget recovered" }); err != nil {
		t.Fatalf("no recovery logged once the attack left: %v", err)
	}
	var pk http.Protocols
	pk.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Timeout: time.Second, Transport: &http.Transport{Protocols: &pk}}
	res, err := h2.Get(g.URL("/probe"))
	if err != nil {
		t.Fatalf("HTTP/2 after the attack: %v", err)
	}
	res.Body.Close()
	if v := g.metricSum(t, `h2cgw_overload_active{resource="memory"} `); v != 0 {
		t.Errorf("h2cgw_overload_active = %v after recovery; want 0", v)
	}
	logged := strings.Count(g.stderr.String(), `"message":"memory budget exhausted`)
	if logged != 1 {
		t.Errorf("overload logged %d times; want once, on entering", logged)
	}
}
