"""A real Kubernetes node (kubelet + containerd + runc) on the machine running the tests, for
end-to-end tests that start Axon the way a cluster does (chart -> DaemonSet -> kubelet).

    api = real_apiserver.scope()                # tests/lib/realk8s.py (conftest: real_apiserver)
    with api.controller_manager(NODE_CONTROLLERS):
        with KubeletNode(api, agentctl=".output/agentctl",
                         taints=["node.axon.io/agent-not-ready=:NoSchedule"]) as node:
            node.import_image(".output/image/axon-agent-0.2.0.tar")
            api.apply(helm.render({"bpfRoot": node.bpf_root, ...}))
            bind_pending_pods(api.client(), "kube-system")   # no kube-scheduler here
        assert not node.leftovers()

The control plane is realk8s.RealApiServer (or a Scope of it), the one launcher the tests
have: its CA signs the kubelet's client certificate (CN=system:node:NAME, O=system:nodes:
the Node authorizer's node identity), its kubelet client certificate reaches this kubelet
(logs, the node proxy), and NODE_CONTROLLERS are the controllers a node with a DaemonSet
needs. The kubelet binary comes from tests/lib/k8s_assets.py; require() skips a test
without it (fails it under CI=true).

KubeletNode: everything a node needs, created for it and removed by close(), also after a
failure:
  - a veth pair, `device` in the machine's network namespace holding the node IP (`ip`),
    its peer in a namespace of the node's own. Kubelet, containerd and hostNetwork pods use
    the machine's network namespace (the apiserver listens on its 127.0.0.1); `device` is
    the only device the node's pods should attach to.
  - a mount namespace of the node's own (a holder process keeps it) where containerd, its
    shims and the kubelet run: their overlay, tmpfs and bind mounts live and die there;
    /sys/fs/bpf, / and /run/netns are shared mounts there (Bidirectional and HostToContainer
    hostPath volumes need it) and not on the machine; the kubelet's fixed paths (/var/lib/kubelet/device-plugins, /var/log/pods,
    /var/log/containers) and containerd's (/run/containerd) are the node's directories bound
    over the machine's (empty mount points, created if missing and removed again); the
    kernel tunables the kubelet would set machine-wide (vm.overcommit_memory,
    kernel.panic_on_oops, ...) are files of the node's own there, already at the values it
    wants.
  - containerd with its own root, state, socket and config (CRI, overlayfs, runc with its
    own root, restrict_oom_score_adj), the CNI conf dir empty (so the Node stays NotReady;
    hostNetwork pods run regardless), the pause image built from tests/lib/pause.c.
  - the kubelet with its own root and cert dirs, cgroupfs driver, its pods under the cgroup
    `kubelet_cgroup` in every hierarchy, no iptables chains, registering its Node with
    `taints` (--register-with-taints, as an operator starts a node).
  - for an agent: `bpf_root` (a directory of the machine's bpffs), `state_dir` (the chart's
    stateDir: its hostPath, holding the agent's API socket) and `cgroup` (the kubelet's
    cgroup in the v2 hierarchy, where runc puts the node's containers too); close() runs
    `agentctl cleanup --force` when given agentctl, then removes the pins (which detaches
    links).
  leftovers() lists what is still on the machine: mounts, processes, links, namespaces,
  directories, cgroups, bpffs pins.
One node per machine at a time: a chart's agent has the host's network, so its health and
metrics ports are the machine's.

There is no kube-scheduler among the assets: bind_pending_pods() binds a pending pod whose
node affinity names one node (how the DaemonSet controller writes them) to that node, as
kube-scheduler would.
"""

import fcntl
import hashlib
import io
import json
import os
import pathlib
import shlex
import shutil
import signal
import subprocess
import tarfile
import tempfile
import uuid

import yaml

import k8s_assets
from poll import wait_for
from realk8s import Process, die_with_parent, free_port

