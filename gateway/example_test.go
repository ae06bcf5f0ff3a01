package gateway_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/h2cgw/h2cgw/gateway"
	"golang.org/x/net/http2"
)

// A gateway in front of a handler, reached with HTTP/2 prior knowledge by
// Go's own HTTP/2 client.
func ExampleNew() {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s via %s", r.Proto, gateway.EntryPathFromContext(r.Context()))
	})
	g := gateway.New(hello, gateway.Config{})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go g.Serve(l)

	client := &http.Client{Transport: &http2.Transport{
		AllowHTTP: true, // cleartext HTTP/2
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
	resp, err := client.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.Shutdown(ctx)
	// Output: HTTP/2.0 via h2c-prior-knowledge
}

// Configure adds h2c to an http.Server of one's own: a superset of x/net's
// deprecated h2c.NewHandler. Stop it with the Gateway's Shutdown, which also
// drains upgraded connections.
func ExampleConfigure() {
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s via %s", r.Proto, gateway.EntryPathFromContext(r.Context()))
		}),
	}
	g, err := gateway.Configure(srv, gateway.Config{MaxUpgradeBody: 64 << 10})
	if err != nil {
		panic(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(l)

	resp, err := http.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.Shutdown(ctx)
	// Output: HTTP/1.1 via h1
}
