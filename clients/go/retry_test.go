package flotilla

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1"
)

// flakyClusters fails the first `failures` calls of each method with `fail`, recording when
// each call arrived.
type flakyClusters struct {
	pb.UnimplementedClusterServiceServer
	fail     func() error
	failures int

	mu    sync.Mutex
	calls map[string][]time.Time
}

func (f *flakyClusters) record(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string][]time.Time{}
	}
	f.calls[method] = append(f.calls[method], time.Now())
	if len(f.calls[method]) <= f.failures {
		return f.fail()
	}
	return nil
}

func (f *flakyClusters) arrivals(method string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls[method]...)
}

func (f *flakyClusters) GetCluster(_ context.Context, req *pb.GetClusterRequest) (*pb.GetClusterResponse, error) {
	if err := f.record("GetCluster"); err != nil {
		return nil, err
	}
	return &pb.GetClusterResponse{Cluster: &pb.Cluster{Id: req.GetClusterId()}}, nil
}

func (f *flakyClusters) CreateCluster(context.Context, *pb.CreateClusterRequest) (*pb.CreateClusterResponse, error) {
	if err := f.record("CreateCluster"); err != nil {
		return nil, err
	}
	return &pb.CreateClusterResponse{}, nil
}

func statusWithRetry(t *testing.T, code codes.Code, delay time.Duration) func() error {
	return func() error {
		st := status.New(code, "try later")
		details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: "BUSY", Domain: ErrorDomain}}
		if delay > 0 {
			details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
		}
		st, err := st.WithDetails(details...)
		if err != nil {
			t.Error(err)
		}
		return st.Err()
	}
}

func fakeClusters(t *testing.T, f *flakyClusters, opts ...Option) *Client {
	return startFake(t, func(s *grpc.Server) { pb.RegisterClusterServiceServer(s, f) }, opts...)
}

func gaps(ts []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]))
	}
	return out
}

func TestRetryHonoursRetryInfoDelay(t *testing.T) {
	f := &flakyClusters{fail: statusWithRetry(t, codes.Unavailable, 300*time.Millisecond), failures: 2}
	c := fakeClusters(t, f)
	resp, err := c.Clusters.GetCluster(context.Background(), &pb.GetClusterRequest{ClusterId: "a"})
	if err != nil {
		t.Fatalf("GetCluster after two UNAVAILABLE: %v", err)
	}
	if resp.GetCluster().GetId() != "a" {
		t.Fatalf("cluster %q", resp.GetCluster().GetId())
	}
	arrived := f.arrivals("GetCluster")
	if len(arrived) != 3 {
		t.Fatalf("server saw %d calls, want 3", len(arrived))
	}
	for i, g := range gaps(arrived) {
		if g < 300*time.Millisecond || g > 800*time.Millisecond {
			t.Errorf("wait before retry %d: %v, want the RetryInfo delay of 300ms", i+1, g)
		}
	}
}

func TestRetryResourceExhaustedOnlyWithRetryInfo(t *testing.T) {
	with := &flakyClusters{fail: statusWithRetry(t, codes.ResourceExhausted, 50*time.Millisecond), failures: 1}
	if _, err := fakeClusters(t, with).Clusters.GetCluster(context.Background(), &pb.GetClusterRequest{}); err != nil {
		t.Fatalf("RESOURCE_EXHAUSTED with RetryInfo is retried: %v", err)
	}
	without := &flakyClusters{fail: statusWithRetry(t, codes.ResourceExhausted, 0), failures: 1}
	_, err := fakeClusters(t, without).Clusters.GetCluster(context.Background(), &pb.GetClusterRequest{})
	if Code(err) != codes.ResourceExhausted || len(without.arrivals("GetCluster")) != 1 {
		t.Fatalf("RESOURCE_EXHAUSTED without RetryInfo: err %v after %d calls, want it after 1",
			err, len(without.arrivals("GetCluster")))
	}
}

