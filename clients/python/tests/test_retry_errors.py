"""Retry timing, error decoding and the token header, against a tiny in-process server whose
recorded calls (arrival times, metadata) are the expected answers."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from fake_server import Failure, FakeServer, Script, bad_request, error_info, get_ok, retry_info

import flotilla
from flotilla._channel import parse_address
from flotilla.v1 import cluster_service_pb2

GET = cluster_service_pb2.GetClusterRequest(cluster_id="c1")
DELETE = cluster_service_pb2.DeleteClusterRequest(cluster_id="c1")
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def server(script: Script) -> Iterator[FakeServer]:
    fake = FakeServer(script)
    yield fake
    fake.stop()


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


def test_a_read_waits_as_long_as_retry_info_says(script: Script, server: FakeServer) -> None:
    wait = Failure(UNAVAILABLE, "draining", [retry_info(0.3)])
    script.answers["GetCluster"] = [wait, wait, get_ok()]
    with flotilla.Client(server.addr, insecure=True, token="t") as client:
        client.clusters.GetCluster(GET)
    times = script.times("GetCluster")
    assert len(times) == 3
    assert all(0.3 <= g < 0.8 for g in gaps(times)), gaps(times)


@pytest.mark.asyncio
async def test_async_read_waits_as_long_as_retry_info_says(script: Script, server: FakeServer) -> None:
    wait = Failure(UNAVAILABLE, "draining", [retry_info(0.3)])
    script.answers["GetCluster"] = [wait, wait, get_ok()]
    async with flotilla.AsyncClient(server.addr, insecure=True, token="t") as client:
        await client.clusters.GetCluster(GET)
    times = script.times("GetCluster")
    assert len(times) == 3
    assert all(0.3 <= g < 0.8 for g in gaps(times)), gaps(times)


def test_retries_are_bounded(script: Script, server: FakeServer) -> None:
    script.answers["GetCluster"] = [Failure(UNAVAILABLE, "down")]
    policy = flotilla.RetryPolicy(max_attempts=3, initial_backoff=0.01)
    with flotilla.Client(server.addr, insecure=True, retry=policy) as client:
        with pytest.raises(flotilla.UnavailableError) as err:
            client.clusters.GetCluster(GET)
    assert err.value.code() == UNAVAILABLE and err.value.message == "down"
    assert len(script.times("GetCluster")) == 3


@pytest.mark.asyncio
async def test_async_retries_are_bounded(script: Script, server: FakeServer) -> None:
    script.answers["GetCluster"] = [Failure(UNAVAILABLE, "down")]
    policy = flotilla.RetryPolicy(max_attempts=3, initial_backoff=0.01)
    async with flotilla.AsyncClient(server.addr, insecure=True, retry=policy) as client:
        with pytest.raises(flotilla.UnavailableError):
            await client.clusters.GetCluster(GET)
    assert len(script.times("GetCluster")) == 3


def test_a_write_is_retried_only_when_opted_in(script: Script, server: FakeServer) -> None:
    def fail_once() -> None:
        script.answers["DeleteCluster"] = [
            Failure(UNAVAILABLE, "draining", [retry_info(0.05)]),
            cluster_service_pb2.DeleteClusterResponse(),
        ]

    fail_once()
    with flotilla.Client(server.addr, insecure=True) as client:
        with pytest.raises(flotilla.UnavailableError) as err:
            client.clusters.DeleteCluster(DELETE)
    assert err.value.retry_delay == pytest.approx(0.05)
    assert len(script.times("DeleteCluster")) == 1

    fail_once()
    writes = flotilla.RetryPolicy(retry_writes=True)
    with flotilla.Client(server.addr, insecure=True, retry=writes) as client:
        client.clusters.DeleteCluster(DELETE)
    assert len(script.times("DeleteCluster")) == 3


def test_resource_exhausted_is_retried_only_with_retry_info(script: Script, server: FakeServer) -> None:
    exhausted = grpc.StatusCode.RESOURCE_EXHAUSTED
    script.answers["GetCluster"] = [Failure(exhausted, "slow down", [retry_info(0.2)]), get_ok()]
    with flotilla.Client(server.addr, insecure=True) as client:
        client.clusters.GetCluster(GET)
        assert len(script.times("GetCluster")) == 2
        script.answers["GetCluster"] = [Failure(exhausted, "quota", [error_info("QUOTA")])]
        with pytest.raises(flotilla.ResourceExhaustedError) as err:
            client.clusters.GetCluster(GET)
    assert err.value.reason == "QUOTA"
    assert len(script.times("GetCluster")) == 3
    assert gaps(script.times("GetCluster"))[0] >= 0.2


def test_a_longer_wait_than_the_policy_allows_is_not_retried(script: Script, server: FakeServer) -> None:
    script.answers["GetCluster"] = [Failure(UNAVAILABLE, "maintenance", [retry_info(120)])]
    with flotilla.Client(server.addr, insecure=True) as client:
        with pytest.raises(flotilla.UnavailableError) as err:
            client.clusters.GetCluster(GET)
    assert err.value.retry_delay == 120
    assert len(script.times("GetCluster")) == 1


def test_a_retry_stops_at_the_callers_deadline(script: Script, server: FakeServer) -> None:
    script.answers["GetCluster"] = [Failure(UNAVAILABLE, "draining", [retry_info(1.0)])]
    with flotilla.Client(server.addr, insecure=True) as client:
        with pytest.raises(flotilla.UnavailableError):
            client.clusters.GetCluster(GET, timeout=0.5)
    assert len(script.times("GetCluster")) == 1


def test_errors_carry_reason_metadata_and_fields(script: Script, server: FakeServer) -> None:
    script.answers["GetCluster"] = [Failure(
        grpc.StatusCode.INVALID_ARGUMENT, "2 fields are invalid",
        [bad_request(("spec.region", "is required"), ("cluster_id", "too long"))],
    )]
    script.answers["DeleteCluster"] = [Failure(
        grpc.StatusCode.FAILED_PRECONDITION, "in use",
        [error_info("CLUSTER_BUSY", operation="op-9")],
    )]
    with flotilla.Client(server.addr, insecure=True) as client:
        with pytest.raises(flotilla.InvalidArgumentError) as bad:
            client.clusters.GetCluster(GET)
        with pytest.raises(flotilla.FailedPreconditionError) as busy:
            client.clusters.DeleteCluster(DELETE)
    assert bad.value.fields == ["spec.region", "cluster_id"] and bad.value.field == "spec.region"
    assert bad.value.field_violations[1] == flotilla.FieldViolation("cluster_id", "too long")
    assert isinstance(bad.value, grpc.RpcError) and bad.value.details() == "2 fields are invalid"
    assert busy.value.reason == "CLUSTER_BUSY" and busy.value.domain == "flotilla.dev"
    assert busy.value.metadata == {"operation": "op-9"} and busy.value.field is None


def test_the_token_comes_from_the_argument_or_the_environment(
    script: Script, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    script.answers["GetCluster"] = [get_ok()]
    monkeypatch.setenv("FLOTILLA_TOKEN", "from-env")
    with flotilla.Client(server.addr, insecure=True) as client:
        client.clusters.GetCluster(GET)
    with flotilla.Client(server.addr, insecure=True, token="from-arg") as client:
        client.clusters.GetCluster(GET)
    monkeypatch.delenv("FLOTILLA_TOKEN")
    with flotilla.Client(server.addr, insecure=True) as client:
        client.clusters.GetCluster(GET)
    sent = [c.metadata.get("authorization") for c in script.calls]
    assert sent == ["Bearer from-env", "Bearer from-arg", None]


def test_plain_text_only_to_loopback() -> None:
    for ok in ("127.0.0.5:50051", "[::1]:50051", "localhost:1", "http://127.0.0.1:9"):
        assert parse_address(ok, insecure=not ok.startswith("http://")).plaintext
    for refused in ("10.0.0.1:443", "flotilla.example.com:443", "[2001:db8::1]:443"):
        with pytest.raises(ValueError, match="loopback"):
            parse_address(refused, insecure=True)
    with pytest.raises(ValueError, match="loopback"):
        parse_address("http://flotilla.example.com:80", insecure=False)
    tls = parse_address("https://flotilla.example.com", insecure=False)
    assert (tls.target, tls.plaintext) == ("flotilla.example.com:443", False)
    with pytest.raises(ValueError, match="loopback"):
        flotilla.Client("192.0.2.1:443", insecure=True)


def test_leaving_the_with_block_closes_the_channel(script: Script, server: FakeServer) -> None:
    script.answers["GetCluster"] = [get_ok()]
    with flotilla.Client(server.addr, insecure=True) as client:
        client.clusters.GetCluster(GET)
    with pytest.raises(ValueError, match="closed channel"):
        client.clusters.GetCluster(GET)
    assert len(script.calls) == 1


@pytest.mark.asyncio
async def test_leaving_the_async_with_block_closes_the_channel(
    script: Script, server: FakeServer
) -> None:
    script.answers["GetCluster"] = [get_ok()]
    async with flotilla.AsyncClient(server.addr, insecure=True) as client:
        await client.clusters.GetCluster(GET)
    with pytest.raises(grpc.aio.UsageError):
        await client.clusters.GetCluster(GET)
    assert len(script.calls) == 1
