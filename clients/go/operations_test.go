package flotilla

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1"
)

// scriptedWatch answers the n-th WatchOperation call with scripts[n]: states to send, then the
// error to end the stream with (nil: a clean end).
type scriptedWatch struct {
	pb.UnimplementedOperationServiceServer
	scripts []watchScript

	mu    sync.Mutex
	calls int
}

type watchScript struct {
	states []*pb.Operation
	end    error
}

func (s *scriptedWatch) WatchOperation(req *pb.WatchOperationRequest, stream grpc.ServerStreamingServer[pb.WatchOperationResponse]) error {
	s.mu.Lock()
	n := s.calls
	s.calls++
	s.mu.Unlock()
	if n >= len(s.scripts) {
		return status.Error(codes.Internal, "more watches than scripted")
	}
	for _, op := range s.scripts[n].states {
		if op.GetId() != req.GetOperationId() {
			return status.Error(codes.NotFound, "no such operation")
		}
		if err := stream.Send(&pb.WatchOperationResponse{Operation: op}); err != nil {
			return err
		}
	}
	return s.scripts[n].end
}

func op(state pb.OperationState, progress int32) *pb.Operation {
	return &pb.Operation{Id: "op-1", State: state, ProgressPercent: progress}
}

func fakeOperations(t *testing.T, s *scriptedWatch) *Client {
	return startFake(t, func(srv *grpc.Server) { pb.RegisterOperationServiceServer(srv, s) })
}

func TestWaitOperationReconnectsAfterDroppedStream(t *testing.T) {
	s := &scriptedWatch{scripts: []watchScript{
		{states: []*pb.Operation{op(pb.OperationState_OPERATION_STATE_RUNNING, 10)}, end: status.Error(codes.Unavailable, "server restarting")},
		{states: []*pb.Operation{op(pb.OperationState_OPERATION_STATE_RUNNING, 50)}}, // ends before a terminal state
		{states: []*pb.Operation{op(pb.OperationState_OPERATION_STATE_RUNNING, 50), op(pb.OperationState_OPERATION_STATE_SUCCEEDED, 100)}},
	}}
	var progress []int32
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	final, err := fakeOperations(t, s).WaitOperation(ctx, "op-1", WaitOptions{OnUpdate: func(o *pb.Operation) {
		progress = append(progress, o.GetProgressPercent())
	}})
	if err != nil {
		t.Fatalf("WaitOperation: %v", err)
	}
	if final.GetState() != pb.OperationState_OPERATION_STATE_SUCCEEDED || s.calls != 3 {
		t.Fatalf("final %v after %d watches, want SUCCEEDED after 3", final.GetState(), s.calls)
	}
	if want := []int32{10, 50, 50, 100}; len(progress) != len(want) {
		t.Fatalf("updates %v, want %v", progress, want)
	}
}

func TestWaitOperationReturnsTheFailure(t *testing.T) {
	failed := op(pb.OperationState_OPERATION_STATE_FAILED, 40)
	failed.Error = &pb.OperationError{ErrorClass: pb.ErrorClass_ERROR_CLASS_QUOTA_EXCEEDED, VendorCode: "QuotaExceeded.Cluster", Step: "create"}
	s := &scriptedWatch{scripts: []watchScript{{states: []*pb.Operation{failed}}}}
	final, err := fakeOperations(t, s).WaitOperation(context.Background(), "op-1")
	var opErr *OperationError
	if !errors.As(err, &opErr) {
		t.Fatalf("err %v (%T), want *OperationError", err, err)
	}
	if opErr.Operation.GetError().GetErrorClass() != pb.ErrorClass_ERROR_CLASS_QUOTA_EXCEEDED || final != opErr.Operation {
		t.Fatalf("failure %v", opErr.Operation.GetError())
	}
	for _, want := range []string{"op-1", "FAILED", "QUOTA_EXCEEDED", "QuotaExceeded.Cluster", "create"} {
		if !contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err.Error(), want)
		}
	}
}

func TestWaitOperationReturnsOtherErrorsAtOnce(t *testing.T) {
	s := &scriptedWatch{scripts: []watchScript{{states: []*pb.Operation{op(pb.OperationState_OPERATION_STATE_RUNNING, 0)}}}}
	_, err := fakeOperations(t, s).WaitOperation(context.Background(), "op-404")
	if Code(err) != codes.NotFound || s.calls != 1 {
		t.Fatalf("err %v after %d watches, want NOT_FOUND after 1", err, s.calls)
	}
}

func TestWaitOperationGivesUpAfterMaxReconnects(t *testing.T) {
	drop := watchScript{end: status.Error(codes.Unavailable, "down")}
	s := &scriptedWatch{scripts: []watchScript{drop, drop, drop, drop}}
	_, err := fakeOperations(t, s).WaitOperation(context.Background(), "op-1", WaitOptions{MaxReconnects: 2})
	if Code(err) != codes.Unavailable || s.calls != 3 {
		t.Fatalf("err %v after %d watches, want UNAVAILABLE after 3", err, s.calls)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
