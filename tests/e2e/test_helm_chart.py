"""The Helm chart, rendered and linted by the real helm (v3.11, shared/k8s), against the agent.

- `helm lint` and `helm lint --strict` pass without a warning, for the defaults and with
  every optional part on; the values schema refuses a misspelt value or a wrong type.
- `helm template` for the defaults and a matrix of values, asserted object by object:
  the environment, probes, placement, image, mounts, initContainer, RBAC, monitoring.
- Every object of every values case the module renders (CASES) passes a server-side dry
  run against the real apiserver (the session's, tests/lib/realk8s.py), the
  ServiceMonitor and PrometheusRule too, with minimal CRDs of the Prometheus Operator's
  kinds (tests/fixtures/crds/monitoring-coreos.yaml), and is kept as sent.
- The chart and the agent agree: every ConfigMap key is a flag in `axon-agent --help`;
  each rendered ConfigMap, written out as the volume mounts it, plus the DaemonSet's
  args, passes the agent's own parser; the cleanBpfState initContainer's command, run
  on a lab node an agent left, removes its datapath.
- Monitoring: the PrometheusRule's spec passes `promtool check rules` and the unit
  tests in tests/helm/rules_test.yaml (`promtool test rules`); every expression of the
  dashboard parses; every axon_* metric the rules and the dashboard name is one a live
  agent exposes, and that exposition passes `promtool check metrics`.

helm and the apiserver come from tests/lib/k8s_assets.py: skipped without shared/k8s,
failed under CI=true.
"""

import functools
import json
import pathlib
import re
import shutil
import subprocess
from types import SimpleNamespace

import pytest
import yaml

import helm
import k8s
import k8s_assets
from harness import AGENT, AGENTCTL, serve, tc_filter_programs, tcp, wait_attached
from metrics import http, metrics_flag

REPO = pathlib.Path(__file__).resolve().parents[2]
RULES_TEST = REPO / "tests" / "helm" / "rules_test.yaml"
MONITORING_CRDS = REPO / "tests" / "fixtures" / "crds"
VALUES_REF = re.compile(r"\.Values\.([A-Za-z0-9_.]+)")
METRIC_NAME = re.compile(r"\b(axon_[a-z0-9_]+)\b")

# Every optional part on, and every operator value set to something not the default.
ALL_ON = {
    "monitoring": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"},
                                      "interval": "30s"},
                   "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
                   "dashboard": {"enabled": True, "namespace": "monitoring"}},
    "cleanBpfState": True,
    "cgroupRoot": "/run/axon/cgroupv2",
    "extraArgs": ["--debug"],
    "extraEnv": [{"name": "AXON_TEST", "value": "1"}],
    "k8sServiceHost": "10.0.0.1",
    "k8sServicePort": "443",
    "k8sApiServerUrls": "https://10.0.0.1:6443,https://10.0.0.2:6443",
    "nodeSelector": {"node-role.kubernetes.io/worker": "true"},
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "axon.io/skip", "operator": "DoesNotExist"}]}]}}},
    "imagePullSecrets": [{"name": "regcred"}],
    "podAnnotations": {"team": "net"},
    "podLabels": {"tier": "node"},
    "bigTCP": {"ipv4": True},
}


# Value sets whose ConfigMap the agent's parser reads.
MATRIX = [{}, ALL_ON, {"k8sApiServerUrls": "https://10.0.0.1:6443"},
          {"cgroupRoot": "/sys/fs/cgroup", "healthPort": 0, "agentNotReadyTaintKey": ""},
          {"bpfLbServiceMapMax": 4096, "bpfCtGlobalTcpMax": "1000000",
           "bpfMapDynamicSizeRatio": 0.005, "k8sClientQps": 20.5, "debug": True},
          {"identityGCInterval": "1m", "identityHeartbeatTimeout": "90s",
           "kubeProxyReplacementHealthzBindAddress": "0.0.0.0:10256"}]


