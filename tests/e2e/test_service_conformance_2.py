"""More of Kubernetes' Service e2e behaviours, with real traffic: session affinity, hairpin,
multi-port and multi-protocol Services, Services recreated, EndpointSlices split in two.

Node A (netlab lab1) runs the agent; the world namespace is the remote client for
NodePorts. `path` runs a test through the socket LB (the client in the node's hooked
cgroup) or through the tc LB (--bpf-lb-sock=false, the client outside every cgroup).
Behaviours covered elsewhere are not repeated here: the client's source IP as the
backend sees it, same node and across nodes (test_clusterip.py, test_datapath.py,
test_two_nodes.py), endpoints scaled up, down and from none to one (test_clusterip.py).
"""

import time

import pytest

import k8s
import realk8s
from harness import serve, tcp, udp
from netlab import wait_for

VIP = "10.96.31.10"
TC = "--bpf-lb-sock=false"
AFFINITY_PATHS = [pytest.param("sock", marks=pytest.mark.kpr("affinity-socket-lb-netns")), "tc"]


def affinity(timeout=10800):
    return {"sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": timeout}}}


def up(lab1, api, start_agent, path="sock"):
    lab1.publish(api)
    return start_agent(lab1.node("a"), *([TC] if path == "tc" else []))


def servers(a, n):
    pods = [a.add_pod(f"b{i}") for i in range(n)]
    for p in pods:
        serve(p)
    return pods


def web(api, pods, node, name="web", vip=VIP, ports=(("http", 80, "TCP", 8080),), **spec):
    """Service name over pods, all ready on node, in its one EndpointSlice name-1."""
    api.create(k8s.service("default", name, list(ports), cluster_ip=vip, **spec))
    api.create(k8s.endpointslice("default", f"{name}-1", name,
                                 [(p.ip, True, node) for p in pods],
                                 [(p[0], p[3], p[2]) for p in ports]))


def answers(client, ip, port, count, path="sock"):
    """The pods that answered count connections; every one must connect."""
    res = tcp(client, ip, port, count, in_cgroup=path == "sock", timeout=2)
    assert all(r["ok"] for r in res), res
    return [r["reply"]["pod"] for r in res]


def n_backends(agent, fe, n):
    return wait_for(lambda: len(agent.lb_frontends().get(fe, [])) == n, 10,
                    what=f"{n} backends for {fe}")


@pytest.mark.kpr("affinity-clusterip")
@pytest.mark.parametrize("path", AFFINITY_PATHS)
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_session_affinity_client_ip_keeps_a_client_on_one_backend_switched_live(
        lab1, api, start_agent, path):
    a = lab1.node("a")
    pods = servers(a, 3)
    client = a.add_pod("client")
    web(api, pods, a.name, **affinity())
    agent = up(lab1, api, start_agent, path)
    n_backends(agent, f"{VIP}:80/TCP", 3)
    assert [r["session_affinity"] for r in agent.ctl_json("service", "list")
            if r["service"] == "default/web"] == [True]
    first = set(answers(client, VIP, 80, 15, path))
    assert len(first) == 1, first
    assert set(answers(client, VIP, 80, 15, path)) == first

    # Affinity off: the same client spreads over the backends again.
    api.patch("services", "default", "web", {"spec": {"sessionAffinity": "None",
                                                      "sessionAffinityConfig": None}})
    wait_for(lambda: len(set(answers(client, VIP, 80, 30, path))) >= 2, 10,
             what="connections spread once affinity is off")

    # On again: one backend for 15 connections in a row.
    api.patch("services", "default", "web", {"spec": affinity()})
    wait_for(lambda: len(set(answers(client, VIP, 80, 15, path))) == 1, 10,
             what="one backend once affinity is back")


