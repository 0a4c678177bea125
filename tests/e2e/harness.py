"""Driving Axon in a lab node: the agent process, agentctl, pod servers and clients.

Shared by the end-to-end tests and the demo.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys

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
    """

    def __init__(self, lab, apiserver, extra=(), node=None):
        self.lab = lab
        self.node = node or lab.default_node
        self.apiserver = apiserver
        self.extra = list(extra)
        apiserver.listen_in(self.node.netns)
        run_dir = pathlib.Path(self.node.run_dir)
        self.kubeconfig = apiserver.write_kubeconfig(run_dir / "kubeconfig")
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
            assert self.proc.poll() is None, f"agent exited:\n{self.log_tail()}"
            st = self.status()
            return st if all(w["synced"] for w in st["kubernetes"]["watches"]) else None
        return wait_for(synced, timeout, what="agent synced")

    def ctl(self, *args, check=True):
        # In the node's namespace: cleanup removes legacy tc filters over netlink there.
        r = subprocess.run(["nsenter", f"--net=/var/run/netns/{self.node.netns}",
                            str(AGENTCTL), "--bpf-root", self.bpf_root,
                            "--socket", self.socket] + list(args),
                           capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise AssertionError(f"agentctl {' '.join(args)} failed: {r.stderr}{r.stdout}")
        return r

    def ctl_json(self, *args):
        return json.loads(self.ctl("-o", "json", *args).stdout)

    def status(self):
        return self.ctl_json("status")

    def lb_frontends(self):
        """{"ip:port/PROTO": sorted backend "ip:port" list} from the pinned maps."""
        out = {}
        for fe in self.ctl_json("bpf", "lb", "list"):
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


def serve(pod, tcp_port=8080, udp_port=5353):
    """Start podtool's server in pod (outside the test cgroup, like any pod)."""
    p = pod.spawn([PY, str(PODTOOL), "serve", pod.name, str(tcp_port), str(udp_port)],
                  in_cgroup=False, stdout=subprocess.PIPE)
    line = p.stdout.readline().decode().strip()
    assert line == "ready", f"server in {pod.name} did not start"
    return p


def tcp(pod, ip, port, count=1):
    r = pod.run([PY, str(PODTOOL), "tcp", ip, str(port), str(count)], timeout=60)
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def udp(pod, ip, port, count=1, connected=False):
    argv = [PY, str(PODTOOL), "udp", ip, str(port), str(count)]
    if connected:
        argv.append("--connected")
    r = pod.run(argv, timeout=60)
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
