"""Two nodes on one machine: nodes A and B (netlab: native devices ext0 on the world
network, 192.168.50.10 and .11; pod CIDRs 10.244.1.0/24 and 10.244.2.0/24), each with
its own agent (own bpffs root, cgroup, socket, Node object) running in its namespace
with --auto-direct-node-routes. No route between the pod CIDRs exists but the agents'.
"""

import subprocess

import pytest

from harness import reason, metric_packets, nat_entries, serve, tcp, udp, wait_attached
from netlab import WORLD_IP, wait_for
from test_datapath import service

RTPROT_AXON = "196"       # agent/datapath/routes.h: `ip route` shows the number
VIP = "10.96.30.10"


def cluster(lab, api, start_agent, *flags):
    """Publish Nodes and CiliumEndpointSlices; start both agents; wait until each node
    has its programs attached and its route to the other's pod CIDR."""
    lab.publish(api)
    agents = {}
    for node in lab.nodes:
        agents[node.short] = start_agent(node, "--auto-direct-node-routes=true", *flags)
    for node in lab.nodes:
        wait_attached(agents[node.short], node.native, *[p.host_if for p in node.pods.values()])
        for other in lab.nodes:
            if other is not node:
                wait_for(lambda: axon_route(node, other.pod_cidr), timeout=10,
                         what=f"route on {node.name} to {other.pod_cidr}")
    return agents


def axon_route(node, prefix):
    routes = node.routes(prefix, "proto", RTPROT_AXON)
    return routes[0] if routes else None


def test_pod_to_pod_across_nodes_over_direct_routes(lab2, api, start_agent):
    a, b = lab2.node("a"), lab2.node("b")
    pa, pb = a.add_pod("pa"), b.add_pod("pb")
    serve(pa), serve(pb)
    agents = cluster(lab2, api, start_agent)
    # The routes the agents installed: the other node's pod CIDR via its address.
    ra, rb = axon_route(a, b.pod_cidr), axon_route(b, a.pod_cidr)
    assert (ra["gateway"], ra["dev"]) == (b.ip, a.native), ra
    assert (rb["gateway"], rb["dev"]) == (a.ip, b.native), rb
    for src, dst in ((pa, pb), (pb, pa)):
        results = tcp(src, dst.ip, 8080, 10) + udp(src, dst.ip, 5353, 3)
        assert all(r["ok"] for r in results), results
        # Native routing: the pod's own address arrives at the other node's pod.
        assert all(r["reply"]["pod"] == dst.name and
                   r["reply"]["peer"].startswith(src.ip + ":") for r in results)

    # A bulk transfer leaves pa as GSO packets of up to 64 KiB, far above ext0's MTU:
    # the FIB gets no length for them (tot_len 0) and their segments fit ext0
    # (bpf_check_mtu), so from_container redirects them out of ext0 instead of handing
    # them to the stack.
    before = fib_forwarded(agents["a"])
    pb.spawn(["iperf3", "-s", "-1", "-p", "5301"], stdout=subprocess.DEVNULL,
             stderr=subprocess.DEVNULL)
    wait_for(lambda: ":5301 " in pb.exec("ss", "-Htln").stdout, what="iperf3 listening")
    r = pa.run(["iperf3", "-c", pb.ip, "-p", "5301", "-n", "64M", "-J"], timeout=60)
    assert r.returncode == 0, r.stderr + r.stdout[-500:]
    after = fib_forwarded(agents["a"])
    packets, nbytes = after[0] - before[0], after[1] - before[1]
    # (Nearly all: a few segments may take the stack, e.g. while a neighbour
    # entry resolves; before tot_len 0 it was ~20 KB of the 64 MiB.)
    assert nbytes >= 0.9 * (64 << 20), (packets, nbytes)
    assert nbytes / packets > 4 * 1514, f"{packets} packets, {nbytes} bytes: not GSO-sized"


def fib_forwarded(agent):
    """(packets, bytes) the datapath forwarded by FIB lookup, all directions."""
    rows = [e for e in agent.ctl_json("bpf", "metrics", "list")
            if e["reason"] == reason("REASON_FIB_FORWARDED")]
    return sum(int(e["packets"]) for e in rows), sum(int(e["bytes"]) for e in rows)


@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_routes_follow_the_node_objects(lab2, api, start_agent):
    a, b = lab2.node("a"), lab2.node("b")
    cluster(lab2, api, start_agent)
    # Node B leaves the cluster: A's route to its pod CIDR goes, and only that one.
    a.exec("ip", "route", "add", "10.250.0.0/24", "via", b.ip)      # someone else's route
    api.delete("nodes", None, b.name)
    wait_for(lambda: axon_route(a, b.pod_cidr) is None, timeout=5, what="route removed")
    assert a.routes("10.250.0.0/24"), "a route Axon does not own was touched"
    # And comes back with it.
    api.create(b.k8s_node())
    wait_for(lambda: axon_route(a, b.pod_cidr), timeout=5, what="route back")


