package integration

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

const hintHAProxy = "apt-get install -y haproxy (or ./scripts/install-test-tools.sh)"

// The clients' own addresses, apart from HAProxy's (127.0.0.1, the one
// address the gateways trust): what the upstream sees in X-Forwarded-For
// tells whether the PROXY header carried the client through. Linux routes
// all of 127.0.0.0/8 to the loopback.
const (
	curlClient = "127.0.0.2"
	loadClient = "127.0.0.3"
)

// The rolling restart: restartRounds rounds, each gateway restarted in turn
// in each. Its load: loadWorkers clients, each with its own HTTP/2
// connection through HAProxy, each starting one request every
// loadWorkers/loadRate seconds (200 requests/s in all) for as long as the
// restarts take, plus loadMargin before the first and after the last.
const (
	loadWorkers = 4
	loadRate    = 200
	loadMargin  = time.Second
	// restartRounds is how many times each gateway is restarted, in turn.
	restartRounds = 2
	maxAttempts   = 5 // per request: the first try and up to 4 allowed retries
	// upstreamWork is how long the upstream holds each load request, so
	// that requests are in flight on the gateway a SIGTERM stops.
	upstreamWork = 20 * time.Millisecond
)

// TestScaleOut: HAProxy in TCP mode (`send-proxy-v2`, round robin, health
// checks on /readyz) in front of three gateways (--proxy-protocol, gateway
// mode, one upstream). curl's upgrade and prior-knowledge requests through
// HAProxy reach the upstream with curl's own address in X-Forwarded-For.
// Then a rolling restart under a steady load: each gateway in turn gets
// SIGTERM, exits 0 and starts again on its ports, and no request fails. The
// client retries only what RFC 9113 lets it (§6.8, §8.7): a stream the
// server's GOAWAY marked unprocessed, or refused (REFUSED_STREAM), or a
// connection that could not be made at all; every retry is counted, and the
// upstream checks that no request reached it twice.
func TestScaleOut(t *testing.T) {
	t.Parallel()
	haproxy := lookHAProxy(t)
	curl := requireTool(t, "curl", hintCurl)

	up := newCountingUpstream(t)
	gwArgs := []string{
		"--upstream", up.URL,
		"--proxy-protocol", "--proxy-protocol-trusted", "127.0.0.1/32",
		"--access-log=false",
	}
	var gws [3]*gatewayProc
	for i := range gws {
		gws[i] = startGateway(t, gwArgs...)
	}
	hp := startHAProxy(t, haproxy, gws[:])

	// Both HTTP/2 entry paths through HAProxy: the upstream sees curl's
	// address, not HAProxy's.
	for _, mode := range []struct{ flag, line string }{
		{"--http2", "< HTTP/1.1 101 Switching Protocols"},
		{"--http2-prior-knowledge", "< HTTP/2 200"},
	} {
		out, errOut, err := runTool(t, curl, "-sS", "-v", mode.flag, "--interface", curlClient,
			"-H", "X-Req: curl"+mode.flag, "http://"+hp.addr+"/whoami")
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", mode.flag, err, errOut)
		}
		if want := "xff=" + curlClient; out != want {
			t.Errorf("curl %s: upstream answered %q; want %q (the client's own address)", mode.flag, out, want)
		}
		if !hasLinePrefix(errOut, mode.line) || !hasLinePrefix(errOut, "< HTTP/2 200") {
			t.Errorf("curl %s: no %q and HTTP/2 200 in:\n%s", mode.flag, mode.line, errOut)
		}
	}

	// The rolling restart, under load.
	load := startLoad(t, hp.addr)
	time.Sleep(loadMargin) // steady load before the first restart: part of the stated load, not synchronisation
	var drained int64      // requests in flight on a gateway at its SIGTERM, all rounds
	restart := func(round, i int) {
		g, name := gws[i], serverName(i)
		served := g.metricSum(t, "h2cgw_requests_total{")
		// Racy by nature (the scrape comes just before the signal), and
		// so only reported: requests this gateway had to drain.
		inFlight := g.metricSum(t, "h2cgw_requests_in_flight ")
		drained += inFlight
		start := time.Now()
		if err := g.stop(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		stopped := time.Since(start)
		hp.waitStatus(t, name, "DOWN")
		gws[i] = startGateway(t, append(gwArgs, "--listen", g.Addr, "--admin-listen", g.Admin)...)
		hp.waitStatus(t, name, "UP")
		t.Logf("round %d, %s: served %d requests; SIGTERM with %d in flight on it; exit 0 after %v; back in rotation %v after the signal",
			round+1, name, served, inFlight, stopped.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
	for round := range restartRounds {
		for i := range gws {
			restart(round, i)
		}
	}
	time.Sleep(loadMargin)
	r := load.stop()

	t.Logf("load: %d workers, %d requests/s target for %v, %d restarts: sent %d (%.0f/s), succeeded %d, failed %d, retried %d (%s); %d in flight on a gateway at its SIGTERM",
		loadWorkers, loadRate, r.duration.Round(time.Millisecond), restartRounds*len(gws), r.sent, float64(r.sent)/r.duration.Seconds(),
		r.ok, r.failed, r.retried, r.retriedBy, drained)
	if r.failed != 0 {
		t.Errorf("%d requests failed:\n%s", r.failed, strings.Join(r.failures, "\n"))
	}
	if min := int64(0.8 * loadRate * r.duration.Seconds()); r.sent < min {
		t.Errorf("sent %d requests in %v; want at least %d for a steady %d/s", r.sent, r.duration, min, loadRate)
	}
	seen, dup, badXFF := up.load()
	if seen != r.ok || dup != 0 {
		t.Errorf("the upstream served %d load requests, %d of them more than once; want each of the %d successes exactly once", seen, dup, r.ok)
	}
	if len(badXFF) > 0 {
		t.Errorf("X-Forwarded-For other than the client's %s: %q", loadClient, badXFF)
	}
}

func serverName(i int) string { return "g" + strconv.Itoa(i) }

// lookHAProxy finds haproxy, which Debian installs in /usr/sbin (not on
// every user's PATH).
func lookHAProxy(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err != nil {
		if fi, err := os.Stat("/usr/sbin/haproxy"); err == nil && !fi.IsDir() {
			return "/usr/sbin/haproxy"
		}
	}
	return requireTool(t, "haproxy", hintHAProxy)
}

// countingUpstream answers every request with the X-Forwarded-For it got,
// and counts the load's requests by their X-Req id.
type countingUpstream struct {
	*httptest.Server
	mu     sync.Mutex     // guards the fields below
	byID   map[string]int // load request id → times served
	badXFF []string       // load requests whose X-Forwarded-For was not loadClient
}

func newCountingUpstream(t *testing.T) *countingUpstream {
	u := &countingUpstream{byID: make(map[string]int)}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		xff := r.Header.Get("X-Forwarded-For")
		if id := r.Header.Get("X-Req"); strings.HasPrefix(id, "load-") {
			time.Sleep(upstreamWork) // the deliberate work of the request
			u.mu.Lock()
			u.byID[id]++
			if xff != loadClient && len(u.badXFF) < 10 {
				u.badXFF = append(u.badXFF, xff)
			}
			u.mu.Unlock()
		}
		io.WriteString(w, "xff="+xff)
	}))
	t.Cleanup(u.Close)
	return u
}

