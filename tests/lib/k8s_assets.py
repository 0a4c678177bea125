"""The real Kubernetes binaries tests run (shared/k8s: helm, kube-apiserver, ...), unpacked.

    from k8s_assets import binary, require
    require("kube-apiserver", etcd=True)   # in a pytest test: skip (fail under CI) if missing
    apiserver = binary("kube-apiserver")   # path of the unpacked binary, checksum verified

The one place tests find these binaries (tests/lib/helm.py, realk8s.py and
kubelet_node.py all come here), so there is one cache, one checksum check and one rule for
what a missing binary means.

The assets directory is $AXON_K8S_ASSETS, else shared/k8s beside the repository, else
beside the repository this one was cloned from (git remote origin: a clone of a local
repository, as tests/run.sh finds the fixtures). It holds NAME.xz and SHA256SUMS.unpacked
(the checksums of the unpacked files). Each binary is unpacked once into $AXON_K8S_CACHE
(default /var/cache/axon-k8s)/<sha256>/NAME, written under a temporary name and renamed, so
concurrent test processes never see half a file; a cached file is checked against its
checksum again (once per process) before it is used, so a truncated or replaced one is
unpacked anew. A checksum mismatch of the unpacked asset is always an error.

Missing assets (or etcd, Debian's etcd-server, or openssl, which the control plane needs)
skip a test, except under CI=true, where they fail it naming what is missing: CI has
shared/ beside its clone, so a skip there would hide a broken setup.
"""

import functools
import hashlib
import lzma
import os
import pathlib
import shutil
import subprocess
import tempfile

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
ETCD = "/usr/bin/etcd"


class AssetsMissing(Exception):
    """A binary (or its checksum) is not there: a reason to skip, except under CI."""


@functools.lru_cache(maxsize=None)
def assets_dir():
    """The directory of the xz-compressed binaries (see the module docstring); it may not
    exist, which binary() and missing() report."""
    env = os.environ.get("AXON_K8S_ASSETS")
    if env:
        return pathlib.Path(env)
    beside = REPO_ROOT.parent / "shared" / "k8s"
    if beside.is_dir():
        return beside.resolve()
    r = subprocess.run(["git", "-C", str(REPO_ROOT), "config", "--get", "remote.origin.url"],
                       capture_output=True, text=True)
    origin = r.stdout.strip().removeprefix("file://")
    if r.returncode == 0 and origin:
        # A relative origin is relative to this checkout.
        cand = pathlib.Path(REPO_ROOT, origin, "..", "shared", "k8s")
        if cand.is_dir():
            return cand.resolve()
    return beside


def cache_dir():
    return pathlib.Path(os.environ.get("AXON_K8S_CACHE", "/var/cache/axon-k8s"))


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def expected_sha256(name):
    """The checksum SHA256SUMS.unpacked gives for NAME (sha256sum's format)."""
    sums = assets_dir() / "SHA256SUMS.unpacked"
    if not sums.is_file():
        raise AssetsMissing(f"{sums}: not found (set AXON_K8S_ASSETS to the shared/k8s "
                            "directory)")
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == name:
            return parts[0]
    raise AssetsMissing(f"{sums}: no checksum for {name}")


@functools.lru_cache(maxsize=None)
def binary(name):
    """Path (str) of the unpacked, verified binary NAME; AssetsMissing when it cannot be
    had, RuntimeError when the asset does not match its checksum."""
    want = expected_sha256(name)
    src = assets_dir() / f"{name}.xz"
    if not src.is_file():
        raise AssetsMissing(f"{src}: not found")
    dest = cache_dir() / want / name
    if dest.is_file() and _sha256(dest) == want:
        return str(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "wb") as out, lzma.open(src) as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
        got = _sha256(tmp)
        if got != want:
            # Not a missing asset: a corrupt one fails everywhere, CI or not.
            raise RuntimeError(f"{src}: unpacks to sha256 {got}, SHA256SUMS.unpacked says "
                               f"{want}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(dest)


def missing(*names, etcd=False):
    """What of the binaries NAMES (and etcd and openssl, for a control plane) this machine
    lacks, as a list of phrases; empty: nothing."""
    out = []
    for name in names:
        try:
            expected_sha256(name)
            if not (assets_dir() / f"{name}.xz").is_file():
                out.append(f"{assets_dir() / name}.xz")
        except AssetsMissing as e:
            out.append(str(e))
    if etcd:
        if not os.access(ETCD, os.X_OK):
            out.append(f"{ETCD} (Debian package etcd-server; scripts/deps.sh)")
        if not shutil.which("openssl"):
            out.append("openssl")
    return list(dict.fromkeys(out))


def require(*names, etcd=False):
    """In a pytest test: skip it when something is missing, or fail it under CI=true."""
    lack = missing(*names, etcd=etcd)
    if not lack:
        return
    import pytest

    msg = "Kubernetes test assets missing: " + "; ".join(lack)
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {msg}", pytrace=False)
    pytest.skip(msg)


def binary_or_skip(name):
    """binary(NAME) in a pytest test: skipped when the assets are missing, failed under CI."""
    require(name)
    return binary(name)
