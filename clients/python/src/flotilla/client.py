"""`flotilla.Client`: one channel, every service's stub, the List generators and the waits."""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from flotilla import _channel
from flotilla._interceptors import SyncInterceptor
from flotilla._lists import ListMethods
from flotilla._operations import RECONNECT_CODES, ReconnectBackoff, outcome
from flotilla.errors import FlotillaError, OperationTimeoutError
from flotilla.retry import RetryPolicy
from flotilla.v1 import (
    admin_service_pb2_grpc,
    agent_service_pb2_grpc,
    cluster_service_pb2_grpc,
    credential_service_pb2_grpc,
    log_stream_pb2,
    log_stream_pb2_grpc,
    node_service_pb2_grpc,
    operation_pb2,
    operation_service_pb2,
    operation_service_pb2_grpc,
    registry_service_pb2_grpc,
    workload_service_pb2_grpc,
)


class Client(ListMethods):
    """A synchronous Flotilla client.

    ```
    with flotilla.Client("flotilla.example.com:443") as client:   # token from FLOTILLA_TOKEN
        for cluster in client.list_clusters():
            print(cluster.cluster_id)
    ```

    The attributes `admin`, `clusters`, `credentials`, `logs`, `nodes`, `operations`,
    `registries` and `workloads` are the generated stubs; every call through them (and through the
    helpers) carries the token, follows the retry policy and raises `FlotillaError` on failure.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        token: str | None = None,
        ca_file: str | Path | None = None,
        insecure: bool = False,
        retry: RetryPolicy | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        target = _channel.parse_address(address, insecure=insecure)
        if target.plaintext:
            raw = grpc.insecure_channel(target.target, options=list(options))
        else:
            creds = _channel.channel_credentials(ca_file)
            raw = grpc.secure_channel(target.target, creds, options=list(options))
        self._raw_channel = raw
        interceptor = SyncInterceptor(_channel.token_from(token), retry or RetryPolicy())
        self.channel: grpc.Channel = grpc.intercept_channel(raw, interceptor)
        self.admin = admin_service_pb2_grpc.AdminServiceStub(self.channel)
        self.agents = agent_service_pb2_grpc.AgentServiceStub(self.channel)
        self.clusters = cluster_service_pb2_grpc.ClusterServiceStub(self.channel)
        self.credentials = credential_service_pb2_grpc.CredentialServiceStub(self.channel)
        self.logs = log_stream_pb2_grpc.LogStreamStub(self.channel)
        self.nodes = node_service_pb2_grpc.NodeServiceStub(self.channel)
        self.operations = operation_service_pb2_grpc.OperationServiceStub(self.channel)
        self.registries = registry_service_pb2_grpc.RegistryServiceStub(self.channel)
        self.workloads = workload_service_pb2_grpc.WorkloadServiceStub(self.channel)

    def close(self) -> None:
        self._raw_channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def wait_operation(
        self, operation_id: str, *, timeout: float | None = None
    ) -> operation_pb2.Operation:
        """Blocks until the operation ends and returns it when it SUCCEEDED.

        Built on `OperationService.WatchOperation`; a dropped stream (UNAVAILABLE, a stream that
        ends before a terminal state) is opened again after a short backoff. Raises
        `OperationFailedError` (FAILED or CANCELLED, carrying the operation and its error),
        `OperationTimeoutError` after `timeout` seconds, or the `FlotillaError` of the watch
        itself (such as NOT_FOUND).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last: operation_pb2.Operation | None = None
        backoff = ReconnectBackoff()
        request = operation_service_pb2.WatchOperationRequest(operation_id=operation_id)
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise OperationTimeoutError(operation_id, last)
            try:
                for message in self.operations.WatchOperation(request, timeout=left):
                    last = message.operation
                    backoff.reset()
                    done = outcome(last)
                    if done is not None:
                        return done
            except FlotillaError as err:
                if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED and deadline is not None:
                    raise OperationTimeoutError(operation_id, last) from err
                if err.code() not in RECONNECT_CODES:
                    raise
            delay = backoff.next_delay()
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            time.sleep(delay)

    def follow_pod_logs(
        self,
        cluster_id: str,
        namespace: str,
        pod: str,
        *,
        container: str = "",
        tail_lines: int | None = None,
        timeout: float | None = None,
    ) -> Generator[log_stream_pb2.LogEntry, None, None]:
        """Every log entry of the pod (lines, then new lines as they are written) until the pod
        ends, `timeout` passes or the caller stops iterating (which ends the stream)."""
        options = log_stream_pb2.LogOptions(follow=True)
        if tail_lines is not None:
            options.tail_lines = tail_lines
        request = log_stream_pb2.StreamPodLogsRequest(
            cluster_id=cluster_id, namespace=namespace, pod=pod, container=container,
            options=options,
        )
        stream = self.logs.StreamPodLogs(request, timeout=timeout)
        try:
            for batch in stream:
                yield from batch.entries
        finally:
            stream.cancel()
