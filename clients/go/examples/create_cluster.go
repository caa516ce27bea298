package examples

import (
	"context"
	"time"

	pb "github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1"

	flotilla "github.com/flotilla-dev/flotilla/clients/go"
)

// CreateACKCluster creates a cluster at Alibaba Cloud ACK and waits until it is running.
// The request_id makes a retried create (flotilla.RetryWrite) return the same operation.
func CreateACKCluster(ctx context.Context, c *flotilla.Client, clusterID string, spec *pb.ClusterSpec) (*pb.Cluster, error) {
	resp, err := c.Clusters.CreateCluster(ctx, &pb.CreateClusterRequest{
		ClusterId: clusterID, Provider: "ack", Spec: spec, RequestId: "create-" + clusterID,
	}, flotilla.RetryWrite())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	if _, err := c.WaitOperation(ctx, resp.GetOperation().GetId()); err != nil {
		return nil, err // a *flotilla.OperationError says why it failed
	}
	got, err := c.Clusters.GetCluster(ctx, &pb.GetClusterRequest{ClusterId: clusterID})
	return got.GetCluster(), err
}
