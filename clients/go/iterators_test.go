package flotilla

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"os"
	"reflect"
	"strconv"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1"
	"github.com/flotilla-dev/flotilla/clients/go/internal/services"
)

// Every List RPC of every service has an iterator on Client returning iter.Seq2[item, error].
func TestEveryListRPCHasAnIterator(t *testing.T) {
	client := reflect.TypeOf(&Client{})
	methods := services.ListMethods()
	if len(methods) < 20 {
		t.Fatalf("found only %d List RPCs in the descriptors", len(methods))
	}
	for _, m := range methods {
		name := services.IteratorName(m)
		it, ok := client.MethodByName(name)
		if !ok {
			t.Errorf("%s has no iterator %s: run go generate", m.FullName(), name)
			continue
		}
		out := it.Type.Out(0)
		if it.Type.NumOut() != 1 || out.Kind() != reflect.Func || out.NumIn() != 1 {
			t.Errorf("%s returns %v, want an iter.Seq2", name, it.Type)
			continue
		}
		yield := out.In(0)
		if yield.NumIn() != 2 || yield.In(1) != reflect.TypeOf((*error)(nil)).Elem() {
			t.Errorf("%s yields %v, want (item, error)", name, yield)
		}
		if in := it.Type.In(2); in.Elem().Name() != string(m.Input().Name()) {
			t.Errorf("%s takes %v, want *%s", name, in, m.Input().Name())
		}
	}
}

// Every service has its stub on Client.
func TestClientHasEveryService(t *testing.T) {
	client := reflect.TypeOf(Client{})
	for _, svc := range services.All() {
		field, ok := services.ClientField[string(svc.FullName())]
		if !ok {
			t.Errorf("service %s has no Client field in internal/services.ClientField", svc.FullName())
			continue
		}
		f, ok := client.FieldByName(field)
		if !ok || f.Type.Name() != string(svc.Name())+"Client" {
			t.Errorf("Client.%s is %v, want %sClient", field, f.Type, svc.Name())
		}
	}
}

// iterators_gen.go is what the generator makes from the current descriptors.
func TestIteratorsAreGenerated(t *testing.T) {
	want, err := services.Generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("iterators_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("iterators_gen.go is stale: run `go generate ./...` in clients/go")
	}
}

// pagedClusters serves `total` clusters `page_size` at a time, with its own opaque tokens.
type pagedClusters struct {
	pb.UnimplementedClusterServiceServer
	total    int
	failAt   string // a page token answered with UNAVAILABLE... forever
	requests []*pb.ListClustersRequest
}

func (p *pagedClusters) ListClusters(ctx context.Context, req *pb.ListClustersRequest) (*pb.ListClustersResponse, error) {
	p.requests = append(p.requests, req)
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("authorization")) != 0 {
		return nil, status.Error(codes.Internal, "the fake was sent a token")
	}
	if req.GetPageToken() != "" && req.GetPageToken() == p.failAt {
		return nil, status.Error(codes.PermissionDenied, "no")
	}
	start := 0
	if req.GetPageToken() != "" {
		n, err := strconv.Atoi(req.GetPageToken()[len("after-"):])
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, "bad token")
		}
		start = n
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = 3
	}
	end := min(start+size, p.total)
	resp := &pb.ListClustersResponse{TotalSize: int32(p.total)}
	for i := start; i < end; i++ {
		resp.Clusters = append(resp.Clusters, &pb.Cluster{Id: fmt.Sprintf("c%d", i)})
	}
	if end < p.total {
		resp.NextPageToken = fmt.Sprintf("after-%d", end)
	}
	return resp, nil
}

func collect[T any](t *testing.T, seq iter.Seq2[T, error]) ([]T, error) {
	t.Helper()
	var out []T
	for item, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, item)
	}
	return out, nil
}

func TestIteratorFollowsPageTokens(t *testing.T) {
	p := &pagedClusters{total: 5}
	c := startFake(t, func(s *grpc.Server) { pb.RegisterClusterServiceServer(s, p) })
	req := &pb.ListClustersRequest{PageSize: 2, Filter: "x"}
	got, err := collect(t, c.AllClusters(context.Background(), req))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].GetId() != "c0" || got[4].GetId() != "c4" {
		t.Fatalf("got %d clusters %v", len(got), got)
	}
	if len(p.requests) != 3 || p.requests[2].GetPageToken() != "after-4" || p.requests[2].GetFilter() != "x" {
		t.Fatalf("requests %v: want 3 pages, each with the filter", p.requests)
	}
	if req.GetPageToken() != "" {
		t.Fatal("the caller's request was modified")
	}
}

func TestIteratorStopsOnBreakAndYieldsErrors(t *testing.T) {
	p := &pagedClusters{total: 10, failAt: "after-4"}
	c := startFake(t, func(s *grpc.Server) { pb.RegisterClusterServiceServer(s, p) })
	for range c.AllClusters(context.Background(), &pb.ListClustersRequest{PageSize: 2}) {
		break
	}
	if len(p.requests) != 1 {
		t.Fatalf("breaking after the first item made %d calls", len(p.requests))
	}
	got, err := collect(t, c.AllClusters(context.Background(), &pb.ListClustersRequest{PageSize: 2}))
	if Code(err) != codes.PermissionDenied || len(got) != 4 {
		t.Fatalf("%d items then %v, want 4 then PERMISSION_DENIED", len(got), err)
	}
	if _, err := collect(t, c.AllClusters(context.Background(), nil)); err != nil {
		t.Fatalf("a nil request lists everything: %v", err)
	}
}
