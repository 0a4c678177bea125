"""Axon's chart rendered by the real helm (v3.11, template and lint), as Python objects.

    from helm import render, lint, find
    objs = render({"cleanBpfState": True})          # list of dicts, one per manifest
    ds = find(objs, "DaemonSet", "axon")
    err = render_error({"healthPort": "x"})          # helm's message for a refused render

Values are given as a dict and passed to helm in a values file (-f), so types survive
(a --set would turn "0.0025" into a number). The output of render() is what
`helm install` would send to the apiserver, CRDs included (helm's install default), so
a caller can also apply it (kubectl apply --dry-run=server) against a real apiserver.
helm is k8s_assets.binary("helm") (shared/k8s), unless helm_bin names another; without
the assets every call raises k8s_assets.AssetsMissing.
"""

import json
import pathlib
import subprocess
import tempfile

import yaml

from k8s_assets import binary

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "helm" / "axon"
RELEASE = "axon"
NAMESPACE = "kube-system"


class RenderError(Exception):
    """helm refused to render; str() is its message."""


def _run(args, values, helm_bin=None):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="axon-values-") as f:
        # JSON is YAML: every type is written as it is in the dict.
        json.dump(values or {}, f)
        f.flush()
        return subprocess.run([helm_bin or binary("helm"), *args, "-f", f.name],
                              capture_output=True, text=True, timeout=60)


def render_text(values=None, release=RELEASE, namespace=NAMESPACE, include_crds=True,
                kube_version=None, helm_bin=None):
    """The manifests as helm prints them; RenderError when helm refuses. kube_version:
    the cluster's version the chart is rendered for (helm's default: 1.26)."""
    args = ["template", release, str(CHART), "--namespace", namespace,
            f"--include-crds={'true' if include_crds else 'false'}"]
    if kube_version:
        args += ["--kube-version", kube_version]
    r = _run(args, values, helm_bin)
    if r.returncode:
        raise RenderError(r.stderr.strip() or r.stdout.strip())
    return r.stdout


def render(values=None, **kw):
    """[manifest as a dict] of the chart with these values (see render_text)."""
    return [d for d in yaml.safe_load_all(render_text(values, **kw)) if d]


def render_error(values=None, **kw):
    """helm's message for values it must refuse; AssertionError if it renders."""
    try:
        render_text(values, **kw)
    except RenderError as e:
        return str(e)
    raise AssertionError(f"helm rendered the chart with {values!r}; expected a refusal")


def lint(values=None, strict=False, helm_bin=None):
    """(exit status, output) of `helm lint [--strict]` on the chart with these values."""
    r = _run(["lint", str(CHART), *(["--strict"] if strict else [])], values, helm_bin)
    return r.returncode, r.stdout + r.stderr


def find_all(objs, kind):
    return [o for o in objs if o.get("kind") == kind]


def find(objs, kind, name=None):
    """The one object of this kind (and name); AssertionError if none or several."""
    hits = [o for o in find_all(objs, kind) if name is None or o["metadata"]["name"] == name]
    assert len(hits) == 1, f"{len(hits)} {kind} objects named {name!r} in the render"
    return hits[0]


def chart_meta():
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


def default_values():
    return yaml.safe_load((CHART / "values.yaml").read_text())
