"""Service behaviour as Kubernetes' e2e tests expect it from a service proxy, with real traffic.

Node A (netlab lab1: native device ext0, pods on 10.244.1.0/24) runs the agent; the world
namespace plays the remote client for NodePorts. Each test changes a Service or its
EndpointSlice live and asserts on what clients reach, what the maps hold and what
`agentctl service list` says.
"""

import re

import pytest

import k8s
import realk8s
from harness import serve, tcp
from netlab import wait_for

VIP = "10.96.30.10"
EXT_IP = "198.51.100.7"         # on no node: served all the same
LB_IP = "203.0.113.77"
PROXY_NAME = "service.kubernetes.io/service-proxy-name"
HEADLESS = "service.kubernetes.io/headless"


def service(api, name, backends, vip=VIP, ports=(("http", 80, "TCP", 8080),), **spec):
    """Service name over backends [(ip, ready, node)], with its EndpointSlice name-1."""
    api.create(k8s.service("default", name, list(ports), cluster_ip=vip, **spec))
    api.create(k8s.endpointslice("default", f"{name}-1", name, backends,
                                 [(p[0], p[3], p[2]) for p in ports]))


def up(lab1, api, start_agent, *flags):
    a = lab1.node("a")
    lab1.publish(api)
    return start_agent(a, *flags)


def reaches(pod, ip, port, want):
    """Every one of 4 connections lands on pod `want` (None: none connects)."""
    res = tcp(pod, ip, port, 4, timeout=1)
    if want is None:
        return not any(r["ok"] for r in res)
    return all(r["ok"] and r["reply"]["pod"] == want for r in res)


def rows(agent, name):
    return [r for r in agent.ctl_json("service", "list") if r["service"] == f"default/{name}"]


def frontends(agent, name):
    return sorted(r["frontend"] for r in rows(agent, name) if r["served"])


@pytest.mark.kpr("service-proxy-name")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_service_proxy_name_label_hands_the_service_to_another_proxy_live(lab1, api,
                                                                         start_agent):
    a = lab1.node("a")
    b1, client = a.add_pod("b1"), a.add_pod("client")
    serve(b1)
    service(api, "web", [(b1.ip, True, a.name)])
    agent = up(lab1, api, start_agent)
    wait_for(lambda: reaches(client, VIP, 80, "b1"), 10, what="web served")

    api.patch("services", "default", "web", {"metadata": {"labels": {PROXY_NAME: "other"}}})
    wait_for(lambda: f"{VIP}:80/TCP" not in agent.lb_frontends(), 10, what="frontend removed")
    assert reaches(client, VIP, 80, None)
    assert rows(agent, "web") == [{
        "service": "default/web", "namespace": "default", "name": "web", "type": "ClusterIP",
        "backends": [], "served": False, "reason": "service-proxy-name label"}]

    api.patch("services", "default", "web", {"metadata": {"labels": {PROXY_NAME: None}}})
    wait_for(lambda: f"{VIP}:80/TCP" in agent.lb_frontends(), 10, what="frontend restored")
    assert reaches(client, VIP, 80, "b1")
    assert [r["served"] for r in rows(agent, "web")] == [True]


@pytest.mark.kpr("headless-label")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_headless_label_on_an_endpointslice_drops_its_backends_live(lab1, api, start_agent):
    a = lab1.node("a")
    b1, client = a.add_pod("b1"), a.add_pod("client")
    serve(b1)
    service(api, "web", [(b1.ip, True, a.name)])
    agent = up(lab1, api, start_agent)
    wait_for(lambda: agent.lb_frontends().get(f"{VIP}:80/TCP") == [f"{b1.ip}:8080"], 10,
             what="backend in the maps")

    # kube-proxy's EndpointSlice informer selects !service.kubernetes.io/headless: such a
    # slice is not there for it. The Service's own label selector is the proxy name only.
    api.patch("endpointslices", "default", "web-1", {"metadata": {"labels": {HEADLESS: ""}}})
    wait_for(lambda: agent.lb_frontends().get(f"{VIP}:80/TCP") == [], 10,
             what="backend dropped")
    assert reaches(client, VIP, 80, None)

    api.patch("endpointslices", "default", "web-1", {"metadata": {"labels": {HEADLESS: None}}})
    wait_for(lambda: agent.lb_frontends().get(f"{VIP}:80/TCP") == [f"{b1.ip}:8080"], 10,
             what="backend restored")
    assert reaches(client, VIP, 80, "b1")