# Every values set this module renders, by name: render() refuses one that is not here, so
# that test_every_object_passes_the_apiservers_validation (a server-side dry run of each
# set's objects against the real apiserver) covers every case the tests look at.
CASES = {
    "defaults": {}, "all-on": ALL_ON, "urls": MATRIX[2], "no-health": MATRIX[3],
    "sizes": MATRIX[4], "identity-gc-and-healthz": MATRIX[5],
    "clean-bpf-state": {"cleanBpfState": True},
    "clean-bpf-state-paths": {"cleanBpfState": True, "bpfRoot": "/sys/fs/bpf/axon-x",
                              "stateDir": "/var/lib/axon"},
    "image": {"image": {"repository": "reg.example/axon", "tag": "dev", "pullPolicy": "Never"}},
    "service-port-alone": {"k8sServicePort": "443"},
    "service-host": {"k8sServiceHost": "10.0.0.1"},
    "service-host-and-port": {"k8sServiceHost": "api.internal", "k8sServicePort": 443},
    "two-urls": {"k8sApiServerUrls": "https://10.0.0.1:6443,https://10.0.0.2:6443"},
    "health-port": {"healthPort": 9900},
    "health-port-and-liveness": {"healthPort": 9900, "livenessProbe": {
        "periodSeconds": 20, "timeoutSeconds": 3, "failureThreshold": 4}},
    "taint-off": {"agentNotReadyTaintKey": ""},
    "health-off": {"healthPort": 0},
    "placement": {"updateStrategy": {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": "10%"}},
                  "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "net",
                                   "effect": "NoSchedule"}],
                  "priorityClassName": "", "nodeSelector": {"kubernetes.io/os": None},
                  "resources": {"requests": {"cpu": "250m"}}},
    "on-delete": {"updateStrategy": {"type": "OnDelete"}},
    "cgroup-unified": {"cgroupRoot": "/sys/fs/cgroup/unified"},
    "cgroup-elsewhere": {"cgroupRoot": "/run/axon/cgroupv2"},
    "big-tcp": {"bigTCP": {"ipv4": True}},
    "cni-off": {"cni": {"install": False}},
    "cni-paths": {"cni": {"binPath": "/usr/libexec/cni", "confPath": "/etc/cni/conf.d"}},
    "state-dir": {"stateDir": "/var/lib/axon/"},
    "rules": {"monitoring": {"prometheusRule": {"enabled": True}}},
    "rules-tuned": {"monitoring": {"prometheusRule": {
        "enabled": True, "job": "kubernetes-pods", "mapPressureThreshold": 0.75,
        "dropRateThreshold": 5, "policyTimeToEnforceThreshold": 2.5,
        "policyDropRateThreshold": 3}}},
    "dashboard": {"monitoring": {"dashboard": {"enabled": True}}},
}
_CASE_KEYS = {json.dumps(v, sort_keys=True): k for k, v in CASES.items()}


def need_helm():
    """Skip (fail under CI=true) a test that needs helm when shared/k8s is missing."""
    return k8s_assets.binary_or_skip("helm")


@functools.lru_cache(maxsize=None)
def _render(values_json):
    return helm.render(json.loads(values_json))


def render(values=None):
    """The chart's objects for these values, one of CASES (cached: each set is rendered
    once)."""
    need_helm()
    key = json.dumps(values or {}, sort_keys=True)
    assert key in _CASE_KEYS, f"values {key} are not in CASES: add them there, so that " \
        "the server-side dry run covers them too"
    return _render(key)


def daemonset(values=None):
    return helm.find(render(values), "DaemonSet", "axon")


def agent_container(values=None):
    ds = daemonset(values)
    (c,) = [c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == "agent"]
    return c


def env(container):
    return {e["name"]: e for e in container.get("env", [])}


def config_data(values=None):
    return helm.find(render(values), "ConfigMap", "axon-config")["data"]


def version_file():
    return (REPO / "VERSION").read_text().strip()


def promtool():
    path = shutil.which("promtool")
    assert path, "promtool not found: install Debian's prometheus package (scripts/deps.sh)"
    return path


# ---- lint and schema ----

@pytest.mark.parametrize("values", [{}, ALL_ON], ids=["defaults", "all-on"])
def test_lint_is_clean(values):
    need_helm()
    for strict in (False, True):
        rc, out = helm.lint(values, strict=strict)
        assert rc == 0, out
        assert "1 chart(s) linted, 0 chart(s) failed" in out, out
        # INFO (the chart has no icon) is all helm may say.
        assert "[WARNING]" not in out and "[ERROR]" not in out, out


def test_every_values_reference_exists():
    vals = helm.default_values()
    for tpl in (helm.CHART / "templates").iterdir():
        for path in VALUES_REF.findall(tpl.read_text()):
            cur = vals
            for part in path.split("."):
                assert isinstance(cur, dict) and part in cur, \
                    f"{tpl.name} reads .Values.{path}, not in values.yaml"
                cur = cur[part]


@pytest.mark.parametrize("values,message", [
    ({"cleanBPFState": True}, "Additional property cleanBPFState is not allowed"),
    ({"healthPort": "9879"}, "healthPort: Invalid type. Expected: integer, given: string"),
    ({"healthPort": 70000}, "healthPort: Must be less than or equal to 65535"),
    ({"bpfRoot": "/var/lib/axon"}, "bpfRoot: Does not match pattern"),
    ({"image": {"pullPolicy": "Sometimes"}}, "image.pullPolicy: image.pullPolicy must be one of"),
    ({"updateStrategy": {"type": "Recreate"}}, "updateStrategy.type: updateStrategy.type must be one of"),
    ({"monitoring": {"prometheusRule": {"mapPressureThreshold": 2}}},
     "mapPressureThreshold: Must be less than or equal to 1"),
    ({"monitoring": {"serviceMonitor": {"enabled": True}}, "prometheusServeAddr": ""},
     "monitoring.serviceMonitor.enabled needs prometheusServeAddr"),
], ids=["misspelt", "port-type", "port-range", "bpf-root", "pull-policy", "strategy",
        "pressure", "monitor-without-metrics"])
def test_bad_values_are_refused_naming_them(values, message):
    need_helm()
    assert message in helm.render_error(values)


def test_kubernetes_version():
    need_helm()
    assert "chart requires kubeVersion: >=1.21.0-0" in \
        helm.render_error(kube_version="v1.20.15")
    assert helm.find(helm.render(kube_version="v1.21.0"), "DaemonSet", "axon")


