"""The Helm chart and the agent agree: every ConfigMap key is a flag the agent takes,
every value a template reads exists, and the chart's defaults, written out as the
ConfigMap mounts them, pass the agent's own flag parser.

No helm binary here, so the ConfigMap is rendered for the one form it uses
(`key: {{ .Values.path | quote }}`) and the templates are only searched for
`.Values.` paths; anything else in the ConfigMap's data fails the test rather than
being skipped.
"""

import pathlib
import re
import subprocess

import yaml

from harness import AGENT

CHART = pathlib.Path(__file__).resolve().parents[2] / "helm" / "axon"
DATA_LINE = re.compile(r"^  ([a-z0-9-]+): \{\{ \.Values\.([A-Za-z0-9_.]+) \| quote \}\}$")
VALUES_REF = re.compile(r"\.Values\.([A-Za-z0-9_.]+)")


def values():
    return yaml.safe_load((CHART / "values.yaml").read_text())


def lookup(vals, path):
    cur = vals
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(path)
        cur = cur[part]
    return cur


def configmap_data():
    """[(key, values path)] of the ConfigMap's data section."""
    lines = (CHART / "templates" / "configmap.yaml").read_text().splitlines()
    start = lines.index("data:") + 1
    out = []
    for line in lines[start:]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = DATA_LINE.match(line)
        assert m, f"configmap.yaml: a data line this test cannot render: {line!r}"
        out.append((m.group(1), m.group(2)))
    return out


def as_helm_quotes(v):
    """What `quote` makes of a YAML value (Go's fmt of bool, int, float, string)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    return str(v)


def test_every_values_reference_exists():
    vals = values()
    for tpl in (CHART / "templates").glob("*.yaml"):
        for path in VALUES_REF.findall(tpl.read_text()):
            try:
                lookup(vals, path)
            except KeyError:
                raise AssertionError(f"{tpl.name} reads .Values.{path}, not in values.yaml")


def test_every_configmap_key_is_an_agent_flag():
    usage = subprocess.run([str(AGENT), "--help"], capture_output=True, text=True,
                           check=True).stdout
    flags = set(re.findall(r"--([a-z0-9-]+)", usage))
    data = configmap_data()
    assert len(data) >= 30, data
    unknown = [k for k, _ in data if k not in flags]
    assert not unknown, f"ConfigMap keys the agent does not document: {unknown}"


def test_chart_defaults_pass_the_agents_parser(tmp_path):
    vals = values()
    for key, path in configmap_data():
        (tmp_path / key).write_text(as_helm_quotes(lookup(vals, path)))
    # --help exits after every flag and the config dir are parsed, before the agent
    # touches anything; a bad value exits 2 naming its flag.
    r = subprocess.run([str(AGENT), "--config-dir", str(tmp_path), "--help"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # And a bad value in the same form is refused, naming the flag.
    (tmp_path / "k8s-client-qps").write_text("fast")
    r = subprocess.run([str(AGENT), "--config-dir", str(tmp_path), "--help"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--k8s-client-qps" in r.stderr, (r.returncode, r.stderr)
