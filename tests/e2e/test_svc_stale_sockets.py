"""Sockets and flows to a backend that is gone (kube-proxy clears them; Cilium's "socket LB
termination"), and invalid-state TCP.

A client in a pod, in the node's hooked cgroup, holds connected sockets to two Services
through the socket LB; each Service has one backend. The first Service's EndpointSlice
then names another pod: its old backend is deleted from the load balancer, and the agent
destroys the sockets connected to it (agent/lb/sock_term.h). Asserted: the client's
blocked recv() on that socket fails with ECONNABORTED within a couple of seconds, the
socket to the other Service still talks to its backend, a new connect() reaches the new
backend, and status and metrics count the socket.

Termination is per (Service frontend, backend): with both Services over the same pod, the
pod leaving the first Service (its EndpointSlice, or the Service deleted) destroys the
socket through the first Service only; the one through the second keeps exchanging data.

Invalid-state TCP: a bare ACK with no flow behind it, sent to a NodePort from the world
and to a ClusterIP from a pod on the tc path, is dropped with DROP_SVC_INVALID_STATE and
never reaches the backend (a raw socket sends it; an AF_PACKET socket in the backend pod
watches for it).
"""

import json
import os
import select
import subprocess
import time

import pytest

import k8s
from harness import PY, ct_entries, metric_packets, reason, serve, tcp, udp, wait_attached
from metrics import metrics_flag, scrape, value
from netlab import wait_for

VIP_A, VIP_B = "10.96.41.10", "10.96.41.20"

# Keeps every connection open and answers each message with the pod's name, over TCP
# (port 8080) and UDP (port 5353). argv: name.
KEEP_SERVER = r"""
import json, socket, sys, threading
name = sys.argv[1]
reply = (json.dumps({"pod": name}) + "\n").encode()
def conn(c):
    while c.recv(4096):
        c.sendall(reply)
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080)); s.listen(16)
    while True:
        threading.Thread(target=conn, args=(s.accept()[0],), daemon=True).start()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 5353))
    while True:
        _, peer = s.recvfrom(4096)
        s.sendto(reply, peer)
threading.Thread(target=tcp, daemon=True).start()
threading.Thread(target=udp, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

# Connects one socket per target ("ip:port"), says hello on each and prints who answered,
# then a thread per socket blocks in recv() and prints what it gets: a reply, EOF or the
# errno. Each line on stdin, a socket's index, sends on that socket again.
# argv: tcp|udp target...
CLIENT = r"""
import json, socket, sys, threading, time
proto, targets = sys.argv[1], sys.argv[2:]
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
def out(**d):
    d["t"] = time.monotonic()
    print(json.dumps(d), flush=True)
socks = []
for i, t in enumerate(targets):
    ip, port = t.split(":")
    s = socket.socket(socket.AF_INET, kind)
    s.connect((ip, int(port)))
    s.send(b"hello")
    out(i=i, pod=json.loads(s.recv(4096))["pod"])
    socks.append(s)
def reader(i, s):
    while True:
        try:
            data = s.recv(4096)
        except OSError as e:
            out(i=i, errno=e.errno)
            return
        if not data:
            out(i=i, eof=True)
            return
        out(i=i, pod=json.loads(data)["pod"])
for i, s in enumerate(socks):
    threading.Thread(target=reader, args=(i, s), daemon=True).start()
for line in sys.stdin:
    i = int(line)
    try:
        socks[i].send(b"again")
    except OSError as e:
        out(i=i, send_errno=e.errno)