# ---- the defaults ----

def test_image_tag_is_app_version_is_version_file():
    meta = helm.chart_meta()
    assert meta["appVersion"] == version_file()
    assert helm.default_values()["image"]["tag"] == ""
    want = f"axon/axon-agent:{version_file()}"
    assert agent_container()["image"] == want
    init = daemonset({"cleanBpfState": True})["spec"]["template"]["spec"]["initContainers"]
    assert [c["image"] for c in init] == [want, want]
    # An explicit tag wins, everywhere.
    c = agent_container({"image": {"repository": "reg.example/axon", "tag": "dev",
                                   "pullPolicy": "Never"}})
    assert (c["image"], c["imagePullPolicy"]) == ("reg.example/axon:dev", "Never")


def test_defaults_render_the_agent_and_nothing_optional():
    objs = [o for o in render() if o["kind"] != "CustomResourceDefinition"]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in objs) == [
        ("ClusterRole", "axon"), ("ClusterRoleBinding", "axon"), ("ConfigMap", "axon-config"),
        ("DaemonSet", "axon"), ("ServiceAccount", "axon")]
    for o in objs:
        if o["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert o["metadata"]["namespace"] == helm.NAMESPACE, o["metadata"]


def test_no_kubernetes_service_host_unless_set():
    # Declared with "" it would hide the variable the kubelet injects.
    e = env(agent_container())
    assert "KUBERNETES_SERVICE_HOST" not in e and "KUBERNETES_SERVICE_PORT" not in e, e
    assert e["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    # The port alone is not declared either.
    e = env(agent_container({"k8sServicePort": "443"}))
    assert "KUBERNETES_SERVICE_HOST" not in e and "KUBERNETES_SERVICE_PORT" not in e, e

    e = env(agent_container({"k8sServiceHost": "10.0.0.1"}))
    assert e["KUBERNETES_SERVICE_HOST"]["value"] == "10.0.0.1"
    assert e["KUBERNETES_SERVICE_PORT"]["value"] == "6443"
    e = env(agent_container({"k8sServiceHost": "api.internal", "k8sServicePort": 443}))
    assert (e["KUBERNETES_SERVICE_HOST"]["value"], e["KUBERNETES_SERVICE_PORT"]["value"]) == \
        ("api.internal", "443")


def test_api_server_urls_alone_reach_the_agent():
    urls = "https://10.0.0.1:6443,https://10.0.0.2:6443"
    vals = {"k8sApiServerUrls": urls}
    assert config_data(vals)["k8s-api-server-urls"] == urls
    assert "KUBERNETES_SERVICE_HOST" not in env(agent_container(vals))


def test_probes_use_the_health_port():
    c = agent_container()
    data = config_data()
    assert data["agent-health-port"] == "9879"
    assert data["agent-not-ready-taint-key"] == "node.axon.io/agent-not-ready"
    for probe, path in (("startupProbe", "/healthz"), ("readinessProbe", "/healthz"),
                        ("livenessProbe", "/livez")):
        assert c[probe]["httpGet"] == {"host": "127.0.0.1", "port": 9879, "path": path}, probe
        assert "exec" not in c[probe]
    # The startup probe allows the initial sync 105 x 2 s.
    assert (c["startupProbe"]["periodSeconds"], c["startupProbe"]["failureThreshold"]) == (2, 105)

    c = agent_container({"healthPort": 9900, "livenessProbe": {
        "periodSeconds": 20, "timeoutSeconds": 3, "failureThreshold": 4}})
    assert config_data({"healthPort": 9900})["agent-health-port"] == "9900"
    assert {c[p]["httpGet"]["port"] for p in ("startupProbe", "readinessProbe",
                                               "livenessProbe")} == {9900}
    assert {k: c["livenessProbe"][k] for k in ("periodSeconds", "timeoutSeconds",
                                               "failureThreshold")} == \
        {"periodSeconds": 20, "timeoutSeconds": 3, "failureThreshold": 4}

    # No taint key: turned off on the command line, since an empty ConfigMap value is
    # no flag at all (the agent's default key).
    assert agent_container({"agentNotReadyTaintKey": ""})["args"] == \
        ["--config-dir=/etc/axon/config", "--agent-not-ready-taint-key="]

    # Port 0: the agent serves no health endpoint, so there is nothing to probe.
    c = agent_container({"healthPort": 0})
    assert not {"startupProbe", "readinessProbe", "livenessProbe"} & c.keys()
    assert config_data({"healthPort": 0})["agent-health-port"] == "0"


def test_placement_and_update_defaults():
    spec = daemonset()["spec"]
    pod = spec["template"]["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxUnavailable": 2}}
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["hostNetwork"] is True
    assert "affinity" not in pod and "imagePullSecrets" not in pod
    assert [c["name"] for c in pod["initContainers"]] == ["install-cni"]
    assert agent_container()["args"] == ["--config-dir=/etc/axon/config"]
    # The selector never changes with values (a DaemonSet's selector is immutable).
    assert spec["selector"]["matchLabels"] == {"app.kubernetes.io/name": "axon",
                                               "app.kubernetes.io/instance": helm.RELEASE}
    assert spec["selector"] == daemonset(ALL_ON)["spec"]["selector"]


def test_operator_values():
    ds = daemonset(ALL_ON)
    pod = ds["spec"]["template"]["spec"]
    meta = ds["spec"]["template"]["metadata"]
    c = agent_container(ALL_ON)
    # helm merges a map given with the default's: kubernetes.io/os stays (null removes it).
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux", **ALL_ON["nodeSelector"]}
    assert pod["affinity"] == ALL_ON["affinity"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert meta["labels"]["tier"] == "node" and meta["annotations"]["team"] == "net"
    # extraArgs go after --config-dir: the command line wins over the ConfigMap.
    assert c["args"] == ["--config-dir=/etc/axon/config", "--debug"]
    assert env(c)["AXON_TEST"] == {"name": "AXON_TEST", "value": "1"}
    assert list(env(c))[0] == "NODE_NAME"

    other = daemonset({"updateStrategy": {"type": "RollingUpdate",
                                          "rollingUpdate": {"maxUnavailable": "10%"}},
                       "tolerations": [{"key": "dedicated", "operator": "Equal",
                                        "value": "net", "effect": "NoSchedule"}],
                       "priorityClassName": "", "nodeSelector": {"kubernetes.io/os": None},
                       "resources": {"requests": {"cpu": "250m"}}})
    assert other["spec"]["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": "10%"}
    pod = other["spec"]["template"]["spec"]
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "net",
                                   "effect": "NoSchedule"}]
    assert "priorityClassName" not in pod and "nodeSelector" not in pod
    (c,) = pod["containers"]
    assert c["resources"] == {"requests": {"cpu": "250m", "memory": "64Mi"},
                              "limits": {"memory": "256Mi"}}
    assert daemonset({"updateStrategy": {"type": "OnDelete"}})["spec"]["updateStrategy"] == \
        {"type": "OnDelete"}


