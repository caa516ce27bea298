package flotilla

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

//go:generate go run ./internal/geniter -out iterators_gen.go

// pages yields every item of a paged List RPC, following next_page_token until it is empty.
// The caller's request is cloned, never modified. An error ends the sequence after it is
// yielded; breaking out of the loop stops further calls.
func pages[Req proto.Message, Resp any, T any](
	ctx context.Context,
	req Req,
	call func(context.Context, Req, ...grpc.CallOption) (Resp, error),
	opts []grpc.CallOption,
	items func(Resp) []T,
	nextToken func(Resp) string,
	setToken func(Req, string),
) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		if !req.ProtoReflect().IsValid() { // a nil request lists everything
			req = req.ProtoReflect().Type().New().Interface().(Req)
		} else {
			req = proto.Clone(req).(Req)
		}
		for {
			resp, err := call(ctx, req, opts...)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range items(resp) {
				if !yield(item, nil) {
					return
				}
			}
			next := ""
			if nextToken != nil {
				next = nextToken(resp)
			}
			if next == "" {
				return
			}
			if next == currentToken(req) {
				var zero T
				yield(zero, fmt.Errorf("flotilla: the server answered page token %q with itself", next))
				return
			}
			setToken(req, next)
		}
	}
}

// currentToken reads the request's page_token field.
func currentToken(req proto.Message) string {
	m := req.ProtoReflect()
	if f := m.Descriptor().Fields().ByName("page_token"); f != nil {
		return m.Get(f).String()
	}
	return ""
}

// Stream turns a server stream (StreamPodLogs, WatchEvents, WatchOperation, DrainNode) into a
// sequence of its messages. It ends when the server ends the stream; any other error is yielded
// once, last. Cancel the call's context to stop early, or break out of the loop (the stream's
// context should then be cancelled by the caller to release it).
func Stream[T any](stream grpc.ServerStreamingClient[T]) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(msg, nil) {
				return
			}
		}
	}
}
