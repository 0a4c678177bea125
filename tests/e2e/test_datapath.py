"""The tc datapath on one node, end to end, with real traffic.

Node A (netlab: native device ext0 = 192.168.50.10 on the world network, pods on
10.244.1.0/24) runs the agent in its namespace with --devices ext0 and its own Node
object; the world namespace (192.168.50.1, "outside" 203.0.113.1) plays the remote
client and the outside server. Every test asserts on what packets did: who answered,
from which address, which device saw them, what the maps and counters say after.
"""

import os
import re

import pytest

import k8s
from harness import (ct_entries, metric_packets, nat_entries, reason, serve, tc_filter_programs,
                     tcp, udp, wait_attached)
from netlab import OUTSIDE_IP, WORLD_IP, wait_for

VIP = "10.96.20.10"
SVC_PORTS = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
             {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]
EPS_PORTS = [("http", 8080, "TCP"), ("dns", 5353, "UDP")]


def service(api, name, backends, vip=None, type="ClusterIP", node_ports=None, **spec):
    """A Service over backends [(ip, node name)], with its EndpointSlice."""
    ports = [dict(p) for p in SVC_PORTS]
    for p, np in zip(ports, node_ports or ()):
        p["nodePort"] = np
    api.create(k8s.service("default", name, ports, cluster_ip=vip, type=type, **spec))
    api.create(k8s.endpointslice("default", f"{name}-1", name,
                                 [(ip, True, node) for ip, node in backends], EPS_PORTS))


def up(lab, api, start_agent, *flags, devs=()):
    """Publish the lab's Node and CiliumEndpointSlices, start node A's agent, wait until
    its programs sit on the native device and on every pod's host-side device."""
    a = lab.node("a")
    lab.publish(api)
    agent = start_agent(a, *flags)
    wait_attached(agent, a.native, *[p.host_if for p in a.pods.values()], *devs)
    return agent


def delta(before, after, key):
    return after[key] - before[key]


def test_same_node_pod_to_pod_skips_the_host_side_devices(lab1, api, start_agent):
    a = lab1.node("a")
    p1, p2 = a.add_pod("p1"), a.add_pod("p2")
    serve(p2)
    up(lab1, api, start_agent)
    assert tcp(p1, p2.ip, 8080)[0]["ok"]
    s1, s2 = p1.host_stats(), p2.host_stats()
    results = tcp(p1, p2.ip, 8080, 50)
    e1, e2 = p1.host_stats(), p2.host_stats()
    assert all(r["ok"] for r in results), results
    # Delivered, from p1's own address (no NAT between pods) ...
    assert all(r["reply"]["pod"] == "p2" and r["reply"]["peer"].startswith(p1.ip + ":")
               for r in results)
    # ... entering the node through the source's host-side device (RX) and redirected
    # into the peer pod: the destination's host-side device never transmitted them.
    assert delta(s1, e1, "rx_packets") >= 150, (s1, e1)
    assert delta(s2, e2, "tx_packets") <= 2, (s2, e2)
    # The replies the same way back.
    assert delta(s2, e2, "rx_packets") >= 100, (s2, e2)
    assert delta(s1, e1, "tx_packets") <= 2, (s1, e1)


@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_clusterip_through_tc_lb_with_socket_lb_off(lab1, api, start_agent):
    a = lab1.node("a")
    b1, b2, client = a.add_pod("b1"), a.add_pod("b2"), a.add_pod("client")
    serve(b1), serve(b2)
    service(api, "web", [(b1.ip, a.name), (b2.ip, a.name)], vip=VIP)
    agent = up(lab1, api, start_agent, "--bpf-lb-sock=false")
    # The client is outside every hooked cgroup: only tc can translate for it.
    for r in udp(client, VIP, 53, 8, in_cgroup=False):
        assert r["ok"], r
        assert r["from"] == f"{VIP}:53"                 # the reply was reverse-translated
        assert r["reply"]["pod"] in ("b1", "b2")
        assert r["reply"]["peer"].startswith(client.ip + ":")   # no SNAT
    results = tcp(client, VIP, 80, 30, in_cgroup=False)
    assert all(r["ok"] for r in results), results
    assert {r["reply"]["pod"] for r in results} == {"b1", "b2"}
    assert all(r["reply"]["local"].endswith(":8080") and
               r["reply"]["peer"].startswith(client.ip + ":") for r in results)
    assert metric_packets(agent, reason("REASON_LB_XLATED")) >= 38
    assert metric_packets(agent, reason("REASON_LB_REV_XLATED")) >= 38


