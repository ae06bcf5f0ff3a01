package integration

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/settings"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawConn is a client connection driven frame by frame, for the assertions
// no client library exposes: the server's first SETTINGS, GOAWAY.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
	fr *http2.Framer

	hbuf bytes.Buffer
	henc *hpack.Encoder
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawConn{t: t, c: c, br: bufio.NewReader(c)}
	r.fr = http2.NewFramer(c, r.br)
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	r.henc = hpack.NewEncoder(&r.hbuf)
	return r
}

// clientSettings is what the raw client announces, in HTTP2-Settings and
// in its SETTINGS frame.
var clientSettings = []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1 << 20}}

// upgrade sends an HTTP/1.1 request asking for h2c and reads the 101; the
// request becomes stream 1.
func (r *rawConn) upgrade(method, target string) {
	r.t.Helper()
	req := method + " " + target + " HTTP/1.1\r\n" +
		"Host: " + r.c.RemoteAddr().String() + "\r\n" +
		"Connection: Upgrade, HTTP2-Settings\r\n" +
		"Upgrade: h2c\r\n" +
		"HTTP2-Settings: " + settings.Encode(clientSettings...) + "\r\n\r\n"
	r.deadline()
	if _, err := r.c.Write([]byte(req)); err != nil {
		r.t.Fatalf("write the upgrade request: %v", err)
	}
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		r.t.Fatalf("read the answer to the upgrade: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		r.t.Fatalf("upgrade answered %s; want 101 Switching Protocols", resp.Status)
	}
}

// preface sends the client preface and the client's SETTINGS.
func (r *rawConn) preface() {
	r.t.Helper()
	r.deadline()
	if _, err := r.c.Write([]byte(http2.ClientPreface)); err != nil {
		r.t.Fatalf("write the preface: %v", err)
	}
	if err := r.fr.WriteSettings(clientSettings...); err != nil {
		r.t.Fatalf("write SETTINGS: %v", err)
	}
}

// readFrame reads one frame within ioTimeout, acknowledging the server's
// SETTINGS as a client must (RFC 9113 §6.5.3).
func (r *rawConn) readFrame() (http2.Frame, error) {
	r.deadline()
	f, err := r.fr.ReadFrame()
	if err != nil {
		return nil, err
	}
	if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
		if err := r.fr.WriteSettingsAck(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// get sends a GET on a new stream.
func (r *rawConn) get(id uint32, path string) {
	r.t.Helper()
	r.hbuf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", r.c.RemoteAddr().String()}, {":path", path}} {
		r.henc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	r.deadline()
	if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.hbuf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		r.t.Fatalf("write HEADERS: %v", err)
	}
}

func (r *rawConn) deadline() { r.c.SetDeadline(time.Now().Add(ioTimeout)) }
