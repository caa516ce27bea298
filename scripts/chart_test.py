#!/usr/bin/env python3
"""The checks of scripts/chart-test (run it through that script: it finds helm and the control plane).

1. `helm lint --strict`.
2. Renders the chart with several value sets and checks what a reviewer would: the security
   context of every pod and container, distinct gRPC readiness/liveness probes on the API port,
   the PDB, that Services and the ServiceMonitor select the pods' ports, where the Secret comes
   from, that no secret value leaks into another object; and that bad values are refused with a
   message naming the value.
3. Installs it into the test control plane (KWOK runs the pods): the API server must accept every
   object; the stored Deployment keeps the probes and security context; the pods become
   Running/Ready on distinct nodes; an upgrade to 3 replicas rolls; a second release uses
   existingSecret, TLS and no NetworkPolicy. Uninstalls and checks nothing is left.
"""

import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = os.path.join(ROOT, "deploy", "helm", "flotilla")
CRD = os.path.join(ROOT, "tests", "chart", "servicemonitor-crd.yaml")
HELM = os.environ["FLOTILLA_HELM_BIN"]
KUBECTL = os.environ.get("KUBECTL", "kubectl")
TMP = tempfile.mkdtemp(prefix="flotilla-chart-test.")

PASSED = 0
FAILED = []

DB_PASSWORD = "pw-" + secrets.token_hex(12)
MASTER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
BOOTSTRAP = secrets.token_urlsafe(32)
BASE = {
    # Never connected to: KWOK runs no containers.
    "database": {"url": f"postgres://flotilla:{DB_PASSWORD}@postgres.invalid:5432/flotilla"},
    "masterKey": MASTER_KEY,
    "bootstrapToken": BOOTSTRAP,
}


def check(name, ok, detail=""):
    global PASSED
    if ok:
        PASSED += 1
        print(f"chart-test: ok: {name}", flush=True)
    else:
        FAILED.append(name)
        print(f"chart-test: FAIL: {name}{': ' + str(detail) if detail else ''}", flush=True)
    return ok


