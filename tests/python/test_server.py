"""The server seen by non-Rust clients: Python grpcio (reflection-driven, no generated code)
and grpc-web over HTTP/1.1 as a browser sends it."""

import base64
import signal
import struct
import time
import urllib.error
import urllib.request

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.rpc import status_pb2, error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from conftest import AUTH, ADMIN_TOKEN, Server

SERVICES = {
    "flotilla.v1.ClusterService",
    "flotilla.v1.NodeService",
    "flotilla.v1.WorkloadService",
    "flotilla.v1.RegistryService",
    "flotilla.v1.LogStream",
    "flotilla.v1.OperationService",
    "flotilla.v1.CredentialService",
    "flotilla.v1.AdminService",
    "grpc.health.v1.Health",
}


def test_health_is_serving_on_an_empty_data_dir(server):
    with grpc.insecure_channel(server.addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ["", *sorted(s for s in SERVICES if s.startswith("flotilla"))]:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
    print(f"cold start to SERVING: {server.serving_after * 1000:.0f} ms")


def test_reflection_lists_every_service(server):
    with grpc.insecure_channel(server.addr) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert SERVICES <= names, SERVICES - names


def dynamic_stub(channel):
    """Builds request/response classes from reflection alone, as grpcurl does."""
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    service = pool.FindServiceByName("flotilla.v1.ClusterService")
    method = service.methods_by_name["ListClusters"]
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        "/flotilla.v1.ClusterService/ListClusters",
        request_serializer=request_cls.SerializeToString,
        response_deserializer=response_cls.FromString,
    )
    return request_cls, call


def test_list_clusters_through_reflection(server):
    with grpc.insecure_channel(server.addr) as channel:
        request_cls, call = dynamic_stub(channel)
        reply = call(request_cls(page_size=10), timeout=5, metadata=AUTH)
        assert list(reply.clusters) == []
        assert reply.total_size == 0
        try:
            call(request_cls(page_token="garbage"), timeout=5, metadata=AUTH)
            raise AssertionError("a bad page_token must fail")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "page_token" in err.details()
            violations = bad_request_fields(dict(err.trailing_metadata()))
            assert violations == ["page_token"], violations


def bad_request_fields(metadata):
    raw = metadata.get("grpc-status-details-bin")
    assert raw, f"no status details in {metadata}"
    if isinstance(raw, str):
        raw = base64.b64decode(raw + "=" * (-len(raw) % 4))
    status = status_pb2.Status.FromString(raw)
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.extend(v.field for v in bad.field_violations)
    return fields