def test_icmp_error_from_a_backend_reaches_the_client_as_the_frontend(lab1, api, start_agent):
    a = lab1.node("a")
    b1, client = a.add_pod("b1"), a.add_pod("client")
    # b1 listens on nothing: its kernel answers the UDP datagram with port unreachable.
    api.create(k8s.service("default", "deaf", [{"name": "dns", "port": 53, "targetPort": 5399,
                                                "protocol": "UDP"}], cluster_ip=VIP))
    api.create(k8s.endpointslice("default", "deaf-1", "deaf", [(b1.ip, True, a.name)],
                                 [("dns", 5399, "UDP")]))
    agent = up(lab1, api, start_agent, "--bpf-lb-sock=false")
    before = metric_packets(agent, reason("REASON_LB_REV_XLATED"))
    # The client's socket is connected to the VIP: only an error quoting the VIP
    # matches it, and then the next receive fails with ECONNREFUSED (not a timeout).
    r = udp(client, VIP, 53, 1, connected=True, in_cgroup=False, timeout=2)[0]
    assert r == {"ok": False, "errno": "ECONNREFUSED"}, r
    assert metric_packets(agent, reason("REASON_LB_REV_XLATED")) > before


@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_nodeport_from_the_world(lab1, api, start_agent):
    a, world = lab1.node("a"), lab1.world
    b1 = a.add_pod("b1")
    serve(b1)
    service(api, "web", [(b1.ip, a.name)], type="NodePort", node_ports=(30080, 30053))
    agent = up(lab1, api, start_agent)
    for r in tcp(world, a.ip, 30080, 5):
        assert r["ok"], r
        assert r["reply"]["pod"] == "b1" and r["reply"]["local"] == f"{b1.ip}:8080"
    for r in udp(world, a.ip, 30053, 3):
        assert r["ok"], r
        assert r["from"] == f"{a.ip}:30053"             # answered from the NodePort
        assert r["reply"]["pod"] == "b1"
    # A port of the range with no service behind it reaches nobody.
    assert not tcp(world, a.ip, 30999, 1, timeout=1)[0]["ok"]
    assert metric_packets(agent, reason("REASON_NODE_PORT")) >= 8


@pytest.mark.kpr("etp-local")
def test_nodeport_external_traffic_policy_local(lab1, api, start_agent):
    a, world = lab1.node("a"), lab1.world
    b1 = a.add_pod("b1")
    serve(b1)
    # "here" has its backend on this node; "there" only on node B (known from its
    # EndpointSlice and its CiliumEndpointSlice, though no such pod runs in this lab).
    service(api, "here", [(b1.ip, a.name)], type="NodePort", node_ports=(30081, 30054),
            externalTrafficPolicy="Local")
    service(api, "there", [("10.244.2.10", "node-b")], type="NodePort",
            node_ports=(30082, 30055), externalTrafficPolicy="Local")
    api.create(k8s.ciliumendpointslice("ces-remote", "default",
                                       [("remote", "10.244.2.10", 20000, "192.168.50.11")]))
    agent = up(lab1, api, start_agent)
    here = tcp(world, a.ip, 30081, 3)
    assert all(r["ok"] and r["reply"]["pod"] == "b1" for r in here), here
    # Local policy keeps the client's address: no SNAT.
    assert all(r["reply"]["peer"].startswith(WORLD_IP + ":") for r in here)
    drops = metric_packets(agent, reason("DROP_NO_LOCAL_BACKEND"))
    there = tcp(world, a.ip, 30082, 2, timeout=1) + udp(world, a.ip, 30055, 2, timeout=1)
    assert [r["ok"] for r in there] == [False] * 4, there
    assert metric_packets(agent, reason("DROP_NO_LOCAL_BACKEND")) >= drops + 4
    text = agent.ctl("bpf", "metrics", "list").stdout
    assert "No local backend (traffic policy Local)" in text


