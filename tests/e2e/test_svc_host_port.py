"""HostPort in BPF: a pod's spec.containers[].ports[].hostPort, with no iptables.

Node A's agent watches the Pods bound to it; a Pod whose container port has a hostPort
makes (node address, hostPort) and (127.0.0.1, hostPort) frontends with the pod as
their one backend (agent/lb/hostport.h). The world reaches them through the native
device's tc path, pods and the host (in the hooked cgroup) through the socket LB. The
Pod objects name netlab pods (their addresses in status.podIP), whose podtool servers
answer with the pod's name and the address the connection arrived at.

Host ports here are outside the NodePort range (30000-32767): the native device looks
those ports of the node's address up only because they are host ports.
"""

import json
import os

import pytest

import k8s
import realk8s
from harness import PODTOOL, PY, serve, tcp, udp, wait_attached
from netlab import WORLD_IP, wait_for

HOST_TCP, HOST_UDP = 18080, 15353
LOOPBACK = "127.0.0.1"


def pod_namespace(apiserver, api):
    """Where the test's Pods go: on the real apiserver a namespace of the test's own with
    the `default` ServiceAccount the controller manager would make (admission wants it
    for every Pod); on the test one, "default"."""
    if not isinstance(apiserver, realk8s.Scope):
        return "default"
    ns = apiserver.create_namespace("hostport")
    apiserver.create_service_account(ns, "default")
    return ns


def host_port_pod(apiserver, api, ns, name, pod, host_ports=None):
    """The Pod object of netlab pod `pod` on its node, serving podtool's ports (8080/TCP,
    5353/UDP) at host_ports [(containerPort, hostPort, protocol[, hostIP])]. The real
    apiserver keeps no status from a create: it is written through the subresource, as
    the kubelet does."""
    obj = k8s.pod(ns, name, pod.node.name, ip=pod.ip,
                  host_ports=host_ports or [(8080, HOST_TCP, "TCP"), (5353, HOST_UDP, "UDP")])
    api.create(obj)
    if isinstance(apiserver, realk8s.Scope):
        api.patch("pods", ns, name, {"status": obj["status"]}, subresource="status")


def delete_pod(api, ns, name):
    # No grace: with no kubelet a Pod on the real apiserver would wait for one forever.
    api.request("DELETE", k8s._resource("pods").path(ns, name),
                params={"gracePeriodSeconds": 0})


def up(lab, api, start_agent, *flags):
    a = lab.node("a")
    lab.publish(api)
    agent = start_agent(a, *flags)
    wait_attached(agent, a.native, *[p.host_if for p in a.pods.values()])
    return agent


def host(node, proto, ip, port, count=1, timeout=3):
    """podtool's tcp/udp client in the node's own namespace, in a cgroup under the
    agent's (the host's processes the socket LB serves)."""
    r = node.run([PY, str(PODTOOL), proto, ip, str(port), str(count), "--timeout",
                  str(timeout)], cgroup=os.path.join(node.cgroup_root, "host-client"))
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def wait_frontends(agent, want):
    """Until the pinned maps hold exactly `want` ({"ip:port/PROTO": [backends]}) among
    the host port frontends."""
    ports = (f":{HOST_TCP}/", f":{HOST_UDP}/")

    def ours():
        got = {k: v for k, v in agent.lb_frontends().items() if any(p in k for p in ports)}
        return got == want
    return wait_for(ours, 15, what=f"host port frontends {want}")