@pytest.mark.kpr("affinity-nodeport")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_session_affinity_client_ip_on_a_nodeport_from_outside(lab1, api, start_agent):
    a, world = lab1.node("a"), lab1.world
    pods = servers(a, 3)
    web(api, pods, a.name, type="NodePort", **affinity())
    api.patch("services", "default", "web", {"spec": {"ports": [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP",
         "nodePort": 30081}]}})
    agent = up(lab1, api, start_agent)
    n_backends(agent, f"{a.ip}:30081/TCP", 3)
    for _ in range(2):
        got = answers(world, a.ip, 30081, 15)
        assert len(set(got)) == 1, got

    api.patch("services", "default", "web", {"spec": {"sessionAffinity": "None",
                                                      "sessionAffinityConfig": None}})
    wait_for(lambda: len(set(answers(world, a.ip, 30081, 30))) >= 2, 10,
             what="NodePort connections spread once affinity is off")


@pytest.mark.kpr("affinity-timeout")
# The test apiserver's runs take 8 rounds (some 30 s); the real kube-apiserver's Service
# takes the socket LB path only and stops at the first round on another backend.
@pytest.mark.parametrize("apiserver,path", [
    pytest.param("test", "sock", marks=pytest.mark.kpr("affinity-socket-lb-netns")),
    ("test", "tc"),
    pytest.param("real", "sock", marks=pytest.mark.kpr("affinity-socket-lb-netns"))],
    indirect=["apiserver"])
def test_session_affinity_timeout_lets_a_new_backend_be_chosen(lab1, apiserver, api,
                                                               start_agent, path):
    a = lab1.node("a")
    pods = servers(a, 3)
    client = a.add_pod("client")
    web(api, pods, a.name, **affinity(2))
    agent = up(lab1, api, start_agent, path)
    n_backends(agent, f"{VIP}:80/TCP", 3)
    assert [fe["affinity_timeout"] for fe in agent.ctl_json("bpf", "lb", "list")
            if fe["frontend"] == f"{VIP}:80/TCP"] == [2]
    # Within the timeout every connection keeps the backend; after it (the entry is
    # older than 2 s) the backend is chosen afresh. Over 8 rounds with 3 backends, one
    # backend every time would happen with probability (1/3)^7 < 0.05% were the entry
    # to expire, and always if it did not.
    rounds = []
    for _ in range(8):
        got = set(answers(client, VIP, 80, 15, path))
        assert len(got) == 1, got
        if not rounds:
            # One client, one Service: one entry in the affinity map (keyed by the
            # client's address in the tc LB, by its network namespace in the socket LB).
            maps = {m["name"]: m for m in agent.ctl_json("map", "list")}
            assert maps["lb4_affinity"]["entries"] == 1
            (entry,) = agent.ctl_json("bpf", "lb", "affinity", "list")
            if path == "tc":
                assert (entry["kind"], entry["client"]) == ("client-ip", client.ip)
            else:
                assert (entry["kind"], entry["client"]) == ("netns", None)
            assert entry["frontend"] == f"{VIP}:80"
            assert entry["backend"] in {f"{p.ip}:8080" for p in pods}
        rounds += got
        if isinstance(apiserver, realk8s.Scope) and len(set(rounds)) >= 2:
            break
        time.sleep(3.5)
    assert len(set(rounds)) >= 2, rounds


@pytest.mark.kpr("affinity-socket-lb-netns")
def test_socket_lb_affinity_two_clients_in_two_netns_each_keep_their_backend(
        lab1, api, start_agent):
    a = lab1.node("a")
    pods = servers(a, 3)
    clients = [a.add_pod("client1"), a.add_pod("client2")]
    web(api, pods, a.name, **affinity())
    agent = up(lab1, api, start_agent)
    n_backends(agent, f"{VIP}:80/TCP", 3)
    # Each client's 15 connects go to one backend; asked again, in turn, the same one.
    kept = {}
    for c in clients:
        got = answers(c, VIP, 80, 15)
        assert len(set(got)) == 1, (c.name, got)
        kept[c.name] = got[0]
    for c in reversed(clients):
        assert set(answers(c, VIP, 80, 15)) == {kept[c.name]}, c.name
    # One socket LB entry per client network namespace, none keyed by address, each
    # naming the Service and the backend its client kept.
    entries = agent.ctl_json("bpf", "lb", "affinity", "list")
    assert len(entries) == 2, entries
    assert all(e["kind"] == "netns" and e["client"] is None and e["netns_cookie"] > 0 and
               e["frontend"] == f"{VIP}:80" and 0 <= e["age"] <= 60 for e in entries), entries
    assert entries[0]["netns_cookie"] != entries[1]["netns_cookie"]
    ip_of = {p.name: p.ip for p in pods}
    assert sorted(e["backend"] for e in entries) == sorted(
        f"{ip_of[kept[c.name]]}:8080" for c in clients)
    table = agent.ctl("bpf", "lb", "affinity", "list").stdout
    assert table.splitlines()[0].split() == ["CLIENT", "SERVICE", "(REVNAT_ID)", "BACKEND",
                                             "(ID)", "AGE"]
    assert sum(f"{VIP}:80" in line and line.startswith("netns ")
               for line in table.splitlines()) == 2, table


