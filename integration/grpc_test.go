package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// counterService is a server-streaming gRPC service built by hand, without
// protoc: the request is a count n (UInt32Value), the answers are n
// StringValues, and the trailer "x-count" says how many were sent.
//
//   - Count sends the first answer, waits until the client has received it
//     (proving the gateway flushes each message rather than the whole
//     response), sends the rest and ends with OK.
//   - CountThenFail sends n answers and ends with NotFound, so the status
//     travels in trailers after DATA.
const counterService = "h2cgw.integration.Counter"

// counter is the upstream's state that the test inspects.
type counter struct {
	gotFirst chan struct{} // closed by the test once it received Count's first answer

	mu sync.Mutex             // guards md
	md map[string]metadata.MD // incoming metadata by full method name
}

func (c *counter) record(ctx context.Context, method string) {
	md, _ := metadata.FromIncomingContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.md[method] = md
}

func (c *counter) metadata(method string) metadata.MD {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.md[method]
}

func (c *counter) desc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: counterService,
		// Any value serves; the handlers below close over c.
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{
			{StreamName: "Count", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
				return c.count(ss, true)
			}},
			{StreamName: "CountThenFail", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
				return c.count(ss, false)
			}},
		},
	}
}

func (c *counter) count(ss grpc.ServerStream, ok bool) error {
	in := new(wrapperspb.UInt32Value)
	if err := ss.RecvMsg(in); err != nil {
		return err
	}
	n := int(in.GetValue())
	ss.SetTrailer(metadata.Pairs("x-count", strconv.Itoa(n)))
	for i := range n {
		if err := ss.SendMsg(wrapperspb.String(fmt.Sprintf("answer %d", i))); err != nil {
			return err
		}
		if i == 0 && ok {
			select {
			case <-c.gotFirst:
			case <-ss.Context().Done():
				return ss.Context().Err()
			case <-time.After(ioTimeout):
				return status.Error(codes.DeadlineExceeded, "the first answer never reached the client")
			}
		}
	}
	if !ok {
		return status.Errorf(codes.NotFound, "ran out after %d", n)
	}
	return nil
}

// TestGRPC: grpc-go client → h2cgw (gateway mode, prior knowledge on both
// sides) → grpc-go server on an h2c:// upstream. Unary and server-streaming
// calls, and non-OK statuses arriving as trailers: alone (trailers-only)
// and after DATA.
func TestGRPC(t *testing.T) {
	t.Parallel()

	// The upstream.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{gotFirst: make(chan struct{}), md: map[string]metadata.MD{}}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			c.record(ctx, info.FullMethod)
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			c.record(ss.Context(), info.FullMethod)
			return h(srv, ss)
		}),
	)
	hs := health.NewServer()
	hs.SetServingStatus("h2cgw.test", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	srv.RegisterService(c.desc(), nil)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	g := startGateway(t, "--upstream", "h2c://"+lis.Addr().String())

	conn, err := grpc.NewClient("passthrough:///"+g.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	hc := healthpb.NewHealthClient(conn)

	// checkForwarded asserts the upstream saw the call come through the
	// gateway: X-Forwarded-For set, the client's authority kept.
	checkForwarded := func(t *testing.T, method string) {
		t.Helper()
		md := c.metadata(method)
		if md == nil {
			t.Fatalf("the upstream saw no %s call", method)
		}
		if xff := md.Get("x-forwarded-for"); len(xff) == 0 || !strings.Contains(xff[0], "127.0.0.1") {
			t.Errorf("upstream saw x-forwarded-for %q; want 127.0.0.1", xff)
		}
		if a := md.Get(":authority"); len(a) > 0 && a[0] != g.Addr {
			t.Errorf("upstream saw :authority %q; want the client's %q", a[0], g.Addr)
		}
	}

	t.Run("unary OK", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "h2cgw.test"})
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if got := resp.GetStatus(); got != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check: got %v; want SERVING", got)
		}
		checkForwarded(t, healthpb.Health_Check_FullMethodName)
	})

	t.Run("unary NotFound in trailers-only response", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.service"})
		st := status.Convert(err)
		if st.Code() != codes.NotFound || st.Message() != "unknown service" {
			t.Errorf("Check: got %v %q; want NotFound %q", st.Code(), st.Message(), "unknown service")
		}
	})

	t.Run("server streaming OK", func(t *testing.T) {
		answers, trailer, err := callCounter(t, conn, "Count", 5, func() { close(c.gotFirst) })
		if err != nil {
			t.Fatalf("Count: %v", err)
		}
		checkAnswers(t, answers, 5)
		if got := trailer.Get("x-count"); len(got) != 1 || got[0] != "5" {
			t.Errorf("trailer x-count: got %q; want [5]", got)
		}
		checkForwarded(t, "/"+counterService+"/Count")
	})

	t.Run("server streaming NotFound after data", func(t *testing.T) {
		answers, trailer, err := callCounter(t, conn, "CountThenFail", 3, nil)
		st := status.Convert(err)
		if st.Code() != codes.NotFound || st.Message() != "ran out after 3" {
			t.Errorf("CountThenFail: got %v %q; want NotFound %q", st.Code(), st.Message(), "ran out after 3")
		}
		checkAnswers(t, answers, 3)
		if got := trailer.Get("x-count"); len(got) != 1 || got[0] != "3" {
			t.Errorf("trailer x-count: got %q; want [3]", got)
		}
	})
}

// callCounter calls a counterService method with n and returns the answers,
// the trailer and the final status as an error (nil for OK). afterFirst,
// when non-nil, runs once the first answer has arrived.
func callCounter(t *testing.T, conn *grpc.ClientConn, method string, n uint32, afterFirst func()) ([]string, metadata.MD, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: method, ServerStreams: true}, "/"+counterService+"/"+method)
	if err != nil {
		t.Fatalf("NewStream: %v", err)
	}
	if err := cs.SendMsg(wrapperspb.UInt32(n)); err != nil {
		t.Fatalf("SendMsg: %v", err)
	}
	if err := cs.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	var answers []string
	for {
		m := new(wrapperspb.StringValue)
		err := cs.RecvMsg(m)
		if errors.Is(err, io.EOF) {
			return answers, cs.Trailer(), nil
		}
		if err != nil {
			return answers, cs.Trailer(), err
		}
		answers = append(answers, m.GetValue())
		if len(answers) == 1 && afterFirst != nil {
			afterFirst()
		}
	}
}

func checkAnswers(t *testing.T, got []string, n int) {
	t.Helper()
	if len(got) != n {
		t.Errorf("got %d answers %q; want %d", len(got), got, n)
		return
	}
	for i, a := range got {
		if want := fmt.Sprintf("answer %d", i); a != want {
			t.Errorf("answer %d: got %q; want %q", i, a, want)
		}
	}
}
