package flotilla

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"
)

// startFake serves the given services in-process (bufconn: no socket) and returns a client
// dialled to it with opts.
func startFake(t *testing.T, register func(*grpc.Server), opts ...Option) *Client {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	dial := func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
	opts = append([]Option{WithInsecure(), WithToken(""), WithDialOptions(grpc.WithContextDialer(dial))}, opts...)
	c, err := Dial("passthrough:///fake", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
