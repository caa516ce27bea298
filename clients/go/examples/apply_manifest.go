package examples

import (
	"context"
	"fmt"

	pb "github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1"

	flotilla "github.com/flotilla-dev/flotilla/clients/go"
)

// ApplyManifest server-side-applies YAML (one or more documents) and reports each object.
func ApplyManifest(ctx context.Context, c *flotilla.Client, clusterID, namespace, yaml string) error {
	resp, err := c.Workloads.ApplyManifests(ctx, &pb.ApplyManifestsRequest{
		ClusterId: clusterID, Namespace: namespace, Manifests: yaml,
	})
	if err != nil {
		return err
	}
	for _, r := range resp.GetResults() {
		fmt.Printf("%s/%s: %s\n", r.GetObject().GetKind(), r.GetObject().GetName(), r.GetOutcome())
		if r.GetOutcome() == pb.ApplyOutcome_APPLY_OUTCOME_FAILED {
			return fmt.Errorf("applying %s: %s", r.GetObject().GetName(), r.GetMessage())
		}
	}
	return nil
}