def mounts(values=None):
    c = agent_container(values)
    vols = {v["name"]: v for v in daemonset(values)["spec"]["template"]["spec"]["volumes"]}
    return {m["mountPath"]: vols[m["name"]] for m in c["volumeMounts"]}


def test_cgroup_root():
    # Empty by default: no --cgroup-root reaches the agent (an empty ConfigMap value is no
    # flag), and the host's /sys/fs/cgroup is where the agent looks for the hierarchy.
    assert config_data()["cgroup-root"] == ""
    m = mounts()
    assert m["/sys/fs/cgroup"]["hostPath"]["path"] == "/sys/fs/cgroup"
    assert "--cgroup-root" not in " ".join(agent_container()["args"])

    # Under /sys/fs/cgroup: passed, and already mounted.
    vals = {"cgroupRoot": "/sys/fs/cgroup/unified"}
    assert config_data(vals)["cgroup-root"] == "/sys/fs/cgroup/unified"
    assert sorted(mounts(vals)) == sorted(m)
    # Elsewhere: passed and mounted from the host at the same path.
    vals = {"cgroupRoot": "/run/axon/cgroupv2"}
    assert config_data(vals)["cgroup-root"] == "/run/axon/cgroupv2"
    assert mounts(vals)["/run/axon/cgroupv2"]["hostPath"] == {"path": "/run/axon/cgroupv2",
                                                              "type": "Directory"}


def volumes(values=None):
    return {v["name"]: v for v in daemonset(values)["spec"]["template"]["spec"]["volumes"]}


def test_state_dir_and_bpffs_mounts():
    m = mounts()
    assert m["/sys/fs/bpf"]["hostPath"]["path"] == "/sys/fs/bpf"
    assert m["/var/run/axon"]["hostPath"]["path"] == "/var/run/axon"
    data = config_data()
    assert data["bpf-root"] == "/sys/fs/bpf/axon"
    assert (data["state-dir"], data["socket"]) == ("/var/run/axon", "/var/run/axon/agent.sock")
    assert "/netns" not in str(mounts({"cni": {"install": False}}))
    assert mounts({"bigTCP": {"ipv4": True}})["/var/run/netns"]["hostPath"]["path"] == \
        "/var/run/netns"


def test_state_dir_elsewhere_is_the_hostpath_holding_the_socket():
    """stateDir is the agent's --state-dir and the directory of its --socket, and it is
    the hostPath mounted there: what the agent keeps survives a container restart, and
    agentctl on the host finds the socket in it. In the pod it is mounted at
    /var/run/axon too, where agentctl looks by default; the host's own /var/run/axon is
    not used at all."""
    vals = {"stateDir": "/var/lib/axon/"}
    data = config_data(vals)
    assert (data["state-dir"], data["socket"]) == ("/var/lib/axon", "/var/lib/axon/agent.sock")
    m = mounts(vals)
    assert m["/var/lib/axon"]["hostPath"] == {"path": "/var/lib/axon",
                                              "type": "DirectoryOrCreate"}
    assert m["/var/run/axon"] is m["/var/lib/axon"]
    host_paths = [v["hostPath"]["path"] for v in volumes(vals).values() if "hostPath" in v]
    assert "/var/run/axon" not in host_paths, host_paths
    # The rendered flags reach the agent as the ConfigMap mounts them.
    c = agent_container(vals)
    assert c["args"][0] == "--config-dir=/etc/axon/config"
    assert m["/etc/axon/config"]["configMap"]["name"] == "axon-config"
    # A socket path has 108 bytes: the schema keeps STATEDIR/agent.sock within them.
    assert "stateDir: String length must be less than or equal to 96" in \
        helm.render_error({"stateDir": "/" + "x" * 96})


