#!/usr/bin/env python3
"""Cold start to SERVING: spawn `flotilla serve` on an empty data dir, poll grpc.health.v1 until
SERVING, stop it; repeat. Prints median and p90. Not a timed test: numbers go in the issue note.

    cargo build --release && target/pyenv/bin/python bench/cold_start.py [runs]
"""

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("FLOTILLA_BIN", os.path.join(ROOT, "target", "release", "flotilla"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run():
    data = tempfile.mkdtemp(prefix="flotilla-bench-")
    addr = f"127.0.0.1:{free_port()}"
    # Without these the client's own reconnect backoff (1 s) would be measured, not the server.
    channel = grpc.insecure_channel(addr, options=[
        ("grpc.initial_reconnect_backoff_ms", 5),
        ("grpc.min_reconnect_backoff_ms", 5),
        ("grpc.max_reconnect_backoff_ms", 10),
    ])
    stub = health_pb2_grpc.HealthStub(channel)
    started = time.perf_counter()
    proc = subprocess.Popen([BIN, "serve", "--listen", addr, "--data-dir", os.path.join(data, "d")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=0.2,
                                   wait_for_ready=False)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.perf_counter() - started
            except grpc.RpcError:
                time.sleep(0.002)
            if time.perf_counter() - started > 30:
                raise RuntimeError("not SERVING within 30 s")
    finally:
        channel.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        shutil.rmtree(data, ignore_errors=True)


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    one_run()  # warm the page cache for the binary itself
    times = sorted(one_run() * 1000 for _ in range(runs))
    p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
    print(f"cold start to SERVING on an empty data dir ({runs} runs, {BIN}):")
    print(f"  median {statistics.median(times):.0f} ms, p90 {p90:.0f} ms, "
          f"min {times[0]:.0f} ms, max {times[-1]:.0f} ms")


if __name__ == "__main__":
    main()
