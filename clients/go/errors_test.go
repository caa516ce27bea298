package flotilla

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestDetailsDecodesEveryKind(t *testing.T) {
	st, err := status.New(codes.InvalidArgument, "invalid spec").WithDetails(
		&errdetails.ErrorInfo{Reason: "SPEC_INVALID", Domain: ErrorDomain, Metadata: map[string]string{"provider": "ack"}},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "spec.region", Description: "unknown region"},
			{Field: "spec.kubernetes_version", Description: "not offered"},
		}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
	)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := fmt.Errorf("creating cluster: %w", st.Err())
	d, ok := Details(wrapped)
	if !ok {
		t.Fatal("a wrapped status is decoded")
	}
	if d.Code != codes.InvalidArgument || d.Message != "invalid spec" || d.Reason != "SPEC_INVALID" ||
		d.Domain != ErrorDomain || d.Metadata["provider"] != "ack" {
		t.Fatalf("details %+v", d)
	}
	if fv := FieldViolations(wrapped); len(fv) != 2 || fv[1] != (FieldViolation{"spec.kubernetes_version", "not offered"}) {
		t.Fatalf("field violations %+v", fv)
	}
	if delay, ok := RetryDelay(wrapped); !ok || delay != 1500*time.Millisecond {
		t.Fatalf("retry delay %v %v", delay, ok)
	}
	if Reason(wrapped) != "SPEC_INVALID" {
		t.Fatal("Reason")
	}
	if _, ok := Details(errors.New("dial tcp: refused")); ok {
		t.Fatal("a plain error has no details")
	}
	if _, ok := RetryDelay(status.Error(codes.Unavailable, "x")); ok {
		t.Fatal("no RetryInfo, no delay")
	}
}