def test_clean_bpf_state_init_container():
    vals = {"cleanBpfState": True, "bpfRoot": "/sys/fs/bpf/axon-x", "stateDir": "/var/lib/axon"}
    pod = daemonset(vals)["spec"]["template"]["spec"]
    init, cni = pod["initContainers"]
    assert (init["name"], cni["name"]) == ("clean-bpf-state", "install-cni")
    assert init["command"] == ["/usr/local/bin/agentctl", "--bpf-root=/sys/fs/bpf/axon-x",
                               "--state-dir=/var/lib/axon", "cleanup", "--force"]
    vols = {v["name"]: v for v in pod["volumes"]}
    paths = {m["mountPath"]: vols[m["name"]]["hostPath"]["path"] for m in init["volumeMounts"]}
    assert paths == {"/sys/fs/bpf": "/sys/fs/bpf", "/var/lib/axon": "/var/lib/axon"}
    assert init["securityContext"] == {"privileged": True}


def test_cni_install_copies_the_plugin_and_has_the_agent_write_the_conflist():
    vals = {"cni": {"binPath": "/usr/libexec/cni", "confPath": "/etc/cni/conf.d"}}
    ds = daemonset(vals)
    pod = ds["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["command"] == ["/usr/local/bin/axon-cni", "install", "/host/opt/cni/bin"]
    vols = {v["name"]: v for v in pod["volumes"]}
    paths = {m["mountPath"]: vols[m["name"]]["hostPath"]["path"] for m in init["volumeMounts"]}
    assert paths == {"/host/opt/cni/bin": "/usr/libexec/cni"}
    agent = pod["containers"][0]
    paths = {m["mountPath"]: vols[m["name"]]["hostPath"]["path"] for m in agent["volumeMounts"]
             if "hostPath" in vols[m["name"]]}
    assert paths["/host/etc/cni/net.d"] == "/etc/cni/conf.d"
    assert paths["/var/run/netns"] == "/var/run/netns"
    cm = helm.find(render(vals), "ConfigMap", "axon-config")["data"]
    assert cm["write-cni-conf-when-ready"] == "/host/etc/cni/net.d/05-axon.conflist"
    # Off: no init container, no CNI mounts, no conflist.
    off = {"cni": {"install": False}}
    pod = daemonset(off)["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert not {"cni-bin", "cni-conf", "netns"} & {v["name"] for v in pod["volumes"]}
    assert helm.find(render(off), "ConfigMap", "axon-config")["data"][
        "write-cni-conf-when-ready"] == ""
    assert "cni.binPath: Does not match pattern" in \
        helm.render_error({"cni": {"binPath": "opt/cni/bin"}})


def test_rbac_reads_and_writes_only_what_the_agent_publishes():
    role = helm.find(render(), "ClusterRole", "axon")
    rules = {(g, r): sorted(rule["verbs"]) for rule in role["rules"]
             for g in rule["apiGroups"] for r in rule["resources"]}
    read = ["get", "list", "watch"]
    assert rules == {("", "services"): read, ("", "nodes"): sorted(read + ["patch"]),
                     ("", "namespaces"): read, ("", "pods"): read,
                     ("discovery.k8s.io", "endpointslices"): read,
                     ("networking.k8s.io", "networkpolicies"): read,
                     ("cilium.io", "ciliumendpointslices"):
                         sorted(read + ["create", "patch", "delete"]),
                     ("cilium.io", "ciliumnetworkpolicies"): read,
                     ("cilium.io", "ciliumclusterwidenetworkpolicies"): read,
                     ("cilium.io", "ciliumidentities"): sorted(read + ["create", "delete"])}
    binding = helm.find(render(), "ClusterRoleBinding", "axon")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "axon",
                                    "namespace": helm.NAMESPACE}]
    assert daemonset()["spec"]["template"]["spec"]["serviceAccountName"] == "axon"


# ---- what a real apiserver accepts ----

def differences(sent, stored, path=""):
    """Where stored (what the apiserver would keep) lacks or changed what was sent; fields
    it adds (defaults) are fine, and so is a zero value it leaves out (omitempty: false,
    0, "", an empty list or map, null)."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [f"{path}: {stored!r}"]
        return [d for k, v in sent.items()
                for d in (differences(v, stored[k], f"{path}.{k}") if k in stored
                          else [] if not v else [f"{path}.{k}: dropped"])]
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(stored) != len(sent):
            return [f"{path}: {stored!r}"]
        return [d for i, (a, b) in enumerate(zip(sent, stored))
                for d in differences(a, b, f"{path}[{i}]")]
    return [] if sent == stored else [f"{path}: sent {sent!r}, stored {stored!r}"]


@pytest.fixture(scope="module")
def dry_run(real_apiserver):
    """The session's real apiserver with the Prometheus Operator's two kinds (a fixture's
    minimal CRDs) and the dashboard's namespace; seen: the objects accepted already."""
    need_helm()
    scope = real_apiserver.scope()
    try:
        real_apiserver.install_crds(MONITORING_CRDS, client=scope.client())
        scope.client().create({"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": "monitoring"}})
        yield SimpleNamespace(server=real_apiserver, seen=set())
    finally:
        scope.close()


