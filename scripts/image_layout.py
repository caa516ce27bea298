#!/usr/bin/env python3
"""Assembles Flotilla's OCI image layout without a container engine (called by scripts/image).

Two layers, both written here as sorted tars with fixed owners and mtimes and gzip'ed without a
name or timestamp, so the same inputs give the same digests (the base layer's mtimes come from the
Debian packages, so it is the same layer for every flotilla build on the same packages):

  base  what `ldd` says the binary needs, copied out of the Debian packages that ship it (not out
        of the build machine), the CA bundle built from Debian's ca-certificates the way
        update-ca-certificates builds it, /etc/passwd and /etc/group with the non-root user 65532,
        /etc/nsswitch.conf, each package's copyright file and a dpkg status entry per package in
        /var/lib/dpkg/status.d/ (as distroless does, so image scanners see glibc's version),
        /tmp, /home/nonroot and /var/lib/flotilla (the data volume).
  app   /usr/local/bin/flotilla.

Nothing else: no shell, no package manager, no libraries the binary does not load.
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile

ARCH_TRIPLET = "x86_64-linux-gnu"
UID = 65532
DATA_DIR = "/var/lib/flotilla"
BINARY_PATH = "/usr/local/bin/flotilla"


def sh(*args, cwd=None):
    return subprocess.run(args, check=True, capture_output=True, text=True, cwd=cwd).stdout


class Layer:
    """Entries of one layer: path -> (kind, data, mode, uid, gid, linkname)."""

    def __init__(self):
        self.entries = {}

    def dir(self, path, mode=0o755, uid=0):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p not in self.entries:
                self.entries[p] = ("dir", None, 0o755, 0, 0, None)
        p = path.strip("/")
        self.entries[p] = ("dir", None, mode, uid, uid, None)

    def file(self, path, data, mode=0o644):
        self.dir(os.path.dirname(path))
        self.entries[path.strip("/")] = ("file", data, mode, 0, 0, None)

    def symlink(self, path, target):
        self.dir(os.path.dirname(path))
        self.entries[path.strip("/")] = ("symlink", None, 0o777, 0, 0, target)

    def tar(self, mtime):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.entries):
                kind, data, mode, uid, gid, link = self.entries[name]
                info = tarfile.TarInfo(name + ("/" if kind == "dir" else ""))
                info.mode, info.uid, info.gid, info.mtime = mode, uid, gid, mtime
                info.uname = info.gname = ""
                if kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif kind == "symlink":
                    info.type, info.linkname = tarfile.SYMTYPE, link
                    tar.addfile(info)
                else:
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()


def needed_libraries(binary):
    """(path the loader looks for, soname) for the interpreter and every DT_NEEDED library."""
    out = sh("ldd", binary)
    libs = []
    for line in out.splitlines():
        line = line.strip()
        m = re.match(r"^(\S+) => (\S+) \(0x", line)
        if m:
            libs.append(m.group(1))
            continue
        if " => not found" in line:
            sys.exit(f"image: ldd: {line}")
    interp = re.search(r"Requesting program interpreter: (\S+)\]", sh("readelf", "-l", binary))
    if not interp:
        sys.exit("image: the binary has no ELF interpreter (static?): nothing to do for the base")
    return interp.group(1), sorted(set(libs))


def find_in_debs(extracted, soname):
    """The package tree and path (inside the package) that ships `soname` for our triplet."""
    hits = []
    for pkg in sorted(os.listdir(extracted)):
        root = os.path.join(extracted, pkg, "root")
        for sub in (f"lib/{ARCH_TRIPLET}", f"usr/lib/{ARCH_TRIPLET}"):
            p = os.path.join(root, sub, soname)
            if os.path.lexists(p):
                hits.append((pkg, root, f"{sub}/{soname}"))
    if not hits:
        sys.exit(f"image: no downloaded package ships {soname}")
    return hits[0]


# The newest mtime of any packaged file the base layer is made from: the base layer's files all
# get it, so the base depends on the Debian packages only and stays the same layer (same digest,
# pulled once) across flotilla releases.
SOURCE_MTIMES = []


def copy_resolving(layer, root, rel, seen):
    """Copies root/rel into the layer; a symlink is kept as one and its target copied too."""
    if rel in seen:
        return
    seen.add(rel)
    src = os.path.join(root, rel)
    SOURCE_MTIMES.append(int(os.lstat(src).st_mtime))
    if os.path.islink(src):
        target = os.readlink(src)
        layer.symlink(rel, target)
        resolved = os.path.normpath(
            target.lstrip("/") if target.startswith("/") else os.path.join(os.path.dirname(rel), target)
        )
        copy_resolving(layer, root, resolved, seen)
    else:
        with open(src, "rb") as f:
            layer.file(rel, f.read(), 0o755 if os.access(src, os.X_OK) else 0o644)


def ca_bundle(root):
    """What update-ca-certificates writes to /etc/ssl/certs/ca-certificates.crt with Debian's
    default /etc/ca-certificates.conf (every certificate the package ships, in path order)."""
    base = os.path.join(root, "usr/share/ca-certificates")
    certs = []
    for dirpath, _, files in os.walk(base):
        for f in files:
            if f.endswith(".crt"):
                certs.append(os.path.relpath(os.path.join(dirpath, f), base))
    if not certs:
        sys.exit("image: ca-certificates ships no certificates?")
    out = b""
    for rel in sorted(certs):
        SOURCE_MTIMES.append(int(os.stat(os.path.join(base, rel)).st_mtime))
        with open(os.path.join(base, rel), "rb") as f:
            data = f.read()
        out += data if data.endswith(b"\n") else data + b"\n"
    return out, len(certs)


def base_layer(binary, extracted):
    layer = Layer()
    interp, sonames = needed_libraries(binary)
    seen = set()
    used = set()
    # The interpreter is looked up by its absolute path (/lib64/ld-linux-x86-64.so.2).
    for pkg in sorted(os.listdir(extracted)):
        root = os.path.join(extracted, pkg, "root")
        if os.path.lexists(os.path.join(root, interp.lstrip("/"))):
            copy_resolving(layer, root, interp.lstrip("/"), seen)
            used.add(pkg)
            break
    else:
        sys.exit(f"image: no downloaded package ships the interpreter {interp}")
    for soname in sonames:
        pkg, root, rel = find_in_debs(extracted, soname)
        copy_resolving(layer, root, rel, seen)
        used.add(pkg)

    bundle, ncerts = ca_bundle(os.path.join(extracted, "ca-certificates", "root"))
    layer.file("etc/ssl/certs/ca-certificates.crt", bundle)
    used.add("ca-certificates")

    layer.file(
        "etc/passwd",
        b"root:x:0:0:root:/root:/sbin/nologin\n"
        b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    )
    layer.file("etc/group", b"root:x:0:\nnonroot:x:65532:\n")
    # glibc >= 2.34 has the files and dns NSS modules built in; this only fixes the order (the
    # built-in default asks DNS before /etc/hosts).
    layer.file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\n")
    layer.dir("tmp", 0o1777)
    layer.dir("home/nonroot", 0o700, UID)
    layer.dir(DATA_DIR, 0o700, UID)

    # Licences and package records for what was copied out of each package.
    packages = {}
    for pkg in sorted(used):
        tree = os.path.join(extracted, pkg)
        with open(os.path.join(tree, "control")) as f:
            control = f.read().strip()
        fields = dict(
            re.findall(r"^(Package|Version|Architecture|Source): (.*)$", control, re.M)
        )
        packages[pkg] = fields["Version"]
        stanza = f"Package: {pkg}\nStatus: install ok installed\n" + "".join(
            f"{k}: {fields[k]}\n" for k in ("Source", "Version", "Architecture") if k in fields
        )
        layer.file(f"var/lib/dpkg/status.d/{pkg}", stanza.encode())
        SOURCE_MTIMES.append(int(os.stat(os.path.join(tree, "copyright")).st_mtime))
        with open(os.path.join(tree, "copyright"), "rb") as f:
            layer.file(f"usr/share/doc/{pkg}/copyright", f.read())
    return layer, packages, interp, sonames, ncerts


def app_layer(binary):
    layer = Layer()
    with open(binary, "rb") as f:
        layer.file(BINARY_PATH, f.read(), 0o755)
    return layer


def iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def blob(out, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(out, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return f"sha256:{digest}", len(data)


def gz(data):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0, filename="") as g:
        g.write(data)
    return buf.getvalue()


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--debs", required=True, help="dir of extracted packages: <pkg>/{root,control,copyright}")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epoch", type=int, required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--revision", required=True)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--description", default="")
    ap.add_argument("--licenses", default="")
    ap.add_argument("--source", default="")
    ap.add_argument("--rootfs-list", help="write the file list (mode uid gid size path) here")
    a = ap.parse_args()

    created = iso(a.epoch)
    os.makedirs(os.path.join(a.out, "blobs", "sha256"), exist_ok=True)

    base, packages, interp, sonames, ncerts = base_layer(a.binary, a.debs)
    app = app_layer(a.binary)
    layers, diff_ids, listing, tar_bytes = [], [], [], 0
    base_epoch = max(SOURCE_MTIMES)
    for layer, mtime in ((base, base_epoch), (app, a.epoch)):
        raw = layer.tar(mtime)
        tar_bytes += len(raw)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        digest, size = blob(a.out, gz(raw))
        layers.append(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}
        )
        for name in sorted(layer.entries):
            kind, data, mode, uid, gid, link = layer.entries[name]
            size = len(data) if data is not None else 0
            listing.append(
                f"{oct(mode)[2:]:>5} {uid:>5}:{gid:<5} {size:>10} /{name}{' -> ' + link if link else ''}"
            )

    base_desc = ", ".join(f"{p} {v}" for p, v in sorted(packages.items()))
    labels = {
        "org.opencontainers.image.title": "flotilla",
        "org.opencontainers.image.description": a.description,
        "org.opencontainers.image.version": a.version,
        "org.opencontainers.image.revision": a.revision,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.licenses": a.licenses,
        "org.opencontainers.image.source": a.source,
        # Not an OCI key: which Debian packages the base layer's files came from.
        "dev.flotilla.image.base.debian-packages": base_desc,
    }
    labels = {k: v for k, v in labels.items() if v}
    config = {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": f"{UID}:{UID}",
            "Entrypoint": [BINARY_PATH, "serve"],
            "Env": [
                "PATH=/usr/local/bin",
                "HOME=/home/nonroot",
                f"FLOTILLA_DATA_DIR={DATA_DIR}",
                # Every interface, so a Service can reach it; the server still refuses a
                # non-loopback address without TLS unless --insecure-listen says TLS ends in front.
                "FLOTILLA_LISTEN=0.0.0.0:50051",
                "FLOTILLA_LOG_FORMAT=json",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            ],
            "WorkingDir": DATA_DIR,
            "ExposedPorts": {"50051/tcp": {}, "9464/tcp": {}},
            "Volumes": {DATA_DIR: {}},
            "StopSignal": "SIGTERM",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {
                "created": iso(base_epoch),
                "created_by": f"scripts/image: base from Debian ({base_desc}): {interp}, "
                f"{' '.join(sonames)}; CA bundle ({ncerts} certificates); passwd/group (uid {UID})",
            },
            {"created": created, "created_by": f"scripts/image: {BINARY_PATH} {a.version} ({a.revision})"},
        ],
    }
    config_digest, config_size = blob(a.out, canonical(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": layers,
        "annotations": {
            k: v
            for k, v in labels.items()
            if k.startswith("org.opencontainers.image.")
        },
    }
    manifest_digest, manifest_size = blob(a.out, canonical(manifest))
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"org.opencontainers.image.ref.name": a.tag},
            }
        ],
    }
    with open(os.path.join(a.out, "index.json"), "wb") as f:
        f.write(canonical(index))
    with open(os.path.join(a.out, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))
    if a.rootfs_list:
        with open(a.rootfs_list, "w") as f:
            f.write("\n".join(listing) + "\n")
    compressed = sum(l["size"] for l in layers)
    print(
        json.dumps(
            {
                "manifest_digest": manifest_digest,
                "config_digest": config_digest,
                "compressed_layer_bytes": compressed,
                "manifest_and_config_bytes": manifest_size + config_size,
                "uncompressed_layer_bytes": tar_bytes,
                "file_bytes": sum(
                    sum(len(e[1]) for e in l.entries.values() if e[1] is not None) for l in (base, app)
                ),
                "layers": [l["digest"] for l in layers],
                "debian_packages": packages,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