def test_masquerade_to_the_outside(lab1, api, start_agent):
    a, world = lab1.node("a"), lab1.world
    p1, p2 = a.add_pod("p1"), a.add_pod("p2")
    serve(world, name="outside"), serve(p2)
    # The world cannot route to pods: only masqueraded traffic can be answered.
    lab1.world_pod_routes(False)
    agent = up(lab1, api, start_agent, "--enable-bpf-masquerade=true",
               "--ipv4-native-routing-cidr=10.244.0.0/16")
    for r in tcp(p1, OUTSIDE_IP, 8080, 5):
        assert r["ok"], r
        assert r["reply"]["pod"] == "outside"
        assert r["reply"]["peer"].startswith(a.ip + ":"), r     # seen as the node
    for r in udp(p1, OUTSIDE_IP, 5353, 3):
        assert r["ok"], r
        assert r["from"] == f"{OUTSIDE_IP}:5353"                  # reply translated back
        assert r["reply"]["peer"].startswith(a.ip + ":"), r
    # The translations are in the NAT map: the pod's flows, rewritten to the node.
    out = nat_entries(agent, source=p1.ip, destination=OUTSIDE_IP)
    assert out and all(e["to_address"] == a.ip for e in out), out
    assert {e["protocol"] for e in out} == {"TCP", "UDP"}
    # Inside the native-routing CIDR nothing is masqueraded.
    r = tcp(p1, p2.ip, 8080)[0]
    assert r["ok"] and r["reply"]["peer"].startswith(p1.ip + ":"), r


def test_conntrack_entries_listed_then_collected(lab1, api, start_agent):
    a = lab1.node("a")
    b1, client = a.add_pod("b1"), a.add_pod("client")
    serve(b1)
    service(api, "web", [(b1.ip, a.name)], vip=VIP)
    agent = up(lab1, api, start_agent, "--bpf-lb-sock=false",
               "--bpf-ct-timeout-regular-any=6s", "--conntrack-gc-interval=1s")
    assert all(r["ok"] for r in udp(client, VIP, 53, 3, in_cgroup=False))
    # The service flows as the client sent them, and the translated flows to b1.
    svc = ct_entries(agent, protocol="UDP", source=client.ip, destination=VIP,
                     destination_port=53)
    assert len(svc) == 3, svc                # three sockets, three source ports
    assert all(e["tx_packets"] >= 1 and e["remaining"] <= 6 for e in svc), svc
    assert ct_entries(agent, protocol="UDP", source=client.ip, destination=b1.ip,
                      destination_port=5353)
    # Cilium's one-line layout.
    lines = agent.ctl("bpf", "ct", "list", "global").stdout.splitlines()
    pat = re.compile(rf"^UDP \S+ {re.escape(client.ip)}:\d+ -> {re.escape(VIP)}:53 "
                     r"expires=\d+ .*RxPackets=\d+ .*TxPackets=\d+ .*RevNAT=\d+")
    assert sum(bool(pat.search(line)) for line in lines) == 3, lines
    # 6 s of idleness later, the collector (every second) has removed them all.
    wait_for(lambda: not ct_entries(agent, protocol="UDP", source=client.ip), timeout=14,
             what="UDP conntrack entries collected")
    # TCP: closed entries stay for the FIN timeout (10 s), unless flushed.
    assert all(r["ok"] for r in tcp(client, VIP, 80, 2, in_cgroup=False))
    assert len(ct_entries(agent, protocol="TCP", source=client.ip, destination=VIP)) == 2
    agent.ctl("bpf", "ct", "flush", "global")
    assert ct_entries(agent, protocol="TCP", source=client.ip) == []


