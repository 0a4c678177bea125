"""The chart, the image and the agent start together the way a cluster starts them.

`make image` builds the image; a real node (tests/lib/kubelet_node.py: kubelet, containerd,
runc) imports it; `helm template` renders the chart, every object goes to a real
kube-apiserver, the DaemonSet controller makes the pod, it is bound to the node (there is no
kube-scheduler here) and the kubelet runs it. The agent then has to come up Ready, sync its
watches as the chart's ServiceAccount and realize a Service created in the apiserver, with
its programs on the node's own device and cgroup only.

The chart gets only what a node needs (image.pullPolicy=Never, the node's bpfRoot,
stateDir, cgroupRoot and devices) and where the apiserver is: a hostNetwork agent reaches
it at https://127.0.0.1:PORT, through k8sApiServerUrls and k8sServiceHost/Port.

Needs root and the Kubernetes binaries ($AXON_K8S_ASSETS); without the binaries the module
skips, except with CI=true, where it fails. About a minute on two cores.
"""

import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.parse
from contextlib import ExitStack
from types import SimpleNamespace

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))

import k8s  # noqa: E402
import kubelet_node as kn  # noqa: E402

OUT = pathlib.Path(os.environ.get("OUT", REPO / ".output"))
if not OUT.is_absolute():
    OUT = REPO / OUT
AGENTCTL = OUT / "agentctl"
VERSION = (REPO / "VERSION").read_text().strip()
IMAGE = f"axon/axon-agent:{VERSION}"
ARCHIVE = OUT / "image" / f"axon-agent-{VERSION}.tar"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:axon"


def _control_plane(assets):
    """etcd + kube-apiserver + kube-controller-manager: anything with .url .ca .token
    .client() .write_kubeconfig(path, token=None) .close() serves (realk8s.RealApiServer)."""
    return kn.ControlPlane(assets)


def chart_values(api, node):
    port = urllib.parse.urlsplit(api.url).port
    return {
        "image.pullPolicy": "Never",
        "bpfRoot": node.bpf_root,
        "stateDir": node.state_dir,
        "cgroupRoot": node.cgroup,
        "devices": node.device,
        "k8sApiServerUrls": api.url,
        # The in-cluster address (KUBERNETES_SERVICE_HOST/PORT) the apiserver's own too, as
        # the chart says for a cluster whose kubernetes Service the agent implements.
        "k8sServiceHost": "127.0.0.1",
        "k8sServicePort": str(port),
    }


def _assets():
    if os.geteuid() != 0:
        pytest.skip("a kubelet node needs root")
    try:
        return kn.k8s_assets()
    except kn.AssetsMissing as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {e}")
        pytest.skip(str(e))