REPO = pathlib.Path(__file__).resolve().parents[2]
PAUSE_SRC = REPO / "tests" / "lib" / "pause.c"
PAUSE_IMAGE = "localhost/axon-test/pause:1"
# What a node running a DaemonSet needs of kube-controller-manager: the DaemonSet's pods;
# the ConfigMaps every service-account token volume projects (kube-root-ca.crt, and
# openshift-service-ca.crt, which this apiserver, OpenShift's fork, adds to them);
# ServiceAccounts and EndpointSlices as in any cluster. Not nodeipam (Nodes' podCIDR): it
# holds every controller's start for 10 s (its first list of Nodes waits one poll period).
NODE_CONTROLLERS = ("daemonset,serviceaccount,endpointslice,root-ca-cert-publisher,"
                    "service-ca-cert-publisher")
CGROUP_V1 = "/sys/fs/cgroup"
CGROUP2 = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else CGROUP_V1
BPFFS = "/sys/fs/bpf"
# What the kubelet writes at fixed paths, whatever its --root-dir (bound per node).
KUBELET_FIXED_DIRS = ("/var/lib/kubelet/device-plugins", "/var/log/pods", "/var/log/containers")
# containerd 1.6's shims put their sockets under /run/containerd/s whatever its state dir.
CONTAINERD_FIXED_DIRS = ("/run/containerd",)
# The kubelet sets these machine-wide unless they already hold these values.
KUBELET_SYSCTLS = {"vm/overcommit_memory": "1", "vm/panic_on_oom": "0", "kernel/panic": "10",
                   "kernel/panic_on_oops": "1", "kernel/keys/root_maxkeys": "1000000",
                   "kernel/keys/root_maxbytes": "25000000"}


def require():
    """Skip the calling test (fail it under CI=true) when a node cannot be had here."""
    import pytest

    if os.geteuid() != 0:
        pytest.skip("a kubelet node needs root")
    k8s_assets.require("kube-apiserver", "kube-controller-manager", "kubelet", "helm",
                       etcd=True)


def _run(*argv, check=True, **kw):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(map(str, argv))}: exit {r.returncode}: "
                           f"{r.stderr.strip() or r.stdout.strip()}")
    return r


# Objects ----------------------------------------------------------------------------------

