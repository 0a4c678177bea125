"""The rest of Kubernetes' Service e2e behaviours in the catalogue, with real traffic:
ports added to and removed from a live Service, and several Services over the same pods.

Node A (netlab lab1) runs the agent, the clients are pods on A going through the socket
LB. Each test runs against the test apiserver and against the real one (v1.26).
"""

import pytest

import k8s
from harness import serve, tcp
from netlab import wait_for
from test_service_conformance_2 import answers, n_backends, servers, up, web

VIP = "10.96.31.10"
VIP2 = "10.96.31.11"
HTTP = {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
ADMIN = {"name": "admin", "port": 81, "targetPort": 9090, "protocol": "TCP"}


def set_ports(api, svc_ports, slice_ports):
    """The Service's ports, then its slice's, as the endpointslice controller follows."""
    api.patch("services", "default", "web", {"spec": {"ports": svc_ports}})
    cur = api.get("endpointslices", "default", "web-1")
    cur["ports"] = [{"name": n, "port": p, "protocol": "TCP"} for n, p in slice_ports]
    api.update(cur)


def not_served(client, ip, port):
    res = tcp(client, ip, port, 3, timeout=1)
    return not any(r["ok"] for r in res)


def frontend(agent, fe):
    """The frontend's row of `bpf lb list` (its rev-NAT id and backend ids included)."""
    return next((r for r in agent.ctl_json("bpf", "lb", "list") if r["frontend"] == fe), None)


@pytest.mark.kpr("ports-added-removed")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_port_added_live_is_reached_then_the_first_removed_leaves_it_untouched(
        lab1, api, start_agent):
    a = lab1.node("a")
    b0 = a.add_pod("b0")
    serve(b0), serve(b0, tcp_port=9090, udp_port=9053)
    client = a.add_pod("client")
    web(api, [b0], a.name)
    agent = up(lab1, api, start_agent)
    n_backends(agent, f"{VIP}:80/TCP", 1)
    assert answers(client, VIP, 80, 3) == ["b0"] * 3
    assert not_served(client, VIP, 81)

    # A second port, live: reached on its own target port.
    set_ports(api, [HTTP, ADMIN], [("http", 8080), ("admin", 9090)])
    wait_for(lambda: agent.lb_frontends().get(f"{VIP}:81/TCP") == [f"{b0.ip}:9090"], 10,
             what="the added port's backend")
    for port, target in ((80, 8080), (81, 9090)):
        for r in tcp(client, VIP, port, 5):
            assert r["ok"] and r["reply"]["local"] == f"{b0.ip}:{target}", r
    before = frontend(agent, f"{VIP}:81/TCP")

    # The first port removed: no longer served; the second keeps its entries as they were.
    set_ports(api, [ADMIN], [("admin", 9090)])
    wait_for(lambda: f"{VIP}:80/TCP" not in agent.lb_frontends(), 10,
             what="the removed port's frontend gone")
    assert not_served(client, VIP, 80)
    assert frontend(agent, f"{VIP}:81/TCP") == before
    for r in tcp(client, VIP, 81, 10):
        assert r["ok"] and r["reply"]["local"] == f"{b0.ip}:9090", r


@pytest.mark.kpr("same-selector-services")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_two_services_over_the_same_pods_both_served_one_deleted_leaves_the_other(
        lab1, api, start_agent):
    a = lab1.node("a")
    pods = servers(a, 2)
    for p in pods:
        serve(p, tcp_port=9090, udp_port=9053)
    client = a.add_pod("client")
    # One selector, two Services: each has its own ClusterIP, port and slice.
    selector = {"app": "web"}
    web(api, pods, a.name, selector=selector)
    web(api, pods, a.name, name="admin", vip=VIP2, ports=(("admin", 8081, "TCP", 9090),),
        selector=selector)
    agent = up(lab1, api, start_agent)
    n_backends(agent, f"{VIP}:80/TCP", 2)
    n_backends(agent, f"{VIP2}:8081/TCP", 2)
    both = {"b0", "b1"}
    wait_for(lambda: set(answers(client, VIP, 80, 30)) == both, 10, what="web over both")
    wait_for(lambda: set(answers(client, VIP2, 8081, 30)) == both, 10, what="admin over both")
    for r in tcp(client, VIP2, 8081, 5):
        assert r["ok"] and r["reply"]["local"].endswith(":9090"), r

    api.delete("services", "default", "web")
    api.delete("endpointslices", "default", "web-1")
    wait_for(lambda: f"{VIP}:80/TCP" not in agent.lb_frontends(), 10, what="web's frontend gone")
    assert not_served(client, VIP, 80)
    assert agent.lb_frontends()[f"{VIP2}:8081/TCP"] == sorted(f"{p.ip}:9090" for p in pods)
    assert set(answers(client, VIP2, 8081, 30)) == both