class Cluster(SimpleNamespace):
    """What the tests share: api, node, objs (rendered), pod (name), started (monotonic)."""

    def diagnose(self):
        parts = [self.node.log_tails(25)]
        if hasattr(self.api, "log_tails"):
            parts.append(self.api.log_tails(15))
        if self.pod:
            parts.append("--- agent:\n" + self.node.pod_log(NAMESPACE, self.pod, "agent")[-4000:])
        return "\n".join(parts)

    def wait(self, pred, timeout, what, interval=0.5):
        try:
            return kn.wait_for(pred, timeout, what, interval)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.diagnose()}") from None

    def get_pod(self):
        return self.client.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{self.pod}").json()

    def agent_container(self):
        ids = [cid for cid, name, pod, ns in self.node.containers()
               if (name, pod, ns) == ("agent", self.pod, NAMESPACE)
               and self.node.task_pid(cid)]
        assert len(ids) == 1, f"running agent containers of {self.pod}: {ids}"
        return ids[0]

    def agentctl_in_pod(self, *args):
        r = self.node.exec(self.agent_container(), "agentctl", *args)
        assert r.returncode == 0, f"agentctl {' '.join(args)} in the pod: {r.stderr}{r.stdout}"
        return r.stdout

    def lb_frontends(self):
        """{"ip:port/PROTO": sorted "ip:port" backends} from the node's pinned maps."""
        r = subprocess.run([str(AGENTCTL), "--bpf-root", self.node.bpf_root, "-o", "json", "bpf",
                            "lb", "list"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return {fe["frontend"]: sorted(f"{b['address']}:{b['port']}"
                                       for b in fe.get("backends", []))
                for fe in json.loads(r.stdout)}


def _ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod["status"].get("conditions", []))


@pytest.fixture(scope="module")
def cluster():
    assets = _assets()
    started = time.monotonic()
    # The image builds while the control plane and the node come up.
    build = subprocess.Popen(["make", "--no-print-directory", "-j2", f"OUT={OUT}", "image"],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    with ExitStack() as stack:
        stack.callback(lambda: build.poll() is None and build.kill())
        api = _control_plane(assets)
        stack.callback(api.close)
        node = kn.KubeletNode(api, assets, agentctl=str(AGENTCTL))
        stack.callback(node.close)
        out, _ = build.communicate(timeout=600)
        assert build.returncode == 0, f"make image failed:\n{out}"
        node.import_image(ARCHIVE)
        c = api.client()
        cl = Cluster(api=api, node=node, client=c, pod=None, started=started)
        cl.objs = kn.helm_template(assets["helm"], str(REPO / "helm" / "axon"), "axon",
                                   NAMESPACE, chart_values(api, node), node.workdir)
        kn.service_ca_configmap(c, NAMESPACE, api.ca)
        kn.apply_objects(c, cl.objs)
        bound = cl.wait(lambda: kn.bind_pending_pods(c, NAMESPACE), 60,
                        "the DaemonSet's pod for the node")
        assert [n for _, n in bound] == [node.name], bound
        cl.pod = bound[0][0]
        cl.wait(lambda: _ready(cl.get_pod()), 90, f"pod {cl.pod} Ready")
        cl.ready_after = time.monotonic() - started
        yield cl


def test_chart_renders_the_agents_objects(cluster):
    kinds = sorted(o["kind"] for o in cluster.objs)
    assert {"ServiceAccount", "ConfigMap", "ClusterRole", "ClusterRoleBinding",
            "DaemonSet"} <= set(kinds), kinds
    ds = next(o for o in cluster.objs if o["kind"] == "DaemonSet")
    ctr = ds["spec"]["template"]["spec"]["containers"][0]
    # The chart's own image reference: the one `make image` tagged.
    assert ctr["image"] == IMAGE
    assert ctr["imagePullPolicy"] == "Never"
    assert ds["spec"]["template"]["spec"]["hostNetwork"] is True


def test_node_is_not_ready_without_cni_and_still_runs_the_daemonset(cluster):
    n = cluster.client.request("GET", f"/api/v1/nodes/{cluster.node.name}").json()
    ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert "NetworkPluginNotReady" in ready["message"], ready
    taints = {(t["key"], t["effect"]) for t in n["spec"].get("taints", [])}
    assert ("node.kubernetes.io/not-ready", "NoSchedule") in taints, taints
    addrs = {(a["type"], a["address"]) for a in n["status"]["addresses"]}
    assert ("InternalIP", cluster.node.ip) in addrs
    # The chart tolerates every taint: its pod runs on the NotReady node.
    pod = cluster.get_pod()
    assert pod["spec"]["nodeName"] == cluster.node.name
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"


def test_daemonset_pod_is_running_and_ready(cluster):
    pod = cluster.get_pod()
    assert pod["status"]["phase"] == "Running"
    assert _ready(pod)
    (cs,) = pod["status"]["containerStatuses"]
    assert cs["name"] == "agent" and cs["ready"] is True and "running" in cs["state"], cs
    assert cs["image"].endswith(IMAGE), cs["image"]
    # Ready on its first start, not after a crash loop.
    assert cs["restartCount"] == 0, cluster.diagnose()

    def ds_ready():
        st = cluster.client.request(
            "GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets/axon").json()["status"]
        return st if st.get("numberReady") == 1 else None
    st = cluster.wait(ds_ready, 30, "DaemonSet status numberReady=1")
    assert st["desiredNumberScheduled"] == 1 and st["numberAvailable"] == 1, st
    print(f"pod Ready {cluster.ready_after:.1f}s after the start (image build included)")


def test_agent_logs_that_it_started_with_its_version(cluster):
    log = cluster.node.pod_log(NAMESPACE, cluster.pod, "agent")
    line = next((l for l in log.splitlines() if 'msg="agent started"' in l), None)
    assert line, log[-3000:]
    assert f"version={VERSION} " in line
    assert f"node={cluster.node.name} " in line
    assert f"bpf_root={cluster.node.bpf_root} " in line
    assert f"cgroup={cluster.node.cgroup} " in line


def test_agent_synced_its_watches_as_the_charts_service_account(cluster):
    st = json.loads(cluster.agentctl_in_pod("-o", "json", "status"))
    assert st["version"] == VERSION
    k = st["kubernetes"]
    assert k["server"] == cluster.api.url and k["connected"] is True, k
    watches = {w["name"]: w for w in k["watches"]}
    for name in ("services", "endpointslices", "nodes"):
        assert watches[name]["synced"] and watches[name]["errors"] == 0, watches[name]
    # CiliumEndpointSlices sync where the CRD is installed, else report it missing.
    groups = cluster.client.request("GET", "/apis").json()["groups"]
    ces_served = any(g["name"] == "cilium.io" for g in groups)
    ces = watches["ciliumendpointslices"]
    assert ces["synced"] is ces_served and ces["not_installed"] is not ces_served, ces
    assert st["node"]["known"] and st["node"]["ip"] == cluster.node.ip, st["node"]

    # Who the agent is to the apiserver: the token the kubelet projected into its pod.
    pid = cluster.node.task_pid(cluster.agent_container())
    token = pathlib.Path(f"/proc/{pid}/root/var/run/secrets/kubernetes.io/serviceaccount/"
                         "token").read_text()
    review = cluster.client.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token}}).json()["status"]
    assert review.get("authenticated") is True, review
    assert review["user"]["username"] == SERVICE_ACCOUNT, review["user"]


