"""Watch a namespace's Kubernetes events: python watch_events.py CLUSTER_ID NAMESPACE"""

import sys
from collections.abc import Iterator

import flotilla
from flotilla.v1 import log_stream_pb2, workload_pb2


def watch_events(
    client: flotilla.Client, cluster_id: str, namespace: str, timeout: float | None = None
) -> Iterator[workload_pb2.Event]:
    request = log_stream_pb2.WatchEventsRequest(cluster_id=cluster_id, namespace=namespace)
    for message in client.logs.WatchEvents(request, timeout=timeout):  # snapshot, then live
        if message.HasField("event"):
            yield message.event


if __name__ == "__main__":
    with flotilla.Client() as client:
        for event in watch_events(client, sys.argv[1], sys.argv[2]):
            print(event.reason, event.involved_object.name, event.message)
