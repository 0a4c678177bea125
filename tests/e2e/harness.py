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
    """axon-agent as a subprocess with its own bpffs root, cgroup and socket."""

    def __init__(self, lab, apiserver, extra=()):
        self.lab = lab
        self.apiserver = apiserver
        self.extra = list(extra)
        self.kubeconfig = apiserver.write_kubeconfig(pathlib.Path(lab.run_dir) / "kubeconfig")
        self.socket = os.path.join(lab.run_dir, "agent.sock")
        self.log_path = pathlib.Path(lab.run_dir) / "agent.log"
        self.proc = None

    def start(self, wait=True):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [str(AGENT), "--kubeconfig", self.kubeconfig, "--bpf-root", self.lab.bpf_root,
             "--cgroup-root", self.lab.cgroup_root, "--socket", self.socket] + self.extra,
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
        r = subprocess.run([str(AGENTCTL), "--bpf-root", self.lab.bpf_root,
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