def test_agent_attaches_only_to_the_nodes_device_and_cgroup(cluster):
    st = json.loads(cluster.agentctl_in_pod("-o", "json", "status"))
    dp = st["datapath"]
    assert dp["state"] == "ready", dp
    assert [d["name"] for d in dp["native_devices"]] == [cluster.node.device]
    assert dp["attachments"], dp
    assert {a["device"] for a in dp["attachments"]} == {cluster.node.device}, dp["attachments"]
    assert st["attach"], st["attach"]
    assert {a["target"] for a in st["attach"]} == {cluster.node.cgroup}, st["attach"]


def test_agent_realizes_a_service_created_in_the_apiserver(cluster):
    c = cluster.client
    svc = k8s.service("default", "axon-e2e-web", [("http", 80, "TCP", 8080)])
    del svc["spec"]["selector"]     # its EndpointSlice is ours, not the controller's
    ip = c.create(svc)["spec"]["clusterIP"]
    c.create(k8s.endpointslice(
        "default", "axon-e2e-web-1", "axon-e2e-web",
        [("10.244.7.10", True, cluster.node.name), ("10.244.7.11", True, cluster.node.name)],
        [("http", 8080, "TCP")], labels={"endpointslice.kubernetes.io/managed-by": "axon-e2e"}))
    fe = f"{ip}:80/TCP"
    want = ["10.244.7.10:8080", "10.244.7.11:8080"]

    def realized():
        fes = cluster.lb_frontends()
        return fes if fes.get(fe) == want else None
    got = cluster.wait(realized, 30, f"frontend {fe} -> {want} in {cluster.node.bpf_root}")
    # The apiserver's own Service is there too (no backends: it has no endpoints here).
    assert "10.96.0.1:443/TCP" in got, got

    c.delete("services", "default", "axon-e2e-web")
    cluster.wait(lambda: fe not in cluster.lb_frontends(), 30, f"frontend {fe} removed")


def test_teardown_leaves_nothing_on_the_machine(cluster):
    node = cluster.node
    node.close()
    cluster.api.close()
    assert node.leftovers() == []
    mounts = pathlib.Path("/proc/self/mountinfo").read_text()
    assert str(node.workdir) not in mounts
    assert not os.path.exists(node.bpf_root) and not os.path.exists(node.cgroup)
    print(f"whole run {time.monotonic() - cluster.started:.1f}s")
