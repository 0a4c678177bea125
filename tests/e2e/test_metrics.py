"""The Prometheus endpoint: every value checked against what agentctl reads from the maps.

Map pressure must be right for every map at scrape time, whoever fills it: the agent
(services) or the datapath (conntrack, written here behind the agent's back the way
the tc programs would), which is what cilium/cilium#32311 got wrong.
"""

import os
import subprocess
import time

import k8s
from harness import serve, tcp
from metrics import http, metrics_flag, parse, scrape, value
from netlab import wait_for

VIP = "10.96.30.10"


def start(lab, api, agent, *flags):
    b1, b2, client = lab.add_pod("b1"), lab.add_pod("b2"), lab.add_pod("client")
    serve(b1), serve(b2)
    api.create(k8s.service("default", "web", [("http", 80, "TCP")], cluster_ip=VIP))
    api.create(k8s.endpointslice("default", "web-1", "web", [(b1.ip, True), (b2.ip, True)],
                                 [("http", 8080, "TCP")]))
    agent.extra += [metrics_flag(), *flags]
    agent.start()
    return client


def write_ct_entries(agent, n):
    """n conntrack entries written straight into the pinned map, as the datapath would."""
    info = {m["name"]: m for m in agent.ctl_json("map", "list")}["ct4_any"]
    path = os.path.join(agent.bpf_root, "maps", "ct4_any")
    for i in range(n):
        key = [0] * info["key_size"]
        key[0], key[1] = i & 0xff, 0x42
        val = [0] * info["value_size"]
        val[32:36] = [0xff] * 4          # lifetime: far in the future (not collected)
        subprocess.run(["bpftool", "map", "update", "pinned", path,
                        "key", "hex", *(f"{b:02x}" for b in key),
                        "value", "hex", *(f"{b:02x}" for b in val)], check=True)


def test_pressure_and_capacity_match_every_map(lab, api, agent):
    client = start(lab, api, agent)
    assert all(r["ok"] for r in tcp(client, VIP, 80, 5))
    write_ct_entries(agent, 20)

    maps = {m["name"]: m for m in agent.ctl_json("map", "list")}
    assert maps["ct4_any"]["entries"] == 20
    assert maps["lb4_services"]["entries"] == 3          # slot 0 and two backends

    # Counts are at most a second old: the conntrack entries written behind the
    # agent's back show within that.
    def counted():
        s = scrape(agent)
        return s if value(s, "axon_bpf_map_entries", map_name="ct4_any") == 20 else None
    s = wait_for(counted, timeout=3, what="ct4_any counted at 20")

    for name, m in maps.items():
        assert value(s, "axon_bpf_map_capacity", map_name=name) == m["max_entries"], name
        if "entries" not in m:                           # ring buffer, socket storage
            assert value(s, "axon_bpf_map_pressure", map_name=name) is None, name
            continue
        if name in ("ct4_any", "ct4_tcp", "nat4", "lb4_sock_rev", "lb4_affinity", "metrics"):
            continue                                     # traffic may move these; below
        assert value(s, "axon_bpf_map_entries", map_name=name) == m["entries"], name
        assert value(s, "axon_bpf_map_pressure", map_name=name) == \
            m["entries"] / m["max_entries"], name
    assert value(s, "axon_bpf_map_pressure", map_name="ct4_any") == \
        20 / maps["ct4_any"]["max_entries"]
    # status shows the same counts from the same cache.
    st = {m["name"]: m for m in agent.status()["maps"]}
    assert st["ct4_any"]["entries"] == 20
    assert st["lb4_services"]["entries"] == 3
    assert st["lb4_services"]["configured_max_entries"] == st["lb4_services"]["max_entries"]


def test_counters_match_agentctl(lab, api, agent):
    client = start(lab, api, agent)
    assert all(r["ok"] for r in tcp(client, VIP, 80, 7))
    s = scrape(agent)
    verdicts = agent.ctl_json("bpf", "metrics", "list")
    assert verdicts, "no verdicts counted"
    for v in verdicts:
        name = "axon_drop_count_total" if v["drop"] else "axon_forward_count_total"
        got = value(s, name, reason=v["reason_name"], direction=v["direction_name"])
        assert got == v["packets"], (v, got)
        got = value(s, name.replace("_count_", "_bytes_"), reason=v["reason_name"],
                    direction=v["direction_name"])
        assert got == v["bytes"], (v, got)
    # Seven connects through the socket LB, at least (the CLI's own count agrees above).
    assert value(s, "axon_forward_count_total", reason="Service translated (socket)",
                 direction="SERVICE") >= 7

    # The agent's writes: three entries in lb4_services, two backends, one rev-NAT.
    assert value(s, "axon_bpf_map_ops_total", map_name="lb4_services", operation="update",
                 outcome="success") >= 3
    assert value(s, "axon_bpf_map_ops_total", map_name="lb4_backends", operation="update",
                 outcome="success") >= 2
    assert value(s, "axon_bpf_map_ops_total", map_name="lb4_services", operation="update",
                 outcome="fail") is None
    assert value(s, "axon_reconciler_errors_total", reconciler="lb") == 0
    assert value(s, "axon_reconciler_unrealized", reconciler="lb") == 0
    st = agent.status()
    for w in st["kubernetes"]["watches"]:
        assert value(s, "axon_k8s_lists_total", resource=w["name"]) == w["lists"], w
        assert value(s, "axon_k8s_objects", resource=w["name"]) == w["objects"], w
    assert value(s, "axon_k8s_objects", resource="services") == 1


def test_http_and_a_stalled_client_does_not_stall_the_agent(lab, api, agent):
    start(lab, api, agent)
    assert http(agent, "/")[0] == 404
    assert http(agent, "/metrics", method="POST")[0] == 405
    code, body = http(agent, "/metrics?x=1")
    assert code == 200 and parse(body)

    # A client that connects to the metrics port and never sends a request: the
    # agent's own loop (status over the API socket) is not held up by it.
    staller = agent.node.spawn(["/usr/bin/python3", "-c",
                                "import socket, time; s = socket.create_connection("
                                "('127.0.0.1', 19962)); print('connected', flush=True); "
                                "time.sleep(10)"], stdout=subprocess.PIPE)
    try:
        assert staller.stdout.readline().strip() == b"connected"
        t0 = time.monotonic()
        agent.status()
        assert time.monotonic() - t0 < 1.0
    finally:
        staller.kill()
        staller.wait()
    # After the stalled client's deadline the endpoint serves again.
    wait_for(lambda: http(agent)[0] == 200, timeout=5, what="metrics served again")


def test_off_by_default(lab, api, agent):
    agent.start()
    code, _ = http(agent)
    assert code == 0                                     # nothing listens
    assert "serving metrics" not in agent.log_tail(100)