HAIRPIN_PATHS = [pytest.param("sock", marks=pytest.mark.kpr("hairpin-socket-lb")),
                 pytest.param("tc", marks=pytest.mark.kpr("hairpin-tc-lb"))]


@pytest.mark.parametrize("path", HAIRPIN_PATHS)
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_hairpin_a_pod_reaches_itself_through_its_own_clusterip(lab1, api, start_agent, path):
    a = lab1.node("a")
    (b0,) = servers(a, 1)
    web(api, [b0], a.name)
    agent = up(lab1, api, start_agent, path)
    n_backends(agent, f"{VIP}:80/TCP", 1)
    res = tcp(b0, VIP, 80, 5, in_cgroup=path == "sock", timeout=2)
    assert all(r["ok"] and r["reply"]["pod"] == "b0" for r in res), res
    assert all(r["peername"] == f"{VIP}:80" for r in res), res
    if path == "tc":
        # The server saw the hairpin address (bpf/lib/lb_hairpin.h), not its own.
        assert all(r["reply"]["peer"].startswith("169.254.42.1:") for r in res), res


@pytest.mark.kpr("hairpin-tc-lb")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_hairpin_udp_a_pod_reaches_itself_through_its_own_clusterip_on_the_tc_path(
        lab1, api, start_agent):
    # The tc LB sends the datagram back into the pod from 169.254.42.1 (bpf/lib/lb_hairpin.h);
    # the server answers that address and the reply comes back from the VIP.
    a = lab1.node("a")
    (b0,) = servers(a, 1)
    web(api, [b0], a.name, ports=(("dns", 53, "UDP", 5353),))
    agent = up(lab1, api, start_agent, "tc")
    n_backends(agent, f"{VIP}:53/UDP", 1)
    for connected in (False, True):
        res = udp(b0, VIP, 53, 3, connected=connected, in_cgroup=False, timeout=2)
        assert all(r["ok"] and r["reply"]["pod"] == "b0" for r in res), res
        assert all(r["from"] == f"{VIP}:53" for r in res), res
        assert all(r["reply"]["peer"].startswith("169.254.42.1:") for r in res), res


@pytest.mark.kpr("multi-port-named")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_multi_port_service_with_named_target_ports(lab1, api, start_agent):
    a = lab1.node("a")
    b0 = a.add_pod("b0")
    serve(b0), serve(b0, tcp_port=9090, udp_port=9053)
    client = a.add_pod("client")
    # targetPort by name: the EndpointSlice carries the number of the pod's named port.
    api.create(k8s.service("default", "web", [
        {"name": "http", "port": 80, "targetPort": "http-web", "protocol": "TCP"},
        {"name": "metrics", "port": 81, "targetPort": "metrics", "protocol": "TCP"}],
        cluster_ip=VIP))
    api.create(k8s.endpointslice("default", "web-1", "web", [(b0.ip, True, a.name)],
                                 [("http", 8080, "TCP"), ("metrics", 9090, "TCP")]))
    agent = up(lab1, api, start_agent)
    wait_for(lambda: agent.lb_frontends().get(f"{VIP}:81/TCP") == [f"{b0.ip}:9090"], 10,
             what="metrics port backend")
    assert agent.lb_frontends()[f"{VIP}:80/TCP"] == [f"{b0.ip}:8080"]
    for port, target in ((80, 8080), (81, 9090)):
        for r in tcp(client, VIP, port, 3):
            assert r["ok"] and r["reply"]["local"] == f"{b0.ip}:{target}", r


