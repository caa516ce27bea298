"""Starts the real `flotilla` binary for the Python client tests."""

import os
import signal
import socket
import subprocess
import tempfile
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

ADMIN_TOKEN = "flt_PythonAdmin-h4Ws8KqZ2mRx7TcLp9VbJd3NfY6gEa1Uo5Xk"
AUTH = (("authorization", f"Bearer {ADMIN_TOKEN}"),)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def binary():
    path = os.environ.get("FLOTILLA_BIN", os.path.join(ROOT, "target", "debug", "flotilla"))
    if not os.path.exists(path):
        pytest.fail(f"{path} does not exist: run `cargo build` first (./scripts/test does)")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *extra_args, tls_ca=None):
        self.tls_ca = tls_ca
        self.data_dir = tempfile.mkdtemp(prefix="flotilla-py-")
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.data_dir, "server.log")
        self.log = open(self.log_path, "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [binary(), "serve", "--listen", self.addr, "--data-dir",
             os.path.join(self.data_dir, "data"), *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "FLOTILLA_BOOTSTRAP_TOKEN": ADMIN_TOKEN},
        )
        self.serving_after = self.wait_serving()

    def wait_serving(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        if self.tls_ca:
            credentials = grpc.ssl_channel_credentials(open(self.tls_ca, "rb").read())
            channel = grpc.secure_channel(f"localhost:{self.port}", credentials)
        else:
            channel = grpc.insecure_channel(self.addr)
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited: {self.logs()}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return time.monotonic() - self.started
                except grpc.RpcError:
                    time.sleep(0.01)
            raise AssertionError(f"not SERVING within {timeout}s: {self.logs()}")
        finally:
            channel.close()

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=timeout)
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()
