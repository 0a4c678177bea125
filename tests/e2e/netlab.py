"""Kubernetes nodes built from network namespaces, for end-to-end tests and benchmarks.

Two shapes:

  NetLab(tag)                     one node namespace, no native device: pods on
                                  10.244.0.0/24 (the socket-LB tests' node)
  NetLab(tag, nodes=["a"])        node A with a native device on a "world" network
  NetLab(tag, nodes=["a", "b"])   nodes A and B on that network

A node is a network namespace of its own (nothing touches the machine's real
devices or routes). Pods are namespaces behind a veth whose host end is in the
node, with a /32 route per pod and the gateway 169.254.1.1 owned by the node
(on its lo, with the node's router IP), the way CNI plugins wire pods; each pod
has its own cgroup under its node's cgroup root, where an agent attaches its
socket hooks.

With nodes=[...], the "world" namespace is the nodes' L2 network and what lies
beyond it: a bridge br0 holding 192.168.50.1/24, one veth per node whose node
end is the node's native device ext0 (node A 192.168.50.10, B .11, ...), the
"outside" address 203.0.113.1/32 on its lo, and routes back to each node's pod
CIDR via that node (so kernel routing works without Axon; masquerade tests can
remove them with world_pod_routes(False)). Each node routes by default via
192.168.50.1 and gets pod CIDR 10.244.<n>.0/24 (A: 10.244.1.0/24, B: 10.244.2.0/24).
Nodes reach each other's pods only through routes to the other pod CIDRs: the
agents install them (--auto-direct-node-routes), or add_kernel_node_routes()
for a run without Axon.

IPv6 is disabled in every lab namespace, so device counters only move for the
traffic a test sends. Processes enter namespaces with `nsenter --net` only (not
`ip netns exec`, which remounts /sys and would hide bpffs and cgroupfs).

Everything created is recorded and torn down by close(), also after a failure;
names carry a per-lab prefix so parallel or leftover runs never collide.
"""

import json
import os
import shutil
import signal
import subprocess
import uuid

import k8s
from poll import wait_for  # noqa: F401  (the tests' one wait, offered here too)

CGROUP2 = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
BPFFS = "/sys/fs/bpf"
WORLD_IP = "192.168.50.1"
WORLD_NET = "192.168.50.0/24"
OUTSIDE_IP = "203.0.113.1"
GATEWAY_IP = "169.254.1.1"


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def ensure_bpffs():
    """Mount bpffs at /sys/fs/bpf if nothing is mounted there yet."""
    with open("/proc/mounts") as f:
        if any(line.split()[1] == BPFFS and line.split()[2] == "bpf" for line in f):
            return
    os.makedirs(BPFFS, exist_ok=True)
    sh("mount", "-t", "bpf", "bpf", BPFFS)