@pytest.mark.kpr("tcp-and-udp-same-port")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_same_port_on_tcp_and_udp_udp_removed_stops_udp_only(lab1, api, start_agent):
    a = lab1.node("a")
    b0 = a.add_pod("b0")
    serve(b0, tcp_port=5353, udp_port=5353)
    client = a.add_pod("client")
    ports = (("dns-tcp", 53, "TCP", 5353), ("dns", 53, "UDP", 5353))
    web(api, [b0], a.name, name="dns", ports=ports)
    agent = up(lab1, api, start_agent)
    n_backends(agent, f"{VIP}:53/UDP", 1)
    assert all(r["ok"] and r["reply"]["pod"] == "b0" for r in udp(client, VIP, 53, 3))
    assert answers(client, VIP, 53, 3) == ["b0"] * 3

    t0 = time.monotonic()
    api.patch("services", "default", "dns", {"spec": {"ports": [
        {"name": "dns-tcp", "port": 53, "targetPort": 5353, "protocol": "TCP"}]}})
    cur = api.get("endpointslices", "default", "dns-1")
    cur["ports"] = [{"name": "dns-tcp", "port": 5353, "protocol": "TCP"}]
    api.update(cur)
    wait_for(lambda: f"{VIP}:53/UDP" not in agent.lb_frontends(), 5,
             what="UDP frontend removed")
    wait_for(lambda: not any(r["ok"] for r in udp(client, VIP, 53, 2, timeout=0.5)), 5,
             what="UDP stops")
    assert time.monotonic() - t0 < 10
    assert agent.lb_frontends()[f"{VIP}:53/TCP"] == [f"{b0.ip}:5353"]
    assert answers(client, VIP, 53, 5) == ["b0"] * 5


@pytest.mark.kpr("service-recreated")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_service_deleted_and_recreated_serves_again(lab1, api, start_agent):
    a = lab1.node("a")
    b0, b1 = servers(a, 2)
    client = a.add_pod("client")
    web(api, [b0], a.name)
    agent = up(lab1, api, start_agent)
    wait_for(lambda: answers(client, VIP, 80, 3) == ["b0"] * 3, 10, what="served by b0")

    api.delete("services", "default", "web")
    api.delete("endpointslices", "default", "web-1")
    wait_for(lambda: f"{VIP}:80/TCP" not in agent.lb_frontends(), 10, what="frontend gone")
    assert not any(r["ok"] for r in tcp(client, VIP, 80, 3, timeout=1))

    # Same name, same ClusterIP, another pod behind it.
    web(api, [b1], a.name)
    wait_for(lambda: agent.lb_frontends().get(f"{VIP}:80/TCP") == [f"{b1.ip}:8080"], 10,
             what="recreated frontend")
    assert answers(client, VIP, 80, 10) == ["b1"] * 10


@pytest.mark.kpr("slices-split")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_endpointslices_split_across_two_slices_are_both_used(lab1, api, start_agent):
    a = lab1.node("a")
    b0, b1 = servers(a, 2)
    client = a.add_pod("client")
    web(api, [b0], a.name)
    api.create(k8s.endpointslice("default", "web-2", "web", [(b1.ip, True, a.name)],
                                 [("http", 8080, "TCP")]))
    agent = up(lab1, api, start_agent)
    wait_for(lambda: agent.lb_frontends().get(f"{VIP}:80/TCP") ==
             sorted([f"{b0.ip}:8080", f"{b1.ip}:8080"]), 10, what="both slices' backends")
    assert set(answers(client, VIP, 80, 30)) == {"b0", "b1"}

    api.delete("endpointslices", "default", "web-2")
    wait_for(lambda: agent.lb_frontends().get(f"{VIP}:80/TCP") == [f"{b0.ip}:8080"], 10,
             what="the second slice's backend gone")
    assert answers(client, VIP, 80, 10) == ["b0"] * 10
