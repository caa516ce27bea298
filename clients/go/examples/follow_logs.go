package examples

import (
	"context"
	"errors"
	"strings"

	pb "github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1"

	flotilla "github.com/flotilla-dev/flotilla/clients/go"
)

// FollowPodLogs streams a pod's log lines as they are written, until one contains `until`.
func FollowPodLogs(ctx context.Context, c *flotilla.Client, clusterID, namespace, pod, until string) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // closes the stream when we stop reading
	stream, err := c.Logs.StreamPodLogs(ctx, &pb.StreamPodLogsRequest{
		ClusterId: clusterID, Namespace: namespace, Pod: pod,
		Options: &pb.LogOptions{Follow: true},
	})
	if err != nil {
		return "", err
	}
	for msg, err := range flotilla.Stream(stream) {
		if err != nil {
			return "", err
		}
		for _, entry := range msg.GetEntries() {
			if strings.Contains(entry.GetContent(), until) {
				return entry.GetContent(), nil
			}
		}
	}
	return "", errors.New("the log stream ended")
}
