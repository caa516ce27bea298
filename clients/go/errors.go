package flotilla

import (
	"errors"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the domain of every google.rpc.ErrorInfo a Flotilla server sends.
const ErrorDomain = "flotilla.dev"

// FieldViolation is one bad field of a request (google.rpc.BadRequest.FieldViolation).
type FieldViolation struct {
	// Field is the path of the offending field, such as "cluster.spec.region".
	Field string
	// Description says what is wrong with it.
	Description string
}

// ErrorDetails is a gRPC status error with its google.rpc details decoded.
type ErrorDetails struct {
	Code    codes.Code
	Message string
	// Reason is ErrorInfo.reason (such as "NOT_FOUND", "CLUSTER_EXISTS"): stable, for programs
	// to branch on. Empty when the status carries no ErrorInfo.
	Reason string
	// Domain is ErrorInfo.domain (ErrorDomain for Flotilla's own errors).
	Domain string
	// Metadata is ErrorInfo.metadata (such as "kind" and "id" of what was not found).
	Metadata map[string]string
	// FieldViolations are the BadRequest field violations of an INVALID_ARGUMENT.
	FieldViolations []FieldViolation
	// RetryDelay is RetryInfo.retry_delay; HasRetryDelay says whether the server sent one.
	RetryDelay    time.Duration
	HasRetryDelay bool
}

// Details decodes err's gRPC status (also when wrapped, e.g. by fmt.Errorf("...: %w", err)).
// ok is false when err carries no gRPC status.
func Details(err error) (d *ErrorDetails, ok bool) {
	if err == nil {
		return nil, false
	}
	// errors.As rather than status.FromError: for a wrapped error the latter puts the wrapping
	// text into the message, and Message should be what the server said.
	var carrier interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &carrier) || carrier.GRPCStatus() == nil {
		return nil, false
	}
	st := carrier.GRPCStatus()
	d = &ErrorDetails{Code: st.Code(), Message: st.Message()}
	for _, detail := range st.Details() {
		switch v := detail.(type) {
		case *errdetails.ErrorInfo:
			d.Reason, d.Domain, d.Metadata = v.GetReason(), v.GetDomain(), v.GetMetadata()
		case *errdetails.BadRequest:
			for _, fv := range v.GetFieldViolations() {
				d.FieldViolations = append(d.FieldViolations,
					FieldViolation{Field: fv.GetField(), Description: fv.GetDescription()})
			}
		case *errdetails.RetryInfo:
			if v.GetRetryDelay() != nil {
				d.RetryDelay, d.HasRetryDelay = v.GetRetryDelay().AsDuration(), true
			}
		}
	}
	return d, true
}

// Code is err's gRPC code: OK for nil, Unknown for an error without a status.
func Code(err error) codes.Code {
	return status.Code(err)
}

// Reason is the ErrorInfo.reason err carries, or "".
func Reason(err error) string {
	if d, ok := Details(err); ok {
		return d.Reason
	}
	return ""
}

// FieldViolations are the BadRequest field violations err carries, or nil.
func FieldViolations(err error) []FieldViolation {
	if d, ok := Details(err); ok {
		return d.FieldViolations
	}
	return nil
}

// RetryDelay is the RetryInfo.retry_delay err carries; ok is false when it carries none.
func RetryDelay(err error) (delay time.Duration, ok bool) {
	if d, found := Details(err); found && d.HasRetryDelay {
		return d.RetryDelay, true
	}
	return 0, false
}

// IsNotFound reports whether err (or an error it wraps) is a NOT_FOUND status.
func IsNotFound(err error) bool { return Code(err) == codes.NotFound }
