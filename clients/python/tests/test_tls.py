"""TLS: a CA file makes the client trust a server the system roots do not; the token travels
over it. The certificate is made here with openssl, for 127.0.0.1 only."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from fake_server import Script, ClustersServicer, get_ok

import flotilla
from flotilla.v1 import cluster_service_pb2, cluster_service_pb2_grpc


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("tls")
    cert, key = base / "server.pem", base / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=flotilla-test", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path], script: Script) -> Iterator[str]:
    cert, key = certificate
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    cluster_service_pb2_grpc.add_ClusterServiceServicer_to_server(
        ClustersServicer(script), server  # type: ignore[abstract]
    )
    creds = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.fixture
def script() -> Script:
    script = Script()
    script.answers["GetCluster"] = [get_ok()]
    return script


GET = cluster_service_pb2.GetClusterRequest(cluster_id="c1")


def test_a_ca_file_is_trusted(tls_server: str, certificate: tuple[Path, Path], script: Script) -> None:
    with flotilla.Client(tls_server, token="over-tls", ca_file=certificate[0]) as client:
        client.clusters.GetCluster(GET)
    assert [c.metadata.get("authorization") for c in script.calls] == ["Bearer over-tls"]


@pytest.mark.asyncio
async def test_async_a_ca_file_is_trusted(
    tls_server: str, certificate: tuple[Path, Path], script: Script
) -> None:
    async with flotilla.AsyncClient(f"https://{tls_server}", token="t", ca_file=certificate[0]) as client:
        await client.clusters.GetCluster(GET)
    assert len(script.calls) == 1


def test_the_system_roots_do_not_trust_a_private_ca(tls_server: str, script: Script) -> None:
    policy = flotilla.RetryPolicy(max_attempts=1)
    with flotilla.Client(tls_server, token="t", retry=policy) as client:
        with pytest.raises(flotilla.UnavailableError):
            client.clusters.GetCluster(GET, timeout=10)
    assert script.calls == [], "no call reached the server"
