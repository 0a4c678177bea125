"""Driving Axon in a lab node: the agent process, agentctl, pod servers and clients.

Shared by the end-to-end tests and the demo.
"""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))

from netlab import wait_for  # noqa: E402

OUT = pathlib.Path(os.environ.get("OUT", REPO / ".output"))
if not OUT.is_absolute():
    OUT = REPO / OUT
AGENT = OUT / "axon-agent"
AGENTCTL = OUT / "agentctl"
PODTOOL = REPO / "tests" / "e2e" / "podtool.py"
PY = "/usr/bin/python3"


class Agent:
    """axon-agent inside a node's network namespace, with the node's own bpffs root,
    cgroup, socket and state directory.

    node: a netlab Node (default: the lab's first node). The agent finds its devices
    and attaches tc programs in the namespace it runs in, so it always runs in the
    node's; the test apiserver listens there too (127.0.0.1, same port), so the
    kubeconfig's URL works unchanged. A node with a native device (a lab built with
    nodes=[...]) also gets --node-name, --devices and --state-dir; `extra` flags go last.
    kubeconfig: one of the test's own (e.g. with a ServiceAccount's token) instead of one
    with the apiserver's admin token.
    """

    def __init__(self, lab, apiserver, extra=(), node=None, kubeconfig=None):
        self.lab = lab
        self.node = node or lab.default_node
        self.apiserver = apiserver
        self.extra = list(extra)
        apiserver.listen_in(self.node.netns)
        run_dir = pathlib.Path(self.node.run_dir)
        self.kubeconfig = str(kubeconfig or apiserver.write_kubeconfig(run_dir / "kubeconfig"))
        self.socket = self.node.socket
        self.bpf_root = self.node.bpf_root
        self.log_path = run_dir / "agent.log"
        self.proc = None

    def argv(self):
        node = self.node
        argv = [str(AGENT), "--kubeconfig", self.kubeconfig, "--bpf-root", node.bpf_root,
                "--cgroup-root", node.cgroup_root, "--socket", self.socket]
        if node.native:
            argv += ["--node-name", node.name, "--devices", node.native,
                     "--state-dir", node.state_dir]
        return argv + self.extra

    def start(self, wait=True):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{self.node.netns}"] + self.argv(),
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.lab.procs.append(self.proc)
        if wait:
            self.wait_synced()
        return self

    def wait_synced(self, timeout=15):
        def synced():
            if self.proc.poll() is not None:
                return "exited"
            st = self.status()
            return st if all(w["synced"] for w in st["kubernetes"]["watches"]) else None
        st = wait_for(synced, timeout, what="agent synced")
        # An agent that exits (a bad flag, a failed load) fails at once, with its log.
        assert st != "exited", f"agent exited ({self.proc.returncode}):\n{self.log_tail()}"
        return st

    def ctl(self, *args, check=True):
        # In the node's namespace: cleanup removes legacy tc filters over netlink there.
        state = ["--state-dir", self.node.state_dir] if self.node.native else []
        r = subprocess.run(["nsenter", f"--net=/var/run/netns/{self.node.netns}",
                            str(AGENTCTL), "--bpf-root", self.bpf_root,
                            "--socket", self.socket] + state + list(args),
                           capture_output=True, text=True, timeout=30)
        # status exits 1 when a module is not ok: an answer (the document says which),
        # not a failure of agentctl.
        ok = (0, 1) if "status" in args else (0,)
        if check and r.returncode not in ok:
            raise AssertionError(f"agentctl {' '.join(args)} failed: {r.stderr}{r.stdout}")
        return r

    def ctl_json(self, *args):
        return json.loads(self.ctl("-o", "json", *args).stdout)

    def status(self):
        return self.ctl_json("status")

    def lb_frontends(self):
        """{"ip:port/PROTO": sorted backend "ip:port" list} from the pinned maps (the
        external scope: what clients from elsewhere get)."""
        out = {}
        for fe in self.ctl_json("bpf", "lb", "list"):
            if fe.get("scope") == "internal":
                continue
            out[fe["frontend"]] = sorted(f"{b['address']}:{b['port']}"
                                         for b in fe.get("backends", []))
        return out

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=40):
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-n:])
        except OSError:
            return ""


class FakeAgent:
    """A unix socket standing in for the agent: every request gets the one document
    given (agentctl's rendering and exit codes, with no agent behind them)."""

    def __init__(self, path, doc):
        self.path = path
        self.doc = json.dumps(doc).encode()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(self.doc)

    def close(self):
        self.sock.close()
        os.unlink(self.path)


