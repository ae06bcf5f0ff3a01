// Command capture records what real HTTP/2 clients send to an h2c gateway and
// writes it as seed corpora for the fuzz targets of packages gateway and
// settings. It serves a gateway (default Config) on loopback behind a
// recording TCP proxy, points curl, nghttp and h2spec at the proxy, and
// splits each recorded client→gateway byte stream into
//
//   - the HTTP/1.1 request head (and body) of an upgrade: FuzzClassify,
//   - the bytes after the client preface: FuzzAfterUpgrade,
//   - the HTTP2-Settings value of an upgrade: settings' FuzzDecode.
//
// Run it from the repository root (it lives under testdata so that
// "go build ./..." and "go vet ./..." leave it alone):
//
//	go run ./gateway/testdata/capture
//
// It needs curl, nghttp and h2spec on PATH (scripts/install-test-tools.sh).
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/h2cgw/h2cgw/gateway"
	"golang.org/x/net/http2"
)

type recording struct {
	label string
	data  []byte
}

// recorder is a TCP proxy in front of the gateway that keeps every byte each
// client sent, per connection.
type recorder struct {
	upstream string

	mu    sync.Mutex
	label string      // guarded by mu: the client now running
	n     int         // guarded by mu: connections seen for label
	recs  []recording // guarded by mu
	wg    sync.WaitGroup
}

func (r *recorder) serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.n++
		label := fmt.Sprintf("%s-%d", r.label, r.n)
		r.mu.Unlock()
		r.wg.Add(1)
		go r.proxy(c, label)
	}
}

func (r *recorder) proxy(c net.Conn, label string) {
	defer r.wg.Done()
	defer c.Close()
	up, err := net.Dial("tcp", r.upstream)
	if err != nil {
		log.Print(err)
		return
	}
	defer up.Close()
	var sent bytes.Buffer
	done := make(chan struct{})
	go func() {
		io.Copy(c, up)
		c.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(io.MultiWriter(up, &sent), c)
	up.(*net.TCPConn).CloseWrite()
	<-done
	r.mu.Lock()
	r.recs = append(r.recs, recording{label, sent.Bytes()})
	r.mu.Unlock()
}

func (r *recorder) run(label string, name string, args ...string) {
	r.mu.Lock()
	r.label, r.n = label, 0
	r.mu.Unlock()
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil && name != "h2spec" { // h2spec exits 1 on a failed case
		log.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func main() {
	root := flag.String("root", ".", "repository root to write testdata under")
	flag.Parse()

	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "captured\n")
	})
	g := gateway.New(hello, gateway.Config{})
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go g.Serve(gl)
	defer g.Close()

	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	rec := &recorder{upstream: gl.Addr().String()}
	go rec.serve(pl)
	base := "http://" + pl.Addr().String()
	_, port, _ := net.SplitHostPort(pl.Addr().String())

	body := filepath.Join(os.TempDir(), "capture-body.txt")
	if err := os.WriteFile(body, []byte("field=value&other=1\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	defer os.Remove(body)

	rec.run("curl-upgrade-get", "curl", "-sS", "-o", "/dev/null", "--http2", base+"/get?q=1")
	rec.run("curl-upgrade-post", "curl", "-sS", "-o", "/dev/null", "--http2", "--data-binary", "@"+body, base+"/post")
	rec.run("curl-upgrade-head", "curl", "-sS", "-o", "/dev/null", "--http2", "-I", base+"/head")
	rec.run("curl-prior-knowledge", "curl", "-sS", "-o", "/dev/null", "--http2-prior-knowledge", base+"/pk")
	rec.run("curl-http1", "curl", "-sS", "-o", "/dev/null", "--http1.1", base+"/h1")
	rec.run("nghttp-upgrade-get", "nghttp", "-u", base+"/get")
	rec.run("nghttp-upgrade-post", "nghttp", "-u", "-d", body, base+"/post")
	rec.run("nghttp-prior-knowledge", "nghttp", "-n", "-m", "3", base+"/pk")
	rec.run("h2spec", "h2spec", "-h", "127.0.0.1", "-p", port, "-o", "1")
	pl.Close()
	rec.wg.Wait()

	w := &writer{root: *root, seen: map[string]bool{}}
	for _, r := range rec.recs {
		w.split(r)
	}
	log.Printf("wrote %d files", w.n)
}

type writer struct {
	root string
	seen map[string]bool
	n    int
}

var settingsLine = regexp.MustCompile(`(?im)^HTTP2-Settings:[ \t]*([^\r\n]*)`)

// split files one recording under the targets it seeds.
func (w *writer) split(r recording) {
	data := r.data
	if len(data) == 0 {
		return
	}
	if bytes.HasPrefix(data, []byte(http2.ClientPreface)) {
		w.write("gateway", "FuzzAfterUpgrade", r.label, "[]byte", data[len(http2.ClientPreface):])
		return
	}
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		return
	}
	head := data[:end+4]
	rest := data[end+4:]
	if m := regexp.MustCompile(`(?im)^Content-Length:[ \t]*(\d+)`).FindSubmatch(head); m != nil {
		n, _ := strconv.Atoi(string(m[1]))
		n = min(n, len(rest))
		head, rest = data[:end+4+n], rest[n:]
	}
	w.write("gateway", "FuzzClassify", r.label, "[]byte", head)
	if m := settingsLine.FindSubmatch(head); m != nil {
		w.write("settings", "FuzzDecode", r.label, "string", m[1])
	}
	if bytes.HasPrefix(rest, []byte(http2.ClientPreface)) {
		w.write("gateway", "FuzzAfterUpgrade", r.label, "[]byte", rest[len(http2.ClientPreface):])
	}
}

// maxSeed bounds a seed's size: the few h2spec cases that send maximum-size
// frames would add most of the corpus's bytes and slow the mutator, for
// coverage the smaller ones already give.
const maxSeed = 8 << 10

// write stores one seed in Go's corpus file format, once per content.
func (w *writer) write(pkg, target, label, typ string, v []byte) {
	if len(v) > maxSeed {
		return
	}
	sum := sha256.Sum256(append([]byte(target), v...))
	key := string(sum[:])
	if w.seen[key] {
		return
	}
	w.seen[key] = true
	dir := filepath.Join(w.root, pkg, "testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	content := fmt.Sprintf("go test fuzz v1\n%s(%q)\n", typ, v)
	if err := os.WriteFile(filepath.Join(dir, label), []byte(content), 0o644); err != nil {
		log.Fatal(err)
	}
	w.n++
}
