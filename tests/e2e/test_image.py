"""The OCI image `make image` builds: loads with podman, runs with no network, and
carries exactly what the binaries need (no base image, no shell).

podman runs with storage and a containers.conf of the test's own, so the machine's
container storage is untouched. The runtime is runc with explicit ulimits: root in
this sandbox may not raise RLIMIT_NOFILE/NPROC, which podman's defaults would.
"""

import json
import os
import pathlib
import shutil
import subprocess
import tarfile
import tempfile

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
OUT = pathlib.Path(os.environ.get("OUT", REPO / ".output"))
if not OUT.is_absolute():
    OUT = REPO / OUT
VERSION = (REPO / "VERSION").read_text().strip()
IMAGE = f"axon/axon-agent:{VERSION}"
ARCHIVE = OUT / "image" / f"axon-agent-{VERSION}.tar"


@pytest.fixture(scope="module")
def archive():
    subprocess.run(["make", "--no-print-directory", f"OUT={OUT}", "image"], cwd=REPO,
                   check=True, capture_output=True, timeout=600)
    assert ARCHIVE.exists(), f"make image did not write {ARCHIVE}"
    return ARCHIVE


@pytest.fixture(scope="module")
def podman(archive):
    if not shutil.which("podman") or not shutil.which("runc"):
        pytest.skip("podman/runc not installed (make deps)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="axon-podman-"))
    conf = work / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
                    '[engine]\nruntime = "runc"\n')
    env = dict(os.environ, CONTAINERS_CONF=str(conf))
    base = ["podman", "--root", str(work / "storage"), "--runroot", str(work / "run"),
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"]

    def run(*args, check=True):
        p = subprocess.run(base + list(args), env=env, capture_output=True, text=True,
                           timeout=300)
        if check:
            assert p.returncode == 0, f"podman {' '.join(args)}: {p.stderr}"
        return p

    try:
        run("load", "-i", str(archive))
        yield run
    finally:
        subprocess.run(base + ["system", "reset", "--force"], env=env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def test_image_runs_agent_version_without_network(podman):
    p = podman("run", "--rm", "--network", "none", IMAGE, "axon-agent", "--version")
    assert p.stdout.startswith(f"axon-agent {VERSION} (commit "), p.stdout


def test_image_agentctl_runs_and_reports_unreachable_agent(podman):
    p = podman("run", "--rm", "--network", "none", IMAGE, "agentctl", "-o", "json", "version")
    doc = json.loads(p.stdout)
    assert doc["version"] == VERSION
    assert doc["agent"]["error"], doc


def test_image_cni_plugin_runs_and_installs_itself(podman, tmp_path):
    """axon-cni is static: it runs from the image as it will on any node's CNI bin dir."""
    p = podman("run", "--rm", "--network", "none", "-i", "-e", "CNI_COMMAND=VERSION", IMAGE,
               "axon-cni")
    assert json.loads(p.stdout) == {"cniVersion": "1.1.0",
                                    "supportedVersions": ["1.0.0", "1.1.0"]}
    p = podman("run", "--rm", "--network", "none", "-v", f"{tmp_path}:/host/opt/cni/bin",
               IMAGE, "axon-cni", "install", "/host/opt/cni/bin")
    r = subprocess.run([str(tmp_path / "axon-cni")], env={"CNI_COMMAND": "VERSION"},
                       input="", capture_output=True, text=True, timeout=30)
    assert json.loads(r.stdout)["supportedVersions"] == ["1.0.0", "1.1.0"]


def test_image_default_command_is_the_agent(podman):
    p = podman("image", "inspect", IMAGE)
    cfg = json.loads(p.stdout)[0]["Config"]
    assert cfg["Cmd"] == ["axon-agent"]
    assert not cfg.get("Entrypoint")
    assert cfg["Labels"]["org.opencontainers.image.version"] == VERSION


def test_image_holds_only_binaries_libraries_and_certificates(archive):
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        assert any(t.endswith(IMAGE) for t in manifest[0]["RepoTags"]), manifest
        layers = manifest[0]["Layers"]
        assert len(layers) == 1, "built from scratch: one layer, no base image"
        with tarfile.open(fileobj=outer.extractfile(layers[0])) as layer:
            names = {n.lstrip("./") for n in layer.getnames()}
    assert {"usr/local/bin/axon-agent", "usr/local/bin/agentctl", "usr/local/bin/axon-cni",
            "etc/ssl/certs/ca-certificates.crt"} <= names
    assert not any(n in names for n in ("bin/sh", "usr/bin/sh", "bin/bash")), "no shell"
    libs = {n for n in names if ".so" in n}
    for so in ("libbpf.so", "libcurl.so", "libnl-3.so", "libcjson.so", "libc.so.6"):
        assert any(so in n for n in libs), f"{so} missing"
    # Nothing else of a distribution: every file is a binary, a library or config.
    stray = [n for n in names if n.startswith(("usr/share", "var/lib", "usr/include"))]
    assert not stray, stray


def test_chart_default_image_is_the_built_one():
    chart = yaml.safe_load((REPO / "helm/axon/Chart.yaml").read_text())
    values = yaml.safe_load((REPO / "helm/axon/values.yaml").read_text())
    assert chart["appVersion"] == VERSION
    assert values["image"]["repository"] == "axon/axon-agent"
    assert values["image"]["tag"] in ("", VERSION)
