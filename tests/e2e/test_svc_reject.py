"""A Service without endpoints refuses, on every path, as kube-proxy's REJECT does.

Kubernetes' e2e ("should be rejected when no endpoints exist") wants a prompt
ECONNREFUSED, not a timeout. The socket LB refuses at connect(); these tests take the
paths it does not see: a pod outside every hooked cgroup with --bpf-lb-sock=false (tc
LB at the pod's host-side device) and a client in the world namespace (NodePort at the
native device). The datapath answers a TCP SYN with a RST and a UDP datagram with an
ICMP port unreachable (bpf/lib/reject.h), counted as DROP_SVC_NO_BACKEND_REJECTED and
reported by `agentctl monitor`.
"""

import select
import signal
import subprocess
import time

import pytest

import k8s
from harness import AGENTCTL, metric_packets, reason, tcp, udp, wait_attached

VIP = "10.96.30.10"
PORTS = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
         {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]
REJECTED = "DROP_SVC_NO_BACKEND_REJECTED"


def up(lab, api, start_agent, *flags):
    a = lab.node("a")
    lab.publish(api)
    agent = start_agent(a, *flags)
    wait_attached(agent, a.native, *[p.host_if for p in a.pods.values()])
    return agent


def empty_service(api, name, node_ports=(), **spec):
    """A Service whose one EndpointSlice lists no endpoint (every pod gone)."""
    ports = [dict(p) for p in PORTS]
    for p, np in zip(ports, node_ports):
        p["nodePort"] = np
    api.create(k8s.service("default", name, ports, **spec))
    api.create(k8s.endpointslice("default", f"{name}-1", name, [],
                                 [("http", 8080, "TCP"), ("dns", 5353, "UDP")]))


def refused_promptly(results, started):
    assert [r.get("errno") for r in results] == ["ECONNREFUSED"] * len(results), results
    # Refused, not timed out: far below the clients' 3 s timeout.
    assert time.monotonic() - started < 2.5


@pytest.mark.kpr("reject-tc-lb")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_clusterip_without_endpoints_refuses_through_tc_lb(lab1, api, start_agent):
    a = lab1.node("a")
    client = a.add_pod("client")
    empty_service(api, "empty", cluster_ip=VIP)
    agent = up(lab1, api, start_agent, "--bpf-lb-sock=false")

    mon = subprocess.Popen([str(AGENTCTL), "--bpf-root", agent.bpf_root, "monitor",
                            "--type", "drop"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        assert select.select([mon.stderr], [], [], 10)[0], "agentctl monitor did not start"
        assert mon.stderr.readline().startswith("Listening for ")

        t0 = time.monotonic()
        refused_promptly(tcp(client, VIP, 80, 3, in_cgroup=False), t0)
        t0 = time.monotonic()
        # A connected UDP socket: the ICMP error quoting its datagram fails its recv.
        refused_promptly(udp(client, VIP, 53, 3, connected=True, in_cgroup=False), t0)
    finally:
        mon.send_signal(signal.SIGINT)
        out, _ = mon.communicate(timeout=10)

    assert metric_packets(agent, reason(REJECTED)) == 6
    assert metric_packets(agent, reason("DROP_NO_SERVICE_BACKEND")) == 0
    # The drop events name the reason and carry the client's packets to the VIP.
    tag = f"drop (Service backend not found (rejected), {reason(REJECTED)})"
    lines = [line for line in out.splitlines() if tag in line]
    assert len(lines) == 6, out
    assert sum(f"-> {VIP}:80 tcp SYN" in line for line in lines) == 3, out
    assert sum(f"-> {VIP}:53 udp" in line for line in lines) == 3, out
    # Nothing was tracked for flows that never reached a backend.
    flows = agent.ctl_json("bpf", "ct", "list", "global")
    assert not [e for e in flows if e.get("destination") == VIP], flows


@pytest.mark.kpr("reject-nodeport")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_nodeport_without_endpoints_refuses_the_world(lab1, api, start_agent):
    a, world = lab1.node("a"), lab1.world
    empty_service(api, "empty", type="NodePort", node_ports=(30180, 30153))
    agent = up(lab1, api, start_agent)

    t0 = time.monotonic()
    refused_promptly(tcp(world, a.ip, 30180, 3), t0)
    t0 = time.monotonic()
    refused_promptly(udp(world, a.ip, 30153, 3, connected=True), t0)
    assert metric_packets(agent, reason(REJECTED)) == 6
    assert metric_packets(agent, reason("DROP_NO_SERVICE_BACKEND")) == 0
