package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"
)

// AdvertisedSettings returns the parameters, in order, of the first SETTINGS
// frame the gateway's HTTP/2 server writes on a new connection (RFC 9113
// §3.4): what clients are told of its limits. They are read from the server
// itself, not derived: AdvertisedSettings serves one in-memory connection
// the way an upgraded connection is served, reads that frame, and closes the
// connection. The two HTTP/2 implementations (README "Supported Go
// versions") fill the frame differently from the same configuration, and a
// derived value would drift whenever either changes.
//
// The in-memory connection passes no ConnState hook, event or metric. ctx
// bounds the exchange.
func (g *Gateway) AdvertisedSettings(ctx context.Context) ([]http2.Setting, error) {
	server, client := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.h2.ServeConn(probeConn{server}, &http2.ServeConnOpts{
			Context:          ctx,
			BaseConfig:       g.serveConnBase(),
			Handler:          http.NotFoundHandler(),
			SawClientPreface: true,
		})
	}()
	defer func() {
		client.Close()
		<-done
	}()
	if d, ok := ctx.Deadline(); ok {
		_ = client.SetReadDeadline(d)
	} else {
		_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	}
	f, err := http2.NewFramer(nil, client).ReadFrame()
	if err != nil {
		return nil, fmt.Errorf("gateway: reading the server's first frame: %w", err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		return nil, fmt.Errorf("gateway: the server's first frame is %v, not SETTINGS", f.Header())
	}
	var s []http2.Setting
	err = sf.ForeachSetting(func(st http2.Setting) error {
		s = append(s, st)
		return nil
	})
	if err != nil {
		return nil, errors.Join(errors.New("gateway: the server's first SETTINGS frame"), err)
	}
	return s, nil
}

// probeConn marks the in-memory connection of AdvertisedSettings, which the
// gateway's ConnState hook passes over.
type probeConn struct{ net.Conn }
