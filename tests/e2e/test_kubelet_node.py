"""The chart, the image and the agent start together the way a cluster starts them.

`make image` builds the image; a real node (tests/lib/kubelet_node.py: kubelet, containerd,
runc) imports it; `helm template` renders the chart, every object goes to the session's real
kube-apiserver (tests/lib/realk8s.py, with the controllers a node needs), the DaemonSet
controller makes the pod, it is bound to the node (there is no kube-scheduler here) and the
kubelet runs it. The node registers with the taint node.axon.io/agent-not-ready:NoSchedule
(--register-with-taints, as an operator starts a node); the agent has to come up Ready
through the chart's own probes, remove that taint once its /healthz answers 200 and not
before, sync its watches as the chart's ServiceAccount and realize a Service created in the
apiserver, with its programs on the node's own device and cgroup only.

The chart gets only what a node needs (image.pullPolicy=Never, the node's bpfRoot,
stateDir, cgroupRoot and devices) and where the apiserver is, in the two ways an operator
says it, each on a node of its own:
  api-server-urls  k8sApiServerUrls alone: the kubelet injects KUBERNETES_SERVICE_HOST/PORT
                   of the kubernetes Service (10.96.0.1:443, which nothing serves here), and
                   the agent must use the URLs;
  in-cluster       k8sServiceHost/k8sServicePort: the apiserver's own address as the
                   in-cluster environment, no URLs (a hostNetwork agent reaches it at
                   127.0.0.1).

Needs root and the Kubernetes binaries ($AXON_K8S_ASSETS); without the binaries the module
skips, except with CI=true, where it fails. About 40 s on two cores (both configurations,
the image build included when it is up to date).
"""

import json
import os
import pathlib
import re
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import ExitStack
from types import SimpleNamespace

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))

import helm  # noqa: E402
import k8s  # noqa: E402
import kubelet_node as kn  # noqa: E402
from poll import wait_for  # noqa: E402
from harness import AGENTCTL, OUT  # noqa: E402

VERSION = (REPO / "VERSION").read_text().strip()
IMAGE = f"axon/axon-agent:{VERSION}"
ARCHIVE = OUT / "image" / f"axon-agent-{VERSION}.tar"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:axon"
TAINT_KEY = "node.axon.io/agent-not-ready"
# An operator's own taint: the agent must leave it, as it leaves the kubelet's not-ready.
OTHER_TAINT = ("example.com/dedicated", "net", "NoSchedule")
HEALTH = "http://127.0.0.1:9879"          # the chart's healthPort, on the host's loopback
CONFIGS = ("api-server-urls", "in-cluster")


def chart_values(config, api, node):
    values = {"image": {"pullPolicy": "Never"}, "bpfRoot": node.bpf_root,
              "stateDir": node.state_dir, "cgroupRoot": node.cgroup, "devices": node.device,
              # The node's own directories, not the machine's (nor containerd's conf dir:
              # the Node stays NotReady, with no CNI configured).
              "cni": {"install": True, "binPath": str(node.workdir / "cni-bin"),
                      "confPath": str(node.workdir / "cni-conf")}}
    if config == "api-server-urls":
        values["k8sApiServerUrls"] = api.url
    else:
        values["k8sServiceHost"] = "127.0.0.1"
        values["k8sServicePort"] = str(urllib.parse.urlsplit(api.url).port)
    return values


def health(path):
    """(HTTP status, body) of the agent's health endpoint; (0, error) when nothing answers."""
    try:
        with urllib.request.urlopen(HEALTH + path, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def taints(node):
    return {(t["key"], t.get("value", ""), t["effect"]) for t in node["spec"].get("taints", [])}


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod.get("status", {}).get("conditions", []))


