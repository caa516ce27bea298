package flotilla

import (
	"context"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// RetryPolicy decides which failed unary calls are sent again, and when.
//
// A call is retried when it failed with UNAVAILABLE, or with RESOURCE_EXHAUSTED carrying a
// RetryInfo (the server's rate limiter says when a token has room again; without RetryInfo the
// quota is not one that frees up soon). Only read calls (Get*, List*) are retried unless
// RetryWrites is set or the call passes the RetryWrite() call option: a write that timed out
// may have been applied, so sending it twice is the caller's decision (Flotilla's create calls
// take a request_id that makes a repeat safe).
//
// The wait before a retry is the status's RetryInfo.retry_delay when it carries one (capped at
// MaxRetryDelay: a longer wait is not attempted, the error is returned), and otherwise an
// exponential backoff with full jitter between 0 and min(MaxBackoff, InitialBackoff*2^n). A wait
// that would pass the context's deadline is not started.
type RetryPolicy struct {
	// MaxAttempts counts the first call too; 0 or 1 means no retries.
	MaxAttempts int
	// InitialBackoff and MaxBackoff bound the jittered wait when the server sent no RetryInfo.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxRetryDelay is the longest RetryInfo delay honoured.
	MaxRetryDelay time.Duration
	// RetryWrites retries every method, not only reads.
	RetryWrites bool
}

// DefaultRetryPolicy is what Dial uses without WithRetryPolicy: 4 attempts, backoff 100 ms to
// 2 s, RetryInfo delays up to 30 s, reads only.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:    4,
	InitialBackoff: 100 * time.Millisecond,
	MaxBackoff:     2 * time.Second,
	MaxRetryDelay:  30 * time.Second,
}

// retryWriteOption marks one call as safe to repeat.
type retryWriteOption struct{ grpc.EmptyCallOption }

// RetryWrite is a call option that lets the retry policy repeat this call although it is not
// a read, e.g. a CreateCluster with a request_id:
//
//	client.Clusters.CreateCluster(ctx, req, flotilla.RetryWrite())
func RetryWrite() grpc.CallOption { return retryWriteOption{} }

// IsReadMethod reports whether a full gRPC method name ("/flotilla.v1.ClusterService/GetCluster")
// is a read, which the retry policy repeats by default.
func IsReadMethod(fullMethod string) bool {
	name := fullMethod[strings.LastIndex(fullMethod, "/")+1:]
	return strings.HasPrefix(name, "Get") || strings.HasPrefix(name, "List")
}

// UnaryClientInterceptor applies the policy to unary calls.
func (p RetryPolicy) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		mayRetry := p.RetryWrites || IsReadMethod(method)
		for _, o := range opts {
			if _, ok := o.(retryWriteOption); ok {
				mayRetry = true
			}
		}
		for attempt := 1; ; attempt++ {
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil || !mayRetry || attempt >= p.MaxAttempts {
				return err
			}
			wait, retry := p.delay(err, attempt)
			if !retry {
				return err
			}
			if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
				return err
			}
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return err
			case <-timer.C:
			}
		}
	}
}

// delay is how long to wait before attempt+1 after err, and whether to retry at all.
func (p RetryPolicy) delay(err error, attempt int) (time.Duration, bool) {
	d, ok := Details(err)
	if !ok {
		return 0, false
	}
	switch {
	case d.HasRetryDelay && (d.Code == codes.Unavailable || d.Code == codes.ResourceExhausted):
		if d.RetryDelay > p.MaxRetryDelay {
			return 0, false
		}
		return d.RetryDelay, true
	case d.Code == codes.Unavailable:
		return p.backoff(attempt), true
	default:
		return 0, false
	}
}

// backoff is full jitter: uniform in [0, min(MaxBackoff, InitialBackoff*2^(attempt-1))].
func (p RetryPolicy) backoff(attempt int) time.Duration {
	ceiling := p.InitialBackoff
	for i := 1; i < attempt && ceiling < p.MaxBackoff; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, p.MaxBackoff)
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}
