"""A Kubernetes node built from network namespaces, for end-to-end tests.

The node is a network namespace of its own (so nothing touches the machine's
real devices or routes); pods are namespaces behind a veth whose host end is
in the node, with a /32 route per pod and the gateway 169.254.1.1 owned by
the node, the way CNI plugins wire pods. Client pods each get their own cgroup under a test
cgroup root, which is where the agent attaches its socket hooks.

Processes enter namespaces with `nsenter --net` only (not `ip netns exec`,
which remounts /sys and would hide bpffs and cgroupfs from the agent).

Everything created is recorded and torn down by close(), also after a
failure; names carry a per-lab prefix so parallel or leftover runs never
collide.
"""

import os
import shutil
import signal
import subprocess
import time
import uuid

CGROUP2 = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
BPFFS = "/sys/fs/bpf"


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def ensure_bpffs():
    """Mount bpffs at /sys/fs/bpf if nothing is mounted there yet."""
    with open("/proc/mounts") as f:
        if any(line.split()[1] == BPFFS and line.split()[2] == "bpf" for line in f):
            return
    os.makedirs(BPFFS, exist_ok=True)
    sh("mount", "-t", "bpf", "bpf", BPFFS)


class Pod:
    def __init__(self, lab, name, ip, host_if):
        self.lab, self.name, self.ip, self.host_if = lab, name, ip, host_if
        self.netns = f"{lab.prefix}-{name}"
        self.cgroup = os.path.join(lab.cgroup_root, name)

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


class NetLab:
    ROUTER_IP = "10.244.0.1"
    GATEWAY_IP = "169.254.1.1"

    def __init__(self, tag="e2e"):
        # Short: interface names are limited to 15 characters.
        self.id = uuid.uuid4().hex[:6]
        self.prefix = f"ax{tag[:3]}{self.id}"
        self.node_ns = f"{self.prefix}-node"
        self.cgroup_root = os.path.join(CGROUP2, f"axon-{tag}-{self.id}")
        self.bpf_root = os.path.join(BPFFS, f"axon-{tag}-{self.id}")
        self.run_dir = f"/run/axon-{tag}-{self.id}"
        self.pods = {}
        self.procs = []
        self._netns = []
        self._next_ip = 10
        ensure_bpffs()
        try:
            self._setup_node()
        except BaseException:
            self.close()
            raise

    def _setup_node(self):
        os.makedirs(self.run_dir, exist_ok=True)
        os.makedirs(self.cgroup_root, exist_ok=True)
        self._add_netns(self.node_ns)
        self.node_exec("ip", "link", "set", "lo", "up")
        self.node_exec("sysctl", "-qw", "net.ipv4.ip_forward=1")
        # The node owns the pods' gateway address, so it answers their ARP
        # for it (arp_ignore=0 answers for any local address), and a router
        # IP it sources its own ARP requests to pods from (Cilium keeps both
        # on cilium_host; this kernel has no dummy driver, so lo holds them).
        self.node_exec("ip", "addr", "add", f"{self.ROUTER_IP}/32", "dev", "lo")
        self.node_exec("ip", "addr", "add", f"{self.GATEWAY_IP}/32", "dev", "lo")

    # -- namespaces and processes --

    def _add_netns(self, name):
        sh("ip", "netns", "add", name)
        self._netns.append(name)

    def node_exec(self, *argv, check=True):
        return sh("nsenter", f"--net=/var/run/netns/{self.node_ns}", *argv, check=check)

    def spawn(self, argv, netns=None, cgroup=None, **kw):
        """Start a process in netns (default: the node) and optionally a cgroup.

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

    # -- pods --

    def add_pod(self, name, ip=None):
        """A pod namespace with eth0 = ip/32, routed through the node."""
        if ip is None:
            ip = f"10.244.0.{self._next_ip}"
            self._next_ip += 1
        host_if = f"{self.prefix[-8:]}{len(self.pods):02d}h"
        pod = Pod(self, name, ip, host_if)
        self._add_netns(pod.netns)
        pexec = ["nsenter", f"--net=/var/run/netns/{pod.netns}"]
        sh("ip", "link", "add", host_if, "netns", self.node_ns, "type", "veth",
           "peer", "name", "eth0", "netns", pod.netns)
        # Host end: up, with the /32 route to the pod a CNI plugin installs.
        self.node_exec("ip", "link", "set", host_if, "up")
        self.node_exec("ip", "route", "add", f"{ip}/32", "dev", host_if)
        sh(*pexec, "ip", "link", "set", "lo", "up")
        sh(*pexec, "ip", "addr", "add", f"{ip}/32", "dev", "eth0")
        sh(*pexec, "ip", "link", "set", "eth0", "up")
        sh(*pexec, "ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
        sh(*pexec, "ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
        self.pods[name] = pod
        return pod

    # -- teardown --

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
        # cgroups: children first; a cgroup with live processes cannot go.
        for root, dirs, _ in sorted(os.walk(self.cgroup_root, topdown=False),
                                    key=lambda t: -t[0].count("/")):
            try:
                os.rmdir(root)
            except OSError:
                pass
        if os.path.isdir(self.bpf_root):
            # Unpinning links detaches the programs; then the maps go.
            shutil.rmtree(self.bpf_root, ignore_errors=True)
            # Should anything have mounted a bpffs here, it goes too.
            if os.path.ismount(self.bpf_root):
                sh("umount", "-l", self.bpf_root, check=False)
            try:
                os.rmdir(self.bpf_root)
            except OSError:
                pass
        for ns in reversed(self._netns):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    """Poll pred() until it returns a truthy value; return it or raise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # the thing polled may not exist yet
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
