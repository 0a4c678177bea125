"""Traffic policies and terminating endpoints on two nodes, with real traffic.

Nodes A and B (netlab lab2: native devices ext0 192.168.50.10 and .11 on the world
network, pods on 10.244.1.0/24 and 10.244.2.0/24), each with its agent; the world
namespace plays the external client, and routes a LoadBalancer ingress IP to the node a
test picks. A "hostNetwork" client or backend is a process in a node's own namespace:
a client in the node's hooked cgroup (its sockets go through the socket LB, as a host
process's do under a kube-proxy replacement), a backend outside any test cgroup.

What Kubernetes (kube-proxy 1.26) does, and these tests expect:
- externalTrafficPolicy Local: external clients of a NodePort or LoadBalancer IP reach
  only the receiving node's endpoints, with their own source address; a node with none
  drops them (counted as DROP_NO_LOCAL_BACKEND). Clients on the node itself (pods and
  host processes) are not external: they reach every endpoint of the Service.
- externalTrafficPolicy Cluster: any node answers, SNATed to the node when the
  endpoint is elsewhere.
- internalTrafficPolicy Local: ClusterIP clients reach only their own node's endpoints,
  none elsewhere; no fallback to another node.
- Terminating endpoints (ready=false, serving=true, terminating=true) keep their
  established flows and take new ones only when no ready endpoint is left for the
  policy (under Local: on this node); serving=false ones take none.
"""

import json
import subprocess

import pytest

import k8s
from harness import PODTOOL, PY, metric_packets, reason, serve, tcp, udp
from netlab import WORLD_IP, wait_for
from test_two_nodes import cluster