class Netns:
    """A network namespace of the lab: run, spawn, read device counters."""

    def __init__(self, lab, netns):
        self.lab, self.netns = lab, netns

    def exec(self, *argv, check=True):
        """Run argv in the namespace to completion (a short command)."""
        return sh("nsenter", f"--net=/var/run/netns/{self.netns}", *argv, check=check)

    def spawn(self, argv, cgroup=None, **kw):
        return self.lab.spawn(argv, netns=self.netns, cgroup=cgroup, **kw)

    def run(self, argv, timeout=30, cgroup=None):
        """Run argv (a client) in the namespace; returns a CompletedProcess."""
        p = self.spawn(argv, cgroup=cgroup, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        return subprocess.CompletedProcess(argv, p.returncode, out.decode(), err.decode())

    def link_stats(self, dev):
        """{"rx_packets", "rx_bytes", "tx_packets", "tx_bytes"} of dev, from the kernel."""
        link = json.loads(self.exec("ip", "-j", "-s", "link", "show", "dev", dev).stdout)[0]
        s = link["stats64"]
        return {"rx_packets": s["rx"]["packets"], "rx_bytes": s["rx"]["bytes"],
                "tx_packets": s["tx"]["packets"], "tx_bytes": s["tx"]["bytes"]}

    def links(self):
        return [link["ifname"] for link in json.loads(self.exec("ip", "-j", "link").stdout)]

    def routes(self, *selector):
        return json.loads(self.exec("ip", "-j", "route", "show", *selector).stdout)


class Pod(Netns):
    def __init__(self, lab, node, name, ip, host_if, identity):
        super().__init__(lab, f"{lab.prefix}-{name}")
        self.node, self.name, self.ip, self.host_if = node, name, ip, host_if
        self.identity = identity
        self.cgroup = os.path.join(node.cgroup_root, name)

    def spawn(self, argv, in_cgroup=True, **kw):
        """Start argv inside the pod (and its cgroup). Returns the Popen."""
        return self.lab.spawn(argv, netns=self.netns,
                              cgroup=self.cgroup if in_cgroup else None, **kw)

    def run(self, argv, timeout=30, in_cgroup=True):
        """Run argv to completion inside the pod; returns CompletedProcess."""
        p = self.spawn(argv, in_cgroup=in_cgroup, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        return subprocess.CompletedProcess(argv, p.returncode, out.decode(), err.decode())

    def host_stats(self):
        """Counters of the pod's host-side device, in the node."""
        return self.node.link_stats(self.host_if)


class Node(Netns):
    """A node namespace: its pods, its agent's paths, and (with a world) its native device."""

    def __init__(self, lab, short, netns, pod_net, ip=None, suffix=""):
        super().__init__(lab, netns)
        self.short = short                      # "a"
        self.name = f"node-{short}" if ip else "node"   # the Node object's name
        self.ip = ip                            # InternalIP on the native device
        self.native = "ext0" if ip else None    # --devices
        self.pod_net = pod_net                  # "10.244.1"
        self.pod_cidr = f"{pod_net}.0/24"
        self.router_ip = f"{pod_net}.1"
        self.pods = {}
        self._next_ip = 10
        tag_id = f"{lab.tag}-{lab.id}{suffix}"
        self.cgroup_root = os.path.join(CGROUP2, f"axon-{tag_id}")
        self.bpf_root = os.path.join(BPFFS, f"axon-{tag_id}")
        self.run_dir = f"/run/axon-{tag_id}"
        self.socket = os.path.join(self.run_dir, "agent.sock")
        self.state_dir = os.path.join(self.run_dir, "state")

    def setup(self):
        os.makedirs(self.run_dir, exist_ok=True)
        os.makedirs(self.state_dir, exist_ok=True)
        os.makedirs(self.cgroup_root, exist_ok=True)
        self.lab._add_netns(self.netns)
        self.exec("ip", "link", "set", "lo", "up")
        self.exec("sysctl", "-qw", "net.ipv4.ip_forward=1")
        # The node owns the pods' gateway address, so it answers their ARP
        # for it (arp_ignore=0 answers for any local address), and a router
        # IP it sources its own ARP requests to pods from (Cilium keeps both
        # on cilium_host; this kernel has no dummy driver, so lo holds them).
        self.exec("ip", "addr", "add", f"{self.router_ip}/32", "dev", "lo")
        self.exec("ip", "addr", "add", f"{GATEWAY_IP}/32", "dev", "lo")

    def add_pod(self, name, ip=None, identity=None):
        """A pod namespace with eth0 = ip/32, routed through this node."""
        lab = self.lab
        if name in lab.pods:
            raise ValueError(f"pod {name} exists")
        if ip is None:
            ip = f"{self.pod_net}.{self._next_ip}"
            self._next_ip += 1
        host_if = f"{lab.prefix[-8:]}{lab._next_if:02d}h"
        lab._next_if += 1
        identity = identity or 10000 + len(lab.pods)
        pod = Pod(lab, self, name, ip, host_if, identity)
        lab._add_netns(pod.netns)
        sh("ip", "link", "add", host_if, "netns", self.netns, "type", "veth",
           "peer", "name", "eth0", "netns", pod.netns)
        # Host end: up, with the /32 route to the pod a CNI plugin installs.
        self.exec("ip", "link", "set", host_if, "up")
        self.exec("ip", "route", "add", f"{ip}/32", "dev", host_if)
        pod.exec("ip", "link", "set", "lo", "up")
        pod.exec("ip", "addr", "add", f"{ip}/32", "dev", "eth0")
        pod.exec("ip", "link", "set", "eth0", "up")
        pod.exec("ip", "route", "add", GATEWAY_IP, "dev", "eth0", "scope", "link")
        pod.exec("ip", "route", "add", "default", "via", GATEWAY_IP, "dev", "eth0")
        self.pods[name] = pod
        lab.pods[name] = pod
        return pod

    def k8s_node(self):
        """This node's Node object (InternalIP, podCIDR)."""
        return k8s.node(self.name, self.ip, self.pod_cidr)


class NetLab:
    ROUTER_IP = "10.244.0.1"
    GATEWAY_IP = GATEWAY_IP

    def __init__(self, tag="e2e", nodes=None):
        # Short: interface names are limited to 15 characters.
        self.tag = tag
        self.id = uuid.uuid4().hex[:6]
        self.prefix = f"ax{tag[:3]}{self.id}"
        self.pods = {}
        self.procs = []
        self.nodes = []
        self.world = None
        self._netns = []
        self._next_if = 0
        self._world_routes = []
        ensure_bpffs()
        try:
            if nodes:
                self._setup_world(list(nodes))
            else:
                node = Node(self, "node", f"{self.prefix}-node", "10.244.0")
                self.nodes.append(node)
                node.setup()
        except BaseException:
            self.close()
            raise

    # -- the first node under the names the single-node tests use --

    @property
    def default_node(self):
        return self.nodes[0]

    @property
    def node_ns(self):
        return self.nodes[0].netns

    @property
    def cgroup_root(self):
        return self.nodes[0].cgroup_root

    @property
    def bpf_root(self):
        return self.nodes[0].bpf_root

    @property
    def run_dir(self):
        return self.nodes[0].run_dir

    def node(self, short):
        return next(n for n in self.nodes if n.short == short)

    def node_exec(self, *argv, check=True):
        return self.nodes[0].exec(*argv, check=check)

    def add_pod(self, name, ip=None, node=None, identity=None):
        return (node or self.nodes[0]).add_pod(name, ip, identity)

    # -- the world network --

    def _setup_world(self, shorts):
        self.world = Netns(self, f"{self.prefix}-world")
        self._add_netns(self.world.netns)
        w = self.world
        w.exec("ip", "link", "set", "lo", "up")
        w.exec("ip", "addr", "add", f"{OUTSIDE_IP}/32", "dev", "lo")
        w.exec("ip", "link", "add", "br0", "type", "bridge", "stp_state", "0",
               "forward_delay", "0")
        w.exec("ip", "addr", "add", f"{WORLD_IP}/24", "dev", "br0")
        w.exec("ip", "link", "set", "br0", "up")
        for i, short in enumerate(shorts):
            ip = f"192.168.50.{10 + i}"
            node = Node(self, short, f"{self.prefix}-{short}", f"10.244.{i + 1}", ip,
                        suffix=f"-{short}")
            self.nodes.append(node)
            node.setup()
            port = f"{self.prefix[-8:]}w{i}"
            sh("ip", "link", "add", node.native, "netns", node.netns, "type", "veth",
               "peer", "name", port, "netns", w.netns)
            w.exec("ip", "link", "set", port, "master", "br0", "up")
            node.exec("ip", "addr", "add", f"{ip}/24", "dev", node.native)
            node.exec("ip", "link", "set", node.native, "up")
            node.exec("ip", "route", "add", "default", "via", WORLD_IP, "dev", node.native)
        self.world_pod_routes(True)

    def world_pod_routes(self, on):
        """Routes in the world back to each node's pod CIDR (on: kernel routing answers
        pods directly; off: only masqueraded traffic can be answered)."""
        for node in self.nodes:
            if on:
                self.world.exec("ip", "route", "replace", node.pod_cidr, "via", node.ip)
            else:
                self.world.exec("ip", "route", "del", node.pod_cidr, check=False)

    def add_kernel_node_routes(self):
        """What --auto-direct-node-routes does, by hand, for runs without Axon."""
        for node in self.nodes:
            for other in self.nodes:
                if other is not node:
                    node.exec("ip", "route", "replace", other.pod_cidr, "via", other.ip,
                              "dev", node.native)

    # -- Kubernetes objects describing the lab --

    def k8s_objects(self):
        """Node objects for the nodes with an address, and a CiliumEndpointSlice per pod
        (identity, IPv4, networking.node = its node's IP)."""
        objs = [n.k8s_node() for n in self.nodes if n.ip]
        for pod in self.pods.values():
            objs.append(k8s.ciliumendpointslice(
                f"ces-{pod.name}", "default",
                [(pod.name, pod.ip, pod.identity, pod.node.ip or pod.node.router_ip)]))
        return objs

    def publish(self, api):
        """Create (or replace) k8s_objects() in the apiserver."""
        for obj in self.k8s_objects():
            api.apply(obj)

    # -- namespaces and processes --

    def _add_netns(self, name):
        sh("ip", "netns", "add", name)
        self._netns.append(name)
        # No IPv6: no router solicitations or MLD reports moving the counters.
        sh("nsenter", f"--net=/var/run/netns/{name}", "sysctl", "-qw",
           "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
           check=False)

    def spawn(self, argv, netns=None, cgroup=None, **kw):
        """Start a process in netns (default: the first node) and optionally a cgroup.

        The process moves itself into the cgroup before exec, so it is in it
        from its first socket on.
        """
        netns = netns or self.node_ns
        prefix = []
        if cgroup:
            os.makedirs(cgroup, exist_ok=True)
            prefix = ["sh", "-c", f'echo $$ > "{cgroup}/cgroup.procs" && exec "$@"', "sh"]
        full = prefix + ["nsenter", f"--net=/var/run/netns/{netns}"] + list(argv)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(full, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    # -- teardown --

    def resources(self):
        """What this lab may have left on the machine: netns names, cgroup, bpffs and
        run directories (existing ones only)."""
        ns = set(sh("ip", "netns", "list").stdout.split())
        out = [n for n in self._netns if n in ns]
        for node in self.nodes:
            out += [p for p in (node.cgroup_root, node.bpf_root, node.run_dir)
                    if os.path.exists(p)]
        return out

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for node in self.nodes:
            self._remove_node_dirs(node)
        for ns in reversed(self._netns):
            sh("ip", "netns", "del", ns, check=False)

    @staticmethod
    def _remove_node_dirs(node):
        # cgroups: children first; a cgroup with live processes cannot go.
        for root, _, _ in sorted(os.walk(node.cgroup_root, topdown=False),
                                 key=lambda t: -t[0].count("/")):
            try:
                os.rmdir(root)
            except OSError:
                pass
        if os.path.isdir(node.bpf_root):
            # Unpinning links detaches the programs; then the maps go.
            shutil.rmtree(node.bpf_root, ignore_errors=True)
            # Should anything have mounted a bpffs here, it goes too.
            if os.path.ismount(node.bpf_root):
                sh("umount", "-l", node.bpf_root, check=False)
            try:
                os.rmdir(node.bpf_root)
            except OSError:
                pass
        shutil.rmtree(node.run_dir, ignore_errors=True)
