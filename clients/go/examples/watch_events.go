package examples

import (
	"context"
	"errors"

	pb "github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1"

	flotilla "github.com/flotilla-dev/flotilla/clients/go"
)

// WaitForEvent watches a namespace's events (a snapshot, then live ones) until `match` accepts one.
func WaitForEvent(ctx context.Context, c *flotilla.Client, clusterID, namespace string, match func(*pb.Event) bool) (*pb.Event, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Logs.WatchEvents(ctx, &pb.WatchEventsRequest{ClusterId: clusterID, Namespace: namespace})
	if err != nil {
		return nil, err
	}
	for msg, err := range flotilla.Stream(stream) {
		if err != nil {
			return nil, err
		}
		if msg.GetEvent() != nil && match(msg.GetEvent()) {
			return msg.GetEvent(), nil
		}
	}
	return nil, errors.New("the event stream ended")
}