def grpc_web(server, path, message=b"", headers=None, text=False):
    """One grpc-web call over HTTP/1.1. Returns (http status, headers, data frames, trailers)."""
    body = struct.pack(">BI", 0, len(message)) + message
    content_type = "application/grpc-web-text" if text else "application/grpc-web+proto"
    if text:
        body = base64.b64encode(body)
    request = urllib.request.Request(
        f"http://{server.addr}{path}",
        data=body,
        method="POST",
        headers={"content-type": content_type, "accept": content_type, "x-grpc-web": "1",
                 "authorization": f"Bearer {ADMIN_TOKEN}", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        raw = response.read()
        status, reply_headers = response.status, {k.lower(): v for k, v in response.headers.items()}
    if text:
        # Each frame is base64-encoded on its own (padded), so decode 4-character groups.
        raw = b"".join(base64.b64decode(raw[i:i + 4]) for i in range(0, len(raw), 4))
    frames, trailers = [], dict()
    while raw:
        flag, length = struct.unpack(">BI", raw[:5])
        payload, raw = raw[5:5 + length], raw[5 + length:]
        if flag & 0x80:
            for line in payload.decode().split("\r\n"):
                if line:
                    key, _, value = line.partition(":")
                    trailers[key.strip().lower()] = value.strip()
        else:
            frames.append(payload)
    # A trailers-only response puts the status in the headers.
    for key in ("grpc-status", "grpc-message", "grpc-status-details-bin"):
        if key in reply_headers and key not in trailers:
            trailers[key] = reply_headers[key]
    return status, reply_headers, frames, trailers


def parse_grpc_web_body(raw):
    """Splits a grpc-web body into its data frames and its trailer frame (flag 0x80), parsed
    into a dict; the trailer is None when the body has no trailer frame."""
    frames, trailer = [], None
    while raw:
        assert len(raw) >= 5, f"a cut frame header: {raw!r}"
        flag, length = struct.unpack(">BI", raw[:5])
        payload, raw = raw[5:5 + length], raw[5 + length:]
        assert len(payload) == length, "a cut frame"
        if flag & 0x80:
            assert trailer is None and not raw, "the trailer frame comes once, last"
            trailer = {}
            for line in payload.decode().split("\r\n"):
                if line:
                    key, _, value = line.partition(":")
                    trailer[key.strip().lower()] = value.strip()
        else:
            frames.append(payload)
    return frames, trailer


def test_grpc_web_over_http1(server):
    status, headers, frames, trailers = grpc_web(
        server, "/flotilla.v1.ClusterService/ListClusters"
    )
    assert status == 200
    assert headers["content-type"].startswith("application/grpc-web")
    assert trailers["grpc-status"] == "0", trailers
    assert len(frames) == 1

    status, _, frames, trailers = grpc_web(
        server, "/flotilla.v1.ClusterService/ListClusters", text=True
    )
    assert status == 200 and trailers["grpc-status"] == "0", trailers


def test_grpc_web_errors(server):
    # page_token = "bad" (field 2, length-delimited)
    _, _, _, trailers = grpc_web(
        server, "/flotilla.v1.ClusterService/ListClusters", b"\x12\x03bad"
    )
    assert trailers["grpc-status"] == "3", trailers
    assert bad_request_fields(trailers) == ["page_token"]

    # A malformed message: page_size (varint) sent as a string.
    _, _, _, trailers = grpc_web(
        server, "/flotilla.v1.ClusterService/ListClusters", b"\x0a\x02hi"
    )
    assert trailers["grpc-status"] == "3", trailers
    assert bad_request_fields(trailers) == ["page_size"]

    # A required field left out names it.
    _, _, _, trailers = grpc_web(server, "/flotilla.v1.OperationService/GetOperation")
    assert trailers["grpc-status"] == "3", trailers
    assert bad_request_fields(trailers) == ["operation_id"]

    # A method the contract does not have says so.
    _, _, _, trailers = grpc_web(server, "/flotilla.v1.RegistryService/NoSuchMethod")
    assert trailers["grpc-status"] == "12", trailers


def preflight(server, origin):
    request = urllib.request.Request(
        f"http://{server.addr}/flotilla.v1.ClusterService/ListClusters",
        method="OPTIONS",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-grpc-web,authorization",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as err:
        return {k.lower(): v for k, v in err.headers.items()}


def test_cors_allows_only_listed_origins():
    plain = Server()
    try:
        assert "access-control-allow-origin" not in preflight(plain, "https://console.example")
    finally:
        plain.stop()

    listed = Server("--cors-allowed-origins", "https://console.example")
    try:
        headers = preflight(listed, "https://console.example")
        assert headers.get("access-control-allow-origin") == "https://console.example"
        assert "x-grpc-web" in headers.get("access-control-allow-headers", "")
        assert "access-control-allow-origin" not in preflight(listed, "https://evil.example")
    finally:
        listed.stop()


def test_sigterm_exits_cleanly_and_quickly():
    s = Server()
    started = time.monotonic()
    code = s.stop(signal.SIGTERM)
    assert code == 0, s.logs()
    assert time.monotonic() - started < 10
    assert "stopped" in s.logs()


def test_migrate_command_and_json_logs(tmp_path):
    import json
    import os
    import subprocess

    from conftest import binary

    data = tmp_path / "data"
    result = subprocess.run(
        [binary(), "migrate", "--data-dir", str(data), "--log-format", "json"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (data / "flotilla.db").exists()
    assert oct(os.stat(data).st_mode & 0o777) == "0o700"
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert any(line.get("message") == "migrations applied" for line in lines), lines

    bad = subprocess.run(
        [binary(), "migrate", "--database-url", "mysql://u:topsecret@h/db"],
        capture_output=True, text=True, timeout=60,
    )
    assert bad.returncode != 0
    assert "unsupported database URL" in bad.stderr
    assert "topsecret" not in bad.stderr


def test_rotate_master_key_command(tmp_path):
    import subprocess

    from conftest import binary

    data = tmp_path / "data"
    subprocess.run([binary(), "migrate", "--data-dir", str(data)], check=True,
                   capture_output=True, timeout=60)
    # migrate does not need keys; rotation creates the key file on first use, then adds a key.
    result = subprocess.run([binary(), "rotate-master-key", "--data-dir", str(data)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "re-encrypted 0 secret(s)" in result.stdout, result.stdout
    keys = [line for line in (data / "master.keys").read_text().splitlines()
            if line and not line.startswith("#")]
    assert len(keys) == 2
    assert oct((data / "master.keys").stat().st_mode & 0o777) == "0o600"


def kube_env_dir():
    import os
    kubeconfig = os.environ.get("KUBECONFIG", "")
    if kubeconfig and os.path.exists(os.path.join(os.path.dirname(kubeconfig), "pki")):
        return os.path.dirname(kubeconfig)
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "target", "kube-env")


def test_secrets_never_reach_the_log():
    """Import a kubeconfig whose key and token carry a canary, with debug logging on; the
    canary must appear in no log line and no response."""
    import os
    import uuid

    pki = os.path.join(kube_env_dir(), "pki")
    read = lambda name: open(os.path.join(pki, name)).read()
    server_url = [line.split("server:")[1].strip()
                  for line in open(os.path.join(kube_env_dir(), "kubeconfig"))
                  if "server:" in line][0]
    canary = f"canary-{uuid.uuid4().hex}"
    b64 = lambda text: base64.b64encode(text.encode()).decode()
    kubeconfig = f"""apiVersion: v1
kind: Config
current-context: c
clusters:
- name: c
  cluster: {{server: "{server_url}", certificate-authority-data: "{b64(read('ca.crt'))}"}}
users:
- name: u
  user:
    client-certificate-data: "{b64(read('admin.crt'))}"
    client-key-data: "{b64(canary + chr(10) + read('admin.key'))}"
contexts:
- name: c
  context: {{cluster: c, user: u}}
"""
    server = Server("--log-filter", "debug")
    try:
        with grpc.insecure_channel(server.addr) as channel:
            pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
            method = pool.FindServiceByName("flotilla.v1.ClusterService").methods_by_name
            request_cls = message_factory.GetMessageClass(method["ImportCluster"].input_type)
            response_cls = message_factory.GetMessageClass(method["ImportCluster"].output_type)
            call = channel.unary_unary(
                "/flotilla.v1.ClusterService/ImportCluster",
                request_serializer=request_cls.SerializeToString,
                response_deserializer=response_cls.FromString,
            )
            request = request_cls(cluster_id="canary")
            request.kubeconfig.kubeconfig = kubeconfig.encode()
            reply = call(request, timeout=20, metadata=AUTH)
            assert reply.cluster.status.reachable
            assert canary not in str(reply)
            # A refused import whose token is the canary: not in the error either.
            bad = request_cls(cluster_id="canary2")
            bad.token.server = server_url
            bad.token.bearer_token = canary
            bad.token.ca_pem = read("ca.crt")
            try:
                call(bad, timeout=20, metadata=AUTH)
                raise AssertionError("a bad token must be refused")
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err
                assert canary not in err.details()
    finally:
        server.stop()
    logs = server.logs()
    assert "cluster imported" in logs, logs[-2000:]
    assert canary not in logs


def test_grpc_web_is_authenticated_the_same_way(server):
    """Without a token, with a bad one, and with a valid one, over grpc-web/HTTP/1.1."""
    _, _, _, trailers = grpc_web(server, "/flotilla.v1.ClusterService/ListClusters",
                                 headers={"authorization": ""})
    assert trailers["grpc-status"] == "16", trailers
    _, _, _, trailers = grpc_web(server, "/flotilla.v1.ClusterService/ListClusters",
                                 headers={"authorization": "Bearer flt_wrong"})
    assert trailers["grpc-status"] == "16", trailers
    status, headers, _, trailers = grpc_web(server, "/flotilla.v1.ClusterService/ListClusters",
                                            headers={"x-request-id": "console-42"})
    assert status == 200 and trailers["grpc-status"] == "0", trailers
    assert headers.get("x-request-id") == "console-42", headers


def test_token_cli_and_listening_rules(tmp_path):
    import subprocess

    from conftest import binary, free_port

    data = str(tmp_path / "data")
    created = subprocess.run(
        [binary(), "token", "create", "--data-dir", data, "--name", "ci", "--role", "viewer",
         "--cluster", "prod"], capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("flt_") and len(secret) > 40
    listed = subprocess.run([binary(), "token", "list", "--data-dir", data],
                            capture_output=True, text=True, timeout=60)
    assert "ci" in listed.stdout and "viewer" in listed.stdout and "prod" in listed.stdout
    assert secret not in listed.stdout
    revoked = subprocess.run([binary(), "token", "revoke", "--data-dir", data, "ci"],
                             capture_output=True, text=True, timeout=60)
    assert revoked.returncode == 0 and "revoked ci" in revoked.stdout, revoked.stderr
    listed = subprocess.run([binary(), "token", "list", "--data-dir", data, "--all"],
                            capture_output=True, text=True, timeout=60)
    assert "revoked" in listed.stdout

    # No TLS on a non-loopback address: refused, saying why.
    refused = subprocess.run(
        [binary(), "serve", "--data-dir", data, "--listen", f"0.0.0.0:{free_port()}"],
        capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "without TLS" in refused.stderr and "--insecure-listen" in refused.stderr


def test_first_start_writes_an_admin_token_file(tmp_path):
    import os
    import subprocess
    import time as _time

    from conftest import binary, free_port

    data = tmp_path / "data"
    addr = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k != "FLOTILLA_BOOTSTRAP_TOKEN"}
    log = open(tmp_path / "log", "w")
    proc = subprocess.Popen([binary(), "serve", "--listen", addr, "--data-dir", str(data)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        token_file = data / "admin-token"
        deadline = _time.monotonic() + 20
        while not token_file.exists() and _time.monotonic() < deadline:
            _time.sleep(0.05)
        _time.sleep(0.3)
        token = token_file.read_text().strip()
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        with grpc.insecure_channel(addr) as channel:
            request_cls, call = dynamic_stub(channel)
            reply = call(request_cls(), timeout=5,
                         metadata=(("authorization", f"Bearer {token}"),))
            assert reply.total_size == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        log.close()
    logs = open(tmp_path / "log").read()
    assert str(data / "admin-token") in logs, "the log says where the token is"
    assert token not in logs, "the log never says what it is"


def test_grpc_web_over_tls_http1(tmp_path):
    """grpc-web from a browser-like client: HTTP/1.1 over TLS (ALPN http/1.1)."""
    import ssl
    import subprocess

    def run(*args):
        subprocess.run(args, check=True, capture_output=True, cwd=tmp_path, timeout=60)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.crt", "-days", "1", "-subj", "/CN=test-ca")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=localhost")
    (tmp_path / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "ext")
    server = Server("--tls-cert", str(tmp_path / "server.crt"),
                    "--tls-key", str(tmp_path / "server.key"), tls_ca=str(tmp_path / "ca.crt"))
    try:
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        context.set_alpn_protocols(["http/1.1"])
        body = struct.pack(">BI", 0, 0)
        request = urllib.request.Request(
            f"https://localhost:{server.port}/flotilla.v1.ClusterService/ListClusters",
            data=body, method="POST",
            headers={"content-type": "application/grpc-web+proto",
                     "authorization": f"Bearer {ADMIN_TOKEN}"})
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            assert response.status == 200
            raw = response.read()
        assert b"grpc-status:0" in raw, raw
        # Without the token, over the same TLS path: UNAUTHENTICATED.
        request.remove_header("Authorization")
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            raw = response.read()
            header_status = response.headers.get("grpc-status")
        _, trailer = parse_grpc_web_body(raw)
        # Trailers-only answers carry the status in the headers, others in the trailer frame.
        status = header_status if header_status is not None else (trailer or {}).get("grpc-status")
        assert status == "16", (header_status, raw)
    finally:
        server.stop()


def test_pod_logs_stream_over_grpc_web():
    """A browser-style client reads a server stream (StreamPodLogs) over grpc-web/HTTP/1.1:
    a line written through KWOK arrives, and the trailer frame says OK."""
    import datetime
    import os
    import shutil
    import uuid

    kubeconfig_dir = kube_env_dir()
    read = lambda name: open(os.path.join(kubeconfig_dir, "pki", name)).read()
    server_url = [line.split("server:")[1].strip()
                  for line in open(os.path.join(kubeconfig_dir, "kubeconfig"))
                  if "server:" in line][0]
    b64 = lambda text: base64.b64encode(text.encode()).decode()
    kubeconfig = f"""apiVersion: v1
kind: Config
current-context: c
clusters:
- name: c
  cluster: {{server: "{server_url}", certificate-authority-data: "{b64(read('ca.crt'))}"}}
users:
- name: u
  user: {{client-certificate-data: "{b64(read('admin.crt'))}", client-key-data: "{b64(read('admin.key'))}"}}
contexts:
- name: c
  context: {{cluster: c, user: u}}
"""
    namespace = f"pyweb-{uuid.uuid4().hex[:8]}"
    marker = f"grpc-web marker {uuid.uuid4().hex}"
    # The pod's log is a CRI file KWOK serves (through its Logs object), holding the marker.
    log_dir = os.path.join(kubeconfig_dir, "pod-logs", namespace)
    os.makedirs(log_dir, exist_ok=True)
    log_file = os.path.join(log_dir, "talker.log")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with open(log_file, "w") as f:
        f.write(f"{stamp} stdout F first line\n{stamp} stdout F {marker}\n")
    manifests = f"""apiVersion: v1
kind: Namespace
metadata: {{name: {namespace}}}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Logs
metadata: {{name: talker, namespace: {namespace}}}
spec:
  logs: [{{logsFile: "{log_file}", follow: true}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: talker, namespace: {namespace}}}
spec:
  nodeName: kwok-a1
  containers: [{{name: main, image: example.com/talker:1}}]
"""
    server = Server()
    try:
        with grpc.insecure_channel(server.addr) as channel:
            pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
            cls = lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
            unary = lambda path, req, resp: channel.unary_unary(
                path, request_serializer=req.SerializeToString,
                response_deserializer=resp.FromString)
            imp = cls("flotilla.v1.ImportClusterRequest")(cluster_id="web")
            imp.kubeconfig.kubeconfig = kubeconfig.encode()
            unary("/flotilla.v1.ClusterService/ImportCluster", imp,
                  cls("flotilla.v1.ImportClusterResponse"))(imp, timeout=20, metadata=AUTH)
            apply = cls("flotilla.v1.ApplyManifestsRequest")(cluster_id="web", manifests=manifests)
            unary("/flotilla.v1.WorkloadService/ApplyManifests", apply,
                  cls("flotilla.v1.ApplyManifestsResponse"))(apply, timeout=30, metadata=AUTH)
            request = cls("flotilla.v1.StreamPodLogsRequest")(
                cluster_id="web", namespace=namespace, pod="talker")
            request.options.tail_lines = 3
            response_cls = cls("flotilla.v1.StreamPodLogsResponse")
            kind = pool.FindEnumTypeByName("flotilla.v1.LogEntryKind").values_by_name
            line_kind = kind["LOG_ENTRY_KIND_LINE"].number
            end_kind = kind["LOG_ENTRY_KIND_END"].number
            deadline = time.monotonic() + 60
            while True:
                # The pod may not be bound and running yet, nor its Logs object picked up.
                status, _, raw = grpc_web_raw(
                    server, "/flotilla.v1.LogStream/StreamPodLogs", request.SerializeToString())
                frames, trailer = parse_grpc_web_body(raw)
                entries = [e for frame in frames for e in response_cls.FromString(frame).entries]
                lines = [e.content for e in entries if e.kind == line_kind]
                if marker in lines or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert status == 200
            assert trailer is not None, f"no trailer frame in {raw[-200:]!r}"
            assert trailer.get("grpc-status") == "0", trailer
            assert lines == ["first line", marker], lines
            assert [e.kind for e in entries][-1] == end_kind, entries
            assert all(e.pod == "talker" and e.container == "main" for e in entries[:-1])
            delete = cls("flotilla.v1.DeleteResourceRequest")(
                cluster_id="web", api_version="v1", kind="Namespace", name=namespace)
            unary("/flotilla.v1.WorkloadService/DeleteResource", delete,
                  cls("flotilla.v1.DeleteResourceResponse"))(delete, timeout=20, metadata=AUTH)
    finally:
        server.stop()
        shutil.rmtree(log_dir, ignore_errors=True)


def grpc_web_raw(server, path, message=b""):
    """One grpc-web/HTTP/1.1 call; the raw body, unparsed. Returns (http status, headers, body)."""
    body = struct.pack(">BI", 0, len(message)) + message
    request = urllib.request.Request(
        f"http://{server.addr}{path}", data=body, method="POST",
        headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1",
                 "authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