@pytest.mark.parametrize("case", list(CASES))
def test_every_object_passes_the_apiservers_validation(dry_run, case):
    """Each object a values case renders, CRDs and monitoring kinds included, under a
    server-side apply with dryRun=All (kubectl apply --server-side --dry-run=server):
    defaulted, validated (every field must be one the schema declares) and admitted as
    `helm install` would have it created, and kept as sent. An object already accepted
    for an earlier case is not sent again."""
    objs = render(CASES[case])
    kinds = set()
    for obj in objs:
        key = json.dumps(obj, sort_keys=True)
        if key in dry_run.seen:
            continue
        try:
            out = dry_run.server.dry_run_apply(obj)
        except k8s.ApiError as e:
            raise AssertionError(f"{obj['kind']} {obj['metadata']['name']}: {e}") from None
        assert (out["kind"], out["metadata"]["name"]) == (obj["kind"], obj["metadata"]["name"])
        assert not differences(obj, out), (obj["kind"], differences(obj, out))
        dry_run.seen.add(key)
        kinds.add(obj["kind"])
    if case == "all-on":
        assert {"DaemonSet", "ConfigMap", "Service", "ServiceMonitor",
                "PrometheusRule"} <= kinds, kinds
    if case == "defaults":
        assert kinds == {"CustomResourceDefinition", "ServiceAccount", "ConfigMap",
                         "ClusterRole", "ClusterRoleBinding", "DaemonSet"}, kinds


def test_dry_run_refuses_what_a_cluster_would(dry_run):
    """The dry run is a real check: a field no schema declares, a value of the wrong
    type, a ServiceMonitor without its spec, each refused with the apiserver's reason."""
    ds = json.loads(json.dumps(daemonset()))
    ds["spec"]["template"]["spec"]["containers"][0]["probe"] = {"path": "/healthz"}
    sm = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
          "metadata": {"name": "axon-agent", "namespace": helm.NAMESPACE}}
    cm = json.loads(json.dumps(helm.find(render(), "ConfigMap", "axon-config")))
    cm["data"]["agent-health-port"] = 9879
    for obj, words in ((ds, [".probe", "field not declared in schema"]),
                       (sm, ["spec: Required value"]),
                       (cm, ["data.agent-health-port", "string"])):
        with pytest.raises(k8s.ApiError) as e:
            dry_run.server.dry_run_apply(obj)
        # (v1.26 answers a field server-side apply cannot place with 500.)
        assert e.value.code in (400, 422, 500) and all(w in str(e.value) for w in words), \
            e.value


# ---- the chart and the agent agree ----

def test_every_configmap_key_is_an_agent_flag():
    usage = subprocess.run([str(AGENT), "--help"], capture_output=True, text=True,
                           check=True).stdout
    flags = set(re.findall(r"--([a-z0-9-]+)", usage))
    data = config_data(ALL_ON)
    assert len(data) >= 30, data
    unknown = [k for k in data if k not in flags]
    assert not unknown, f"ConfigMap keys the agent does not document: {unknown}"


@pytest.mark.parametrize("values", MATRIX, ids=["defaults", "all-on", "urls", "no-health",
                                                "sizes", "identity-gc-and-healthz"])