@pytest.mark.kpr("service-list-not-served")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_service_list_marks_every_service_axon_does_not_serve(lab1, apiserver, api,
                                                             start_agent):
    # The real apiserver (single-stack IPv4) refuses two of these Services: an IPv6
    # ClusterIP ("IPv6 is not configured on this cluster") and a ClusterIP Service without
    # ports ("spec.ports: Required value"). It has the `kubernetes` Service instead,
    # served like any other.
    real = isinstance(apiserver, realk8s.Scope)
    api.create(k8s.service("default", "served", [("http", 80, "TCP")], cluster_ip=VIP))
    api.create(k8s.service("default", "other-proxy", [("http", 80, "TCP")],
                           cluster_ip="10.96.30.11", labels={PROXY_NAME: "other"}))
    api.create(k8s.service("default", "headless", [("http", 80, "TCP")], cluster_ip="None"))
    api.create(k8s.service("default", "extname", [("http", 80, "TCP")], type="ExternalName",
                           externalName="example.com"))
    want = {"default/extname": "ExternalName", "default/headless": "headless",
            "default/other-proxy": "service-proxy-name label"}
    served = [f"{VIP}:80/TCP"]
    if real:
        served.append(f"{realk8s.KUBERNETES_SERVICE_IP}:443/TCP")
    else:
        api.create(k8s.service("default", "v6", [("http", 80, "TCP")], cluster_ip="fd00::10"))
        api.create(k8s.service("default", "portless", [], cluster_ip="10.96.30.12"))
        want.update({"default/portless": "no ports", "default/v6": "IPv6-only"})
    agent = up(lab1, api, start_agent)
    listed = wait_for(lambda: (lambda r: r if len(r) == len(want) + len(served) else None)(
        agent.ctl_json("service", "list")), 10, what=f"{len(want) + len(served)} rows")
    assert {r["service"]: r.get("reason") for r in listed if not r["served"]} == want
    assert sorted(r["frontend"] for r in listed if r["served"]) == sorted(served)
    # Not served means not in the maps either.
    assert sorted(agent.lb_frontends()) == sorted(served)

    out = agent.ctl("service", "list").stdout.splitlines()
    assert re.split(r"\s{3,}", out[0])[-1] == "SERVED"
    table = {re.split(r"\s{3,}", x)[0]: re.split(r"\s{3,}", x) for x in out[1:]}
    assert table["default/headless"] == ["default/headless", "ClusterIP", "-", "-", "-",
                                         "no: headless"]
    assert table["default/extname"][1] == "ExternalName"
    assert table["default/served"][-1] == "yes"
    assert all(table[k][-1] == f"no: {v}" for k, v in want.items())


@pytest.mark.kpr("type-changes")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_type_changes_take_effect_live(lab1, api, start_agent):
    a, world = lab1.node("a"), lab1.world
    b1, client = a.add_pod("b1"), a.add_pod("client")
    serve(b1)
    service(api, "web", [(b1.ip, True, a.name)])
    agent = up(lab1, api, start_agent)
    np_fe = f"{a.ip}:30080/TCP"
    wait_for(lambda: frontends(agent, "web") == [f"{VIP}:80/TCP"], 10, what="ClusterIP only")
    assert reaches(world, a.ip, 30080, None)

    # ClusterIP -> NodePort: the NodePort frontend appears and serves the world.
    api.patch("services", "default", "web", {"spec": {"type": "NodePort", "ports": [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP",
         "nodePort": 30080}]}})
    wait_for(lambda: np_fe in agent.lb_frontends(), 10, what="NodePort frontend")
    assert reaches(world, a.ip, 30080, "b1")

    # NodePort -> LoadBalancer: the NodePort stays, the ingress IP is served too.
    api.patch("services", "default", "web", {"spec": {"type": "LoadBalancer"}})
    svc = api.get("services", "default", "web")
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": LB_IP}]}}
    api.update_status(svc)
    wait_for(lambda: f"{LB_IP}:80/TCP" in agent.lb_frontends(), 10, what="LB frontend")
    assert np_fe in agent.lb_frontends()
    assert reaches(client, LB_IP, 80, "b1")
    assert {r["type"] for r in rows(agent, "web")} == {"ClusterIP", "LoadBalancer", "NodePort"}

    # LoadBalancer -> ClusterIP: the NodePort and LB frontends go, the world is refused.
    api.patch("services", "default", "web", {"spec": {"type": "ClusterIP", "ports": [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP",
         "nodePort": None}]}})
    wait_for(lambda: frontends(agent, "web") == [f"{VIP}:80/TCP"], 10,
             what="ClusterIP frontend only")
    assert not {np_fe, f"{LB_IP}:80/TCP"} & set(agent.lb_frontends())
    assert reaches(world, a.ip, 30080, None)
    assert reaches(client, VIP, 80, "b1")

    # ClusterIP -> ExternalName: no frontend at all.
    api.patch("services", "default", "web", {"spec": {
        "type": "ExternalName", "externalName": "example.com", "clusterIP": None,
        "clusterIPs": None}})
    wait_for(lambda: frontends(agent, "web") == [], 10, what="every frontend removed")
    assert f"{VIP}:80/TCP" not in agent.lb_frontends()
    assert reaches(client, VIP, 80, None)
    assert rows(agent, "web")[0]["reason"] == "ExternalName"