// load returns how many distinct load requests were served, how many were
// served more than once, and the wrong X-Forwarded-For values seen.
func (u *countingUpstream) load() (seen, dup int64, badXFF []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, n := range u.byID {
		seen++
		if n > 1 {
			dup++
		}
	}
	return seen, dup, u.badXFF
}

// metricSum scrapes the gateway's /metrics and sums the series whose line
// starts with prefix (a name and "{", or a name and " ").
func (g *gatewayProc) metricSum(t *testing.T, prefix string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + g.Admin + "/metrics")
	if err != nil {
		t.Fatalf("scraping %s: %v", g.Admin, err)
	}
	defer resp.Body.Close()
	var n int64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			f := strings.Fields(sc.Text())
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += int64(v)
		}
	}
	return n
}

// haproxyProc is a running HAProxy with its stats socket.
type haproxyProc struct {
	addr   string        // the frontend, 127.0.0.1:port
	socket string        // the stats socket, for the servers' states
	exited chan struct{} // closed when the process has exited
	output *lineLog
}

// startHAProxy writes a config for HAProxy in TCP mode in front of gws,
// starts it and waits until every server is UP.
//
//   - send-proxy-v2 on each server: the PROXY header the gateways require
//     from 127.0.0.1.
//   - Health checks: GET /readyz on each gateway's admin port every 100 ms,
//     DOWN at the first failure (503 from the start of a shutdown, then a
//     refused connection), UP after two passes. With "port" the checks go
//     without a PROXY header, as the admin listener wants.
//   - retries 3 with redispatch on every retry: a connection a stopping
//     gateway refuses (its listener closed, HAProxy not yet aware) goes to
//     another one. Nothing was sent on it, so nothing is replayed.
func startHAProxy(t *testing.T, path string, gws []*gatewayProc) *haproxyProc {
	t.Helper()
	dir := t.TempDir()
	hp := &haproxyProc{addr: freeAddr(t), socket: filepath.Join(dir, "stats.sock")}
	var servers strings.Builder
	for i, g := range gws {
		_, adminPort, _ := net.SplitHostPort(g.Admin)
		fmt.Fprintf(&servers, "    server %s %s check port %s\n", serverName(i), g.Addr, adminPort)
	}
	cfg := fmt.Sprintf(`global
    log stderr format raw local0 notice
    stats socket %s mode 600 level admin
    maxconn 1024

defaults
    mode tcp
    log global
    timeout connect 500ms
    timeout client 30s
    timeout server 30s
    timeout check 500ms
    retries 3
    option redispatch 1

frontend gateways
    bind %s
    default_backend gateways

backend gateways
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
    default-server send-proxy-v2 inter 100ms fall 1 rise 2
%s`, hp.socket, hp.addr, servers.String())
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := runTool(t, path, "-c", "-f", cfgPath); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, errOut, cfg)
	}

	stderr := newLineLog()
	cmd := exec.Command(path, "-db", "-f", cfgPath)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	exited := make(chan struct{})
	hp.exited, hp.output = exited, stderr
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // HAProxy's hard stop: the test is over
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("haproxy config:\n%s\nhaproxy output:\n%s", cfg, stderr.String())
		}
	})
	for i := range gws {
		hp.waitStatus(t, serverName(i), "UP")
	}
	return hp
}