VIP = "10.96.40.10"
LB_IP = "203.0.113.90"
HTTP = {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
DNS = {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}
ECHO = {"name": "echo", "port": 90, "targetPort": 9090, "protocol": "TCP"}
EPS_PORTS = [("http", 8080, "TCP"), ("dns", 5353, "UDP"), ("echo", 9090, "TCP")]
NO_LOCAL = "DROP_NO_LOCAL_BACKEND"

# A line-echo server that keeps its connections open: "NAME LINE" for every line.
ECHO_SERVER = """
import socket, sys, threading
name = sys.argv[1]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9090))
s.listen(16)
print("ready", flush=True)
def talk(c):
    f = c.makefile("rb")
    for line in f:
        c.sendall(name.encode() + b" " + line)
while True:
    c, _ = s.accept()
    threading.Thread(target=talk, args=(c,), daemon=True).start()
"""

# One connection, kept: each stdin line is sent, the reply printed ("ERR ..." when the
# connection fails).
ECHO_CLIENT = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
f = s.makefile("rb")
print("connected", flush=True)
for line in sys.stdin:
    try:
        s.sendall(line.encode())
        print(f.readline().decode().strip() or "ERR closed", flush=True)
    except OSError as e:
        print("ERR", e, flush=True)
"""


def ep(ip, node, ready=True, serving=None, terminating=False):
    """An EndpointSlice endpoint with explicit conditions (serving defaults to ready)."""
    return {"addresses": [ip], "nodeName": node,
            "conditions": {"ready": ready, "serving": ready if serving is None else serving,
                           "terminating": terminating}}


def terminating(ip, node, serving=True):
    return ep(ip, node, ready=False, serving=serving, terminating=True)


def service(api, name, endpoints, vip=VIP, type="ClusterIP", node_ports=(), **spec):
    """Service name (http/TCP 80, dns/UDP 53, echo/TCP 90) over endpoints, in slice name-1."""
    ports = [dict(p) for p in (HTTP, DNS, ECHO)]
    for p, np in zip(ports, node_ports):
        p["nodePort"] = np
    api.create(k8s.service("default", name, ports, cluster_ip=vip, type=type, **spec))
    api.create(k8s.endpointslice("default", f"{name}-1", name, endpoints, EPS_PORTS))


def set_endpoints(api, name, endpoints):
    cur = api.get("endpointslices", "default", f"{name}-1")
    cur["endpoints"] = endpoints
    api.update(cur)


def set_lb_ip(api, name):
    svc = api.get("services", "default", name)
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": LB_IP}]}}
    api.update_status(svc)


def lb_ip_via(world, node):
    """The world's route to the LoadBalancer IP: the load balancer picked node."""
    world.exec("ip", "route", "replace", f"{LB_IP}/32", "via", node.ip)


def backends(agent, frontend, scope="external"):
    """Backend "ip:port" of one frontend scope, from `agentctl bpf lb list`."""
    for fe in agent.ctl_json("bpf", "lb", "list"):
        if fe["frontend"] == frontend and fe.get("scope", "external") == scope:
            return sorted(f"{b['address']}:{b['port']}" for b in fe.get("backends", []))
    return None


def programmed(agent, frontend, want, scope="external"):
    wait_for(lambda: backends(agent, frontend, scope) == sorted(want), 10,
             what=f"{frontend} ({scope}) -> {want}")


def pods(results):
    return {r["reply"]["pod"] if r["ok"] else r["errno"] for r in results}


def host_tcp(node, ip, port, count=1, timeout=3):
    """A hostNetwork client: podtool in the node's namespace and its hooked cgroup."""
    argv = [PY, str(PODTOOL), "tcp", ip, str(port), str(count), "--timeout", str(timeout)]
    r = node.run(argv, cgroup=f"{node.cgroup_root}/host-client")
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def echo_server(pod):
    p = pod.spawn([PY, "-c", ECHO_SERVER, pod.name], in_cgroup=False, stdout=subprocess.PIPE)
    assert p.stdout.readline().decode().strip() == "ready"


class EchoClient:
    """One long-lived TCP connection from a pod to ip:port."""

    def __init__(self, pod, ip, port, in_cgroup=True):
        kw = {"in_cgroup": in_cgroup} if hasattr(pod, "cgroup") else {}
        self.p = pod.spawn([PY, "-c", ECHO_CLIENT, ip, str(port)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, **kw)
        line = self.p.stdout.readline().decode().strip()
        assert line == "connected", line

    def say(self, text):
        """The backend that echoed text (its pod name), or "ERR ..." ."""
        self.p.stdin.write(text.encode() + b"\n")
        self.p.stdin.flush()
        reply = self.p.stdout.readline().decode().strip()
        if reply.startswith("ERR") or not reply:
            return reply or "ERR eof"
        name, _, echoed = reply.partition(" ")
        assert echoed == text, reply
        return name

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=5)


def serve_all(*pods):
    for pod in pods:
        serve(pod)
        echo_server(pod)


# -- externalTrafficPolicy ----------------------------------------------------------------

@pytest.mark.kpr("etp-local")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_etp_local_nodeport_and_load_balancer(lab2, api, start_agent):
    a, b, world = lab2.node("a"), lab2.node("b"), lab2.world
    pa, cb = a.add_pod("pa"), b.add_pod("cb")
    serve_all(pa)
    service(api, "web", [ep(pa.ip, a.name)], type="LoadBalancer",
            node_ports=(30100, 30101, 30102), externalTrafficPolicy="Local")
    set_lb_ip(api, "web")
    agents = cluster(lab2, api, start_agent)
    programmed(agents["a"], f"{LB_IP}:80/TCP", [f"{pa.ip}:8080"])
    programmed(agents["b"], f"{LB_IP}:80/TCP", [])

    # Node A holds the endpoint: NodePort and LoadBalancer IP answer with the client's
    # own address at the backend (no SNAT).
    lb_ip_via(world, a)
    for ip, port in ((a.ip, 30100), (LB_IP, 80)):
        res = tcp(world, ip, port, 3)
        assert pods(res) == {"pa"}, res
        assert all(r["reply"]["peer"].startswith(WORLD_IP + ":") for r in res), res
    res = udp(world, a.ip, 30101, 2) + udp(world, LB_IP, 53, 2)
    assert pods(res) == {"pa"} and all(r["reply"]["peer"].startswith(WORLD_IP + ":")
                                       for r in res), res

    # Node B has none: external clients are dropped there, with the reason counted,
    # though A's endpoint is ready.
    lb_ip_via(world, b)
    before = metric_packets(agents["b"], reason(NO_LOCAL))
    res = (tcp(world, b.ip, 30100, 2, timeout=1) + tcp(world, LB_IP, 80, 2, timeout=1) +
           udp(world, b.ip, 30101, 1, timeout=1) + udp(world, LB_IP, 53, 1, timeout=1))
    assert pods(res) == {"ETIMEDOUT"}, res
    assert metric_packets(agents["b"], reason(NO_LOCAL)) >= before + 6
    assert metric_packets(agents["a"], reason(NO_LOCAL)) == 0

    # A pod on B is no external client: B's NodePort and the LoadBalancer IP take it to
    # A's endpoint (the frontends' internal scope), by socket LB and tc LB alike.
    assert backends(agents["b"], f"{b.ip}:30100/TCP", "internal") == [f"{pa.ip}:8080"]
    for in_cgroup in (True, False):
        res = (tcp(cb, b.ip, 30100, 2, in_cgroup=in_cgroup) +
               tcp(cb, LB_IP, 80, 2, in_cgroup=in_cgroup) +
               udp(cb, LB_IP, 53, 1, in_cgroup=in_cgroup))
        assert pods(res) == {"pa"}, res


@pytest.mark.kpr("etp-cluster")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_etp_cluster_nodeport_and_load_balancer(lab2, api, start_agent):
    a, b, world = lab2.node("a"), lab2.node("b"), lab2.world
    pa = a.add_pod("pa")
    serve_all(pa)
    service(api, "web", [ep(pa.ip, a.name)], type="LoadBalancer",
            node_ports=(30103, 30104, 30105), externalTrafficPolicy="Cluster")
    set_lb_ip(api, "web")
    agents = cluster(lab2, api, start_agent)
    for agent in agents.values():
        programmed(agent, f"{LB_IP}:80/TCP", [f"{pa.ip}:8080"])

    # Either node answers; B forwards to A's endpoint SNATed to itself.
    for node in (a, b):
        lb_ip_via(world, node)
        res = tcp(world, node.ip, 30103, 3) + tcp(world, LB_IP, 80, 3)
        assert pods(res) == {"pa"}, res
        res += udp(world, node.ip, 30104, 2) + udp(world, LB_IP, 53, 2)
        assert pods(res) == {"pa"}, res
        if node is b:
            assert all(r["reply"]["peer"].startswith(b.ip + ":") for r in res), res
    assert metric_packets(agents["b"], reason(NO_LOCAL)) == 0


# -- internalTrafficPolicy ----------------------------------------------------------------

@pytest.mark.kpr("itp-local")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_itp_local_serves_only_clients_on_the_backends_node(lab2, api, start_agent):
    a, b = lab2.node("a"), lab2.node("b")
    pa, ca, cb = a.add_pod("pa"), a.add_pod("ca"), b.add_pod("cb")
    serve_all(pa)
    service(api, "web", [ep(pa.ip, a.name)], internalTrafficPolicy="Local")
    agents = cluster(lab2, api, start_agent)
    programmed(agents["a"], f"{VIP}:80/TCP", [f"{pa.ip}:8080"])
    programmed(agents["b"], f"{VIP}:80/TCP", [])

    # On A: socket LB and tc LB both reach the local endpoint.
    for in_cgroup in (True, False):
        res = tcp(ca, VIP, 80, 3, in_cgroup=in_cgroup) + udp(ca, VIP, 53, 2,
                                                             in_cgroup=in_cgroup)
        assert pods(res) == {"pa"}, res
    # On B: no local endpoint, and no fallback to A's: refused by the socket LB, dropped
    # by the tc LB (counted).
    assert pods(tcp(cb, VIP, 80, 2)) == {"ECONNREFUSED"}
    before = metric_packets(agents["b"], reason(NO_LOCAL))
    res = tcp(cb, VIP, 80, 2, in_cgroup=False, timeout=1) + udp(cb, VIP, 53, 1,
                                                              in_cgroup=False, timeout=1)
    assert pods(res) == {"ETIMEDOUT"}, res
    assert metric_packets(agents["b"], reason(NO_LOCAL)) >= before + 3


# -- hostNetwork clients and backends ------------------------------------------------------

@pytest.mark.kpr("host-network-clients-backends")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_host_network_clients_under_local_policies(lab2, api, start_agent):
    a, b, world = lab2.node("a"), lab2.node("b"), lab2.world
    pa, pb, ca = a.add_pod("pa"), b.add_pod("pb"), a.add_pod("ca")
    serve_all(pa, pb)
    # ITP Local ClusterIP with an endpoint on A only.
    service(api, "itp", [ep(pa.ip, a.name)], internalTrafficPolicy="Local")
    # ETP Local NodePort with an endpoint on B only.
    service(api, "etp", [ep(pb.ip, b.name)], vip="10.96.40.11", type="NodePort",
            node_ports=(30110, 30111, 30112), externalTrafficPolicy="Local")
    agents = cluster(lab2, api, start_agent)
    programmed(agents["a"], f"{VIP}:80/TCP", [f"{pa.ip}:8080"])
    programmed(agents["b"], f"{VIP}:80/TCP", [])
    programmed(agents["a"], f"{a.ip}:30110/TCP", [])
    programmed(agents["b"], f"{b.ip}:30110/TCP", [f"{pb.ip}:8080"])

    # ClusterIP, ITP Local: the host of the endpoint's node reaches it, B's host does not.
    assert pods(host_tcp(a, VIP, 80, 3)) == {"pa"}
    assert pods(host_tcp(b, VIP, 80, 2, timeout=1)) == {"ECONNREFUSED"}

    # NodePort, ETP Local: A has no local endpoint, so the world is dropped there...
    assert pods(tcp(world, a.ip, 30110, 1, timeout=1)) == {"ETIMEDOUT"}
    # ... but a client on A itself is not external: host and pod reach B's endpoint
    # through A's NodePort, as kube-proxy routes them to the cluster-wide endpoints.
    assert pods(host_tcp(a, a.ip, 30110, 3)) == {"pb"}
    assert pods(tcp(ca, a.ip, 30110, 3)) == {"pb"}
    assert pods(tcp(ca, a.ip, 30110, 3, in_cgroup=False)) == {"pb"}
    # B's host reaches its own NodePort's endpoint, and so does the world.
    assert pods(host_tcp(b, b.ip, 30110, 3)) == {"pb"}
    res = tcp(world, b.ip, 30110, 3)
    assert pods(res) == {"pb"} and all(r["reply"]["peer"].startswith(WORLD_IP + ":")
                                       for r in res), res


@pytest.mark.kpr("host-network-clients-backends")
# The real apiserver serves the Local case only: the objects differ by one field.
@pytest.mark.parametrize("apiserver,policy", [("test", "Cluster"), ("test", "Local"),
                                              ("real", "Local")], indirect=["apiserver"])
def test_host_network_backend_serves_clusterip_and_nodeport(lab2, api, start_agent, policy):
    a, b, world = lab2.node("a"), lab2.node("b"), lab2.world
    ca, cb = a.add_pod("ca"), b.add_pod("cb")
    serve(b)                                # hostNetwork server on node B's address
    service(api, "web", [ep(b.ip, b.name)], type="NodePort", node_ports=(30120, 30121, 30122),
            externalTrafficPolicy=policy)
    agents = cluster(lab2, api, start_agent)
    programmed(agents["a"], f"{VIP}:80/TCP", [f"{b.ip}:8080"])
    programmed(agents["b"], f"{b.ip}:30120/TCP", [f"{b.ip}:8080"])

    # ClusterIP from pods on both nodes (socket LB and tc LB) and from A's host.
    for client in (ca, cb):
        for in_cgroup in (True, False):
            res = tcp(client, VIP, 80, 2, in_cgroup=in_cgroup)
            assert pods(res) == {b.name}, res
            assert all(r["reply"]["peer"].startswith(client.ip + ":") for r in res), res
            assert pods(udp(client, VIP, 53, 1, in_cgroup=in_cgroup)) == {b.name}
    assert pods(host_tcp(a, VIP, 80, 2)) == {b.name}
    # NodePort from the world: B serves it with the client's address.
    res = tcp(world, b.ip, 30120, 3)
    assert pods(res) == {b.name}, res
    assert all(r["reply"]["peer"].startswith(WORLD_IP + ":") for r in res), res
    # A forwards to B's host under Cluster, drops under Local (no local endpoint).
    res = tcp(world, a.ip, 30120, 2, timeout=1)
    if policy == "Cluster":
        assert pods(res) == {b.name}, res
        assert all(r["reply"]["peer"].startswith(a.ip + ":") for r in res), res
    else:
        assert pods(res) == {"ETIMEDOUT"}, res
        assert metric_packets(agents["a"], reason(NO_LOCAL)) >= 2


# -- terminating endpoints -----------------------------------------------------------------

@pytest.mark.kpr("terminating-fallback")
# The real apiserver serves the socket-LB case only: the objects are the same.
@pytest.mark.parametrize("apiserver,in_cgroup", [
    pytest.param("test", True, id="test-socket-lb"),
    pytest.param("test", False, id="test-tc-lb"),
    pytest.param("real", True, id="real-socket-lb")], indirect=["apiserver"])
def test_terminating_endpoints_cluster_policy(lab2, api, start_agent, in_cgroup):
    a, b = lab2.node("a"), lab2.node("b")
    pa, pb, ca = a.add_pod("pa"), b.add_pod("pb"), a.add_pod("ca")
    serve_all(pa, pb)
    service(api, "web", [ep(pa.ip, a.name), ep(pb.ip, b.name)])
    agents = cluster(lab2, api, start_agent)
    agent = agents["a"]
    programmed(agent, f"{VIP}:80/TCP", [f"{pa.ip}:8080", f"{pb.ip}:8080"])
    # One established connection to each endpoint.
    conns = {}
    while len(conns) < 2:
        c = EchoClient(ca, VIP, 90, in_cgroup=in_cgroup)
        who = c.say("hello")
        if who in conns:
            c.close()
        else:
            conns[who] = c

    try:
        # pa terminates (still serving): new flows only to the ready pb; pa's
        # established connection keeps working.
        set_endpoints(api, "web", [terminating(pa.ip, a.name), ep(pb.ip, b.name)])
        programmed(agent, f"{VIP}:80/TCP", [f"{pb.ip}:8080"])
        assert pods(tcp(ca, VIP, 80, 6, in_cgroup=in_cgroup)) == {"pb"}
        assert conns["pa"].say("still there") == "pa"
        assert conns["pb"].say("still there") == "pb"

        # pb is not ready any more either (not terminating): the serving-terminating pa
        # is all that is left, and takes new flows.
        set_endpoints(api, "web", [terminating(pa.ip, a.name),
                                   ep(pb.ip, b.name, ready=False)])
        programmed(agent, f"{VIP}:80/TCP", [f"{pa.ip}:8080"])
        assert pods(tcp(ca, VIP, 80, 4, in_cgroup=in_cgroup)) == {"pa"}
        assert conns["pa"].say("and now") == "pa"

        # pa stops serving: it takes nothing new, and the service has no endpoint.
        set_endpoints(api, "web", [terminating(pa.ip, a.name, serving=False),
                                   ep(pb.ip, b.name, ready=False)])
        programmed(agent, f"{VIP}:80/TCP", [])
        assert pods(tcp(ca, VIP, 80, 2, in_cgroup=in_cgroup, timeout=1)) == {"ECONNREFUSED"}
    finally:
        for c in conns.values():
            c.close()


@pytest.mark.kpr("terminating-fallback")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_terminating_endpoints_local_policies(lab2, api, start_agent):
    """ETP Local on A's NodePort and ITP Local on the ClusterIP from a pod on A: only A's
    endpoints count, a terminating one on A is used before B's ready one is (B's is no
    local endpoint), and a non-serving one is not."""
    a, b, world = lab2.node("a"), lab2.node("b"), lab2.world
    pa, pb, ca = a.add_pod("pa"), b.add_pod("pb"), a.add_pod("ca")
    serve_all(pa, pb)
    service(api, "web", [ep(pa.ip, a.name), ep(pb.ip, b.name)], type="NodePort",
            node_ports=(30130, 30131, 30132), externalTrafficPolicy="Local",
            internalTrafficPolicy="Local")
    agents = cluster(lab2, api, start_agent)
    agent = agents["a"]
    np = f"{a.ip}:30130/TCP"
    programmed(agent, np, [f"{pa.ip}:8080"])
    programmed(agent, f"{VIP}:80/TCP", [f"{pa.ip}:8080"])
    kept = EchoClient(world, a.ip, 30132)
    assert kept.say("hello") == "pa"
    try:
        # pa terminating, still serving; pb ready on B: A keeps using pa for new flows.
        set_endpoints(api, "web", [terminating(pa.ip, a.name), ep(pb.ip, b.name)])
        wait_for(lambda: [x["state"] for fe in agent.ctl_json("bpf", "lb", "list")
                          if fe["frontend"] == np and fe["scope"] == "external"
                          for x in fe.get("backends", [])] ==
                 ["terminating"], 10, what="pa terminating in A's maps")
        res = tcp(world, a.ip, 30130, 3)
        assert pods(res) == {"pa"}, res
        assert all(r["reply"]["peer"].startswith(WORLD_IP + ":") for r in res), res
        assert pods(tcp(ca, VIP, 80, 3)) == {"pa"}
        assert pods(tcp(ca, VIP, 80, 3, in_cgroup=False)) == {"pa"}
        assert kept.say("still there") == "pa"
        # B's NodePort serves its own ready endpoint.
        assert pods(tcp(world, b.ip, 30130, 2)) == {"pb"}

        # pa stops serving: A has no local endpoint left; B's ready one is not used.
        set_endpoints(api, "web", [terminating(pa.ip, a.name, serving=False),
                                   ep(pb.ip, b.name)])
        programmed(agent, np, [])
        programmed(agent, f"{VIP}:80/TCP", [])
        before = metric_packets(agent, reason(NO_LOCAL))
        assert pods(tcp(world, a.ip, 30130, 2, timeout=1)) == {"ETIMEDOUT"}
        assert pods(tcp(ca, VIP, 80, 2, in_cgroup=False, timeout=1)) == {"ETIMEDOUT"}
        assert pods(tcp(ca, VIP, 80, 2)) == {"ECONNREFUSED"}
        assert metric_packets(agent, reason(NO_LOCAL)) >= before + 4
    finally:
        kept.close()
