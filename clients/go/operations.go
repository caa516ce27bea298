package flotilla

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1"
)

// OperationError is the error WaitOperation returns for an operation that ended FAILED or
// CANCELLED. Operation is its final state; Operation.Error says why it failed.
type OperationError struct {
	Operation *pb.Operation
}

func (e *OperationError) Error() string {
	op := e.Operation
	msg := fmt.Sprintf("operation %s %s", op.GetId(), op.GetState())
	if fe := op.GetError(); fe != nil {
		msg += fmt.Sprintf(": %s", fe.GetErrorClass())
		if fe.GetStep() != "" {
			msg += " at step " + fe.GetStep()
		}
		if fe.GetVendorCode() != "" {
			msg += fmt.Sprintf(" (vendor %s: %s)", fe.GetVendorCode(), fe.GetVendorMessage())
		}
	}
	return msg
}

// IsTerminal reports whether an operation has ended: SUCCEEDED, FAILED or CANCELLED.
func IsTerminal(op *pb.Operation) bool {
	switch op.GetState() {
	case pb.OperationState_OPERATION_STATE_SUCCEEDED,
		pb.OperationState_OPERATION_STATE_FAILED,
		pb.OperationState_OPERATION_STATE_CANCELLED:
		return true
	}
	return false
}

// WaitOptions tune WaitOperation.
type WaitOptions struct {
	// OnUpdate, when set, sees every state the watch delivers (progress, current step).
	OnUpdate func(*pb.Operation)
	// MaxReconnects bounds how many dropped streams in a row are reopened (default 10; a
	// message received resets the count).
	MaxReconnects int
}

// WaitOperation watches an operation until it ends and returns its final state. It uses
// OperationService/WatchOperation and reopens the stream when it drops (UNAVAILABLE, or the
// stream ending before a terminal state, e.g. the server restarted), with a short backoff.
//
// A SUCCEEDED operation returns (op, nil). A FAILED or CANCELLED one returns (op, err) with err
// an *OperationError. Any other gRPC error (NOT_FOUND, PERMISSION_DENIED) and ctx's
// cancellation are returned as they are. Bound the wait with ctx.
func (c *Client) WaitOperation(ctx context.Context, id string, opts ...WaitOptions) (*pb.Operation, error) {
	o := WaitOptions{MaxReconnects: 10}
	if len(opts) > 0 {
		o = opts[0]
		if o.MaxReconnects == 0 {
			o.MaxReconnects = 10
		}
	}
	var last *pb.Operation
	drops := 0
	for {
		op, received, err := c.watchOnce(ctx, id, o.OnUpdate)
		if op != nil {
			last = op
		}
		if received {
			drops = 0
		}
		if last != nil && IsTerminal(last) {
			if last.GetState() == pb.OperationState_OPERATION_STATE_SUCCEEDED {
				return last, nil
			}
			return last, &OperationError{Operation: last}
		}
		if ctx.Err() != nil {
			return last, ctx.Err()
		}
		if err != nil && Code(err) != codes.Unavailable && !errors.Is(err, io.ErrUnexpectedEOF) {
			return last, err
		}
		if err == nil {
			err = io.ErrUnexpectedEOF // ended before a terminal state
		}
		drops++
		if drops > o.MaxReconnects {
			return last, fmt.Errorf("flotilla: watching operation %s: stream dropped %d times: %w", id, drops, err)
		}
		wait := DefaultRetryPolicy.backoff(drops)
		if d, ok := RetryDelay(err); ok {
			wait = d
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// watchOnce reads one WatchOperation stream until it ends; it returns the last state seen,
// whether any message arrived, and the error that ended the stream (nil for a clean end).
func (c *Client) watchOnce(ctx context.Context, id string, onUpdate func(*pb.Operation)) (*pb.Operation, bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Operations.WatchOperation(ctx, &pb.WatchOperationRequest{OperationId: id})
	if err != nil {
		return nil, false, err
	}
	var last *pb.Operation
	received := false
	for msg, err := range Stream(stream) {
		if err != nil {
			return last, received, err
		}
		received = true
		last = msg.GetOperation()
		if onUpdate != nil {
			onUpdate(last)
		}
		if IsTerminal(last) {
			return last, true, nil
		}
	}
	return last, received, nil
}
