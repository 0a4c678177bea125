"""The real Kubernetes binaries tests run (shared/k8s: helm, kube-apiserver, ...), unpacked.

    from k8s_assets import binary, binary_or_skip
    helm = binary("helm")            # path of the unpacked helm, checksum verified
    helm = binary_or_skip("helm")    # in a pytest test: skip when the assets are missing

The assets directory is $AXON_K8S_ASSETS, else shared/k8s beside the repository. It holds
NAME.xz and SHA256SUMS.unpacked (the checksums of the unpacked files). Each binary is
unpacked once into $AXON_K8S_CACHE (default /tmp/axon-k8s-cache)/<sha256>/NAME, written
under a temporary name and renamed, so concurrent test processes never see half a file;
a cached file is checked against its checksum again before it is used (a truncated or
replaced file is unpacked anew).

Missing assets skip a test, except under CI=true, where they fail it: CI has shared/
beside its clone, so a skip there would hide a broken setup.
"""

import functools
import hashlib
import lzma
import os
import pathlib
import shutil
import tempfile

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


class AssetsMissing(Exception):
    pass


def assets_dir():
    return pathlib.Path(os.environ.get("AXON_K8S_ASSETS", REPO_ROOT.parent / "shared" / "k8s"))


def cache_dir():
    return pathlib.Path(os.environ.get("AXON_K8S_CACHE", "/tmp/axon-k8s-cache"))


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
        raise AssetsMissing(f"{sums}: not found (set AXON_K8S_ASSETS to the shared/k8s directory)")
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == name:
            return parts[0]
    raise AssetsMissing(f"{sums}: no checksum for {name}")


@functools.lru_cache(maxsize=None)
def binary(name):
    """Path of the unpacked, verified binary NAME; AssetsMissing when it cannot be had."""
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
            raise RuntimeError(f"{src}: unpacks to sha256 {got}, SHA256SUMS.unpacked says {want}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(dest)


def binary_or_skip(name):
    """binary(NAME) in a pytest test: skipped when the assets are missing, failed under CI."""
    import pytest

    try:
        return binary(name)
    except AssetsMissing as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the Kubernetes test assets are missing: {e}")
        pytest.skip(f"Kubernetes test assets missing: {e}")
