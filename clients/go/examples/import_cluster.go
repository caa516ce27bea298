package examples

import (
	"context"
	"os"

	pb "github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1"

	flotilla "github.com/flotilla-dev/flotilla/clients/go"
)

// ImportCluster registers an existing cluster from a kubeconfig file (its current context).
func ImportCluster(ctx context.Context, c *flotilla.Client, clusterID, kubeconfigPath string) (*pb.Cluster, error) {
	kubeconfig, err := os.ReadFile(kubeconfigPath)
	if err != nil {
		return nil, err
	}
	resp, err := c.Clusters.ImportCluster(ctx, &pb.ImportClusterRequest{
		ClusterId: clusterID,
		Source:    &pb.ImportClusterRequest_Kubeconfig{Kubeconfig: &pb.KubeconfigSource{Kubeconfig: kubeconfig}},
	})
	if err != nil {
		return nil, err
	}
	return resp.GetCluster(), nil
}
