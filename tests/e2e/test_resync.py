"""The periodic full reconcile (--reconcile-interval): drift made behind the agent's
back with bpftool and `ip route` is repaired within an interval.

One agent on node A of a two-node lab (node B is only a Node object, so A has a
direct route to B's pod CIDR), a ClusterIP Service over a pod on A. With a 1 s
interval, each map the agent owns (services, backends, rev-NAT, ipcache,
endpoints) is dumped, then entries are deleted, changed and added with bpftool and
the node route is deleted; the test waits until every dump equals the one taken
before and the route is back, checks the repairs are counted in status, and that
the Service still answers. The loadBalancerSourceRanges trie is checked the same
way with a LoadBalancer Service on a one-node lab.
"""

import json
import subprocess
import time

import k8s
from harness import serve, tcp, wait_attached
from netlab import OUTSIDE_IP, WORLD_IP, wait_for
from test_svc_source_ranges import reach

RTPROT_AXON = "196"
VIP = "10.96.40.10"
MAPS = ("lb4_services", "lb4_backends", "lb4_reverse_nat", "ipcache", "endpoints")


def bpftool(*args):
    r = subprocess.run(["bpftool", "-j"] + list(args), capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, f"bpftool {' '.join(args)}: {r.stderr}"
    return json.loads(r.stdout) if r.stdout.strip() else None


def pin(agent, name):
    return f"{agent.bpf_root}/maps/{name}"


def dump(agent, name):
    """{key bytes: value bytes} of a pinned map."""
    return {tuple(int(b, 16) for b in e["key"]): tuple(int(b, 16) for b in e["value"])
            for e in bpftool("map", "dump", "pinned", pin(agent, name))}


def hexes(bs):
    return ["0x%02x" % b for b in bs]


def update(agent, name, key, value):
    bpftool("map", "update", "pinned", pin(agent, name), "key", *hexes(key), "value",
            *hexes(value))


def delete(agent, name, key):
    bpftool("map", "delete", "pinned", pin(agent, name), "key", *hexes(key))


def axon_route(node, prefix):
    routes = node.routes(prefix, "proto", RTPROT_AXON)
    return routes[0] if routes else None


def test_drift_is_repaired_within_the_interval(lab2, api, start_agent):
    a, b = lab2.node("a"), lab2.node("b")
    p1, client = a.add_pod("p1"), a.add_pod("client")
    serve(p1)
    lab2.publish(api)
    api.create(k8s.service("default", "web", [("http", 80, "TCP")], cluster_ip=VIP))
    api.create(k8s.endpointslice("default", "web-1", "web", [(p1.ip, True, a.name)],
                                 [("http", 8080, "TCP")]))
    agent = start_agent(a, "--auto-direct-node-routes=true", "--reconcile-interval=1s")
    wait_attached(agent, a.native, p1.host_if, client.host_if)
    wait_for(lambda: axon_route(a, b.pod_cidr), timeout=10, what="route to B's pod CIDR")
    wait_for(lambda: len(dump(agent, "lb4_services")) == 2, what="service programmed")
    wait_for(lambda: agent.status()["full_reconcile"]["passes"] >= 1, what="first full pass")
    want = {m: dump(agent, m) for m in MAPS}
    assert agent.status()["full_reconcile"]["repairs"] == {"lb": 0, "endpoints": 0,
                                                         "routes": 0}

    # lb4_services: slot 1 deleted; slot 0's count set to 7.
    slot0 = next(k for k in want["lb4_services"] if k[6] == 0 and k[7] == 0)
    slot1 = next(k for k in want["lb4_services"] if k[6] == 1)
    delete(agent, "lb4_services", slot1)
    v = list(want["lb4_services"][slot0])
    v[8] = 7
    update(agent, "lb4_services", slot0, v)
    # lb4_backends: the backend's port changed; a stray backend added.
    (be_key, be_val), = want["lb4_backends"].items()
    update(agent, "lb4_backends", be_key, be_val[:4] + (0x1f, 0x91) + be_val[6:])
    update(agent, "lb4_backends", (0xff, 0xff, 0, 0), (10, 99, 0, 1, 0, 80, 6, 0))
    # lb4_reverse_nat: deleted.
    (rn_key, _), = want["lb4_reverse_nat"].items()
    delete(agent, "lb4_reverse_nat", rn_key)
    # ipcache: p1's entry deleted, a stray /32 added; endpoints: client's deleted.
    ip1 = tuple(int(x) for x in p1.ip.split("."))
    ipc_key = next(k for k in want["ipcache"] if k[4:] == ip1 and k[0] == 32)
    delete(agent, "ipcache", ipc_key)
    update(agent, "ipcache", (32, 0, 0, 0, 10, 99, 0, 9), want["ipcache"][ipc_key])
    ipc = tuple(int(x) for x in client.ip.split("."))
    delete(agent, "endpoints", ipc)
    # The route to node B's pod CIDR.
    a.exec("ip", "route", "del", b.pod_cidr, "proto", RTPROT_AXON)
    assert not axon_route(a, b.pod_cidr)

    def repaired():
        return all(dump(agent, m) == want[m] for m in MAPS) and axon_route(a, b.pod_cidr)

    wait_for(repaired, timeout=10, interval=0.2, what="drift repaired")
    st = agent.status()["full_reconcile"]
    # services: slot 1, slot 0; backends: one changed, one stray; rev-NAT: one.
    assert st["repairs"]["lb"] == 5, st
    # ipcache: one missing, one stray; endpoints: one missing.
    assert st["repairs"]["endpoints"] == 3, st
    assert st["repairs"]["routes"] == 1, st
    assert st["last_error"] == "", st
    assert st["interval_ms"] == 1000
    r = axon_route(a, b.pod_cidr)
    assert (r["gateway"], r["dev"]) == (b.ip, a.native), r
    results = tcp(client, VIP, 80, 5)
    assert all(r["ok"] for r in results), results
    # The text form shows the section too.
    text = agent.ctl("status").stdout
    assert "Full reconcile:" in text, text


def test_zero_interval_disables_the_pass(lab, api, agent):
    b1 = lab.add_pod("b1")
    api.create(k8s.service("default", "web", [("http", 80, "TCP")], cluster_ip=VIP))
    api.create(k8s.endpointslice("default", "web-1", "web", [(b1.ip, True)],
                                 [("http", 8080, "TCP")]))
    agent.extra.append("--reconcile-interval=0")
    agent.start()
    wait_for(lambda: len(dump(agent, "lb4_services")) == 2, what="service programmed")
    slot1 = next(k for k in dump(agent, "lb4_services") if k[6] == 1)
    delete(agent, "lb4_services", slot1)
    time.sleep(2.5)
    assert slot1 not in dump(agent, "lb4_services")
    st = agent.status()["full_reconcile"]
    assert st["passes"] == 0 and st["interval_ms"] == 0, st


def test_source_range_drift_is_repaired(lab1, api, start_agent):
    """lb4_source_range is an LPM trie outside the reconciler's four maps: a deleted
    entry comes back, a stray one goes, and the client the range allows is served."""
    from netlab import OUTSIDE_IP, WORLD_IP
    from test_svc_source_ranges import reach

    a, world = lab1.node("a"), lab1.world
    b1 = a.add_pod("b1")
    serve(b1)
    lb_ip = "172.16.61.10"
    svc = k8s.service("default", "guarded", [{"name": "http", "port": 80, "targetPort": 8080,
                                              "protocol": "TCP", "nodePort": 30381}],
                      type="LoadBalancer", loadBalancerSourceRanges=["192.168.50.0/24"])
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": lb_ip}]}}
    api.create(svc)
    api.create(k8s.endpointslice("default", "guarded-1", "guarded", [(b1.ip, True, a.name)],
                                 [("http", 8080, "TCP")]))
    lab1.publish(api)
    agent = start_agent(a, "--reconcile-interval=1s")
    wait_attached(agent, a.native, b1.host_if)
    world.exec("ip", "route", "add", f"{lb_ip}/32", "via", a.ip)
    # The LoadBalancer frontend and the NodePort one on the node's address.
    wait_for(lambda: len(dump(agent, "lb4_source_range")) == 2, what="ranges programmed")
    wait_for(lambda: agent.status()["full_reconcile"]["passes"] >= 1, what="first full pass")
    want = dump(agent, "lb4_source_range")
    assert agent.status()["full_reconcile"]["repairs"]["lb"] == 0

    lb_key = next(k for k in want if tuple(k[4:8]) == tuple(int(x) for x in lb_ip.split(".")))
    delete(agent, "lb4_source_range", lb_key)
    # The same frontend, a /32 of the address the range does not allow.
    stray = (64 + 32, 0, 0, 0) + lb_key[4:12] + tuple(int(x) for x in OUTSIDE_IP.split("."))
    update(agent, "lb4_source_range", stray, (1,))
    assert reach(world, OUTSIDE_IP, lb_ip, 80)["ok"], "the stray entry lets the outsider in"

    wait_for(lambda: dump(agent, "lb4_source_range") == want, timeout=10, interval=0.2,
             what="source ranges repaired")
    st = agent.status()["full_reconcile"]
    assert st["repairs"]["lb"] == 2, st
    assert st["last_error"] == "", st
    assert reach(world, WORLD_IP, lb_ip, 80)["ok"]
    assert not reach(world, OUTSIDE_IP, lb_ip, 80)["ok"]
