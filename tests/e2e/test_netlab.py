"""The lab itself, without Axon: what the datapath tests stand on.

The apiserver is reachable over verified TLS from inside node namespaces; the kernel
alone routes pod to pod, pod to world and world to pod in both topologies (so a failure
with the agent running is the agent's); the counters the redirect_peer test reads do move
for routed traffic; the Kubernetes objects describe the lab; nothing is left behind.
"""

import json
import os
import subprocess

import pytest

import k8s
from harness import PY, serve, tcp, udp
from netlab import OUTSIDE_IP, WORLD_IP, NetLab, sh

REPO_LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib")

CLIENT = """
import sys
sys.path.insert(0, %r)
import k8s
c = k8s.Client(sys.argv[1], sys.argv[2], sys.argv[3])
print(c.request("GET", "/version").json()["gitVersion"])
""" % REPO_LIB


def test_apiserver_is_reachable_over_tls_inside_node_namespaces(lab2, apiserver):
    a, b = lab2.node("a"), lab2.node("b")
    apiserver.listen_in(a.netns)
    apiserver.listen_in(b.netns)
    apiserver.listen_in(a.netns)           # idempotent
    for node in (a, b):
        # Verified TLS with the generated CA and the bearer token, at the same URL.
        r = node.run([PY, "-c", CLIENT, apiserver.url, apiserver.token, apiserver.ca])
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().startswith("v1.34")
        # It is TLS: a client that trusts nothing else refuses the certificate.
        r = node.exec("curl", "-sS", "--max-time", "5", apiserver.url + "/version",
                      check=False)
        assert r.returncode == 60, (r.returncode, r.stderr)   # peer certificate
    # The world, where nothing was asked, has no apiserver.
    r = lab2.world.exec("curl", "-sS", "--max-time", "5", "-k", apiserver.url + "/version",
                        check=False)
    assert r.returncode == 7, (r.returncode, r.stderr)        # connection refused
    # A restart keeps listening in the namespaces.
    apiserver.restart(keep_state=True)
    r = a.run([PY, "-c", CLIENT, apiserver.url, apiserver.token, apiserver.ca])
    assert r.returncode == 0, r.stderr


def test_one_node_kernel_routing(lab1):
    a, world = lab1.node("a"), lab1.world
    p1, p2 = a.add_pod("p1"), a.add_pod("p2")
    assert (a.ip, a.native, a.pod_cidr, p1.ip) == ("192.168.50.10", "ext0",
                                                   "10.244.1.0/24", "10.244.1.10")
    serve(p2)
    serve(world, name="world")
    # pod -> pod on the node: the backend sees the pod's own address.
    for r in tcp(p1, p2.ip, 8080, 3):
        assert r["ok"], r
        assert r["reply"]["pod"] == "p2" and r["reply"]["peer"].startswith(p1.ip + ":")
    # pod -> outside, unmasqueraded (the world routes the pod CIDR back to the node).
    for r in tcp(p1, OUTSIDE_IP, 8080, 2) + udp(p1, OUTSIDE_IP, 5353, 2):
        assert r["ok"], r
        assert r["reply"]["pod"] == "world" and r["reply"]["peer"].startswith(p1.ip + ":")
    # UDP is answered from the address it was sent to, not the route's source (which
    # would be 192.168.50.1 here, and which no NAT would match).
    assert [r["from"] for r in udp(p1, OUTSIDE_IP, 5353, 2)] == [f"{OUTSIDE_IP}:5353"] * 2
    # world -> pod through the node, and world -> the node's own address.
    assert all(r["ok"] and r["reply"]["pod"] == "p2" for r in tcp(world, p2.ip, 8080, 2))
    serve(a, tcp_port=9090, udp_port=9053, name="node-a")
    r = tcp(world, a.ip, 9090)[0]
    assert r["ok"] and r["reply"]["peer"].startswith(WORLD_IP + ":"), r
    # Without the routes back, an unmasqueraded pod gets no answer from outside.
    lab1.world_pod_routes(False)
    assert [r["errno"] for r in tcp(p1, OUTSIDE_IP, 8080, 1, timeout=1)] == ["ETIMEDOUT"]