@pytest.mark.kpr("nodeport-released")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_nodeport_is_released_when_its_service_is_deleted(lab1, api, start_agent):
    a, world = lab1.node("a"), lab1.world
    b1, b2 = a.add_pod("b1"), a.add_pod("b2")
    serve(b1), serve(b2)
    ports = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP",
              "nodePort": 30085}]
    service(api, "first", [(b1.ip, True, a.name)], type="NodePort",
            ports=(("http", 80, "TCP", 8080),))
    api.patch("services", "default", "first", {"spec": {"ports": ports}})
    agent = up(lab1, api, start_agent)
    wait_for(lambda: reaches(world, a.ip, 30085, "b1"), 10, what="first on 30085")

    api.delete("services", "default", "first")
    wait_for(lambda: f"{a.ip}:30085/TCP" not in agent.lb_frontends(), 10,
             what="NodePort frontend released")
    assert reaches(world, a.ip, 30085, None)
    # The port is free again: another Service takes it and serves its own backend.
    service(api, "second", [(b2.ip, True, a.name)], vip="10.96.30.20", type="NodePort",
            ports=(("http", 80, "TCP", 8080),))
    api.patch("services", "default", "second", {"spec": {"ports": ports}})
    wait_for(lambda: reaches(world, a.ip, 30085, "b2"), 10, what="second on 30085")


@pytest.mark.kpr("external-ips")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_external_ips_are_served_even_on_no_node(lab1, api, start_agent):
    a = lab1.node("a")
    b1, client = a.add_pod("b1"), a.add_pod("client")
    serve(b1)
    service(api, "web", [(b1.ip, True, a.name)], externalIPs=[EXT_IP])
    agent = up(lab1, api, start_agent)
    wait_for(lambda: f"{EXT_IP}:80/TCP" in agent.lb_frontends(), 10, what="externalIP frontend")
    for r in tcp(client, EXT_IP, 80, 4):
        assert r["ok"] and r["reply"]["pod"] == "b1", r
        assert r["peername"] == f"{EXT_IP}:80"
    assert [r["type"] for r in rows(agent, "web")] == ["ClusterIP", "ExternalIP"]
    api.patch("services", "default", "web", {"spec": {"externalIPs": None}})
    wait_for(lambda: f"{EXT_IP}:80/TCP" not in agent.lb_frontends(), 10,
             what="externalIP frontend removed")


@pytest.mark.kpr("publish-not-ready")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_publish_not_ready_addresses_serves_not_ready_endpoints(lab1, api, start_agent):
    a = lab1.node("a")
    b1, client = a.add_pod("b1"), a.add_pod("client")
    serve(b1)
    service(api, "web", [(b1.ip, False, a.name)])
    agent = up(lab1, api, start_agent)
    wait_for(lambda: agent.lb_frontends().get(f"{VIP}:80/TCP") == [], 10,
             what="frontend without backends")
    assert reaches(client, VIP, 80, None)

    api.patch("services", "default", "web", {"spec": {"publishNotReadyAddresses": True}})
    wait_for(lambda: agent.lb_frontends().get(f"{VIP}:80/TCP") == [f"{b1.ip}:8080"], 10,
             what="not-ready endpoint as backend")
    assert reaches(client, VIP, 80, "b1")
    assert rows(agent, "web")[0]["backends"] == [
        {"address": b1.ip, "port": 8080, "state": "active"}]

    api.patch("services", "default", "web", {"spec": {"publishNotReadyAddresses": False}})
    wait_for(lambda: agent.lb_frontends().get(f"{VIP}:80/TCP") == [], 10,
             what="backend withdrawn")


