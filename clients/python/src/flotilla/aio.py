"""`flotilla.AsyncClient`: the asyncio (grpc.aio) twin of `flotilla.Client`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from flotilla import _channel
from flotilla._interceptors import async_interceptors
from flotilla._lists import AsyncListMethods
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

if TYPE_CHECKING:
    from flotilla.v1.log_stream_pb2_grpc import LogStreamAsyncStub


class AsyncClient(AsyncListMethods):
    """An asyncio Flotilla client (grpc.aio); create it inside a running event loop.

    ```
    async with flotilla.AsyncClient("flotilla.example.com:443") as client:
        async for node in client.list_nodes(ListNodesRequest(cluster_id="prod")):
            print(node.name)
    ```
    """

    logs: LogStreamAsyncStub

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
        interceptors = async_interceptors(_channel.token_from(token), retry or RetryPolicy())
        if target.plaintext:
            self.channel: grpc.aio.Channel = grpc.aio.insecure_channel(
                target.target, options=list(options), interceptors=interceptors
            )
        else:
            self.channel = grpc.aio.secure_channel(
                target.target,
                _channel.channel_credentials(ca_file),
                options=list(options),
                interceptors=interceptors,
            )
        self.admin = admin_service_pb2_grpc.AdminServiceStub(self.channel)
        self.agents = agent_service_pb2_grpc.AgentServiceStub(self.channel)
        self.clusters = cluster_service_pb2_grpc.ClusterServiceStub(self.channel)
        self.credentials = credential_service_pb2_grpc.CredentialServiceStub(self.channel)
        self.logs = log_stream_pb2_grpc.LogStreamStub(self.channel)
        self.nodes = node_service_pb2_grpc.NodeServiceStub(self.channel)
        self.operations = operation_service_pb2_grpc.OperationServiceStub(self.channel)
        self.registries = registry_service_pb2_grpc.RegistryServiceStub(self.channel)
        self.workloads = workload_service_pb2_grpc.WorkloadServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def wait_operation(
        self, operation_id: str, *, timeout: float | None = None
    ) -> operation_pb2.Operation:
        """Waits until the operation ends; see `flotilla.Client.wait_operation`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last: operation_pb2.Operation | None = None
        backoff = ReconnectBackoff()
        request = operation_service_pb2.WatchOperationRequest(operation_id=operation_id)
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise OperationTimeoutError(operation_id, last)
            try:
                async for message in self.operations.WatchOperation(request, timeout=left):
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
            await asyncio.sleep(delay)

    async def follow_pod_logs(
        self,
        cluster_id: str,
        namespace: str,
        pod: str,
        *,
        container: str = "",
        tail_lines: int | None = None,
        timeout: float | None = None,
    ) -> AsyncGenerator[log_stream_pb2.LogEntry, None]:
        """Every log entry of the pod; see `flotilla.Client.follow_pod_logs`."""
        options = log_stream_pb2.LogOptions(follow=True)
        if tail_lines is not None:
            options.tail_lines = tail_lines
        request = log_stream_pb2.StreamPodLogsRequest(
            cluster_id=cluster_id, namespace=namespace, pod=pod, container=container,
            options=options,
        )
        stream = self.logs.StreamPodLogs(request, timeout=timeout)
        try:
            async for batch in stream:
                for entry in batch.entries:
                    yield entry
        finally:
            stream.cancel()