def daemon_pod_node(pod):
    """The node a DaemonSet pod's required node affinity names (the controller writes one
    matchFields term, metadata.name In [node]), else None."""
    terms = (((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or {}) \
        .get("nodeSelectorTerms") or []
    for t in terms:
        for f in t.get("matchFields") or []:
            if f["key"] == "metadata.name" and f["operator"] == "In" and len(f["values"]) == 1:
                return f["values"][0]
    return None


def bind_pending_pods(client, namespace):
    """Bind every unscheduled pod of namespace whose affinity names one node to it, as
    kube-scheduler does (pods/binding). Returns [(pod, node)] bound."""
    bound = []
    pods = client.request("GET", f"/api/v1/namespaces/{namespace}/pods").json()["items"]
    for pod in pods:
        node = daemon_pod_node(pod)
        if pod["spec"].get("nodeName") or not node:
            continue
        name = pod["metadata"]["name"]
        client.request("POST", f"/api/v1/namespaces/{namespace}/pods/{name}/binding",
                       {"apiVersion": "v1", "kind": "Binding",
                        "metadata": {"name": name, "namespace": namespace},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
        bound.append((name, node))
    return bound


# Images -----------------------------------------------------------------------------------

def docker_archive(path, ref, files, entrypoint):
    """A docker-archive of one layer holding files {path in image: (bytes, mode)}, tagged
    ref: what `docker save` writes and `ctr images import` reads."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mode = len(data), mode
            t.addfile(info, io.BytesIO(data))
    layer = layer.getvalue()
    diff_id = hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": entrypoint},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "kubelet_node.py"}],
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [ref],
                            "Layers": [f"{diff_id}/layer.tar"]}]).encode()
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in ((f"{diff_id}/layer.tar", layer), (config_name, config),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            t.addfile(info, io.BytesIO(data))
    return path


def build_pause_image(workdir):
    """The pause image (PAUSE_IMAGE) as a docker-archive: tests/lib/pause.c, static."""
    binary = pathlib.Path(workdir) / "pause"
    _run("gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary, PAUSE_SRC)
    return docker_archive(pathlib.Path(workdir) / "pause.tar", PAUSE_IMAGE,
                          {"/pause": (binary.read_bytes(), 0o755)}, ["/pause"])


# The node ---------------------------------------------------------------------------------

def _cgroup_hierarchies():
    """Mount points of every cgroup hierarchy (v1 controllers, name=systemd, v2)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                out.append(fields[4])
    return out


def _mount_points():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def _ns_inode(pid, ns="mnt"):
    try:
        return os.stat(f"/proc/{pid}/ns/{ns}").st_ino
    except OSError:
        return None


def _pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# What node.json records: enough to tear down the node of a killed run.
MANIFEST = ("id", "name", "device", "peer_netns", "kubelet_cgroup", "cgroup", "bpf_root",
            "state_dir")


def sweep_stale_nodes():
    """Tear down the nodes killed test runs left behind (shims, containers, mounts, veths,
    cgroups, pins): every default workdir whose lock nobody holds. Returns their names."""
    swept = []
    for d in sorted(pathlib.Path(tempfile.gettempdir()).glob("axon-kn-*")):
        manifest = d / "node.json"
        if not manifest.exists():
            continue
        with open(d / ".lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue        # a live node
            node = KubeletNode._stale(d, json.loads(manifest.read_text()))
            node.close()
            swept.append(node.name)
    return swept


class KubeletNode:
    """A kubelet + containerd node, registered with api once constructed (the module's
    docstring says what it creates).

    api: a realk8s.RealApiServer or Scope. taints: "KEY=[VALUE]:EFFECT" the Node registers
    with. name, ip (the InternalIP), device (the veth holding ip), bpf_root, state_dir,
    cgroup (for an agent's chart values), workdir; ctr(...), import_image(archive),
    containers(), exec(container_id, *argv), task_pid(container_id),
    pod_log(ns, pod, container), log_tails(); close() (with agentctl: `agentctl cleanup
    --force` on bpf_root first), leftovers()."""

    def __init__(self, api, workdir=None, name=None, agentctl=None, taints=()):
        self.api = api
        self.agentctl = agentctl
        self.taints = list(taints)
        self.id = uuid.uuid4().hex[:6]
        self.name = name or f"axon-kn-{self.id}"
        sweep_stale_nodes()
        self.workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix=f"axon-kn-{self.id}-"))
        # Held while the node lives: a workdir whose lock is free was left by a killed run.
        self._lock = open(self.workdir / ".lock", "w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.device = f"axkn{self.id}"
        self.peer_netns = f"axkn{self.id}-peer"
        net = 18 + (int(self.id[:2], 16) % 2)
        self.ip = f"198.{net}.{int(self.id[2:4], 16)}.1"
        self.peer_ip = self.ip[:-1] + "2"
        self.kubelet_cgroup = f"/axon-kn-{self.id}"
        # runc puts containers in the v2 hierarchy too, under the same path: the node's
        # pods' cgroup v2, where an agent's socket hooks serve this node's pods only.
        self.cgroup = CGROUP2 + self.kubelet_cgroup
        self.bpf_root = os.path.join(BPFFS, f"axon-kn-{self.id}")
        self.state_dir = f"/var/run/axon-kn-{self.id}"
        self.socket = self.workdir / "containerd" / "containerd.sock"
        self.procs = {}
        self.holder = None
        self.mnt_ns = None
        self.created_dirs = []      # machine directories made for this node, to remove
        self.api_objects = []       # (path) of API objects made for this node, to delete
        self._closed = False
        self._save()
        try:
            self._mkdir_host(self.state_dir)
            self._network()
            self._cgroups()
            self._mount_namespace()
            self._containerd()
            self.import_image(build_pause_image(self.workdir))
            self._kubelet()
        except BaseException:
            self.close()
            raise

    # -- setup --

    def _mkdir_host(self, path):
        """mkdir -p on the machine, remembering the topmost directory it created."""
        p = pathlib.Path(path)
        missing = [d for d in [p, *p.parents] if not d.exists()]
        p.mkdir(parents=True, exist_ok=True)
        if missing:
            self.created_dirs.append(missing[-1])
            self._save()

    def _save(self):
        """workdir/node.json: what sweep_stale_nodes() needs to remove the node."""
        m = {k: getattr(self, k) for k in MANIFEST}
        m["created_dirs"] = [str(d) for d in self.created_dirs]
        m["socket"] = str(self.socket)
        (self.workdir / "node.json").write_text(json.dumps(m))

    @classmethod
    def _stale(cls, workdir, manifest):
        """The node of a killed run, as far as close() needs it."""
        node = cls.__new__(cls)
        node.__dict__.update(manifest, api=None, agentctl=None, workdir=pathlib.Path(workdir),
                             socket=pathlib.Path(manifest["socket"]), procs={}, holder=None,
                             mnt_ns=None, api_objects=[], _closed=False, _lock=None)
        node.created_dirs = [pathlib.Path(d) for d in manifest["created_dirs"]]
        return node

    def _network(self):
        _run("ip", "netns", "add", self.peer_netns)
        _run("ip", "link", "add", self.device, "type", "veth", "peer", "name", "eth0",
             "netns", self.peer_netns)
        _run("ip", "addr", "add", f"{self.ip}/24", "dev", self.device)
        _run("ip", "link", "set", self.device, "up")
        ns = ["ip", "-n", self.peer_netns]
        _run(*ns, "addr", "add", f"{self.peer_ip}/24", "dev", "eth0")
        _run(*ns, "link", "set", "eth0", "up")
        _run(*ns, "link", "set", "lo", "up")

    def _cgroups(self):
        # The kubelet refuses a --cgroup-root missing from any hierarchy it uses; v1 cpuset
        # children start with no CPUs, so the root gets its parent's.
        for h in _cgroup_hierarchies():
            d = pathlib.Path(h + self.kubelet_cgroup)
            d.mkdir(exist_ok=True)
            for f in ("cpuset.cpus", "cpuset.mems"):
                if (d / f).exists() and (pathlib.Path(h) / f).exists():
                    (d / f).write_text((pathlib.Path(h) / f).read_text())

    def _in_ns(self, script):
        return _run("nsenter", "-t", self.holder.pid, "-m", "sh", "-ec", script)

    def _mount_namespace(self):
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sleep", "infinity"],
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)
        own = _ns_inode("self")
        self.mnt_ns = wait_for(lambda: (_ns_inode(self.holder.pid) or own) != own and
                               _ns_inode(self.holder.pid), 10, interval=0.01,
                               what="the node's mount namespace")
        # "/" and the netns directory shared, as on a systemd host: the kubelet's
        # HostToContainer mounts (the chart's /var/run/netns) need the mount holding
        # them to be shared; peers only in this namespace, nothing reaches the machine.
        lines = [f"mount --make-shared {BPFFS}", "mount --make-shared /",
                 "if mountpoint -q /run/netns; then mount --make-shared /run/netns; fi"]
        for d in KUBELET_FIXED_DIRS + CONTAINERD_FIXED_DIRS:
            self._mkdir_host(d)
            mine = self.workdir / "fixed" / d.lstrip("/")
            mine.mkdir(parents=True)
            lines.append(f"mount --bind {shlex.quote(str(mine))} {d}")
        for key, value in KUBELET_SYSCTLS.items():
            f = self.workdir / "sysctl" / key.replace("/", ".")
            f.parent.mkdir(exist_ok=True)
            f.write_text(value + "\n")
            lines.append(f"mount --bind {shlex.quote(str(f))} /proc/sys/{key}")
        self._in_ns("\n".join(lines))

    def _spawn(self, name, argv):
        """Run argv in the node's mount namespace; returns its Process."""
        p = self.procs[name] = Process(name, ["nsenter", "-t", self.holder.pid, "-m", "--",
                                              *argv], self.workdir)
        return p

    def _containerd(self):
        d = self.workdir / "containerd"
        (d / "cni" / "net.d").mkdir(parents=True)
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{d / 'root'}"
state = "{d / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{self.socket}"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{d / 'opt'}"
  [{cri}]
    sandbox_image = "{PAUSE_IMAGE}"
    # Root without CAP_SYS_RESOURCE (in a container, say) cannot lower oom_score_adj:
    # a sandbox asking for less than containerd's own would fail in runc.
    restrict_oom_score_adj = true
    [{cri}.containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [{cri}.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [{cri}.containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "{d / 'runc'}"
    [{cri}.cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "{d / 'cni' / 'net.d'}"
"""
        (d / "config.toml").write_text(config)
        p = self._spawn("containerd", ["containerd", "--config", d / "config.toml"])
        wait_for(lambda: self.ctr("version", check=False).returncode == 0, 30,
                 what="containerd", proc=p)

    def _kubelet(self):
        d = self.workdir / "kubelet"
        d.mkdir()
        kubeconfig = self.api.write_kubeconfig(
            d / "kubeconfig", cert=self.api.node_credentials(d, self.name))
        self.kubelet_port = free_port()
        self.kubelet_healthz_port = free_port()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "cgroupDriver": "cgroupfs", "cgroupRoot": self.kubelet_cgroup,
            "failSwapOn": False,
            "address": self.ip, "port": self.kubelet_port, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": self.kubelet_healthz_port,
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": str(self.api.ca)}},
            "authorization": {"mode": "AlwaysAllow"},
            "volumePluginDir": str(d / "volume-plugins"),
            # No KUBE-* chains in the machine's iptables.
            "makeIPTablesUtilChains": False,
            # Not -999: root without CAP_SYS_RESOURCE cannot lower its own score.
            "oomScoreAdj": 0,
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%"},
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "nodeStatusUpdateFrequency": "5s", "syncFrequency": "10s",
            "fileCheckFrequency": "5s",
        }
        (d / "config.yaml").write_text(yaml.safe_dump(config))
        p = self._spawn("kubelet", [
            k8s_assets.binary("kubelet"), f"--config={d / 'config.yaml'}",
            f"--kubeconfig={kubeconfig}", f"--container-runtime-endpoint=unix://{self.socket}",
            f"--root-dir={d / 'root'}", f"--cert-dir={d / 'pki'}",
            f"--hostname-override={self.name}", f"--node-ip={self.ip}",
            f"--pod-infra-container-image={PAUSE_IMAGE}", "--v=2"] +
            ([f"--register-with-taints={','.join(self.taints)}"] if self.taints else []))
        self.api_objects.append(f"/api/v1/nodes/{self.name}")
        c = self.api.client()
        wait_for(lambda: c.request("GET", f"/api/v1/nodes/{self.name}").json(), 60,
                 what=f"Node {self.name} registered", proc=p)

    # -- use --

    def ctr(self, *args, check=True, timeout=120):
        return _run("ctr", "--address", self.socket, "--namespace", "k8s.io", *args,
                    check=check, timeout=timeout)

    def import_image(self, archive):
        """Load a docker-archive into the node's containerd, as the kubelet's images."""
        self.ctr("images", "import", archive)

    def containers(self):
        """[(container id, name, pod, namespace)] of the node's CRI containers (not pods'
        sandboxes), from containerd's labels."""
        out = []
        for cid in self.ctr("containers", "list", "--quiet").stdout.split():
            info = json.loads(self.ctr("containers", "info", cid).stdout)
            labels = info.get("Labels") or {}
            if labels.get("io.cri-containerd.kind") == "container":
                out.append((cid, labels.get("io.kubernetes.container.name"),
                            labels.get("io.kubernetes.pod.name"),
                            labels.get("io.kubernetes.pod.namespace")))
        return out

    def exec(self, container_id, *argv, timeout=30):
        """Run argv in a running container (what `kubectl exec` reaches); CompletedProcess."""
        fifo = self.workdir / "fifo"
        fifo.mkdir(exist_ok=True)
        return self.ctr("tasks", "exec", "--exec-id", f"t{uuid.uuid4().hex[:8]}",
                        "--fifo-dir", fifo, container_id, *argv, check=False,
                        timeout=timeout)

    def task_pid(self, container_id):
        for line in self.ctr("tasks", "list").stdout.splitlines()[1:]:
            f = line.split()
            if f and f[0] == container_id:
                return int(f[1])
        return None

    def pod_log(self, namespace, pod, container):
        """The container's log as the kubelet keeps it (/var/log/pods/...)."""
        root = self.workdir / "fixed" / "var" / "log" / "pods"
        logs = sorted(root.glob(f"{namespace}_{pod}_*/{container}/*.log"))
        return "".join(p.read_text(errors="replace") for p in logs)

    def log_tails(self, lines=30):
        return "\n".join(p.log_tail(lines) for p in self.procs.values())

    # -- teardown --

    def _cgroup_dirs(self):
        """Every cgroup directory of the node, children before parents."""
        out = []
        for root in {h + self.kubelet_cgroup for h in _cgroup_hierarchies()} | {self.cgroup}:
            for d, _, _ in os.walk(root):
                out.append(d)
        return sorted(out, key=lambda d: -d.count("/"))

    def _kill_node_processes(self):
        """SIGKILL what runs in the node's cgroups (containers, pause, execs) and in its
        mount namespace (shims, containerd, the kubelet, the holder); True once none is
        left."""
        victims = set()
        for d in self._cgroup_dirs():
            try:
                victims.update(int(p) for p in pathlib.Path(d, "cgroup.procs").read_text()
                               .split())
            except OSError:
                pass
        sock = str(self.socket)
        for pid in _pids():
            if (self.mnt_ns and _ns_inode(pid) == self.mnt_ns) or sock in _cmdline(pid):
                victims.add(pid)
        victims.discard(os.getpid())
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return not victims

    def _remove_agent_state(self):
        if self.agentctl and os.path.isdir(self.bpf_root):
            # The product's own teardown: tcx links, recorded legacy tc filters, maps.
            _run(self.agentctl, "--bpf-root", self.bpf_root, "--state-dir", self.state_dir,
                 "cleanup", "--force", check=False, timeout=30)
        if os.path.isdir(self.bpf_root):
            shutil.rmtree(self.bpf_root, ignore_errors=True)   # unpinning detaches links

    def close(self):
        """Stop and remove everything the node made; safe to call again."""
        if self._closed:
            return
        self._closed = True
        if "kubelet" in self.procs:
            self.procs["kubelet"].stop()
        if "containerd" in self.procs and self.procs["containerd"].alive():
            # Containers first, so containerd unmounts their root filesystems itself.
            for d in self._cgroup_dirs():
                self._kill_cgroup(d)
            for cid in self.ctr("tasks", "list", "--quiet", check=False,
                                timeout=20).stdout.split():
                self.ctr("tasks", "delete", "--force", cid, check=False, timeout=20)
        if "containerd" in self.procs:
            self.procs["containerd"].stop()
        wait_for(self._kill_node_processes, 20, interval=0.1,
                 what=f"node {self.name}'s processes gone")
        if self.holder is not None:
            self.holder.wait()
        for d in self._cgroup_dirs():
            try:
                os.rmdir(d)
            except OSError:
                pass
        self._remove_agent_state()
        _run("ip", "link", "del", self.device, check=False)
        _run("ip", "netns", "del", self.peer_netns, check=False)
        for d in self.created_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self._delete_api_objects()
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self._lock:
            self._lock.close()

    @staticmethod
    def _kill_cgroup(d):
        try:
            pids = pathlib.Path(d, "cgroup.procs").read_text().split()
        except OSError:
            return
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _delete_api_objects(self):
        if self.api is None:
            return
        try:
            c = self.api.client()
            for path in reversed(self.api_objects):
                c.request("DELETE", path, check=False)
        except OSError:
            pass                # the apiserver is gone already: so are the objects

    def leftovers(self):
        """What of the node is still on the machine (empty after close())."""
        out = []
        marks = (str(self.workdir), f"kn-{self.id}", self.device)
        out += [f"mount {m}" for m in _mount_points() if any(k in m for k in marks)]
        for pid in _pids():
            if pid == os.getpid():
                continue
            cmd = _cmdline(pid)
            if any(k in cmd for k in marks + (self.name,)) or (
                    self.mnt_ns and _ns_inode(pid) == self.mnt_ns):
                out.append(f"process {pid}: {cmd[:120]}")
        if os.path.exists(f"/sys/class/net/{self.device}"):
            out.append(f"link {self.device}")
        if os.path.exists(f"/var/run/netns/{self.peer_netns}"):
            out.append(f"netns {self.peer_netns}")
        paths = [self.workdir, self.bpf_root, self.state_dir, *self.created_dirs,
                 *self._cgroup_dirs()]
        out += [f"path {p}" for p in paths if os.path.exists(p)]
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

