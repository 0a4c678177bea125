"""Topology aware routing (zone hints) across two nodes, with real traffic.

Nodes A and B (netlab lab2) are labelled topology.kubernetes.io/zone zone-a and zone-b,
each runs its agent and two backend pods; the Service's EndpointSlice carries the hints
the endpointslice controller writes (hints.forZones). kube-proxy's rule: a Service that
asks for it (annotation service.kubernetes.io/topology-aware-hints or topology-mode, or
spec.trafficDistribution PreferClose) is served on a node by the endpoints hinted for
the node's zone, provided every ready endpoint has a hint and one names that zone;
otherwise by all of them. Clients are pods in the node's hooked cgroup (socket LB).
"""

import pytest

import k8s
from harness import serve, tcp
from netlab import wait_for
from test_two_nodes import cluster

VIP = "10.96.32.10"
FE = f"{VIP}:80/TCP"
ZONE_LABEL = "topology.kubernetes.io/zone"
HINTS = "service.kubernetes.io/topology-aware-hints"
ENABLE = {
    "topology-aware-hints": {"metadata": {"annotations": {HINTS: "auto"}}},
    "topology-mode": {"metadata": {"annotations": {"service.kubernetes.io/topology-mode":
                                                   "Auto"}}},
    "trafficDistribution": {"spec": {"trafficDistribution": "PreferClose"}},
}


def zoned_lab(lab2, api, start_agent, hint=None):
    """Two backends per node, each hinted for its node's zone (or all for `hint`); the
    Service without topology asked for yet. Returns (agents, {node: [pods]})."""
    a, b = lab2.node("a"), lab2.node("b")
    pods = {a: [a.add_pod("pa1"), a.add_pod("pa2")], b: [b.add_pod("pb1"), b.add_pod("pb2")]}
    for p in pods[a] + pods[b]:
        serve(p)
    zone = {a: "zone-a", b: "zone-b"}
    api.create(k8s.service("default", "web", [("http", 80, "TCP", 8080)], cluster_ip=VIP))
    api.create(k8s.endpointslice(
        "default", "web-1", "web",
        [(p.ip, True, n.name, zone[n], [hint or zone[n]]) for n in (a, b) for p in pods[n]],
        [("http", 8080, "TCP")]))
    agents = cluster(lab2, api, start_agent)
    for n in (a, b):
        label(api, n, zone[n])
    return agents, pods


def label(api, node, zone):
    api.patch("nodes", None, node.name, {"metadata": {"labels": {ZONE_LABEL: zone}}})


def backends(agent, pods):
    want = sorted(f"{p.ip}:8080" for p in pods)
    return wait_for(lambda: agent.lb_frontends().get(FE) == want, 10,
                    what=f"{FE} served by {sorted(p.name for p in pods)}")


def reached(client, n=40):
    res = tcp(client, VIP, 80, n, timeout=2)
    assert all(r["ok"] for r in res), res
    return {r["reply"]["pod"] for r in res}


def names(pods):
    return {p.name for p in pods}


# spec.trafficDistribution is a 1.30 field: the real (1.26) apiserver drops it.
@pytest.mark.kpr("prefer-close")
@pytest.mark.parametrize("apiserver, enable",
                         [("test", e) for e in ENABLE] + [("real", "topology-aware-hints"),
                                                          ("real", "topology-mode")],
                         indirect=["apiserver"])
def test_a_client_reaches_only_its_zones_backends(lab2, api, start_agent, enable):
    a, b = lab2.node("a"), lab2.node("b")
    agents, pods = zoned_lab(lab2, api, start_agent)
    ca, cb = a.add_pod("ca"), b.add_pod("cb")
    backends(agents["a"], pods[a] + pods[b])

    api.patch("services", "default", "web", ENABLE[enable])
    backends(agents["a"], pods[a])
    backends(agents["b"], pods[b])
    assert reached(ca) == names(pods[a])
    assert reached(cb) == names(pods[b])


@pytest.mark.kpr("prefer-close")
def test_a_client_in_a_zone_without_endpoints_is_still_served(lab2, api, start_agent):
    a, b = lab2.node("a"), lab2.node("b")
    # Every endpoint hinted for zone-a (the controller may give a small zone none).
    agents, pods = zoned_lab(lab2, api, start_agent, hint="zone-a")
    cb = b.add_pod("cb")
    api.patch("services", "default", "web", ENABLE["topology-aware-hints"])
    backends(agents["a"], pods[a] + pods[b])
    backends(agents["b"], pods[a] + pods[b])
    assert reached(cb) == names(pods[a] + pods[b])


@pytest.mark.kpr("prefer-close")
def test_hints_follow_the_annotation_and_the_zone_live(lab2, api, start_agent):
    a = lab2.node("a")
    agents, pods = zoned_lab(lab2, api, start_agent)
    ca = a.add_pod("ca")
    everyone = pods[a] + pods[lab2.node("b")]
    backends(agents["a"], everyone)
    assert reached(ca) == names(everyone)

    api.patch("services", "default", "web", ENABLE["topology-aware-hints"])
    backends(agents["a"], pods[a])
    assert reached(ca) == names(pods[a])
    status = agents["a"].ctl("status", "--verbose", check=False).stdout.splitlines()
    assert "  Topology Aware Hints:   Enabled (1 service(s), zone zone-a)" in status, status

    # Node A moves to zone-b: its agent follows B's endpoints.
    label(api, a, "zone-b")
    backends(agents["a"], pods[lab2.node("b")])
    assert reached(ca) == names(pods[lab2.node("b")])
    label(api, a, "zone-a")
    backends(agents["a"], pods[a])

    # Disabled: every endpoint again.
    api.patch("services", "default", "web", {"metadata": {"annotations": {HINTS: "disabled"}}})
    backends(agents["a"], everyone)
    assert reached(ca) == names(everyone)
    kpr = agents["a"].status()["kube_proxy_replacement"]
    assert kpr["topology_aware_hints"] == {"zone": "zone-a", "services": 0}, kpr