def _run(where, argv, in_cgroup, timeout=120):
    """Run argv in a pod (in its cgroup unless in_cgroup=False) or any lab namespace."""
    if hasattr(where, "cgroup"):
        return where.run(argv, timeout=timeout, in_cgroup=in_cgroup)
    return where.run(argv, timeout=timeout)


def serve(pod, tcp_port=8080, udp_port=5353, name=None):
    """Start podtool's server in pod or another lab namespace (e.g. the world), outside
    any test cgroup, like any server. Replies name `name` (default: the pod's name)."""
    name = name or getattr(pod, "name", None) or "world"
    argv = [PY, str(PODTOOL), "serve", name, str(tcp_port), str(udp_port)]
    if hasattr(pod, "cgroup"):
        p = pod.spawn(argv, in_cgroup=False, stdout=subprocess.PIPE)
    else:
        p = pod.spawn(argv, stdout=subprocess.PIPE)
    line = p.stdout.readline().decode().strip()
    assert line == "ready", f"server in {name} did not start"
    return p


def tcp(pod, ip, port, count=1, in_cgroup=True, timeout=3, sport=None):
    """Connect count times; sport: every time from that source port (podtool --sport)."""
    argv = [PY, str(PODTOOL), "tcp", ip, str(port), str(count), "--timeout", str(timeout)]
    if sport:
        argv += ["--sport", str(sport)]
    r = _run(pod, argv, in_cgroup)
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def udp(pod, ip, port, count=1, connected=False, in_cgroup=True, timeout=3):
    argv = [PY, str(PODTOOL), "udp", ip, str(port), str(count), "--timeout", str(timeout)]
    if connected:
        argv.append("--connected")
    r = _run(pod, argv, in_cgroup)
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


# -- reading the datapath's state, for the tc datapath tests --------------------------------
#
# Field names are agentctl's JSON (cli/cmd_bpf_ct.c, cmd_bpf_nat.c, cmd_bpf_metrics.c):
# ct/nat entries carry protocol, direction, source, source_port, destination,
# destination_port; metrics entries reason, reason_name, direction_name, packets, bytes.

def select(entries, **want):
    """The entries whose fields equal every keyword given (None matches anything)."""
    return [e for e in entries if all(v is None or e.get(k) == v for k, v in want.items())]


def ct_entries(agent, **want):
    """`agentctl bpf ct list global -o json`, filtered by select()."""
    return select(agent.ctl_json("bpf", "ct", "list", "global"), **want)


def nat_entries(agent, **want):
    return select(agent.ctl_json("bpf", "nat", "list"), **want)


def metric_packets(agent, reason_code):
    """Packets counted under a reason (include/axon/reasons.h), over all directions."""
    return sum(int(e["packets"]) for e in agent.ctl_json("bpf", "metrics", "list")
               if e["reason"] == reason_code)


def tc_filter_programs(ns, dev, direction="ingress"):
    """Names of the BPF programs in legacy tc filters on dev (in namespace ns)."""
    out = ns.exec("tc", "filter", "show", "dev", dev, direction).stdout
    names = []
    for prog_id in re.findall(r"\bid (\d+)", out):
        info = subprocess.run(["bpftool", "-j", "prog", "show", "id", prog_id],
                              capture_output=True, text=True)
        names.append(json.loads(info.stdout)["name"] if info.returncode == 0 else "?")
    return names


def tc_attached(agent, dev, direction="ingress"):
    """A program of Axon's on dev: its pinned tcx link (agent/datapath/tc_attach.h:
    <bpf-root>/links/tc-<ifname>-<dir>) or a legacy filter running one of its programs."""
    if os.path.exists(os.path.join(agent.bpf_root, "links", f"tc-{dev}-{direction}")):
        return True
    return any(n in TC_PROGRAMS for n in tc_filter_programs(agent.node, dev, direction))


TC_PROGRAMS = ("from_container", "to_container", "from_netdev", "to_netdev")


def wait_attached(agent, *devs, timeout=10):
    """Wait until the agent has programs on the ingress of every dev."""
    return wait_for(lambda: all(tc_attached(agent, d) for d in devs), timeout,
                    what=f"tc programs on {', '.join(devs)}")


def reason(name):
    """The number of reason `name` (DROP_NO_LOCAL_BACKEND, ...), read from the one table,
    include/axon/reasons.h, so the tests never restate it."""
    text = (REPO / "include" / "axon" / "reasons.h").read_text()
    m = re.search(rf"^\s*{name}\s*=\s*(\d+)\s*,", text, re.M)
    if not m:
        raise KeyError(name)
    return int(m.group(1))