class Cluster(SimpleNamespace):
    """What one configuration's tests share: config, api (a realk8s.Scope), client, node,
    objs (rendered), pod (name), registered (the Node at registration), samples (what
    watching the start saw), started and ready_after (seconds)."""

    def diagnose(self):
        parts = [self.node.log_tails(25), self.api.log_tail(15)]
        if self.pod:
            parts.append("--- agent:\n" + self.node.pod_log(NAMESPACE, self.pod, "agent")[-4000:])
        return "\n".join(parts)

    def wait(self, pred, timeout, what, interval=0.5):
        try:
            return wait_for(pred, timeout, interval=interval, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.diagnose()}") from None

    def get_node(self):
        return self.client.get("nodes", None, self.node.name)

    def get_pod(self):
        return self.client.get("pods", NAMESPACE, self.pod)

    def agent_container(self):
        ids = [cid for cid, name, pod, ns in self.node.containers()
               if (name, pod, ns) == ("agent", self.pod, NAMESPACE)
               and self.node.task_pid(cid)]
        assert len(ids) == 1, f"running agent containers of {self.pod}: {ids}"
        return ids[0]

    def agent_environ(self):
        pid = self.node.task_pid(self.agent_container())
        raw = pathlib.Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        return dict(e.decode().split("=", 1) for e in raw if b"=" in e)

    def agentctl_in_pod(self, *args):
        """(exit status, output) of agentctl in the agent's container (kubectl exec)."""
        r = self.node.exec(self.agent_container(), "agentctl", *args)
        return r.returncode, r.stdout + r.stderr

    def status(self):
        rc, out = self.agentctl_in_pod("-o", "json", "status")
        assert rc == 0, out
        return json.loads(out)

    def probe_counts(self):
        """{(probe type, result): count} of the agent container's probes, from the kubelet's
        /metrics/probes through the apiserver's node proxy (its kubelet client
        certificate)."""
        text = self.client.request(
            "GET", f"/api/v1/nodes/{self.node.name}/proxy/metrics/probes").body.decode()
        out = {}
        for m in re.finditer(r'^prober_probe_total\{([^}]*)\} (\S+)$', text, re.M):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if (labels.get("pod"), labels.get("container")) == (self.pod, "agent"):
                out[(labels["probe_type"], labels["result"])] = float(m.group(2))
        return out

    def lb_frontends(self):
        """{"ip:port/PROTO": sorted "ip:port" backends} from the node's pinned maps."""
        r = subprocess.run([str(AGENTCTL), "--bpf-root", self.node.bpf_root, "-o", "json", "bpf",
                            "lb", "list"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return {fe["frontend"]: sorted(f"{b['address']}:{b['port']}"
                                       for b in fe.get("backends", []))
                for fe in json.loads(r.stdout)}


def watch_the_start(cl, timeout=90):
    """Sample, every 0.2 s until the pod is Ready and the taint gone: the Node's taints,
    then the agent's /healthz (in that order: a taint seen gone was removed before the
    health answer that follows), then the pod's readiness. Returns the samples, each
    (seconds, taint present, /healthz status, pod Ready)."""
    samples = []
    t0 = time.monotonic()
    while True:
        present = TAINT_KEY in {k for k, _, _ in taints(cl.get_node())}
        code, _ = health("/healthz")
        is_ready = ready(cl.get_pod())
        samples.append((round(time.monotonic() - t0, 2), present, code, is_ready))
        if is_ready and not present:
            return samples
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"pod {cl.pod} not Ready with the taint gone after "
                                 f"{timeout}s; last samples {samples[-5:]}\n{cl.diagnose()}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def control_plane(request):
    """The session's apiserver with the controllers a node needs, and the image: built
    while the apiserver starts."""
    kn.require()
    build = subprocess.Popen(["make", "--no-print-directory", "-j2", f"OUT={OUT}", "image"],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    with ExitStack() as stack:
        stack.callback(lambda: build.poll() is None and build.kill())
        real = request.getfixturevalue("real_apiserver")
        stack.enter_context(real.controller_manager(kn.NODE_CONTROLLERS))
        out, _ = build.communicate(timeout=600)
        assert build.returncode == 0, f"make image failed:\n{out}"
        yield real


@pytest.fixture(scope="module", params=CONFIGS)
def cluster(request, control_plane):
    started = time.monotonic()
    with ExitStack() as stack:
        api = control_plane.scope()
        stack.callback(api.close)
        c = api.client()
        # Once the node (and its Node) is gone, before the Scope deletes the DaemonSet:
        # its pods, which no garbage collector removes here, and which would wait for their
        # kubelet forever without grace 0.
        stack.callback(c.request, "DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods",
                       params={"labelSelector": "app.kubernetes.io/name=axon",
                               "gracePeriodSeconds": 0}, check=False)
        node = kn.KubeletNode(api, agentctl=str(AGENTCTL),
                              taints=[f"{TAINT_KEY}=:NoSchedule", "=".join(OTHER_TAINT[:2]) +
                                      f":{OTHER_TAINT[2]}"])
        stack.callback(node.close)
        cl = Cluster(config=request.param, api=api, client=c, node=node, pod=None,
                     started=started, registered=c.get("nodes", None, node.name))
        node.import_image(ARCHIVE)
        # What `helm install` sends; the CRDs are the cluster's already (realk8s).
        cl.objs = helm.render(chart_values(request.param, api, node), include_crds=False)
        api.apply(cl.objs)
        bound = cl.wait(lambda: kn.bind_pending_pods(c, NAMESPACE), 60,
                        "the DaemonSet's pod for the node", interval=0.2)
        assert [n for _, n in bound] == [node.name], bound
        cl.pod = bound[0][0]
        cl.samples = watch_the_start(cl)
        cl.ready_after = time.monotonic() - started
        yield cl


def test_chart_renders_the_agents_objects_with_its_own_probes(cluster):
    kinds = sorted(o["kind"] for o in cluster.objs)
    assert {"ServiceAccount", "ConfigMap", "ClusterRole", "ClusterRoleBinding",
            "DaemonSet"} <= set(kinds), kinds
    ds = cluster.client.get("daemonsets", NAMESPACE, "axon")
    ctr = ds["spec"]["template"]["spec"]["containers"][0]
    # The chart's own image reference: the one `make image` tagged.
    assert ctr["image"] == IMAGE
    assert ctr["imagePullPolicy"] == "Never"
    assert ds["spec"]["template"]["spec"]["hostNetwork"] is True
    # The probes are the chart's defaults, untouched by this test's values, and stored as
    # rendered (plus the apiserver's defaults).
    def probes(ds):
        (c,) = ds["spec"]["template"]["spec"]["containers"]
        return {p: c[p] for p in ("startupProbe", "readinessProbe", "livenessProbe")}
    rendered = probes(helm.find(cluster.objs, "DaemonSet", "axon"))
    assert rendered == probes(helm.find(helm.render(), "DaemonSet", "axon"))
    for name, probe in probes(ds).items():
        want = rendered[name]
        assert {k: v for k, v in probe.items() if k in want} == \
            dict(want, httpGet=dict(want["httpGet"], scheme="HTTP")), name
    assert ctr["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert ctr["livenessProbe"]["httpGet"]["path"] == "/livez"


def test_node_registers_tainted_and_not_ready_and_still_runs_the_daemonset(cluster):
    n = cluster.registered
    assert (TAINT_KEY, "", "NoSchedule") in taints(n), n["spec"]
    assert OTHER_TAINT in taints(n), n["spec"]
    n = cluster.get_node()
    cond = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
    assert cond["status"] == "False"
    assert "NetworkPluginNotReady" in cond["message"], cond
    addrs = {(a["type"], a["address"]) for a in n["status"]["addresses"]}
    assert ("InternalIP", cluster.node.ip) in addrs
    # The chart tolerates every taint: its pod runs on the tainted, NotReady node.
    pod = cluster.get_pod()
    assert pod["spec"]["nodeName"] == cluster.node.name
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"


def test_agent_removes_the_taint_only_once_healthz_answers_200(cluster):
    samples = cluster.samples
    # While the agent was not ready (not answering yet, or 503), the taint was there;
    # every sample without it had /healthz at 200 already.
    assert samples[0][1] is True, samples[:3]
    assert all(code == 200 for _, present, code, _ in samples if not present), samples
    assert any(present and code != 200 for _, present, code, _ in samples), samples
    print(f"{len(samples)} samples over {samples[-1][0]}s; taint gone at "
          f"{next(t for t, present, _, _ in samples if not present)}s")

    n = cluster.get_node()
    left = taints(n)
    assert TAINT_KEY not in {k for k, _, _ in left}, left
    # The operator's taint and the kubelet's are untouched.
    assert OTHER_TAINT in left and ("node.kubernetes.io/not-ready", "", "NoSchedule") in left, \
        left
    # The agent wrote it, as it says.
    writers = {m["manager"] for m in n["metadata"]["managedFields"]
               if "f:taints" in json.dumps(m.get("fieldsV1", {}))}
    assert "axon-agent" in writers, writers
    st = cluster.status()["taint"]
    assert (st["key"], st["state"], st["removed"], st["error"]) == \
        (TAINT_KEY, "removed", 1, ""), st
    assert health("/healthz") == (200, "ok")


def test_charts_probes_pass(cluster):
    pod = cluster.get_pod()
    assert pod["status"]["phase"] == "Running"
    assert ready(pod)                                    # the readiness probe, on /healthz
    (cs,) = pod["status"]["containerStatuses"]
    assert cs["name"] == "agent" and cs["ready"] is True and "running" in cs["state"], cs
    assert cs["started"] is True, cs                     # the startup probe, on /healthz
    assert cs["image"].endswith(IMAGE), cs["image"]
    # Ready on its first start, not after a crash loop or a failed liveness probe.
    assert cs["restartCount"] == 0, cluster.diagnose()
    # The kubelet ran each probe and each passed (liveness: /livez); once started, none
    # failed (the startup probe may, while the agent opens its port and syncs).
    counts = cluster.wait(lambda: (c := cluster.probe_counts()).get(
        ("Liveness", "successful")) and c, 30, "a liveness probe run")
    for kind in ("Startup", "Readiness", "Liveness"):
        assert counts.get((kind, "successful"), 0) >= 1, counts
    for kind in ("Readiness", "Liveness"):
        assert counts.get((kind, "failed"), 0) == 0, counts
    assert health("/livez")[0] == 200

    def ds_ready():
        st = cluster.client.get("daemonsets", NAMESPACE, "axon")["status"]
        return st if st.get("numberReady") == 1 else None
    st = cluster.wait(ds_ready, 30, "DaemonSet status numberReady=1")
    assert st["desiredNumberScheduled"] == 1 and st["numberAvailable"] == 1, st
    print(f"{cluster.config}: pod Ready {cluster.ready_after:.1f}s after the node's start")


def test_init_container_installs_the_plugin_and_the_ready_agent_writes_the_conflist(cluster):
    node = cluster.node
    plugin = node.workdir / "cni-bin" / "axon-cni"
    # The static binary from the image runs on this machine as it is.
    r = subprocess.run([str(plugin)], env={"CNI_COMMAND": "VERSION"}, input="",
                       capture_output=True, text=True, timeout=30)
    assert json.loads(r.stdout)["supportedVersions"] == ["1.0.0", "1.1.0"], r
    conf = node.workdir / "cni-conf" / "05-axon.conflist"
    # Ready, but the Node has no pod CIDR (no nodeipam here): no pod could get an address,
    # so no conflist. Given one (as kube-controller-manager would), it is written.
    assert health("/healthz") == (200, "ok") and not conf.exists()
    cluster.client.patch("nodes", None, node.name, {"spec": {"podCIDR": "10.244.7.0/24",
                                                             "podCIDRs": ["10.244.7.0/24"]}})
    doc = cluster.wait(lambda: conf.exists() and json.loads(conf.read_text()), 30,
                       "the conflist")
    assert doc == {"cniVersion": "1.0.0", "name": "axon",
                   "plugins": [{"type": "axon-cni",
                                "agent-socket": f"{node.state_dir}/agent.sock"}]}
    # Through that socket, from the node: the agent answers the plugin (STATUS: ready).
    r = subprocess.run([str(plugin)], env={"CNI_COMMAND": "STATUS"},
                       input=json.dumps(dict(doc["plugins"][0], cniVersion="1.1.0",
                                             name="axon")),
                       capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout) == (0, ""), r


def test_agent_logs_that_it_started_with_its_version(cluster):
    # kubectl logs: the apiserver asks the kubelet with its kubelet client certificate.
    log = cluster.client.request(
        "GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{cluster.pod}/log",
        params={"container": "agent"}).body.decode()
    line = next((l for l in log.splitlines() if 'msg="agent started"' in l), None)
    assert line, log[-3000:]
    assert f"version={VERSION} " in line
    assert f"node={cluster.node.name} " in line
    assert f"bpf_root={cluster.node.bpf_root} " in line
    assert f"cgroup={cluster.node.cgroup} " in line
    # The API socket is in the chart's stateDir, the hostPath.
    assert f"socket={cluster.node.state_dir}/agent.sock" in line


def test_agent_reaches_the_apiserver_the_configured_way(cluster):
    env = cluster.agent_environ()
    port = str(urllib.parse.urlsplit(cluster.api.url).port)
    config = cluster.client.get("configmaps", NAMESPACE, "axon-config")["data"]
    if cluster.config == "api-server-urls":
        # The kubelet's in-cluster address: the kubernetes Service, which nothing serves.
        assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == \
            ("10.96.0.1", "443"), env
        assert config["k8s-api-server-urls"] == cluster.api.url
    else:
        assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == \
            ("127.0.0.1", port), env
        assert config["k8s-api-server-urls"] == ""
    k = cluster.status()["kubernetes"]
    assert k["server"] == f"https://127.0.0.1:{port}" and k["connected"] is True, k


def test_agentctl_finds_the_agent_in_the_pod_and_on_the_host(cluster):
    # In the pod, by default: the stateDir is mounted where agentctl looks.
    rc, out = cluster.agentctl_in_pod("status")
    assert rc == 0, out
    st = cluster.status()
    assert st["modules"] and all(m["health"] == "ok" for m in st["modules"]), st["modules"]
    assert re.search(r"^  k8s-watch\s+ok\s+all watches synced$", out, re.M), out
    # On the host: the socket in the stateDir.
    r = subprocess.run([str(AGENTCTL), "--socket", f"{cluster.node.state_dir}/agent.sock",
                        "-o", "json", "status"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["version"] == VERSION
    assert stat.S_ISSOCK(os.stat(f"{cluster.node.state_dir}/agent.sock").st_mode)


def test_agent_synced_its_watches_as_the_charts_service_account(cluster):
    st = cluster.status()
    assert st["version"] == VERSION
    watches = {w["name"]: w for w in st["kubernetes"]["watches"]}
    for name in ("services", "endpointslices", "nodes", "ciliumendpointslices"):
        assert watches[name]["synced"] and watches[name]["errors"] == 0, watches[name]
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
    st = cluster.status()
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
    assert node.leftovers() == []
    mounts = pathlib.Path("/proc/self/mountinfo").read_text()
    assert str(node.workdir) not in mounts
    assert not os.path.exists(node.bpf_root) and not os.path.exists(node.cgroup)
    assert not os.path.exists(node.state_dir)
    print(f"{cluster.config}: node, chart and agent {time.monotonic() - cluster.started:.1f}s")