func TestRetryIsBoundedAndBacksOffWithoutRetryInfo(t *testing.T) {
	f := &flakyClusters{fail: statusWithRetry(t, codes.Unavailable, 0), failures: 100}
	policy := RetryPolicy{MaxAttempts: 3, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, MaxRetryDelay: time.Second}
	_, err := fakeClusters(t, f, WithRetryPolicy(policy)).Clusters.GetCluster(context.Background(), &pb.GetClusterRequest{})
	if Code(err) != codes.Unavailable || Reason(err) != "BUSY" {
		t.Fatalf("err %v, want the last UNAVAILABLE with its reason", err)
	}
	arrived := f.arrivals("GetCluster")
	if len(arrived) != 3 {
		t.Fatalf("server saw %d calls, want MaxAttempts = 3", len(arrived))
	}
	for i, g := range gaps(arrived) {
		if g > 300*time.Millisecond {
			t.Errorf("backoff %d: %v, want at most MaxBackoff (40ms) plus scheduling", i+1, g)
		}
	}
}

func TestRetryGivesUpOnDelayBeyondMax(t *testing.T) {
	f := &flakyClusters{fail: statusWithRetry(t, codes.Unavailable, time.Minute), failures: 1}
	start := time.Now()
	_, err := fakeClusters(t, f).Clusters.GetCluster(context.Background(), &pb.GetClusterRequest{})
	if d, ok := RetryDelay(err); !ok || d != time.Minute {
		t.Fatalf("err %v: RetryDelay %v %v, want 1m", err, d, ok)
	}
	if n := len(f.arrivals("GetCluster")); n != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("%d calls in %v: a 1m delay beyond MaxRetryDelay (30s) is not waited for", n, time.Since(start))
	}
}

func TestRetryGivesUpWhenDeadlineIsNearer(t *testing.T) {
	f := &flakyClusters{fail: statusWithRetry(t, codes.Unavailable, 2*time.Second), failures: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := fakeClusters(t, f).Clusters.GetCluster(ctx, &pb.GetClusterRequest{})
	if Code(err) != codes.Unavailable || len(f.arrivals("GetCluster")) != 1 {
		t.Fatalf("err %v after %d calls: a wait past the deadline is not started", err, len(f.arrivals("GetCluster")))
	}
}

func TestRetryWritesOnlyWhenAskedTo(t *testing.T) {
	f := &flakyClusters{fail: statusWithRetry(t, codes.Unavailable, 10*time.Millisecond), failures: 1}
	c := fakeClusters(t, f)
	_, err := c.Clusters.CreateCluster(context.Background(), &pb.CreateClusterRequest{})
	if Code(err) != codes.Unavailable || len(f.arrivals("CreateCluster")) != 1 {
		t.Fatalf("a write is sent once by default: err %v, %d calls", err, len(f.arrivals("CreateCluster")))
	}
	g := &flakyClusters{fail: statusWithRetry(t, codes.Unavailable, 10*time.Millisecond), failures: 1}
	c = fakeClusters(t, g)
	if _, err := c.Clusters.CreateCluster(context.Background(), &pb.CreateClusterRequest{}, RetryWrite()); err != nil {
		t.Fatalf("RetryWrite() retries a write: %v", err)
	}
	if n := len(g.arrivals("CreateCluster")); n != 2 {
		t.Fatalf("%d calls with RetryWrite(), want 2", n)
	}
}

func TestWithoutRetriesSendsOnce(t *testing.T) {
	f := &flakyClusters{fail: statusWithRetry(t, codes.Unavailable, 10*time.Millisecond), failures: 1}
	_, err := fakeClusters(t, f, WithoutRetries()).Clusters.GetCluster(context.Background(), &pb.GetClusterRequest{})
	if Code(err) != codes.Unavailable || len(f.arrivals("GetCluster")) != 1 {
		t.Fatalf("err %v after %d calls", err, len(f.arrivals("GetCluster")))
	}
}
