"""wait_operation (sync and asyncio) against scripted WatchOperation streams: reconnects on a
dropped stream, raises the failure with the operation, gives up at the timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from fake_server import Failure, FakeServer, Script, error_info, operation

import flotilla
from flotilla.v1 import operation_pb2

RUNNING = operation(operation_pb2.OPERATION_STATE_RUNNING, progress_percent=40)
SUCCEEDED = operation(operation_pb2.OPERATION_STATE_SUCCEEDED, progress_percent=100)
FAILED = operation(
    operation_pb2.OPERATION_STATE_FAILED,
    error=operation_pb2.OperationError(
        error_class=operation_pb2.ERROR_CLASS_QUOTA_EXCEEDED, vendor_code="QuotaExceeded.Cluster",
        vendor_message="cluster quota exceeded",
    ),
)
DROPPED = Failure(grpc.StatusCode.UNAVAILABLE, "connection reset")


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def server(script: Script) -> Iterator[FakeServer]:
    fake = FakeServer(script)
    yield fake
    fake.stop()


def test_reconnects_after_a_dropped_or_ended_stream(script: Script, server: FakeServer) -> None:
    script.answers["WatchOperation"] = [[RUNNING, DROPPED], [RUNNING], [RUNNING, SUCCEEDED]]
    with flotilla.Client(server.addr, insecure=True) as client:
        done = client.wait_operation("op-1", timeout=20)
    assert done.state == operation_pb2.OPERATION_STATE_SUCCEEDED
    assert len(script.times("WatchOperation")) == 3


@pytest.mark.asyncio
async def test_async_reconnects_after_a_dropped_stream(script: Script, server: FakeServer) -> None:
    script.answers["WatchOperation"] = [[RUNNING, DROPPED], [RUNNING], [SUCCEEDED]]
    async with flotilla.AsyncClient(server.addr, insecure=True) as client:
        done = await client.wait_operation("op-1", timeout=20)
    assert done.state == operation_pb2.OPERATION_STATE_SUCCEEDED
    assert len(script.times("WatchOperation")) == 3


def test_a_failed_operation_raises_with_its_error(script: Script, server: FakeServer) -> None:
    script.answers["WatchOperation"] = [[RUNNING, FAILED]]
    with flotilla.Client(server.addr, insecure=True) as client:
        with pytest.raises(flotilla.OperationFailedError) as err:
            client.wait_operation("op-1", timeout=20)
    assert err.value.reason == "QUOTA_EXCEEDED"
    assert err.value.operation.state == operation_pb2.OPERATION_STATE_FAILED
    assert err.value.error.vendor_code == "QuotaExceeded.Cluster"
    assert "cluster quota exceeded" in err.value.message


@pytest.mark.asyncio
async def test_async_a_failed_operation_raises(script: Script, server: FakeServer) -> None:
    script.answers["WatchOperation"] = [[FAILED]]
    async with flotilla.AsyncClient(server.addr, insecure=True) as client:
        with pytest.raises(flotilla.OperationFailedError) as err:
            await client.wait_operation("op-1", timeout=20)
    assert err.value.reason == "QUOTA_EXCEEDED"


def test_other_watch_errors_are_raised_at_once(script: Script, server: FakeServer) -> None:
    script.answers["WatchOperation"] = [[Failure(grpc.StatusCode.NOT_FOUND, "no such operation",
                                                 [error_info("NOT_FOUND")])]]
    with flotilla.Client(server.addr, insecure=True) as client:
        with pytest.raises(flotilla.NotFoundError) as err:
            client.wait_operation("op-1", timeout=20)
    assert err.value.reason == "NOT_FOUND"
    assert len(script.times("WatchOperation")) == 1


def test_the_timeout_ends_the_wait_with_the_last_state(script: Script, server: FakeServer) -> None:
    script.answers["WatchOperation"] = [[RUNNING, "hang"]]
    started = time.monotonic()
    with flotilla.Client(server.addr, insecure=True) as client:
        with pytest.raises(flotilla.OperationTimeoutError) as err:
            client.wait_operation("op-1", timeout=1.0)
    assert 0.9 <= time.monotonic() - started < 5
    assert err.value.operation is not None and err.value.operation.progress_percent == 40


@pytest.mark.asyncio
async def test_async_the_timeout_ends_the_wait(script: Script, server: FakeServer) -> None:
    script.answers["WatchOperation"] = [[RUNNING, "hang"]]
    started = time.monotonic()
    async with flotilla.AsyncClient(server.addr, insecure=True) as client:
        with pytest.raises(flotilla.OperationTimeoutError):
            await client.wait_operation("op-1", timeout=1.0)
    assert 0.9 <= time.monotonic() - started < 5
