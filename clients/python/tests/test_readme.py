"""The README's examples are the files in examples/ (verbatim), and they run as scripts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import Harness
from test_scenario import deployment

import flotilla
from flotilla.v1 import cluster_service_pb2

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- example: (\S+) -->\n```python\n(.*?)```\n", re.S)


def test_readme_blocks_are_the_example_files() -> None:
    blocks = BLOCK.findall((ROOT / "README.md").read_text())
    assert blocks, "no example blocks in the README"
    for path, text in blocks:
        assert (ROOT / path).read_text() == text, f"README block of {path} differs from the file"
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.py"))
    assert sorted(path for path, _ in blocks) == files, "every example is in the README once"


def run_example(harness: Harness, name: str, *args: str) -> str:
    # The examples read FLOTILLA_ADDR and FLOTILLA_TOKEN, as a user's script would; http:// is
    # plain text, which the client allows to loopback only.
    env = dict(os.environ, FLOTILLA_ADDR=harness.env["FLOTILLA_URL"], FLOTILLA_TOKEN=harness.token)
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_examples_run_as_scripts(
    harness: Harness, run_id: str, namespace: str, tmp_path: Path
) -> None:
    cluster_id = f"pyx-{run_id}"
    try:
        out = run_example(harness, "import_cluster.py", cluster_id, harness.env["FLOTILLA_TEST_KUBECONFIG"])
        assert out.split() == [cluster_id, "CLUSTER_STATE_RUNNING"]
        nodes = run_example(harness, "list_nodes.py", cluster_id).split()
        expected = [n["metadata"]["name"] for n in harness.kubectl_json("get", "nodes")["items"]]
        assert sorted(nodes) == sorted(expected)
        manifest = tmp_path / "deployment.json"
        manifest.write_text(deployment("script", 1))
        out = run_example(harness, "apply_manifest.py", cluster_id, namespace, str(manifest))
        assert out.split() == ["Deployment/script", "APPLY_OUTCOME_CREATED"]
        assert harness.kubectl_json("get", "deployment", "script", "-n", namespace)["metadata"]["uid"]
    finally:
        with flotilla.Client(harness.addr, token=harness.token, insecure=True) as client:
            try:
                client.clusters.DeleteCluster(cluster_service_pb2.DeleteClusterRequest(cluster_id=cluster_id))
            except flotilla.NotFoundError:
                pass