def test_rendered_config_passes_the_agents_parser(tmp_path, values):
    """The ConfigMap as its volume mounts it, with the DaemonSet's own args."""
    for key, value in config_data(values).items():
        (tmp_path / key).write_text(value)
    args = [a.replace("/etc/axon/config", str(tmp_path)) for a in agent_container(values)["args"]]
    # --help exits after every flag and the config dir are parsed, before the agent
    # touches anything; a bad value exits 2 naming its flag.
    r = subprocess.run([str(AGENT), *args, "--help"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # And a bad value in the same form is refused, naming the flag.
    (tmp_path / "k8s-client-qps").write_text("fast")
    r = subprocess.run([str(AGENT), *args, "--help"], capture_output=True, text=True)
    assert r.returncode == 2 and "--k8s-client-qps" in r.stderr, (r.returncode, r.stderr)


def test_clean_bpf_state_command_removes_what_an_agent_left(lab1, api, start_agent):
    """The initContainer's command, as rendered for this node's bpffs root and state
    directory, run where the pod would run it (the host's network namespace: here the
    node's), after an agent that attached with legacy tc (recorded in the state dir)."""
    need_helm()
    a = lab1.node("a")
    p1, p2 = a.add_pod("p1"), a.add_pod("p2")
    serve(p2)
    lab1.publish(api)
    agent = start_agent(a, "--enable-tcx=false")
    wait_attached(agent, a.native, p1.host_if, p2.host_if)
    assert "from_container" in tc_filter_programs(a, p1.host_if, "ingress")
    agent.stop()
    assert all(r["ok"] for r in tcp(p1, p2.ip, 8080, 2))      # the datapath outlives it

    # CASES["clean-bpf-state-paths"] with this node's paths.
    vals = {"cleanBpfState": True, "bpfRoot": a.bpf_root, "stateDir": a.state_dir}
    init = helm.find(helm.render(vals), "DaemonSet", "axon")["spec"]["template"]["spec"][
        "initContainers"][0]
    cmd = init["command"]
    assert cmd[0] == "/usr/local/bin/agentctl"
    r = a.exec(str(AGENTCTL), *cmd[1:], check=False)
    assert r.returncode == 0, r.stderr
    # from_container and to_container on each pod's device, two on the native one.
    assert "detached 6 tc attachment(s)" in r.stdout, r.stdout
    assert f"under {a.bpf_root}" in r.stdout
    for dev in (p1.host_if, p2.host_if, a.native):
        for direction in ("ingress", "egress"):
            assert tc_filter_programs(a, dev, direction) == [], (dev, direction)
    left = [p for p in pathlib.Path(a.bpf_root).rglob("*") if p.is_file()]
    assert left == [], left
    assert all(r["ok"] for r in tcp(p1, p2.ip, 8080, 2))      # routed by the kernel again


# ---- monitoring ----

def test_monitoring_objects_select_the_agents():
    objs = render(ALL_ON)
    ds = helm.find(objs, "DaemonSet", "axon")
    pod_labels = ds["spec"]["template"]["metadata"]["labels"]
    (port,) = agent_container(ALL_ON)["ports"]
    assert port == {"name": "metrics", "containerPort": 9962, "hostPort": 9962,
                    "protocol": "TCP"}
    # Scraped through the ServiceMonitor, so not a second time through annotations.
    assert "prometheus.io/scrape" not in ds["spec"]["template"]["metadata"]["annotations"]
    assert daemonset()["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == \
        "9962"

    svc = helm.find(objs, "Service", "axon-agent")
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 9962, "targetPort": "metrics",
                                     "protocol": "TCP"}]

    sm = helm.find(objs, "ServiceMonitor", "axon-agent")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    # The DaemonSet's pods do not carry the Service's component label: only the Service matches.
    assert not sm["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [helm.NAMESPACE]}
    (ep,) = sm["spec"]["endpoints"]
    assert (ep["port"], ep["path"], ep["interval"]) == ("metrics", "/metrics", "30s")
    assert {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node",
            "action": "replace"} in ep["relabelings"]

    rule = helm.find(objs, "PrometheusRule", "axon-agent")
    assert rule["metadata"]["labels"]["release"] == "prom"
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert alerts == {"AxonAgentDown", "AxonAgentAbsent", "AxonBpfMapPressureHigh",
                      "AxonUnrealizedObjects", "AxonDropRateHigh", "AxonPolicyEndpointsFailed",
                      "AxonPolicyEnforcementSlow", "AxonPolicyDropsRising"}

    cm = helm.find(objs, "ConfigMap", "axon-dashboard")
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["axon.json"])
    assert dash["uid"] == "axon-agent" and dash["panels"]


def rules_spec(values=None):
    vals = {"monitoring": {"prometheusRule": {"enabled": True}}}
    vals.update(values or {})
    return helm.find(render(vals), "PrometheusRule", "axon-agent")["spec"]


def test_rules_pass_promtool(tmp_path):
    rules = tmp_path / "axon-rules.yaml"
    rules.write_text(yaml.safe_dump(rules_spec()))
    r = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "SUCCESS: 8 rules found" in r.stdout, r.stdout + r.stderr
    # The unit tests: each alert fires when, and only when, it should, with its text.
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    r = subprocess.run([promtool(), "test", "rules", str(tmp_path / RULES_TEST.name)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_rule_thresholds_and_job_follow_the_values():
    spec = rules_spec({"monitoring": {"prometheusRule": {
        "enabled": True, "job": "kubernetes-pods", "mapPressureThreshold": 0.75,
        "dropRateThreshold": 5, "policyTimeToEnforceThreshold": 2.5,
        "policyDropRateThreshold": 3}}})
    exprs = {r["alert"]: r["expr"] for g in spec["groups"] for r in g["rules"]}
    assert exprs["AxonAgentDown"] == 'up{job="kubernetes-pods"} == 0'
    assert exprs["AxonBpfMapPressureHigh"].endswith(") > 0.75")
    assert exprs["AxonDropRateHigh"].endswith(") > 5")
    assert exprs["AxonPolicyEnforcementSlow"].endswith(")) > 2.5")
    assert ") > 3) and (" in exprs["AxonPolicyDropsRising"], exprs["AxonPolicyDropsRising"]
    assert all('{job="kubernetes-pods"' in e for e in exprs.values()), exprs


def dashboard():
    cm = helm.find(render({"monitoring": {"dashboard": {"enabled": True}}}), "ConfigMap",
                   "axon-dashboard")
    return json.loads(cm["data"]["axon.json"])


def dashboard_exprs():
    out = []
    for p in dashboard()["panels"]:
        out += [t["expr"] for t in p.get("targets", [])]
    return out


def test_dashboard_queries_parse(tmp_path):
    """Each panel's query, with Grafana's variables filled in, as a recording rule."""
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    subst = {"$__rate_interval": "5m", "$job": ".*", "$instance": ".*"}
    rules = []
    for i, e in enumerate(exprs):
        for k, v in subst.items():
            e = e.replace(k, v)
        assert "$" not in e, e
        rules.append({"record": f"axon:dashboard_{i}", "expr": e})
    f = tmp_path / "dashboard-rules.yaml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = subprocess.run([promtool(), "check", "rules", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    variables = {v["name"] for v in dashboard()["templating"]["list"]}
    assert variables == {"datasource", "job", "instance"}


def test_dashboard_policy_panels():
    """The network policy row: verdicts by direction and action, time to enforce, entries
    per endpoint, failed endpoints; every panel with an id and a place of its own."""
    panels = dashboard()["panels"]
    by_title = {p["title"]: p for p in panels}
    exprs = {t: [x["expr"] for x in by_title[t]["targets"]] for t in (
        "Policy verdicts/s by direction and action", "Time to enforce", "Entries per endpoint",
        "Endpoints with failed policy")}
    verdicts = exprs["Policy verdicts/s by direction and action"]
    assert any('reason="Allowed by policy"' in e and "by (direction)" in e for e in verdicts)
    assert any('reason=~"Policy denied.*"' in e and "by (direction, reason)" in e
               for e in verdicts)
    assert all("axon_policy_time_to_enforce_seconds_bucket" in e
               for e in exprs["Time to enforce"])
    assert any("axon_policy_entries_bucket" in e for e in exprs["Entries per endpoint"])
    assert "axon_policy_endpoints_failed" in exprs["Endpoints with failed policy"][0]
    assert len({p["id"] for p in panels}) == len(panels)
    cells = set()
    for p in panels:
        g = p["gridPos"]
        for y in range(g["y"], g["y"] + g["h"]):
            for x in range(g["x"], g["x"] + g["w"]):
                assert (x, y) not in cells, f"{p['title']} overlaps another panel"
                cells.add((x, y))


def test_live_metrics_pass_promtool_and_name_every_metric_used(lab, api, agent):
    """An agent with a Service and some traffic: its /metrics passes `promtool check
    metrics`, and every axon_* name the alerts and the dashboard use is a family there."""
    need_helm()
    b1, client = lab.add_pod("b1"), lab.add_pod("client")
    serve(b1)
    api.create(k8s.service("default", "web", [("http", 80, "TCP")], cluster_ip="10.96.40.10"))
    api.create(k8s.endpointslice("default", "web-1", "web", [(b1.ip, True)],
                                 [("http", 8080, "TCP")]))
    agent.extra += [metrics_flag()]
    agent.start()
    assert all(r["ok"] for r in tcp(client, "10.96.40.10", 80, 3))
    code, body = http(agent)
    assert code == 200, body[:200]

    r = subprocess.run([promtool(), "check", "metrics"], input=body, capture_output=True,
                       text=True)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        r.stdout + r.stderr

    families = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)", body, re.M):
        families.add(name)
        if kind == "histogram":
            families |= {name + "_bucket", name + "_sum", name + "_count"}
    used = set()
    for text in [yaml.safe_dump(rules_spec())] + dashboard_exprs():
        used |= set(METRIC_NAME.findall(text))
    assert len(used) >= 10, used
    assert not used - families, f"names the agent does not expose: {sorted(used - families)}"


def test_readme_cleanup_daemonset_runs_the_charts_cleanup():
    """The one-off cleanup DaemonSet in the chart's README: valid YAML whose command is
    the cleanBpfState initContainer's, with the same mounts, for the default paths."""
    text = (helm.CHART / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    (ds,) = [yaml.safe_load(b) for b in blocks if "name: axon-cleanup" in b]
    pod = ds["spec"]["template"]["spec"]
    (readme,) = pod["initContainers"]
    chart = daemonset({"cleanBpfState": True})["spec"]["template"]["spec"]["initContainers"][0]
    assert readme["command"] == chart["command"]
    assert readme["image"] == agent_container()["image"]
    assert pod["hostNetwork"] is True and readme["securityContext"] == {"privileged": True}
    vols = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    assert {m["mountPath"]: vols[m["name"]] for m in readme["volumeMounts"]} == \
        {"/sys/fs/bpf": "/sys/fs/bpf", "/var/run/axon": "/var/run/axon"}
    assert ds["spec"]["selector"]["matchLabels"].items() <= \
        ds["spec"]["template"]["metadata"]["labels"].items()


def test_readme_documents_every_value():
    text = (helm.CHART / "README.md").read_text()
    documented = set(re.findall(r"`([A-Za-z0-9_.]+)`", text))

    def leaves(d, prefix=""):
        for k, v in d.items():
            path = prefix + k
            if isinstance(v, dict) and v and path not in ("nodeSelector", "resources",
                                                          "updateStrategy"):
                yield from leaves(v, path + ".")
            else:
                yield path
    # A leaf is documented by its own path or by one of its parents' (startupProbe).
    missing = [p for p in leaves(helm.default_values())
               if not any(".".join(p.split(".")[:i]) in documented
                          for i in range(1, p.count(".") + 2))
               and p.rsplit(".", 1)[-1] not in documented]
    assert not missing, f"values the chart's README does not name: {missing}"