"""


class Lines:
    """A child's stdout, one JSON object per line, read with a deadline."""

    def __init__(self, proc):
        self.proc, self.buf, self.seen = proc, b"", []

    def until(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, _, self.buf = self.buf.partition(b"\n")
                doc = json.loads(line)
                self.seen.append(doc)
                if pred(doc):
                    return doc
            left = deadline - time.monotonic()
            assert left > 0, f"not seen within {timeout}s: {self.seen[-20:]}"
            if select.select([self.proc.stdout], [], [], left)[0]:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, f"client ended: {self.seen[-20:]}"
                self.buf += chunk

    def quiet(self, pred, secs):
        """Nothing matching pred arrives within secs."""
        try:
            doc = self.until(pred, secs)
        except AssertionError:
            return
        raise AssertionError(f"unexpected: {doc}")


def keep_serve(pod):
    p = pod.spawn([PY, "-c", KEEP_SERVER, pod.name], in_cgroup=False, stdout=subprocess.PIPE)
    assert p.stdout.readline().decode().strip() == "ready", f"server in {pod.name}"
    return p


def slice_of(name, ip, node, proto):
    port = ("p", 8080, "TCP") if proto == "tcp" else ("p", 5353, "UDP")
    return k8s.endpointslice("default", f"{name}-1", name, [(ip, True, node)], [port])


def services(api, a, proto, b1, b2):
    port = {"name": "p", "port": 80, "targetPort": 8080, "protocol": "TCP"} \
        if proto == "tcp" else {"name": "p", "port": 53, "targetPort": 5353, "protocol": "UDP"}
    for name, vip, pod in (("gone", VIP_A, b1), ("stays", VIP_B, b2)):
        api.create(k8s.service("default", name, [port], cluster_ip=vip))
        api.create(slice_of(name, pod.ip, a.name, proto))
    return port["port"]


def termination(agent):
    return agent.status()["kube_proxy_replacement"]["socket_lb"]["termination"]


@pytest.mark.parametrize("proto", [
    pytest.param("tcp", marks=pytest.mark.kpr("socket-destroy-tcp")),
    pytest.param("udp", marks=pytest.mark.kpr("socket-destroy-udp")),
])
def test_sockets_to_a_deleted_backend_are_destroyed_others_stay(lab1, api, start_agent,
                                                                 proto):
    a = lab1.node("a")
    b1, b2, b3, client = (a.add_pod(n) for n in ("b1", "b2", "b3", "client"))
    for p in (b1, b2, b3):
        keep_serve(p)
    port = services(api, a, proto, b1, b2)
    lab1.publish(api)
    agent = start_agent(a, metrics_flag())
    assert termination(agent)["enabled"] is True, termination(agent)
    proc = client.spawn([PY, "-c", CLIENT, proto, f"{VIP_A}:{port}", f"{VIP_B}:{port}"],
                        in_cgroup=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        out = Lines(proc)
        out.until(lambda d: d.get("i") == 0 and d.get("pod") == "b1", 10)
        out.until(lambda d: d.get("i") == 1 and d.get("pod") == "b2", 10)

        # Service "gone" moves from b1 to b3: b1 is in no Service any more.
        cur = api.get("endpointslices", "default", "gone-1")
        new = slice_of("gone", b3.ip, a.name, proto)
        new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        t_switch = time.monotonic()
        api.update(new)
        got = out.until(lambda d: d.get("i") == 0 and ("errno" in d or "eof" in d), 10)
        assert got.get("errno") == 103, got          # ECONNABORTED
        assert got["t"] - t_switch < 2, got

        # The socket to the backend that stays is untouched and still answered by it.
        out.quiet(lambda d: d.get("i") == 1 and "pod" not in d, 1)
        proc.stdin.write(b"1\n")
        proc.stdin.flush()
        out.until(lambda d: d.get("i") == 1 and d.get("pod") == "b2", 5)
    finally:
        proc.kill()
        proc.wait()

    # A new socket (the application reconnecting) goes to the new backend.
    again = client.spawn([PY, "-c", CLIENT, proto, f"{VIP_A}:{port}"], in_cgroup=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        Lines(again).until(lambda d: d.get("i") == 0 and d.get("pod") == "b3", 5)
    finally:
        again.kill()
        again.wait()
    term = wait_for(lambda: (lambda t: t if t["sockets_destroyed"] >= 1 else None)(
        termination(agent)), 5, what="termination counted")
    assert term[proto] == 1 and term["sockets_destroyed"] == 1, term
    assert term["failed"] == 0 and "last_error" not in term, term
    assert term["mode"] == "bpf" and term["netns_last_run"] >= 2, term
    text = agent.ctl("status", "--verbose").stdout
    assert "Socket LB Termination:  Enabled (1 sockets)" in text, text
    samples = scrape(agent)
    assert value(samples, "axon_lb_sockets_destroyed_total", proto=proto) == 1
    other = "udp" if proto == "tcp" else "tcp"
    assert value(samples, "axon_lb_sockets_destroyed_total", proto=other) == 0


@pytest.mark.parametrize("change", ["slice", "service-deleted"])
@pytest.mark.parametrize("proto", [
    pytest.param("tcp", marks=pytest.mark.kpr("socket-destroy-tcp")),
    pytest.param("udp", marks=pytest.mark.kpr("socket-destroy-udp")),
])
def test_backend_leaving_one_of_two_services_loses_only_that_services_sockets(
        lab1, api, start_agent, proto, change):
    """Two Services over the same pod (one backend in lb4_backends, two frontends). The pod
    leaves the first Service only ("slice": its EndpointSlice names another pod; or
    "service-deleted": the Service is deleted): the socket connected through it is
    destroyed, the one through the second Service keeps talking to the pod."""
    a = lab1.node("a")
    b1, b3, client = a.add_pod("b1"), a.add_pod("b3"), a.add_pod("client")
    for p in (b1, b3):
        keep_serve(p)
    port = services(api, a, proto, b1, b1)
    lab1.publish(api)
    agent = start_agent(a)
    assert termination(agent)["enabled"] is True, termination(agent)
    proc = client.spawn([PY, "-c", CLIENT, proto, f"{VIP_A}:{port}", f"{VIP_B}:{port}"],
                        in_cgroup=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        out = Lines(proc)
        out.until(lambda d: d.get("i") == 0 and d.get("pod") == "b1", 10)
        out.until(lambda d: d.get("i") == 1 and d.get("pod") == "b1", 10)

        t_switch = time.monotonic()
        if change == "slice":
            cur = api.get("endpointslices", "default", "gone-1")
            new = slice_of("gone", b3.ip, a.name, proto)
            new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            api.update(new)
        else:
            api.delete("services", "default", "gone")
            api.delete("endpointslices", "default", "gone-1")
        got = out.until(lambda d: d.get("i") == 0 and ("errno" in d or "eof" in d), 10)
        assert got.get("errno") in (103, 104), got     # ECONNABORTED, ECONNRESET
        assert got["t"] - t_switch < 2, got

        # Through the second Service: untouched, and the same pod still answers.
        out.quiet(lambda d: d.get("i") == 1 and "pod" not in d, 1)
        for _ in range(2):
            proc.stdin.write(b"1\n")
            proc.stdin.flush()
            out.until(lambda d: d.get("i") == 1 and d.get("pod") == "b1", 5)
    finally:
        proc.kill()
        proc.wait()
    # b1 is still a backend (of the second Service): only the first one's socket went.
    be_port = 8080 if proto == "tcp" else 5353
    fes = agent.lb_frontends()
    assert fes.get(f"{VIP_B}:{port}/{proto.upper()}") == [f"{b1.ip}:{be_port}"], fes
    term = termination(agent)
    assert term[proto] == 1 and term["sockets_destroyed"] == 1, term
    assert term["failed"] == 0 and "last_error" not in term, term


def test_termination_is_off_with_the_socket_lb(lab1, api, start_agent):
    """Without the socket LB there is nothing to terminate: status says so."""
    a = lab1.node("a")
    lab1.publish(api)
    agent = start_agent(a, "--bpf-lb-sock=false")
    term = termination(agent)
    assert term["enabled"] is False and term["reason"] == "socket LB disabled", term
    text = agent.ctl("status", "--verbose").stdout
    assert "Socket LB Termination:  Disabled (socket LB disabled)" in text, text


@pytest.mark.kpr("udp-conntrack-flushed")
def test_udp_service_entry_of_a_deleted_backend_is_purged_without_traffic(lab1, api,
                                                                          start_agent):
    """The tc LB's CT_SERVICE entry of a UDP flow names its backend; once that backend is
    deleted the agent deletes the entry, without waiting for a packet of the flow (which
    would re-select) or for its expiry (60 s)."""
    a = lab1.node("a")
    b1, b2, client = a.add_pod("b1"), a.add_pod("b2"), a.add_pod("client")
    serve(b1), serve(b2)
    port = {"name": "p", "port": 53, "targetPort": 5353, "protocol": "UDP"}
    api.create(k8s.service("default", "quiet", [port], cluster_ip=VIP_A))
    api.create(slice_of("quiet", b1.ip, a.name, "udp"))
    api.create(k8s.service("default", "stays", [port], cluster_ip=VIP_B))
    api.create(slice_of("stays", b2.ip, a.name, "udp"))
    lab1.publish(api)
    agent = start_agent(a, "--bpf-lb-sock=false")
    wait_attached(agent, a.native, *[p.host_if for p in a.pods.values()])
    wait_for(lambda: all(agent.lb_frontends().get(f"{v}:53/UDP") for v in (VIP_A, VIP_B)),
             10, what="both frontends with their backend")
    for vip, pod in ((VIP_A, "b1"), (VIP_B, "b2")):
        res = udp(client, vip, 53, 2, in_cgroup=False)
        assert [r.get("reply", {}).get("pod") for r in res] == [pod, pod], res

    def svc_entries(vip):
        return ct_entries(agent, protocol="UDP", direction="SVC", source=client.ip,
                          destination=vip, destination_port=53)
    flows = len(svc_entries(VIP_A))
    assert flows and svc_entries(VIP_B)

    cur = api.get("endpointslices", "default", "quiet-1")
    new = slice_of("quiet", b2.ip, a.name, "udp")     # b1 leaves every Service
    new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
    api.update(new)
    wait_for(lambda: not svc_entries(VIP_A), 2, what="the flow's CT_SERVICE entry deleted")
    assert svc_entries(VIP_B), "the other Service's flow lost its entry"
    term = termination(agent)
    assert term["udp_conntrack_purged"] == flows and "last_error" not in term, term


# -- invalid-state TCP ------------------------------------------------------------------

# Sends one TCP segment with only ACK set, from sport to dst:dport, through a raw socket
# (no connect(), so no socket LB; the kernel adds the IP header). argv: src dst dport sport.
RAW_ACK = r"""
import socket, struct, sys
src, dst, dport, sport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
hdr = struct.pack("!HHIIBBHHH", sport, dport, 12345, 1, 5 << 4, 0x10, 64240, 0, 0)
pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(hdr))
hdr = hdr[:16] + struct.pack("!H", csum(pseudo + hdr)) + hdr[18:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
for _ in range(3):
    s.sendto(hdr, (dst, 0))
"""

# Counts TCP segments to port 8080 from sport arriving at the pod, for secs seconds,
# on an AF_PACKET socket (it sees what the pod's device delivers). argv: sport secs.
SNIFF = r"""
import socket, struct, sys, time
sport, secs = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.settimeout(0.1)
print("ready", flush=True)
n, end = 0, time.monotonic() + secs
while time.monotonic() < end:
    try:
        pkt = s.recv(65535)
    except socket.timeout:
        continue
    ihl = (pkt[0] & 0xf) * 4
    if pkt[9] == 6 and struct.unpack("!HH", pkt[ihl:ihl + 4]) == (sport, 8080):
        n += 1
print(n, flush=True)
"""


@pytest.mark.kpr("invalid-tcp-dropped")
@pytest.mark.parametrize("path", ["nodeport", "clusterip-tc"])
def test_invalid_state_tcp_is_dropped_before_the_backend(lab1, api, start_agent, path):
    a = lab1.node("a")
    b1, client = a.add_pod("b1"), a.add_pod("client")
    serve(b1)
    port = {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
    if path == "nodeport":
        port["nodePort"] = 30280
    api.create(k8s.service("default", "inval", [port], cluster_ip=VIP_A,
                           type="NodePort" if path == "nodeport" else "ClusterIP"))
    api.create(k8s.endpointslice("default", "inval-1", "inval", [(b1.ip, True, a.name)],
                                 [("http", 8080, "TCP")]))
    lab1.publish(api)
    agent = start_agent(a, *(["--bpf-lb-sock=false"] if path == "clusterip-tc" else []))
    wait_attached(agent, a.native, *[p.host_if for p in a.pods.values()])
    if path == "nodeport":
        sender, src, dst, dport = lab1.world, None, a.ip, 30280
        # The world's address towards the node: what its route to the node uses.
        route = json.loads(lab1.world.exec("ip", "-j", "route", "get", a.ip).stdout)[0]
        src = route["prefsrc"]
    else:
        sender, src, dst, dport = client, client.ip, VIP_A, 80
    # A real connection works on this path (so a drop below is the flow's state).
    if path == "clusterip-tc":
        assert all(r["ok"] for r in tcp(client, VIP_A, 80, 2, in_cgroup=False)), "service"
    drops0 = metric_packets(agent, reason("DROP_SVC_INVALID_STATE"))

    sniff = b1.spawn([PY, "-c", SNIFF, "41234", "3"], in_cgroup=False, stdout=subprocess.PIPE)
    assert sniff.stdout.readline().decode().strip() == "ready"
    kw = {"in_cgroup": False} if hasattr(sender, "cgroup") else {}
    r = sender.run([PY, "-c", RAW_ACK, src, dst, str(dport), "41234"], **kw)
    assert r.returncode == 0, r.stderr
    seen = int(sniff.communicate(timeout=10)[0].decode().split()[-1])
    assert seen == 0, f"the backend saw {seen} invalid segments"
    wait_for(lambda: metric_packets(agent, reason("DROP_SVC_INVALID_STATE")) >= drops0 + 3, 5,
             what="3 drops counted under DROP_SVC_INVALID_STATE")