@pytest.mark.kpr("source-ip-other-node")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_clusterip_on_a_with_backend_on_b(lab2, api, start_agent):
    a, b = lab2.node("a"), lab2.node("b")
    client, pb = a.add_pod("client"), b.add_pod("pb")
    serve(pb)
    service(api, "web", [(pb.ip, b.name)], vip=VIP)
    cluster(lab2, api, start_agent, "--bpf-lb-sock=false")
    # tc LB on A (the client is outside every hooked cgroup), then across to B.
    for r in udp(client, VIP, 53, 5, in_cgroup=False):
        assert r["ok"], r
        assert r["from"] == f"{VIP}:53"
        assert r["reply"]["pod"] == "pb" and r["reply"]["peer"].startswith(client.ip + ":")
    results = tcp(client, VIP, 80, 10, in_cgroup=False)
    assert all(r["ok"] and r["reply"]["pod"] == "pb" for r in results), results
    # With the socket LB (a client in its cgroup) the same service works too.
    results = tcp(client, VIP, 80, 5)
    assert all(r["ok"] and r["reply"]["pod"] == "pb" for r in results), results


@pytest.mark.kpr("etp-cluster")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_nodeport_on_a_served_by_b_with_snat(lab2, api, start_agent):
    a, b, world = lab2.node("a"), lab2.node("b"), lab2.world
    pb = b.add_pod("pb")
    serve(pb)
    service(api, "web", [(pb.ip, b.name)], type="NodePort", node_ports=(30090, 30091))
    agents = cluster(lab2, api, start_agent)
    for r in tcp(world, a.ip, 30090, 10):
        assert r["ok"], r
        assert r["reply"]["pod"] == "pb"
        # SNAT mode: the backend on B sees node A, not the world client.
        assert r["reply"]["peer"].startswith(a.ip + ":"), r
    for r in udp(world, a.ip, 30091, 3):
        assert r["ok"], r
        assert r["from"] == f"{a.ip}:30091"
        assert r["reply"]["peer"].startswith(a.ip + ":"), r
    # Node A translated them: NodePort verdicts counted there.
    assert metric_packets(agents["a"], reason("REASON_NODE_PORT")) >= 13
    # B's own NodePort serves it locally: no SNAT for a local backend, the client's
    # address is kept.
    r = tcp(world, b.ip, 30090)[0]
    assert r["ok"] and r["reply"]["pod"] == "pb", r
    assert r["reply"]["peer"].startswith(WORLD_IP + ":"), r


def test_nodeport_source_port_reused_with_remote_backend(lab2, api, start_agent):
    """A world client connects to A's NodePort, served by B, twice in a row from one
    source port (bound with SO_REUSEADDR; the server closes first, so the client's
    port is free at once): A's conntrack entry of the first connection is still there
    (closing) and the second one takes it over with the same SNAT pair. Both get their
    reply, from B, through A's SNAT, and A keeps one NAT pair for the client's tuple."""
    a, b, world = lab2.node("a"), lab2.node("b"), lab2.world
    pb = b.add_pod("pb")
    serve(pb)
    service(api, "web", [(pb.ip, b.name)], type="NodePort", node_ports=(30092, 30093))
    agents = cluster(lab2, api, start_agent)
    sport = 41234
    results = tcp(world, a.ip, 30092, 2, sport=sport, timeout=5)
    assert len(results) == 2, results
    for r in results:
        assert r["ok"], results
        assert r["sockname"] == f"{WORLD_IP}:{sport}", r
        assert r["peername"] == f"{a.ip}:30092", r
        assert r["reply"]["pod"] == "pb" and r["reply"]["peer"].startswith(a.ip + ":"), r
    # The same SNAT port both times: the backend saw one tuple.
    assert results[0]["reply"]["peer"] == results[1]["reply"]["peer"], results
    out = nat_entries(agents["a"], direction="OUT", source=WORLD_IP, source_port=sport,
                      destination=pb.ip, destination_port=8080)
    assert len(out) == 1, out
    nat_port = out[0]["to_port"]
    assert results[0]["reply"]["peer"] == f"{a.ip}:{nat_port}", (results, out)
    back = nat_entries(agents["a"], direction="IN", source=pb.ip, source_port=8080,
                       destination=a.ip, to_address=WORLD_IP, to_port=sport)
    assert [e["destination_port"] for e in back] == [nat_port], back