def test_legacy_tc_fallback_and_cleanup(lab1, api, start_agent):
    a = lab1.node("a")
    p1, p2 = a.add_pod("p1"), a.add_pod("p2")
    serve(p2)
    agent = up(lab1, api, start_agent, "--enable-tcx=false")
    # Traffic flows, and still skips the destination's host-side device.
    s2 = p2.host_stats()
    assert all(r["ok"] for r in tcp(p1, p2.ip, 8080, 10))
    assert delta(s2, p2.host_stats(), "tx_packets") <= 2
    # Axon's filters, as tc shows them, and no tcx link.
    assert "from_container" in tc_filter_programs(a, p1.host_if, "ingress")
    assert "from_container" in tc_filter_programs(a, p2.host_if, "ingress")
    assert "from_netdev" in tc_filter_programs(a, a.native, "ingress")
    assert "to_netdev" in tc_filter_programs(a, a.native, "egress")
    agent.stop()
    r = agent.ctl("cleanup")
    # from_container and to_container on each pod's device, two on the native one.
    assert "detached 6 tc attachment(s)" in r.stdout, r.stdout
    for dev in (p1.host_if, p2.host_if, a.native):
        for direction in ("ingress", "egress"):
            assert tc_filter_programs(a, dev, direction) == [], (dev, direction)
    # Without Axon the kernel routes the pods again.
    assert all(r["ok"] for r in tcp(p1, p2.ip, 8080, 3))


def test_tcx_attach_is_the_default_and_survives_the_agent(lab1, api, start_agent):
    a = lab1.node("a")
    p1, p2 = a.add_pod("p1"), a.add_pod("p2")
    serve(p2)
    agent = up(lab1, api, start_agent)
    # tcx links, pinned; nothing through legacy tc.
    for dev in (p1.host_if, p2.host_if, a.native):
        assert os.path.exists(os.path.join(agent.bpf_root, "links", f"tc-{dev}-ingress"))
        assert tc_filter_programs(a, dev, "ingress") == []
    assert os.path.exists(os.path.join(agent.bpf_root, "links", f"tc-{a.native}-egress"))
    agent.stop()
    # No agent: the pinned links keep the datapath in place.
    s2 = p2.host_stats()
    assert all(r["ok"] for r in tcp(p1, p2.ip, 8080, 10))
    assert delta(s2, p2.host_stats(), "tx_packets") <= 2


def test_drops_are_counted_by_reason(lab1, api, start_agent):
    a = lab1.node("a")
    client = a.add_pod("client")
    api.create(k8s.service("default", "empty", [("dns", 53, "UDP")], cluster_ip=VIP))
    agent = up(lab1, api, start_agent, "--bpf-lb-sock=false")
    # No backend: each datagram is dropped (and answered, test_svc_reject.py).
    before = metric_packets(agent, reason("DROP_SVC_NO_BACKEND_REJECTED"))
    assert [r["ok"] for r in udp(client, VIP, 53, 3, in_cgroup=False, timeout=1)] == [False] * 3
    assert metric_packets(agent, reason("DROP_SVC_NO_BACKEND_REJECTED")) >= before + 3
    rows = [e for e in agent.ctl_json("bpf", "metrics", "list")
            if e["reason"] == reason("DROP_SVC_NO_BACKEND_REJECTED")]
    assert rows and all(e["drop"] is True and e["bytes"] > 0 for e in rows), rows
    assert "Service backend not found (rejected)" in agent.ctl("bpf", "metrics", "list").stdout
