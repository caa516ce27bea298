#!/usr/bin/env python3
"""Memory and CPU of one `flotilla serve` (the release binary), idle and under a light load: the
numbers behind the Helm chart's resource requests (deploy/helm/flotilla/values.yaml). Not a test.

    FLOTILLA_BIN=target/release/flotilla target/pyenv/bin/python bench/footprint.py

With KUBECONFIG set (the test control plane) every context is imported at start, so the cluster
prober and the watch caches run as they would in production. With FLOTILLA_TEST_POSTGRES_URL set
the server uses a throw-away PostgreSQL database (else SQLite). Read from /proc: VmRSS, VmHWM and
utime+stime of the server process.

Light load: LOAD_RPS calls a second for LOAD_SECONDS, round-robin over ListClusters, ListNodes,
ListWorkloads (all namespaces) and ListPods (kube-system) of every imported cluster.
"""

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "clients", "python", "src"))

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

import flotilla  # noqa: E402
from flotilla.v1 import node_service_pb2, workload_service_pb2  # noqa: E402

BIN = os.environ.get("FLOTILLA_BIN", os.path.join(ROOT, "target", "release", "flotilla"))
IDLE_SECONDS = int(os.environ.get("IDLE_SECONDS", "30"))
LOAD_SECONDS = int(os.environ.get("LOAD_SECONDS", "60"))
LOAD_RPS = int(os.environ.get("LOAD_RPS", "20"))
CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def postgres_db():
    base = os.environ.get("FLOTILLA_TEST_POSTGRES_URL")
    if not base:
        return None, None
    name = "flotilla_footprint_" + secrets.token_hex(4)
    subprocess.run(["psql", base, "-qc", f"CREATE DATABASE {name}"], check=True)
    u = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit(u._replace(path="/" + name)), (base, name)


def main():
    token = secrets.token_urlsafe(32)
    data = tempfile.mkdtemp(prefix="flotilla-footprint-")
    addr = f"127.0.0.1:{free_port()}"
    args = [BIN, "serve", "--listen", addr, "--data-dir", data, "--log-filter", "warn"]
    kubeconfig = os.environ.get("KUBECONFIG")
    if kubeconfig:
        args += ["--import-kubeconfig", kubeconfig]
    db_url, drop = postgres_db()
    env = {**os.environ, "FLOTILLA_BOOTSTRAP_TOKEN": token}
    if db_url:
        env["FLOTILLA_DATABASE_URL"] = db_url
        env["FLOTILLA_MASTER_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(addr))
        deadline = time.time() + 60
        while True:
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    break
            except grpc.RpcError:
                pass
            if time.time() > deadline:
                raise SystemExit("not SERVING within 60 s")
            time.sleep(0.1)
        start = proc_status(proc.pid)
        c0 = cpu_seconds(proc.pid)
        time.sleep(IDLE_SECONDS)
        idle = proc_status(proc.pid)
        idle_cpu = (cpu_seconds(proc.pid) - c0) / IDLE_SECONDS

        client = flotilla.Client(addr, token=token, insecure=True)
        clusters = [c.id for c in client.list_clusters()]
        calls = [lambda: list(client.list_clusters())]
        for cid in clusters:
            calls += [
                lambda cid=cid: list(client.list_nodes(node_service_pb2.ListNodesRequest(cluster_id=cid))),
                lambda cid=cid: list(client.list_workloads(workload_service_pb2.ListWorkloadsRequest(cluster_id=cid))),
                lambda cid=cid: list(
                    client.list_pods(workload_service_pb2.ListPodsRequest(cluster_id=cid, namespace="kube-system"))
                ),
            ]
        errors = []
        done = 0
        c1 = cpu_seconds(proc.pid)
        t0 = time.time()
        i = 0
        while time.time() - t0 < LOAD_SECONDS:
            try:
                calls[i % len(calls)]()
                done += 1
            except Exception as e:  # noqa: BLE001 - counted and shown, a bench keeps going
                errors.append(str(e)[:120])
            i += 1
            time.sleep(max(0.0, t0 + i / LOAD_RPS - time.time()))
        elapsed = time.time() - t0
        load = proc_status(proc.pid)
        load_cpu = (cpu_seconds(proc.pid) - c1) / elapsed
        client.close()
        print(
            f"binary            {BIN}\n"
            f"database          {'PostgreSQL' if db_url else 'SQLite'}; clusters imported: {len(clusters)}\n"
            f"at SERVING        RSS {start['VmRSS'] / 1024:.1f} MiB, {start['Threads']} threads\n"
            f"idle {IDLE_SECONDS:>3} s       RSS {idle['VmRSS'] / 1024:.1f} MiB, CPU {idle_cpu * 1000:.1f} millicores\n"
            f"load {elapsed:>5.1f} s     {done} calls ({done / elapsed:.1f}/s), {len(errors)} errors; "
            f"RSS {load['VmRSS'] / 1024:.1f} MiB (peak {load['VmHWM'] / 1024:.1f} MiB), "
            f"CPU {load_cpu * 1000:.1f} millicores"
        )
        if errors:
            print("errors (first 3):", errors[:3])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        if drop:
            subprocess.run(["psql", drop[0], "-qc", f"DROP DATABASE IF EXISTS {drop[1]}"], check=False)
        subprocess.run(["rm", "-rf", data], check=False)


if __name__ == "__main__":
    main()