@pytest.mark.kpr("status-kpr-details")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_status_verbose_shows_kube_proxy_replacement_details(lab1, api, start_agent):
    a = lab1.node("a")
    agent = up(lab1, api, start_agent, "--bpf-lb-algorithm=maglev",
               "--node-port-range=30000-31000")
    kpr = wait_for(lambda: (lambda k: k if k["devices"] else None)(
        agent.status()["kube_proxy_replacement"]), 10, what="native device in status")
    assert kpr == {
        "status": "True",
        "socket_lb": {"enabled": True, "coverage": "Full", "tracing": False,
                      "termination": {"enabled": True, "mode": "bpf", "sockets_destroyed": 0,
                                      "tcp": 0, "udp": 0, "failed": 0, "backend_removals": 0,
                                      "netns_last_run": 0, "udp_conntrack_purged": 0}},
        "devices": [{"name": a.native, "ipv4": a.ip, "direct_routing": True}],
        "mode": "SNAT",
        "backend_selection": {"algorithm": "Maglev", "table_size": 16381},
        "session_affinity": True, "graceful_termination": True, "nat46_64": False,
        "xdp_acceleration": "Disabled", "healthz_bind_address": "",
        "health_check_node_ports": [], "source_range_services": 0,
        "topology_aware_hints": {"zone": "", "services": 0},
        "services": {"cluster_ip": True, "node_port": True, "node_port_min": 30000,
                     "node_port_max": 31000, "load_balancer": True, "external_ips": True,
                     "host_port": True}}

    out = agent.ctl("status", "--verbose", check=False).stdout.splitlines()
    start = out.index("KubeProxyReplacement Details:")
    assert out[start + 1:start + 23] == [
        "  Status:                 True",
        "  Socket LB:              Enabled",
        "  Socket LB Tracing:      Disabled",
        "  Socket LB Coverage:     Full",
        "  Socket LB Termination:  Enabled (0 sockets)",
        f"  Devices:                {a.native}   {a.ip} (Direct Routing)",
        "  Mode:                   SNAT",
        "  Backend Selection:      Maglev (Table Size: 16381)",
        "  Session Affinity:       Enabled",
        "  Graceful Termination:   Enabled",
        "  NAT46/64 Support:       Disabled",
        "  XDP Acceleration:       Disabled",
        "  Health Check NodePort:  Enabled (0 service(s))",
        "  Source Ranges:          Enabled (0 service(s))",
        "  Topology Aware Hints:   Enabled (0 service(s), zone unset)",
        "  Kube-proxy Healthz:     Disabled",
        "  Services:",
        "  - ClusterIP:      Enabled",
        "  - NodePort:       Enabled (Range: 30000-31000)",
        "  - LoadBalancer:   Enabled",
        "  - externalIPs:    Enabled",
        "  - HostPort:       Enabled"]
    # Not in the short form.
    assert "KubeProxyReplacement Details:" not in agent.ctl("status", check=False).stdout


@pytest.mark.kpr("status-kpr-details")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_status_verbose_random_selection_and_socket_lb_off(lab1, api, start_agent):
    agent = up(lab1, api, start_agent, "--bpf-lb-sock=false")
    out = agent.ctl("status", "--verbose", check=False).stdout.splitlines()
    assert "  Socket LB:              Disabled" in out
    assert "  Socket LB Termination:  Disabled (socket LB disabled)" in out
    assert "  Backend Selection:      Random" in out
    assert "  - NodePort:       Enabled (Range: 30000-32767)" in out