def test_two_nodes_kernel_routing(lab2):
    a, b, world = lab2.node("a"), lab2.node("b"), lab2.world
    pa, pb = a.add_pod("pa"), b.add_pod("pb")
    assert (b.ip, b.pod_cidr, pb.ip) == ("192.168.50.11", "10.244.2.0/24", "10.244.2.10")
    serve(pa), serve(pb)
    # No node routes yet (the agents install them): pod B is unreachable from pod A.
    assert not tcp(pa, pb.ip, 8080, 1, timeout=1)[0]["ok"]
    lab2.add_kernel_node_routes()
    assert a.routes(pb.node.pod_cidr)[0]["gateway"] == b.ip
    for src, dst in ((pa, pb), (pb, pa)):
        for r in tcp(src, dst.ip, 8080, 3) + udp(src, dst.ip, 5353, 2):
            assert r["ok"], r
            assert r["reply"]["pod"] == dst.name
            assert r["reply"]["peer"].startswith(src.ip + ":")   # no NAT between pods
    assert all(r["ok"] and r["reply"]["pod"] == "pb" for r in tcp(world, pb.ip, 8080, 2))


def test_counters_see_routed_traffic_on_the_destination_host_device(lab1):
    """Without BPF, every packet to p2 leaves the node through p2's host-side device: the
    counter the redirect_peer test expects to stay still does move here."""
    a = lab1.node("a")
    p1, p2 = a.add_pod("p1"), a.add_pod("p2")
    serve(p2)
    assert tcp(p1, p2.ip, 8080)[0]["ok"]          # ARP settled
    before1, before2 = p1.host_stats(), p2.host_stats()
    assert all(r["ok"] for r in tcp(p1, p2.ip, 8080, 50))
    after1, after2 = p1.host_stats(), p2.host_stats()
    tx_to_p2 = after2["tx_packets"] - before2["tx_packets"]
    rx_from_p1 = after1["rx_packets"] - before1["rx_packets"]
    assert rx_from_p1 >= 150, rx_from_p1           # SYN, ACK, FIN, ... per connection
    assert tx_to_p2 >= 150, tx_to_p2
    assert after1["tx_packets"] - before1["tx_packets"] >= 100   # replies via p1's device


def test_k8s_objects_describe_the_lab(lab2, api):
    a, b = lab2.node("a"), lab2.node("b")
    pa, pb = a.add_pod("pa"), b.add_pod("pb", identity=4242)
    lab2.publish(api)
    lab2.publish(api)                         # idempotent (replaces)
    nodes = {n["metadata"]["name"]: n for n in api.list("nodes")["items"]}
    assert set(nodes) == {"node-a", "node-b"}
    assert nodes["node-b"]["spec"]["podCIDR"] == "10.244.2.0/24"
    assert {"type": "InternalIP", "address": "192.168.50.11"} in \
        nodes["node-b"]["status"]["addresses"]
    ces = {c["metadata"]["name"]: c for c in api.list("ciliumendpointslices")["items"]}
    assert set(ces) == {"ces-pa", "ces-pb"}
    ep = ces["ces-pb"]["endpoints"][0]
    assert ces["ces-pb"]["namespace"] == "default"
    assert ep["id"] == 4242 and ep["name"] == "pb"
    assert ep["networking"] == {"addressing": [{"ipv4": pb.ip}], "node": b.ip}
    assert ces["ces-pa"]["endpoints"][0]["networking"]["node"] == a.ip


def _root_links():
    return {link["ifname"] for link in json.loads(sh("ip", "-j", "link").stdout)}


@pytest.mark.parametrize("nodes", [None, ["a", "b"]])
def test_close_leaves_nothing_behind(nodes):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    links_before = _root_links()
    lab = NetLab("cl", nodes=nodes)
    try:
        for node in lab.nodes:
            p = node.add_pod(f"p{node.short}")
            p.spawn(["sleep", "600"])                    # a process in the pod's cgroup
            os.makedirs(os.path.join(node.bpf_root, "maps"), exist_ok=True)
        serve(lab.nodes[0].pods[f"p{lab.nodes[0].short}"])
        assert lab.resources()
        prefix = lab.prefix
    finally:
        lab.close()
    assert lab.resources() == []
    assert not [n for n in sh("ip", "netns", "list").stdout.split() if n.startswith(prefix)]
    assert not [d for d in os.listdir("/sys/fs/bpf") if lab.id in d]
    cg = os.path.dirname(lab.cgroup_root)
    assert not [d for d in os.listdir(cg) if lab.id in d]
    assert not [d for d in os.listdir("/run") if lab.id in d]
    # The root namespace's devices are untouched: nothing added, nothing removed.
    assert _root_links() == links_before
    assert all(p.poll() is not None for p in lab.procs)


def test_close_after_a_failed_setup_removes_what_was_made():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    lab = NetLab("cl", nodes=["a"])
    try:
        lab.add_pod("p1")
        with pytest.raises(ValueError):
            lab.add_pod("p1")
        with pytest.raises(subprocess.CalledProcessError):
            lab.add_pod("p2", ip="not-an-ip")              # fails half-way
    finally:
        lab.close()
    assert lab.resources() == []