@pytest.mark.kpr("host-port")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_host_port_from_the_world_pods_and_the_host(lab1, apiserver, api, start_agent):
    a, world = lab1.node("a"), lab1.world
    b1, client = a.add_pod("b1"), a.add_pod("client")
    serve(b1)
    agent = up(lab1, api, start_agent)
    ns = pod_namespace(apiserver, api)
    host_port_pod(apiserver, api, ns, "web", b1)
    be_tcp, be_udp = [f"{b1.ip}:8080"], [f"{b1.ip}:5353"]
    wait_frontends(agent, {f"{a.ip}:{HOST_TCP}/TCP": be_tcp, f"{LOOPBACK}:{HOST_TCP}/TCP": be_tcp,
                           f"{a.ip}:{HOST_UDP}/UDP": be_udp,
                           f"{LOOPBACK}:{HOST_UDP}/UDP": be_udp})

    # The world, through the native device: DNAT to the pod, the client's address kept.
    for r in tcp(world, a.ip, HOST_TCP, 3):
        assert r["ok"], r
        assert r["reply"]["pod"] == "b1" and r["reply"]["local"] == f"{b1.ip}:8080"
        assert r["reply"]["peer"].startswith(WORLD_IP + ":")
        assert r["peername"] == f"{a.ip}:{HOST_TCP}"
    for r in udp(world, a.ip, HOST_UDP, 3):
        assert r["ok"], r
        assert r["from"] == f"{a.ip}:{HOST_UDP}"         # answered from the host port
        assert r["reply"]["pod"] == "b1"

    # A pod, through the socket LB, at the node's address.
    for r in tcp(client, a.ip, HOST_TCP, 2) + udp(client, a.ip, HOST_UDP, 2):
        assert r["ok"] and r["reply"]["pod"] == "b1", r
    # Its own loopback is its own: nothing listens there.
    assert tcp(client, LOOPBACK, HOST_TCP, 1)[0] == {"ok": False, "errno": "ECONNREFUSED"}

    # The host, on 127.0.0.1 and on its own address, TCP and UDP.
    for r in host(a, "tcp", LOOPBACK, HOST_TCP, 2) + host(a, "tcp", a.ip, HOST_TCP, 2):
        assert r["ok"] and r["reply"]["pod"] == "b1", r
        assert r["reply"]["local"] == f"{b1.ip}:8080"
    for r in host(a, "udp", LOOPBACK, HOST_UDP, 2):
        assert r["ok"] and r["reply"]["pod"] == "b1", r
        assert r["from"] == f"{LOOPBACK}:{HOST_UDP}"      # the frontend, not the pod

    # agentctl service list: the pod's frontends, type HostPort, realized.
    rows = [s for s in agent.ctl_json("service", "list") if s["type"] == "HostPort"]
    assert sorted((s["frontend"], s["service"], s["backends"][0]["address"],
                   s["backends"][0]["port"], s["realized"]) for s in rows) == sorted([
        (f"{a.ip}:{HOST_TCP}/TCP", f"{ns}/web", b1.ip, 8080, True),
        (f"{LOOPBACK}:{HOST_TCP}/TCP", f"{ns}/web", b1.ip, 8080, True),
        (f"{a.ip}:{HOST_UDP}/UDP", f"{ns}/web", b1.ip, 5353, True),
        (f"{LOOPBACK}:{HOST_UDP}/UDP", f"{ns}/web", b1.ip, 5353, True)])
    # bpf lb list: the maps' own view names the flag.
    assert {fe["frontend"]: fe["flags"] for fe in agent.ctl_json("bpf", "lb", "list")
            if fe["frontend"].endswith(f":{HOST_TCP}/TCP")} == {
        f"{a.ip}:{HOST_TCP}/TCP": ["HostPort"], f"{LOOPBACK}:{HOST_TCP}/TCP": ["HostPort"]}
    table = agent.ctl("service", "list").stdout
    assert any(f"{ns}/web" in line and "HostPort" in line for line in table.splitlines())

    # The Pod goes: so does its host port, everywhere.
    delete_pod(api, ns, "web")
    wait_frontends(agent, {})
    assert tcp(world, a.ip, HOST_TCP, 1, timeout=1)[0] == {"ok": False,
                                                            "errno": "ECONNREFUSED"}
    assert host(a, "tcp", LOOPBACK, HOST_TCP, 1)[0] == {"ok": False, "errno": "ECONNREFUSED"}
    assert tcp(client, a.ip, HOST_TCP, 1)[0] == {"ok": False, "errno": "ECONNREFUSED"}
    assert not [s for s in agent.ctl_json("service", "list")
                if s["type"] == "HostPort"]


@pytest.mark.kpr("host-port")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_host_port_conflict_and_host_ip(lab1, apiserver, api, start_agent):
    a, world = lab1.node("a"), lab1.world
    b1, b2 = a.add_pod("b1"), a.add_pod("b2")
    serve(b1), serve(b2)
    agent = up(lab1, api, start_agent)
    ns = pod_namespace(apiserver, api)
    host_port_pod(apiserver, api, ns, "first", b1, [(8080, HOST_TCP, "TCP")])
    wait_frontends(agent, {f"{a.ip}:{HOST_TCP}/TCP": [f"{b1.ip}:8080"],
                           f"{LOOPBACK}:{HOST_TCP}/TCP": [f"{b1.ip}:8080"]})
    # A second pod wants the same port: the older one keeps it, the other is logged.
    host_port_pod(apiserver, api, ns, "second", b2, [(8080, HOST_TCP, "TCP")])
    wait_for(lambda: "host port conflict" in agent.log_tail(200), 10, what="conflict logged")
    assert f"pod={ns}/second" in agent.log_tail(200)
    assert all(r["ok"] and r["reply"]["pod"] == "b1" for r in tcp(world, a.ip, HOST_TCP, 3))
    # The holder goes: the other takes the port.
    delete_pod(api, ns, "first")
    wait_frontends(agent, {f"{a.ip}:{HOST_TCP}/TCP": [f"{b2.ip}:8080"],
                           f"{LOOPBACK}:{HOST_TCP}/TCP": [f"{b2.ip}:8080"]})
    assert all(r["ok"] and r["reply"]["pod"] == "b2" for r in tcp(world, a.ip, HOST_TCP, 3))

    # hostIP 127.0.0.1: the host's loopback only, not the node's address.
    host_port_pod(apiserver, api, ns, "local", b1, [(5353, HOST_UDP, "UDP", LOOPBACK)])
    wait_frontends(agent, {f"{a.ip}:{HOST_TCP}/TCP": [f"{b2.ip}:8080"],
                           f"{LOOPBACK}:{HOST_TCP}/TCP": [f"{b2.ip}:8080"],
                           f"{LOOPBACK}:{HOST_UDP}/UDP": [f"{b1.ip}:5353"]})
    r = host(a, "udp", LOOPBACK, HOST_UDP, 1)[0]
    assert r["ok"] and r["reply"]["pod"] == "b1", r
    assert udp(world, a.ip, HOST_UDP, 1, timeout=1)[0]["ok"] is False