def http_get(ns, url):
    """(status, body, headers) of GET url from namespace ns; status 0 when nothing answers."""
    r = ns.exec("curl", "-s", "--max-time", "3", "-D", "/dev/stderr", "-w", "\n%{http_code}",
                url, check=False)
    body, _, code = r.stdout.rpartition("\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (x.partition(":") for x in r.stderr.splitlines()[1:] if ":" in x)}
    return int(code or 0), body, headers


def hc_body(count, healthy=True):
    return ('{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "lb"\n\t},\n'
            f'\t"localEndpoints": {count},\n\t"serviceProxyHealthy": '
            f'{"true" if healthy else "false"}\n}}')


@pytest.mark.kpr("health-check-node-port")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_health_check_node_port_counts_local_ready_endpoints(lab1, api, start_agent):
    a, world = lab1.node("a"), lab1.world
    b1 = a.add_pod("b1")
    serve(b1)
    api.create(k8s.service("default", "lb", [{"name": "http", "port": 80, "targetPort": 8080,
                                              "protocol": "TCP", "nodePort": 30086}],
                           cluster_ip=VIP, type="LoadBalancer", externalTrafficPolicy="Local",
                           healthCheckNodePort=31500))
    api.create(k8s.endpointslice("default", "lb-1", "lb", [(b1.ip, True, a.name),
                                                           ("10.244.2.10", True, "node-b")],
                                 [("http", 8080, "TCP")]))
    agent = up(lab1, api, start_agent)
    url = f"http://{a.ip}:31500/healthz"
    # One ready endpoint here (the one on node-b does not count): 200, kube-proxy's body.
    code, body, headers = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
        http_get(world, url)), 10, what="health check 200")
    assert body == hc_body(1)
    assert headers["content-type"] == "application/json"
    assert headers["x-load-balancing-endpoint-weight"] == "1"
    assert http_get(world, f"http://{a.ip}:31500/")[0] == 200     # any path, as kube-proxy
    st = agent.status()["kube_proxy_replacement"]["health_check_node_ports"]
    assert st == [{"service": "default/lb", "port": 31500, "local_endpoints": 1,
                   "listening": True}]

    # Only a terminating endpoint left here: 503, localEndpoints 0.
    cur = api.get("endpointslices", "default", "lb-1")
    cur["endpoints"][0]["conditions"] = {"ready": False, "serving": True, "terminating": True}
    api.update(cur)
    code, body, headers = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(
        http_get(world, url)), 10, what="health check 503")
    assert body == hc_body(0)
    assert headers["x-load-balancing-endpoint-weight"] == "0"
    # The load balancer is told to stop sending, yet the NodePort still serves what comes:
    # with no ready endpoint left here, the serving-terminating one takes it (node-b's
    # ready one is no local endpoint).
    res = tcp(world, a.ip, 30086, 3)
    assert all(r["ok"] and r["reply"]["pod"] == "b1" for r in res), res

    # Policy Cluster: no health check any more, the port closes.
    api.patch("services", "default", "lb", {"spec": {"externalTrafficPolicy": "Cluster",
                                                     "healthCheckNodePort": None}})
    wait_for(lambda: http_get(world, url)[0] == 0, 10, what="health check port closed")
    assert agent.status()["kube_proxy_replacement"]["health_check_node_ports"] == []


GO_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,9})? \+0000 UTC"


@pytest.mark.kpr("kpr-healthz")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_kube_proxy_replacement_healthz_bind_address(lab1, api, start_agent):
    a, world = lab1.node("a"), lab1.world
    agent = up(lab1, api, start_agent,
               "--kube-proxy-replacement-healthz-bind-address=0.0.0.0:10256")
    code, body, headers = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
        http_get(world, f"http://{a.ip}:10256/healthz")), 10, what="healthz 200")
    m = re.fullmatch(r'\{"lastUpdated": "(%s)","currentTime": "(%s)", "nodeEligible": true\}'
                     % (GO_TIME, GO_TIME), body)
    assert m, body
    assert m.group(1) == m.group(3)                 # healthy: last updated now
    assert headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff"
    assert http_get(world, f"http://{a.ip}:10256/other")[0] == 404
    out = agent.ctl("status", "--verbose", check=False).stdout
    assert "  Kube-proxy Healthz:     0.0.0.0:10256\n" in out


@pytest.mark.kpr("kpr-healthz")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_kube_proxy_replacement_healthz_503_while_not_ready(lab1, api, start_agent):
    a = lab1.node("a")
    # A Service that does not fit the services map: the agent never becomes ready.
    api.create(k8s.service("default", "big", [("http", 80, "TCP")], cluster_ip=VIP))
    api.create(k8s.endpointslice("default", "big-1", "big", [
        (f"10.244.1.{10 + i}", True, a.name) for i in range(20)], [("http", 8080, "TCP")]))
    up(lab1, api, start_agent, "--bpf-lb-service-map-max=16",
       "--kube-proxy-replacement-healthz-bind-address=:10256")
    code, body, _ = wait_for(lambda: (lambda r: r if r[0] else None)(
        http_get(a, "http://127.0.0.1:10256/healthz")), 10, what="healthz answers")
    assert code == 503
    m = re.fullmatch(r'\{"lastUpdated": "(%s)","currentTime": "(%s)", "nodeEligible": true\}'
                     % (GO_TIME, GO_TIME), body)
    assert m and m.group(1) == "1970-01-01 00:00:00 +0000 UTC", body