// freeAddr returns a loopback address with a port that was free a moment
// ago: HAProxy cannot report a port 0 it bound.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// status returns the servers' states ("UP", "DOWN", "UP 1/2", ...) from
// the stats socket's "show stat".
func (hp *haproxyProc) status() (map[string]string, error) {
	c, err := net.DialTimeout("unix", hp.socket, ioTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, "show stat\n"); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(b), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		return nil, fmt.Errorf("show stat: %v: %q", err, b)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	states := map[string]string{}
	for _, row := range rows[1:] {
		if len(row) > col["status"] && row[col["pxname"]] == "gateways" {
			states[row[col["svname"]]] = row[col["status"]]
		}
	}
	return states, nil
}

// waitStatus waits, bounded, for HAProxy to see server name as state. It
// polls the stats socket: HAProxy has no way to push it.
func (hp *haproxyProc) waitStatus(t *testing.T, name, state string) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	var last map[string]string
	var err error
	for time.Now().Before(deadline) {
		if last, err = hp.status(); err == nil && last[name] == state {
			return
		}
		select {
		case <-hp.exited:
			// Its frontend port, picked free a moment before, may
			// have been taken meanwhile.
			t.Fatalf("haproxy exited:\n%s", hp.output.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("haproxy server %s not %s within %v: states %v, %v", name, state, startTimeout, last, err)
}

// loadResult is what the load saw.
type loadResult struct {
	duration                  time.Duration
	sent, ok, failed, retried int64
	retriedBy                 string // retries by kind
	failures                  []string
}

// loadGen is the rolling restart's steady load: open loop, so the rate does
// not drop while responses are slow, and several streams are in flight on
// each connection when a GOAWAY comes.
type loadGen struct {
	addr  string
	stopc chan struct{}
	wg    sync.WaitGroup
	start time.Time

	nextID, sent, ok, failed atomic.Int64

	mu       sync.Mutex       // guards the fields below
	retried  map[string]int64 // by kind
	failures []string
}

// startLoad starts loadWorkers clients, each with its own HTTP/2 connection
// (prior knowledge) through HAProxy from loadClient, each starting a GET
// every loadWorkers/loadRate seconds until stop.
func startLoad(t *testing.T, addr string) *loadGen {
	l := &loadGen{addr: addr, stopc: make(chan struct{}), retried: map[string]int64{}, start: time.Now()}
	for range loadWorkers {
		l.wg.Go(l.worker)
	}
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *loadGen) stop() loadResult {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := loadResult{
		duration: time.Since(l.start),
		sent:     l.sent.Load(), ok: l.ok.Load(), failed: l.failed.Load(),
		failures: l.failures,
	}
	var kinds []string
	for k, n := range l.retried {
		r.retried += n
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	r.retriedBy = strings.Join(kinds, ", ")
	if r.retriedBy == "" {
		r.retriedBy = "none"
	}
	return r
}

// worker is one client and its connection: a request every tick, each on
// its own goroutine, all on the worker's connection while it takes new
// streams, then on a new one (through HAProxy, so to any gateway) once a
// GOAWAY has closed it to them.
func (l *loadGen) worker() {
	c := &loadConn{addr: l.addr, tr: &http2.Transport{AllowHTTP: true}}
	defer c.closeAll()
	var reqs sync.WaitGroup
	defer reqs.Wait() // before closeAll
	tick := time.NewTicker(time.Second * loadWorkers / loadRate)
	defer tick.Stop()
	for {
		select {
		case <-l.stopc:
			return
		case <-tick.C:
			reqs.Go(func() { l.request(c) })
		}
	}
}

// request sends one request, and again while the error allows it.
func (l *loadGen) request(c *loadConn) {
	id := "load-" + strconv.FormatInt(l.nextID.Add(1), 10)
	l.sent.Add(1)
	for attempt := 1; ; attempt++ {
		cc, err := c.get()
		if err == nil {
			err = roundTrip(cc, l.addr, id)
		}
		if err == nil {
			l.ok.Add(1)
			return
		}
		kind := retryable(err)
		l.mu.Lock()
		if kind == "" || attempt == maxAttempts {
			l.failed.Add(1)
			l.failures = append(l.failures, fmt.Sprintf("%s, attempt %d: %v", id, attempt, err))
			l.mu.Unlock()
			return
		}
		l.retried[kind]++
		l.mu.Unlock()
	}
}

// loadConn is a worker's current connection through HAProxy.
type loadConn struct {
	addr string
	tr   *http2.Transport
	mu   sync.Mutex // guards the fields below
	cc   *http2.ClientConn
	old  []*http2.ClientConn // replaced after a GOAWAY; streams may still finish on them
}

// get returns the connection, or a new one if it takes no new streams.
func (c *loadConn) get() (*http2.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cc != nil && c.cc.CanTakeNewRequest() {
		return c.cc, nil
	}
	if c.cc != nil {
		c.old = append(c.old, c.cc)
		c.cc = nil
	}
	cc, err := dialThrough(c.tr, c.addr)
	if err != nil {
		return nil, err
	}
	c.cc = cc
	return cc, nil
}

func (c *loadConn) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range append(c.old, c.cc) {
		if cc != nil {
			cc.Close()
		}
	}
}

// dialError marks a connection that could not be made: no request was sent.
type dialError struct{ error }

func dialThrough(tr *http2.Transport, addr string) (*http2.ClientConn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(loadClient)}, Timeout: ioTimeout}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, dialError{err}
	}
	cc, err := tr.NewClientConn(c)
	if err != nil {
		c.Close()
		return nil, dialError{err}
	}
	return cc, nil
}

func roundTrip(cc *http2.ClientConn, addr, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/load", nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Req", id)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != "xff="+loadClient {
		return fmt.Errorf("%s %q", resp.Status, body)
	}
	return nil
}

// retryable names the kind of an error after which the request was
// certainly not processed, so may be sent again (RFC 9113 §8.7), or returns
// "" for any other.
//
// x/net's ClientConn reports the first two with unexported errors, which
// its own Transport retries by the same rule (canRetryError); the text is
// matched here, so a change of wording upstream fails this test rather than
// passing it.
func retryable(err error) string {
	var se http2.StreamError
	var de dialError
	switch {
	case errors.As(err, &de):
		return "dial"
	case err.Error() == "http2: Transport received Server's graceful shutdown GOAWAY":
		// The stream is above the GOAWAY's last stream id (§6.8).
		return "goaway"
	case err.Error() == "http2: client conn not usable":
		// The connection had taken its GOAWAY before this stream
		// was opened: nothing was sent.
		return "unusable"
	case errors.As(err, &se) && se.Code == http2.ErrCodeRefusedStream:
		return "refused_stream"
	}
	return ""
}
