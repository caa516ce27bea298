package examples

import (
	"context"
	"fmt"

	pb "github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1"

	flotilla "github.com/flotilla-dev/flotilla/clients/go"
)

// ListNodes prints every node of a cluster; AllNodes fetches the pages as the loop goes.
func ListNodes(ctx context.Context, c *flotilla.Client, clusterID string) ([]*pb.Node, error) {
	var nodes []*pb.Node
	for node, err := range c.AllNodes(ctx, &pb.ListNodesRequest{ClusterId: clusterID, PageSize: 2}) {
		if err != nil {
			return nil, err
		}
		fmt.Printf("%s ready=%v zone=%s\n", node.GetName(), node.GetReady(), node.GetZone())
		nodes = append(nodes, node)
	}
	return nodes, nil
}
