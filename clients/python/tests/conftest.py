"""Shared fixtures: the live harness (target/client-env/env) and the test control plane's kubectl.

Expected answers come from outside the client: the API server through kubectl, the vendor
simulator's control endpoint, files on disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
# The README's examples are importable modules (and runnable scripts).
sys.path.insert(0, str(HERE.parent / "examples"))
REPO = HERE.parent.parent.parent


def _read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


@dataclass(frozen=True)
class Harness:
    env: dict[str, str]

    @property
    def addr(self) -> str:
        return self.env["FLOTILLA_ADDR"]

    @property
    def token(self) -> str:
        return self.env["FLOTILLA_TOKEN"]

    def kubectl(self, *args: str, input: str | None = None) -> str:
        """kubectl against the test control plane's first API server (unless args say otherwise:
        a later --kubeconfig wins)."""
        out = subprocess.run(
            [self.env.get("KUBECTL", "kubectl"), "--kubeconfig", self.env["KUBECONFIG"], *args],
            input=input, capture_output=True, text=True, timeout=60,
        )
        if out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def sim_clusters(self, vendor: str) -> list[dict[str, Any]]:
        """The vendor simulator's own list of clusters (its control endpoint)."""
        url = self.env[f"FLOTILLA_SIM_{vendor.upper()}_CONTROL_URL"] + "/clusters"
        with urllib.request.urlopen(url, timeout=10) as response:
            clusters: list[dict[str, Any]] = json.load(response)["clusters"]
            return clusters


@pytest.fixture(scope="session")
def harness() -> Harness:
    path = Path(os.environ.get("FLOTILLA_CLIENT_ENV", REPO / "target" / "client-env" / "env"))
    if not path.is_file():
        pytest.fail(f"no client harness env file at {path}: run scripts/client-env up first")
    return Harness(_read_env(path))


@pytest.fixture(scope="session")
def second_kubeconfig(harness: Harness, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The second API server's kubeconfig with its certificates inline (as Flotilla needs)."""
    path = tmp_path_factory.mktemp("kube") / "second"
    path.write_text(harness.kubectl(
        "config", "view", "--raw", "--flatten", "--minify",
        "--kubeconfig", harness.env["FLOTILLA_KUBE_KUBECONFIG_SECOND"],
    ))
    path.chmod(0o600)
    return path


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:8]


def poll_until(what: str, timeout: float, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def cri_line(content: str) -> str:
    """One CRI log line as KWOK serves it: `<RFC3339Nano> stdout F <content>`."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"
    return f"{stamp} stdout F {content}\n"


@dataclass
class PodLog:
    path: Path

    def append(self, line: str) -> None:
        with self.path.open("a") as f:
            f.write(cri_line(line))


@pytest.fixture
def namespace(harness: Harness, run_id: str) -> Iterator[str]:
    """A fresh namespace of the first cluster, deleted (with its pod log files) afterwards."""
    name = f"py-client-{run_id}"
    harness.kubectl("create", "namespace", name)
    yield name
    harness.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")
    logs = Path(harness.env["FLOTILLA_KUBE_POD_LOGS"]) / name
    for f in logs.glob("*"):
        f.unlink()
    if logs.exists():
        logs.rmdir()


def wire_pod_logs(harness: Harness, namespace: str, pod: str) -> PodLog:
    """Points the pod's logs at a fresh file through a KWOK `Logs` object and waits until the API
    server serves it (the previous-log file's marker line comes back)."""
    base = Path(harness.env["FLOTILLA_KUBE_POD_LOGS"]) / namespace
    base.mkdir(parents=True, exist_ok=True)
    log = PodLog(base / f"{pod}.log")
    previous = PodLog(base / f"{pod}.previous.log")
    log.path.write_text("")
    previous.path.write_text("")
    marker = f"previous log of {namespace}/{pod}"
    previous.append(marker)
    manifest = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Logs",
        "metadata": {"name": pod, "namespace": namespace},
        "spec": {"logs": [{
            "logsFile": str(log.path), "previousLogsFile": str(previous.path), "follow": True,
        }]},
    }
    harness.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def served() -> bool:
        try:
            return marker in harness.kubectl("logs", "-n", namespace, pod, "--previous")
        except AssertionError:
            return False

    poll_until(f"KWOK to serve the logs of {namespace}/{pod}", 60, served)
    return log
