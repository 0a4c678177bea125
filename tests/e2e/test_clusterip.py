"""ClusterIP Services end to end: apiserver -> agent -> BPF maps -> real traffic.

Pods are network namespaces behind veths in a node namespace; every client
pod runs in its own cgroup under the cgroup the agent attached to; backends
are real TCP/UDP servers. Assertions are on what clients reach.
"""

import os
import signal
import time

import pytest

import k8s
import realk8s
from harness import serve, tcp, udp
from netlab import wait_for

VIP = "10.96.10.10"
PORTS = [("http", 80, "TCP"), ("dns", 53, "UDP")]
EPS_PORTS = [("http", 8080, "TCP"), ("dns", 5353, "UDP")]


def web(api, backends, ready=None, vip=VIP, name="web"):
    """Create (or replace) Service `name` with an EndpointSlice over backends."""
    ready = ready or [True] * len(backends)
    eps = k8s.endpointslice("default", f"{name}-1", name,
                            [(b.ip, r) for b, r in zip(backends, ready)], EPS_PORTS)
    try:
        api.create(k8s.service("default", name, PORTS, cluster_ip=vip))
        api.create(eps)
    except k8s.ApiError:
        cur = api.get("endpointslices", "default", f"{name}-1")
        eps["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        api.update(eps)


def set_backends(api, name, backends, ready=None):
    ready = ready or [True] * len(backends)
    cur = api.get("endpointslices", "default", f"{name}-1")
    eps = k8s.endpointslice("default", f"{name}-1", name,
                            [(b.ip, r) for b, r in zip(backends, ready)], EPS_PORTS)
    eps["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
    api.update(eps)


def reached(results):
    return {r["reply"]["pod"] for r in results if r["ok"]}


@pytest.mark.kpr("source-ip-same-node")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_tcp_and_udp_reach_backends_and_peer_is_the_clusterip(lab, api, agent):
    b1, b2, client = lab.add_pod("b1"), lab.add_pod("b2"), lab.add_pod("client")
    serve(b1), serve(b2)
    web(api, [b1, b2])
    agent.start()

    for r in tcp(client, VIP, 80, 10):
        assert r["ok"], r
        # The backend really served it, on its own address and port ...
        assert r["reply"]["local"] in (f"{b1.ip}:8080", f"{b2.ip}:8080")
        # ... the client saw the backend as the ClusterIP (getpeername) ...
        assert r["peername"] == f"{VIP}:80"
        # ... and the backend saw the client's pod IP (no SNAT).
        assert r["reply"]["peer"].startswith(client.ip + ":")
    for connected in (False, True):
        for r in udp(client, VIP, 53, 6, connected=connected):
            assert r["ok"], r
            assert r["from"] == f"{VIP}:53"
            assert r["reply"]["pod"] in ("b1", "b2")


def test_traffic_spreads_over_ready_backends_only(lab, api, agent):
    pods = [lab.add_pod(f"b{i}") for i in range(4)]
    for p in pods:
        serve(p)
    client = lab.add_pod("client")
    web(api, pods, ready=[True, True, True, False])
    agent.start()

    results = tcp(client, VIP, 80, 90)
    assert all(r["ok"] for r in results)
    counts = {p.name: sum(r["reply"]["pod"] == p.name for r in results) for p in pods}
    assert counts["b3"] == 0, counts                   # not ready: never chosen
    assert all(counts[f"b{i}"] >= 10 for i in range(3)), counts


@pytest.mark.kpr("endpoints-follow-pods")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_scaling_and_deletion_take_effect_within_a_second(lab, apiserver, api, agent):
    b1, b2, b3 = (lab.add_pod(n) for n in ("b1", "b2", "b3"))
    for p in (b1, b2, b3):
        serve(p)
    client = lab.add_pod("client")
    web(api, [b1])
    agent.start()
    assert reached(tcp(client, VIP, 80, 5)) == {"b1"}

    # Scale up: the new backends are reached within a second of the write.
    t0 = time.monotonic()
    set_backends(api, "web", [b1, b2, b3])
    wait_for(lambda: len(agent.lb_frontends()[f"{VIP}:80/TCP"]) == 3, timeout=1.0,
             what="three backends in the map")
    assert time.monotonic() - t0 < 1.0
    assert reached(tcp(client, VIP, 80, 40)) == {"b1", "b2", "b3"}

    # Scale down to b3 only.
    t0 = time.monotonic()
    set_backends(api, "web", [b3])
    wait_for(lambda: agent.lb_frontends()[f"{VIP}:80/TCP"] == [f"{b3.ip}:8080"],
             timeout=1.0, what="only b3 in the map")
    assert reached(tcp(client, VIP, 80, 20)) == {"b3"}

    # Delete the Service: no entry is left behind, and the ClusterIP is dead. What stays
    # on the real apiserver is the `kubernetes` Service: its frontend, without backends.
    kube = [f"{realk8s.KUBERNETES_SERVICE_IP}:443"] if isinstance(apiserver, realk8s.Scope) \
        else []
    t0 = time.monotonic()
    api.delete("services", "default", "web")
    wait_for(lambda: agent.lb_frontends() == {f"{k}/TCP": [] for k in kube}, timeout=1.0,
             what="frontends gone")
    assert time.monotonic() - t0 < 1.0
    assert not any(r["ok"] for r in tcp(client, VIP, 80, 3))
    assert [f"{r['address']}:{r['port']}" for r in
            agent.ctl_json("bpf", "lb", "list", "--revnat")] == kube
    maps = {m["name"]: m for m in agent.ctl_json("map", "list")}
    assert maps["lb4_backends"]["entries"] == 0
    assert maps["lb4_services"]["entries"] == len(kube)


@pytest.mark.kpr("reject-socket-lb")
@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_service_without_ready_endpoints_refuses_connections(lab, api, agent):
    b1, client = lab.add_pod("b1"), lab.add_pod("client")
    serve(b1)
    web(api, [b1], ready=[False])
    agent.start()
    results = tcp(client, VIP, 80, 3)
    assert [r.get("errno") for r in results] == ["ECONNREFUSED"] * 3
    # Becoming ready brings it back.
    set_backends(api, "web", [b1], ready=[True])
    wait_for(lambda: all(r["ok"] for r in tcp(client, VIP, 80, 2)), timeout=2,
             what="service reachable once ready")


def test_malformed_service_is_skipped_and_others_keep_working(lab, api, agent):
    b1, client = lab.add_pod("b1"), lab.add_pod("client")
    serve(b1)
    web(api, [b1])
    bad = k8s.service("default", "broken", [("http", 70000, "TCP")], cluster_ip="10.96.10.99")
    api.create(bad)
    bad_ip = k8s.service("default", "badip", [("http", 80, "TCP")], cluster_ip="10.96.300.1")
    api.create(bad_ip)
    agent.start()

    st = agent.ctl_json("status", "--verbose")
    skipped = {s["name"]: s["error"] for s in st["skipped_objects"]}
    assert "default/broken" in skipped and "70000" in skipped["default/broken"]
    assert "default/badip" in skipped
    assert f"{VIP}:80/TCP" in agent.lb_frontends()
    assert "10.96.10.99:70000/TCP" not in agent.lb_frontends()
    assert reached(tcp(client, VIP, 80, 3)) == {"b1"}
    # The log names the object.
    assert 'name=default/broken' in agent.log_tail(200)
    # A later valid service still gets programmed: the agent is healthy.
    web(api, [b1], vip="10.96.10.11", name="web2")
    wait_for(lambda: "10.96.10.11:80/TCP" in agent.lb_frontends(), timeout=2,
             what="web2 programmed")
    assert agent.alive()


def test_agent_survives_apiserver_restart(lab, apiserver, api, agent):
    b1, b2, client = lab.add_pod("b1"), lab.add_pod("b2"), lab.add_pod("client")
    serve(b1), serve(b2)
    web(api, [b1])
    agent.start()
    apiserver.restart(keep_state=True, down_seconds=1)
    api = apiserver.client()
    # While the apiserver was away traffic kept flowing; after, changes apply.
    assert reached(tcp(client, VIP, 80, 3)) == {"b1"}
    set_backends(api, "web", [b2])
    wait_for(lambda: agent.lb_frontends().get(f"{VIP}:80/TCP") == [f"{b2.ip}:8080"],
             timeout=15, what="change after apiserver restart")
    assert reached(tcp(client, VIP, 80, 3)) == {"b2"}
    assert agent.alive()


def test_lb_list_layout_and_works_with_agent_down(lab, api, agent):
    b1, b2 = lab.add_pod("b1"), lab.add_pod("b2")
    web(api, [b1, b2])
    agent.start()
    agent.stop(signal.SIGTERM)          # the datapath stays; the CLI reads the pins
    text = agent.ctl("bpf", "lb", "list").stdout.splitlines()
    assert text[0].split() == ["SERVICE", "ADDRESS", "BACKEND", "ADDRESS", "(REVNAT_ID)",
                               "(SLOT)"]
    svc_line = next(line for line in text if line.startswith(f"{VIP}:80/TCP"))
    assert "0.0.0.0:0" in svc_line and "(0) [ClusterIP]" in svc_line
    backend_lines = [line.split() for line in text if ":8080/TCP" in line]
    assert sorted(b[0] for b in backend_lines) == sorted([f"{b1.ip}:8080/TCP",
                                                          f"{b2.ip}:8080/TCP"])
    assert sorted(b[2] for b in backend_lines) == ["(1)", "(2)"]
    fe = {f["frontend"]: f for f in agent.ctl_json("bpf", "lb", "list")}
    assert fe[f"{VIP}:53/UDP"]["count"] == 2
    assert fe[f"{VIP}:53/UDP"]["flags"] == ["ClusterIP"]
    revnat = agent.ctl_json("bpf", "lb", "list", "--revnat")
    assert sorted(f"{r['address']}:{r['port']}" for r in revnat) == [f"{VIP}:53", f"{VIP}:80"]


def test_datapath_outlives_agent_and_cleanup_removes_it(lab, api, agent):
    b1, client = lab.add_pod("b1"), lab.add_pod("client")
    serve(b1)
    web(api, [b1])
    agent.start()
    assert agent.stop(signal.SIGTERM) == 0
    # No agent: traffic keeps flowing through the pinned programs and maps.
    assert reached(tcp(client, VIP, 80, 3)) == {"b1"}
    # A restarted agent adopts the datapath without rewriting it, even when
    # its EndpointSlice list arrives well after its Service list (the slices
    # LIST is delayed here): nothing is realized from a half-synced store.
    api.fault(delay_ms=800, path_prefix="/apis/discovery.k8s.io/v1/endpointslices",
              count=1)
    agent.start(wait=False)
    during = tcp(client, VIP, 80, 20)
    agent.wait_synced()
    assert all(r["ok"] for r in during), during
    st = agent.status()
    assert st["load_balancing"]["map_updates"] == 0, st["load_balancing"]
    assert "refus" not in agent.log_tail()
    agent.stop(signal.SIGTERM)
    r = agent.ctl("cleanup")
    assert "detached 0 tc attachment(s)" in r.stdout and "removed 5 other link(s)" in r.stdout
    assert agent.ctl("bpf", "lb", "list", check=False).returncode != 0
    # The hooks are gone: the ClusterIP is no longer translated.
    assert not any(r["ok"] for r in tcp(client, VIP, 80, 2))


def test_status_reports_and_fails_cleanly_without_agent(lab, api, agent):
    b1 = lab.add_pod("b1")
    web(api, [b1])
    agent.start()
    st = agent.status()
    # The pins live in the machine's bpffs: the agent made a directory in it,
    # not a bpffs mount of its own (which would outlive every cleanup).
    assert os.path.isdir(os.path.join(lab.bpf_root, "maps"))
    assert not os.path.ismount(lab.bpf_root)
    assert "mounted bpffs" not in agent.log_tail(200)
    assert st["kubernetes"]["connected"] is True
    assert st["kubernetes"]["version"].startswith("v1.34")
    assert {w["name"] for w in st["kubernetes"]["watches"]} == {
        "services", "endpointslices", "nodes", "ciliumendpointslices", "networkpolicies",
        "ciliumnetworkpolicies", "ciliumclusterwidenetworkpolicies", "ciliumidentities",
        "namespaces", "pods"}
    assert not any(w["not_installed"] for w in st["kubernetes"]["watches"])
    assert st["load_balancing"]["services"] == 1
    assert st["load_balancing"]["backends"] == 2            # TCP and UDP
    assert {a["hook"] for a in st["attach"]} == {
        "cgroup/connect4", "cgroup/sendmsg4", "cgroup/recvmsg4", "cgroup/getpeername4",
        "cgroup/sock_release"}
    assert all(m["health"] == "ok" for m in st["modules"] if m["name"] != "datapath")
    # No Node object for this agent: the tc datapath waits and touches no device.
    dp = next(m for m in st["modules"] if m["name"] == "datapath")
    assert dp["health"] in ("waiting", "disabled"), dp
    assert st["datapath"]["tc_loaded"] is False
    assert st["node"]["known"] is False
    text = agent.ctl("status").stdout
    assert "Kubernetes:" in text and "synced" in text
    agent.stop()
    r = agent.ctl("status", check=False)
    assert r.returncode == 2
    assert r.stderr == (f"agentctl: Agent unreachable at {agent.socket}: is axon-agent "
                        "running?\n")
    r = agent.ctl("-o", "json", "status", check=False)
    assert r.returncode == 2 and '"error"' in r.stdout


def test_sockets_leave_no_reverse_entries(lab, api, agent):
    b1, client = lab.add_pod("b1"), lab.add_pod("client")
    serve(b1)
    web(api, [b1])
    agent.start()
    assert all(r["ok"] for r in tcp(client, VIP, 80, 200))
    assert all(r["ok"] for r in udp(client, VIP, 53, 50))
    maps = {m["name"]: m for m in agent.ctl_json("map", "list")}
    assert maps["lb4_sock_rev"]["entries"] == 0


def test_flush_on_exit_removes_the_datapath(lab, apiserver, api):
    from harness import Agent
    b1, client = lab.add_pod("b1"), lab.add_pod("client")
    serve(b1)
    web(api, [b1])
    agent = Agent(lab, apiserver, extra=["--flush-on-exit"]).start()
    assert reached(tcp(client, VIP, 80, 2)) == {"b1"}
    assert agent.stop(signal.SIGTERM) == 0
    assert "flushed datapath" in agent.log_tail()
    # Nothing pinned is left, and the ClusterIP is no longer translated.
    assert agent.ctl("map", "list", check=False).returncode != 0
    assert not any(r["ok"] for r in tcp(client, VIP, 80, 2))
