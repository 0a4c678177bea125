"""loadBalancerSourceRanges with real traffic (Kubernetes' e2e "should only allow access
from service loadbalancer source ranges").

The world namespace has two addresses: 192.168.50.1 (inside the allowed range) and
203.0.113.1 (outside it); a client binds to one or the other and connects to the
Service's LoadBalancer IP and to its NodePort on node A. The allowed one is served,
the other dropped as DROP_SVC_SOURCE_RANGE; ranges changed while the agent is down take
effect when it is back (stale entries pruned), and removing them opens the Service to
everyone.
"""

import json

import pytest

import k8s
from harness import PY, metric_packets, reason, serve, wait_attached
from netlab import OUTSIDE_IP, WORLD_IP, wait_for

LB_IP = "172.16.60.10"
NODE_PORT = 30380
CONNECT = r"""
import json, socket, sys
src, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket()
s.settimeout(1.0)
s.bind((src, 0))
try:
    s.connect((ip, port))
    print(json.dumps({"ok": True, "reply": json.loads(s.makefile().readline())}))
except OSError as e:
    print(json.dumps({"ok": False, "error": str(e)}))
"""


def reach(world, src, ip, port):
    r = world.exec(PY, "-c", CONNECT, src, ip, str(port))
    return json.loads(r.stdout)


@pytest.mark.kpr("source-ranges")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_source_ranges_allow_one_external_client_and_drop_another(lab1, api, start_agent):
    a, world = lab1.node("a"), lab1.world
    b1 = a.add_pod("b1")
    serve(b1)
    svc = k8s.service("default", "guarded", [{"name": "http", "port": 80, "targetPort": 8080,
                                              "protocol": "TCP", "nodePort": NODE_PORT}],
                      type="LoadBalancer", loadBalancerSourceRanges=["192.168.50.0/24"])
    # The ingress IP through the status subresource, as a load balancer controller writes
    # it (a real apiserver keeps no status from a create).
    svc = api.create(svc)
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": LB_IP}]}}
    api.update_status(svc)
    api.create(k8s.endpointslice("default", "guarded-1", "guarded", [(b1.ip, True, a.name)],
                                 [("http", 8080, "TCP")]))
    lab1.publish(api)
    agent = start_agent(a)
    wait_attached(agent, a.native, b1.host_if)
    world.exec("ip", "route", "add", f"{LB_IP}/32", "via", a.ip)

    for ip, port in ((LB_IP, 80), (a.ip, NODE_PORT)):
        r = reach(world, WORLD_IP, ip, port)
        assert r["ok"] and r["reply"]["pod"] == "b1", r
        assert not reach(world, OUTSIDE_IP, ip, port)["ok"]
    assert metric_packets(agent, reason("DROP_SVC_SOURCE_RANGE")) >= 2
    entries = agent.ctl_json("map", "list")
    assert {m["name"]: m for m in entries}["lb4_source_range"]["entries"] == 2
    kpr = agent.status()["kube_proxy_replacement"]
    assert kpr["source_range_services"] == 1, kpr
    assert "  Source Ranges:          Enabled (1 service(s))" in \
        agent.ctl("status", "--verbose", check=False).stdout.splitlines()

    # Only the other address now, changed while the agent is down: the restarted
    # agent keeps the pinned entries it still wants and prunes the old range.
    agent.stop()
    cur = api.get("services", "default", "guarded")
    cur["spec"]["loadBalancerSourceRanges"] = [f"{OUTSIDE_IP}/32"]
    api.update(cur)
    agent.start()
    wait_for(lambda: reach(world, OUTSIDE_IP, LB_IP, 80)["ok"], timeout=5,
             what="the new range allowed")
    assert not reach(world, WORLD_IP, LB_IP, 80)["ok"]
    assert not reach(world, WORLD_IP, a.ip, NODE_PORT)["ok"]
    assert reach(world, OUTSIDE_IP, a.ip, NODE_PORT)["ok"]
    entries = agent.ctl_json("map", "list")
    assert {m["name"]: m for m in entries}["lb4_source_range"]["entries"] == 2

    # No ranges: everyone, and no entry is left behind.
    cur = api.get("services", "default", "guarded")
    del cur["spec"]["loadBalancerSourceRanges"]
    api.update(cur)
    wait_for(lambda: reach(world, WORLD_IP, LB_IP, 80)["ok"], timeout=5,
             what="open to every client")
    assert reach(world, OUTSIDE_IP, a.ip, NODE_PORT)["ok"]
    entries = agent.ctl_json("map", "list")
    assert {m["name"]: m for m in entries}["lb4_source_range"]["entries"] == 0
    assert agent.status()["kube_proxy_replacement"]["source_range_services"] == 0
