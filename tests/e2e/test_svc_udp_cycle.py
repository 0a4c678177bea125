"""UDP traffic survives its server pod being replaced (Kubernetes' e2e "should be able to
preserve UDP traffic when server pod cycles for a ClusterIP/NodePort service").

A client keeps sending from one fixed source port, so every datagram has the same
tuple. When the only backend goes away and another takes its place, the flow's
conntrack entry still names the old backend; the datapath must not keep sending there:
a CT_SERVICE entry whose backend left lb4_backends is given a new backend (tc LB, and
NodePort from the world), and the agent deletes the entries of a deleted backend
(agent/lb/sock_term.h); the socket LB translates each sendto() afresh. Asserted: the
client hears the new pod within 2 seconds of the EndpointSlice change (well under a
second when the machine is not loaded).
"""

import json
import os
import select
import subprocess
import time

import pytest

import k8s
from harness import PY, serve, wait_attached

VIP = "10.96.40.10"
SPORT = 41000
CLIENT = r"""
import json, socket, sys, time
ip, port, sport, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", sport))
s.settimeout(0.2)
end = time.monotonic() + secs
while time.monotonic() < end:
    t = time.monotonic()
    try:
        s.sendto(b"hi", (ip, port))
        data, _ = s.recvfrom(4096)
        print(json.dumps({"t": t, "pod": json.loads(data)["pod"]}), flush=True)
    except socket.timeout:
        print(json.dumps({"t": t, "pod": None}), flush=True)
    except OSError as e:
        print(json.dumps({"t": t, "errno": e.errno}), flush=True)
    time.sleep(0.1)
"""


class Lines:
    """A child's stdout, one JSON object per line, read with a deadline."""

    def __init__(self, proc):
        self.proc, self.buf = proc, b""

    def until(self, pred, timeout):
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            while b"\n" in self.buf:
                line, _, self.buf = self.buf.partition(b"\n")
                doc = json.loads(line)
                seen.append(doc)
                if pred(doc):
                    return doc
            left = deadline - time.monotonic()
            assert left > 0, f"not seen within {timeout}s: {seen[-20:]}"
            if select.select([self.proc.stdout], [], [], left)[0]:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, f"client ended: {seen[-20:]}"
                self.buf += chunk


def slice_of(name, ip, node):
    return k8s.endpointslice("default", f"{name}-1", name, [(ip, True, node)],
                             [("dns", 5353, "UDP")])


@pytest.mark.kpr("udp-conntrack-flushed")
# The real apiserver serves the NodePort case only: it holds the ClusterIP one too.
@pytest.mark.parametrize("apiserver,path", [("test", "tc"), ("test", "socket"),
                                            ("test", "nodeport"), ("real", "nodeport")],
                         indirect=["apiserver"])
def test_udp_client_on_a_fixed_port_follows_the_replaced_pod(lab1, api, start_agent, path):
    a = lab1.node("a")
    b1, b2, client = a.add_pod("b1"), a.add_pod("b2"), a.add_pod("client")
    server = serve(b1)
    port = {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}
    if path == "nodeport":
        port["nodePort"] = 30253
    api.create(k8s.service("default", "cycle", [port], cluster_ip=VIP,
                           type="NodePort" if path == "nodeport" else "ClusterIP"))
    api.create(slice_of("cycle", b1.ip, a.name))
    lab1.publish(api)
    flags = ["--bpf-lb-sock=false"] if path == "tc" else []
    agent = start_agent(a, *flags)
    wait_attached(agent, a.native, *[p.host_if for p in a.pods.values()])

    argv = [PY, "-c", CLIENT, VIP, "53", str(SPORT), "30"]
    if path == "nodeport":
        proc = lab1.world.spawn([PY, "-c", CLIENT, a.ip, "30253", str(SPORT), "30"],
                                stdout=subprocess.PIPE)
    else:
        proc = client.spawn(argv, in_cgroup=(path == "socket"),
                            stdout=subprocess.PIPE)
    try:
        out = Lines(proc)
        out.until(lambda d: d.get("pod") == "b1", 10)

        # The pod cycles: its server dies, a new pod serves, the slice names only it.
        server.kill()
        server.wait()
        serve(b2)
        cur = api.get("endpointslices", "default", "cycle-1")
        new = slice_of("cycle", b2.ip, a.name)
        new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        t_switch = time.monotonic()
        api.update(new)
        got = out.until(lambda d: d.get("pod") == "b2", 10)
        assert got["t"] - t_switch < 2, got
        # And it stays there: the next answers all come from the new pod.
        for _ in range(5):
            nxt = out.until(lambda d: "pod" in d, 3)
            assert nxt["pod"] == "b2", nxt
    finally:
        proc.kill()
        proc.wait()