def run(*args, check_rc=True, stdin=None):
    p = subprocess.run(args, capture_output=True, text=True, input=stdin)
    if check_rc and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def merge(a, b):
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def values_file(values):
    path = os.path.join(TMP, f"values-{secrets.token_hex(4)}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(values, f)
    return path


def render(values, release="rel", namespace="ns"):
    p = run(HELM, "template", release, CHART, "--namespace", namespace, "-f", values_file(values), check_rc=False)
    if p.returncode != 0:
        return None, p.stderr
    return [d for d in yaml.safe_load_all(p.stdout) if d], p.stdout


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def pod_checks(case, docs, values):
    """What must hold for every rendering: returns a list of problems."""
    problems = []
    deps = by_kind(docs, "Deployment")
    if len(deps) != 1:
        return [f"{len(deps)} Deployments"]
    dep = deps[0]
    spec = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    if not matches(dep["spec"]["selector"]["matchLabels"], labels):
        problems.append("Deployment selector does not select its pods")
    want_replicas = values.get("replicaCount", 2)
    if dep["spec"]["replicas"] != want_replicas:
        problems.append(f"replicas {dep['spec']['replicas']} != {want_replicas}")
    psc = spec.get("securityContext", {})
    for k, v in (("runAsNonRoot", True), ("runAsUser", 65532), ("runAsGroup", 65532), ("fsGroup", 65532)):
        if psc.get(k) != v:
            problems.append(f"pod securityContext.{k}={psc.get(k)!r}")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("pod seccompProfile is not RuntimeDefault")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("a ServiceAccount token is mounted")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for c in spec.get("initContainers", []) + spec["containers"]:
        sc = c.get("securityContext", {})
        for k, v in (
            ("allowPrivilegeEscalation", False),
            ("readOnlyRootFilesystem", True),
            ("runAsNonRoot", True),
            ("privileged", False),
        ):
            if sc.get(k) != v:
                problems.append(f"{c['name']}: securityContext.{k}={sc.get(k)!r}")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
            problems.append(f"{c['name']}: capabilities {sc.get('capabilities')}")
        if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{c['name']}: seccompProfile")
        if not c.get("resources", {}).get("requests", {}).get("memory"):
            problems.append(f"{c['name']}: no memory request")
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        if "/var/lib/flotilla" not in mounts or mounts["/var/lib/flotilla"]["name"] not in volumes:
            problems.append(f"{c['name']}: no writable volume at /var/lib/flotilla (the root filesystem is read-only)")
    c = spec["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    tls = values.get("server", {}).get("tls", {}).get("enabled", False)
    rp, lp = c.get("readinessProbe"), c.get("livenessProbe")
    if not rp or not lp:
        problems.append("readiness or liveness probe missing")
    elif tls:
        if rp.get("tcpSocket", {}).get("port") != "grpc" or lp.get("tcpSocket", {}).get("port") != "grpc":
            problems.append(f"with TLS the probes should be TCP checks: {rp} {lp}")
    else:
        if rp.get("grpc", {}).get("port") != ports["grpc"] or lp.get("grpc", {}).get("port") != ports["grpc"]:
            problems.append(f"probes not on the gRPC port {ports['grpc']}: {rp} {lp}")
        if rp["grpc"].get("service") != "" or lp["grpc"].get("service") != "liveness":
            problems.append(f"probe services: readiness {rp['grpc'].get('service')!r}, liveness {lp['grpc'].get('service')!r}")
        sp = c.get("startupProbe")
        if not sp or sp.get("grpc", {}).get("service") != "liveness":
            problems.append(f"startup probe {sp}")
    env = {e["name"]: e for e in c.get("env", [])}
    secret_name = values.get("existingSecret") or "rel-flotilla"
    for var in ("FLOTILLA_DATABASE_URL", "FLOTILLA_MASTER_KEY"):
        ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef", {})
        if ref.get("name") != secret_name or ref.get("key") != var:
            problems.append(f"{var} not from Secret {secret_name}: {env.get(var)}")
    if env.get("FLOTILLA_LISTEN", {}).get("value") != f"0.0.0.0:{ports['grpc']}":
        problems.append(f"FLOTILLA_LISTEN {env.get('FLOTILLA_LISTEN')}")
    if ("FLOTILLA_INSECURE_LISTEN" in env) == tls:
        problems.append(f"FLOTILLA_INSECURE_LISTEN with tls={tls}")
    metrics = values.get("metrics", {}).get("enabled", True)
    if ("metrics" in ports) != metrics or ("FLOTILLA_METRICS_LISTEN" in env) != metrics:
        problems.append(f"metrics port/env with metrics.enabled={metrics}")
    for svc in by_kind(docs, "Service"):
        if not matches(svc["spec"]["selector"], labels):
            problems.append(f"Service {svc['metadata']['name']} does not select the pods")
        for p in svc["spec"]["ports"]:
            if p["targetPort"] not in ports:
                problems.append(f"Service {svc['metadata']['name']} targets port {p['targetPort']} the pod lacks")
    for pdb in by_kind(docs, "PodDisruptionBudget"):
        if not matches(pdb["spec"]["selector"]["matchLabels"], labels):
            problems.append("PDB does not select the pods")
    for np in by_kind(docs, "NetworkPolicy"):
        if not matches(np["spec"]["podSelector"]["matchLabels"], labels):
            problems.append("NetworkPolicy does not select the pods")
        for rule in np["spec"].get("ingress", []):
            for p in rule["ports"]:
                if p["port"] not in ports:
                    problems.append(f"NetworkPolicy allows port {p['port']} the pod lacks")
    # Secret values only ever in the Secret.
    for d in docs:
        if d["kind"] == "Secret":
            continue
        text = json.dumps(d)
        for s in (DB_PASSWORD, MASTER_KEY, BOOTSTRAP):
            if s in text:
                problems.append(f"a secret value appears in {d['kind']} {d['metadata']['name']}")
    return problems


def render_cases():
    cases = [
        ("defaults", BASE),
        ("ServiceMonitor on", merge(BASE, {"metrics": {"serviceMonitor": {"enabled": True}}})),
        ("existingSecret", {"existingSecret": "flotilla-own"}),
        ("NetworkPolicy off", merge(BASE, {"networkPolicy": {"enabled": False}})),
        ("3 replicas", merge(BASE, {"replicaCount": 3})),
        ("TLS", merge(BASE, {"server": {"tls": {"enabled": True, "secretName": "flotilla-tls", "clientCA": True}}})),
        ("metrics off", merge(BASE, {"metrics": {"enabled": False}})),
        (
            "SQLite, one replica, persistent volume",
            {
                "replicaCount": 1,
                "database": {"url": "sqlite:///var/lib/flotilla/flotilla.db"},
                "masterKey": MASTER_KEY,
                "persistence": {"enabled": True},
            },
        ),
    ]
    rendered = {}
    for name, values in cases:
        docs, out = render(values)
        if not check(f"render [{name}]", docs is not None, out):
            continue
        rendered[name] = docs
        problems = pod_checks(name, docs, values)
        check(f"[{name}] pods, probes, Services, PDB, NetworkPolicy, no leaked secret", not problems, problems)

    kinds = lambda name: sorted(d["kind"] for d in rendered.get(name, []))
    check(
        "[defaults] objects",
        kinds("defaults")
        == sorted(["Deployment", "Service", "Service", "Secret", "PodDisruptionBudget", "NetworkPolicy", "ServiceAccount"]),
        kinds("defaults"),
    )
    if "defaults" in rendered:
        d = rendered["defaults"]
        pdb = by_kind(d, "PodDisruptionBudget")[0]["spec"]
        check("[defaults] PDB minAvailable 1", pdb.get("minAvailable") == 1 and "maxUnavailable" not in pdb, pdb)
        sec = by_kind(d, "Secret")[0]["data"]
        got = {k: base64.b64decode(v).decode() for k, v in sec.items()}
        check(
            "[defaults] Secret holds the database URL, master key and bootstrap token",
            got == {
                "FLOTILLA_DATABASE_URL": BASE["database"]["url"],
                "FLOTILLA_MASTER_KEY": MASTER_KEY,
                "FLOTILLA_BOOTSTRAP_TOKEN": BOOTSTRAP,
            },
            sorted(got),
        )
        aff = by_kind(d, "Deployment")[0]["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        check("[defaults] soft pod anti-affinity per node", aff["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname", aff)
    if "ServiceMonitor on" in rendered:
        d = rendered["ServiceMonitor on"]
        sms = by_kind(d, "ServiceMonitor")
        msvc = [s for s in by_kind(d, "Service") if s["metadata"]["name"].endswith("-metrics")]
        ok = (
            len(sms) == 1
            and len(msvc) == 1
            and matches(sms[0]["spec"]["selector"]["matchLabels"], msvc[0]["metadata"]["labels"])
            and not matches(sms[0]["spec"]["selector"]["matchLabels"], [s for s in by_kind(d, "Service") if s not in msvc][0]["metadata"]["labels"])
            and sms[0]["spec"]["endpoints"][0]["port"] in [p["name"] for p in msvc[0]["spec"]["ports"]]
        )
        check("[ServiceMonitor on] selects the metrics Service (only) by its port name", ok, sms)
    check("[defaults] no ServiceMonitor", not by_kind(rendered.get("defaults", []), "ServiceMonitor"))
    check("[existingSecret] no Secret made", "existingSecret" in rendered and not by_kind(rendered["existingSecret"], "Secret"))
    check("[NetworkPolicy off] no NetworkPolicy", "NetworkPolicy off" in rendered and not by_kind(rendered["NetworkPolicy off"], "NetworkPolicy"))
    if "3 replicas" in rendered:
        check("[3 replicas] PDB minAvailable 1", by_kind(rendered["3 replicas"], "PodDisruptionBudget")[0]["spec"]["minAvailable"] == 1)
    if "SQLite, one replica, persistent volume" in rendered:
        d = rendered["SQLite, one replica, persistent volume"]
        dep = by_kind(d, "Deployment")[0]
        check(
            "[SQLite] no PDB, a kept PVC, Recreate",
            not by_kind(d, "PodDisruptionBudget")
            and by_kind(d, "PersistentVolumeClaim")[0]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
            and dep["spec"]["strategy"]["type"] == "Recreate",
        )
    if "metrics off" in rendered:
        check("[metrics off] no metrics Service", len(by_kind(rendered["metrics off"], "Service")) == 1)

    refusals = [
        ("SQLite with 2 replicas", merge(BASE, {"database": {"url": "sqlite:///data/f.db"}}), "replicaCount > 1 needs PostgreSQL"),
        ("no database URL", {"masterKey": MASTER_KEY}, "database.url is required"),
        ("no master key", {"database": BASE["database"]}, "masterKey is required"),
        ("a short master key", merge(BASE, {"masterKey": "c2hvcnQ="}), "masterKey must be the base64 of 32 random bytes"),
        ("a weak bootstrap token", merge(BASE, {"bootstrapToken": "admin"}), "bootstrapToken needs 43+ characters"),
        ("TLS without a Secret", merge(BASE, {"server": {"tls": {"enabled": True}}}), "server.tls.enabled needs server.tls.secretName"),
        ("a misspelt value", merge(BASE, {"replicas": 3}), "additional properties 'replicas' not allowed"),
        ("an unknown anti-affinity", merge(BASE, {"podAntiAffinity": "strict"}), "podAntiAffinity"),
    ]
    for name, values, message in refusals:
        docs, out = render(values)
        check(f"refused: {name}", docs is None and message in out, out.strip()[-300:] if docs is None else "rendered")


# --------------------------------------------------------------------------------------------
# Installing into the control plane
# --------------------------------------------------------------------------------------------


def kubectl(*args, **kw):
    return run(KUBECTL, *args, **kw)


def get_json(*args):
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def wait_pods(ns, release, count, timeout=120):
    """Pods of a release as KWOK reports them, once `count` are Running and Ready (or the timeout)."""
    deadline = time.time() + timeout
    pods = []
    while time.time() < deadline:
        pods = [
            p
            for p in get_json("pods", "-n", ns, "-l", f"app.kubernetes.io/instance={release}")["items"]
            if not p["metadata"].get("deletionTimestamp")
        ]
        ready = [
            p
            for p in pods
            if p["status"].get("phase") == "Running"
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        ]
        if len(ready) == count == len(pods):
            return ready
        time.sleep(1)
    return pods


def helm(*args, timeout="180s"):
    return run(HELM, *args, "--wait", "--timeout", timeout, check_rc=False)


def manifest_objects(release, ns):
    docs = [d for d in yaml.safe_load_all(run(HELM, "get", "manifest", release, "-n", ns).stdout) if d]
    return [(d["kind"], d["metadata"]["name"]) for d in docs]


def install_cases():
    suffix = secrets.token_hex(3)
    ns_a, ns_b = f"flotilla-chart-a-{suffix}", f"flotilla-chart-b-{suffix}"
    created_crd = False
    try:
        if kubectl("get", "crd", "servicemonitors.monitoring.coreos.com", check_rc=False).returncode != 0:
            kubectl("apply", "-f", CRD)
            created_crd = True
            kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/servicemonitors.monitoring.coreos.com")
        for ns in (ns_a, ns_b):
            kubectl("create", "namespace", ns)

        # Release a: defaults, ServiceMonitor, one pod per node required.
        va = values_file(merge(BASE, {"metrics": {"serviceMonitor": {"enabled": True}}, "podAntiAffinity": "hard"}))
        p = helm("install", "a", CHART, "-n", ns_a, "-f", va)
        if check("install a (defaults, ServiceMonitor, hard anti-affinity): the API server accepts every object", p.returncode == 0, p.stderr):
            objs = manifest_objects("a", ns_a)
            missing = [o for o in objs if kubectl("get", o[0], o[1], "-n", ns_a, check_rc=False).returncode != 0]
            check(f"a: all {len(objs)} objects are stored", not missing and len(objs) == 8, (missing, objs))
            pods = wait_pods(ns_a, "a", 2)
            nodes = sorted(p["spec"].get("nodeName", "") for p in pods)
            check("a: 2 pods Running and Ready (KWOK) on 2 different nodes", len(pods) == 2 and len(set(nodes)) == 2 and all(nodes), nodes)
            dep = get_json("deployment", "a-flotilla", "-n", ns_a)
            c = dep["spec"]["template"]["spec"]["containers"][0]
            stored = {
                "readiness": c.get("readinessProbe", {}).get("grpc"),
                "liveness": c.get("livenessProbe", {}).get("grpc"),
                "preStop": c.get("lifecycle", {}).get("preStop", {}).get("sleep"),
                "ro": c.get("securityContext", {}).get("readOnlyRootFilesystem"),
                "drop": c.get("securityContext", {}).get("capabilities", {}).get("drop"),
                "seccomp": dep["spec"]["template"]["spec"]["securityContext"].get("seccompProfile"),
            }
            check(
                "a: the stored Deployment keeps the gRPC probes, preStop sleep and security context",
                stored
                == {
                    "readiness": {"port": 50051, "service": ""},
                    "liveness": {"port": 50051, "service": "liveness"},
                    "preStop": {"seconds": 5},
                    "ro": True,
                    "drop": ["ALL"],
                    "seccomp": {"type": "RuntimeDefault"},
                },
                stored,
            )
            sm = get_json("servicemonitor", "a-flotilla", "-n", ns_a)
            check("a: the stored ServiceMonitor scrapes port metrics at /metrics", sm["spec"]["endpoints"][0].get("port") == "metrics" and sm["spec"]["endpoints"][0].get("path") == "/metrics", sm["spec"])
            pdb = get_json("pdb", "a-flotilla", "-n", ns_a)
            check("a: the PDB sees 2 healthy pods and allows 1 disruption", pdb["status"].get("currentHealthy") == 2 and pdb["status"].get("disruptionsAllowed") == 1, pdb.get("status"))

            # Upgrade to 3 replicas, allowed onto the tainted node too.
            vu = values_file(
                merge(
                    BASE,
                    {
                        "metrics": {"serviceMonitor": {"enabled": True}},
                        "podAntiAffinity": "soft",
                        "replicaCount": 3,
                        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}],
                    },
                )
            )
            p = helm("upgrade", "a", CHART, "-n", ns_a, "-f", vu)
            if check("upgrade a to 3 replicas", p.returncode == 0, p.stderr):
                pods = wait_pods(ns_a, "a", 3)
                check("a: 3 pods Running and Ready after the rollout", len(pods) == 3, [p["metadata"]["name"] for p in pods])
                pdb = get_json("pdb", "a-flotilla", "-n", ns_a)
                check("a: the PDB now allows 2 disruptions", pdb["status"].get("disruptionsAllowed") == 2, pdb.get("status"))

        # Release b: its own Secret, TLS, no NetworkPolicy.
        kubectl(
            "create", "secret", "generic", "flotilla-own", "-n", ns_b,
            f"--from-literal=FLOTILLA_DATABASE_URL={BASE['database']['url']}",
            f"--from-literal=FLOTILLA_MASTER_KEY={MASTER_KEY}",
        )
        key, crt = os.path.join(TMP, "tls.key"), os.path.join(TMP, "tls.crt")
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", "/CN=flotilla", "-keyout", key, "-out", crt)
        kubectl("create", "secret", "tls", "flotilla-tls", "-n", ns_b, f"--cert={crt}", f"--key={key}")
        vb = values_file(
            {
                "existingSecret": "flotilla-own",
                "networkPolicy": {"enabled": False},
                "server": {"tls": {"enabled": True, "secretName": "flotilla-tls"}},
            }
        )
        p = helm("install", "b", CHART, "-n", ns_b, "-f", vb)
        if check("install b (existingSecret, TLS, NetworkPolicy off)", p.returncode == 0, p.stderr):
            pods = wait_pods(ns_b, "b", 2)
            check("b: 2 pods Running and Ready", len(pods) == 2, [p["metadata"]["name"] for p in pods])
            kinds = sorted(k for k, _ in manifest_objects("b", ns_b))
            check("b: no Secret and no NetworkPolicy of its own", "Secret" not in kinds and "NetworkPolicy" not in kinds, kinds)
            check("b: no NetworkPolicy in the namespace", not get_json("networkpolicy", "-n", ns_b)["items"])

        # Uninstall: nothing of either release is left (the Secrets the test made are its own).
        for rel, ns in (("a", ns_a), ("b", ns_b)):
            p = helm("uninstall", rel, "-n", ns)
            check(f"uninstall {rel}", p.returncode == 0, p.stderr)
        kinds = "deployments,replicasets,pods,services,secrets,configmaps,serviceaccounts,poddisruptionbudgets,networkpolicies,persistentvolumeclaims,servicemonitors"
        left = []
        deadline = time.time() + 60
        while time.time() < deadline:
            left = []
            for ns in (ns_a, ns_b):
                items = get_json(kinds, "-n", ns)["items"]
                left += [
                    f"{ns}/{i['kind']}/{i['metadata']['name']}"
                    for i in items
                    if i["metadata"].get("labels", {}).get("app.kubernetes.io/instance") in ("a", "b")
                    or i["metadata"].get("labels", {}).get("owner") == "helm"
                    or i["metadata"]["name"].startswith(("a-flotilla", "b-flotilla"))
                ]
            if not left:
                break
            time.sleep(1)
        check("after uninstall nothing of either release is left (pods, Services, Secrets, releases, ...)", not left, left)
    finally:
        for ns in (ns_a, ns_b):
            kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false", check_rc=False)
        if created_crd:
            kubectl("delete", "-f", CRD, "--ignore-not-found", check_rc=False)


def main():
    p = run(HELM, "lint", "--strict", CHART, "-f", values_file(BASE), check_rc=False)
    check("helm lint --strict", p.returncode == 0 and "0 chart(s) failed" in p.stdout, p.stdout + p.stderr)
    render_cases()
    if os.environ.get("KUBECONFIG"):
        install_cases()
    else:
        print("chart-test: KUBECONFIG not set: install checks skipped", flush=True)
    print(f"chart-test: {PASSED} passed, {len(FAILED)} failed")
    for f in FAILED:
        print(f"chart-test:   failed: {f}")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
