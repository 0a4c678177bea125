"""A services map made full on purpose (--bpf-lb-service-map-max=16).

Ten one-port, one-backend services need 2 entries each (slot 0 and the backend's
slot) in a map of 16. What does not fit is named in status with its error, the
module is degraded, pressure is 1.0, the services that fit keep serving real TCP
through their ClusterIPs, and once services are deleted in the apiserver the rest
is realized by the reconciler's retries, with no restart.
"""

import k8s
from harness import serve, tcp
from metrics import metrics_flag, scrape, value
from netlab import wait_for

N = 10


def vip(i):
    return f"10.96.40.{i + 1}"


def lb_module(st):
    return next(m for m in st["modules"] if m["name"] == "lb-reconciler")


def reached(client, ip):
    return all(r["ok"] for r in tcp(client, ip, 80, 2))


def test_full_services_map_degrades_serves_what_fits_and_recovers(lab, api, agent):
    b1, client = lab.add_pod("b1"), lab.add_pod("client")
    serve(b1)
    for i in range(N):
        api.create(k8s.service("default", f"s{i}", [("http", 80, "TCP")], cluster_ip=vip(i)))
        api.create(k8s.endpointslice("default", f"s{i}-1", f"s{i}", [(b1.ip, True)],
                                     [("http", 8080, "TCP")]))
    agent.extra += ["--bpf-lb-service-map-max=16", metrics_flag()]
    agent.start()

    def failing():
        st = agent.ctl_json("status", "--verbose")
        return st if st["unrealized"] else None
    st = wait_for(failing, timeout=5, what="services reported unrealized")
    failed = {u["service"]: u["error"] for u in st["unrealized"]}
    # At most 8 services fit; the ones that did not are named, with why.
    assert len(failed) >= 2, failed
    assert set(failed) <= {f"default/s{i}" for i in range(N)}, failed
    for name, err in failed.items():
        assert "map full" in err and "lb4_services" in err, (name, err)
    assert lb_module(st)["health"] == "degraded"
    assert f"{len(failed)} service(s) not realized" in lb_module(st)["message"]
    text = agent.ctl("status", "--verbose").stdout
    for name in failed:
        assert f"service {name}: " in text

    maps = {m["name"]: m for m in agent.ctl_json("map", "list")}
    assert maps["lb4_services"]["max_entries"] == 16
    assert maps["lb4_services"]["entries"] == 16

    def full_pressure():
        s = scrape(agent)
        return s if value(s, "axon_bpf_map_pressure", map_name="lb4_services") == 1.0 else None
    s = wait_for(full_pressure, timeout=3, what="pressure 1.0")
    assert value(s, "axon_bpf_map_ops_total", map_name="lb4_services", operation="update",
                 outcome="fail") >= len(failed)
    assert value(s, "axon_reconciler_unrealized", reconciler="lb") == len(failed)
    assert value(s, "axon_reconciler_errors_total", reconciler="lb") >= len(failed)

    # The datapath serves every service that fit: a real TCP connection from a pod.
    realized = [i for i in range(N) if f"default/s{i}" not in failed]
    assert len(realized) >= 6
    for i in realized:
        assert reached(client, vip(i)), f"s{i} ({vip(i)}) not served"

    # Make room: delete three realized services in the apiserver. The failing
    # ones are retried (with backoff) and realized, without a restart.
    pid = agent.proc.pid
    for i in realized[:3]:
        api.delete("services", "default", f"s{i}")
        api.delete("endpointslices", "default", f"s{i}-1")

    def recovered():
        st = agent.ctl_json("status", "--verbose")
        return st if not st["unrealized"] and lb_module(st)["health"] == "ok" else None
    wait_for(recovered, timeout=40, what="every remaining service realized")
    assert agent.alive() and agent.proc.pid == pid
    for i in range(N):
        if i in realized[:3]:
            continue
        assert reached(client, vip(i)), f"s{i} ({vip(i)}) not served after recovery"
    fe = agent.lb_frontends()
    assert sorted(fe) == sorted(f"{vip(i)}:80/TCP" for i in range(N) if i not in realized[:3])
    s = scrape(agent)
    assert value(s, "axon_reconciler_unrealized", reconciler="lb") == 0
    assert value(s, "axon_reconciler_retries_total", reconciler="lb") >= len(failed)
    wait_for(lambda: value(scrape(agent), "axon_bpf_map_pressure",
                           map_name="lb4_services") == 14 / 16,
             timeout=3, what="pressure 14/16 after recovery")



def test_batch_stopped_by_a_full_map_keeps_mirror_and_names_the_slot(lab, api, agent):
    """17 backends into a services map of 16: the kernel's batch writes slots
    1..16 and stops; the 17th is retried alone, fails, and is named. Deleting the
    service removes exactly what the batch wrote (the mirror took its prefix)."""
    client = lab.add_pod("client")
    pods = [lab.add_pod(f"b{i}") for i in range(2)]
    for p in pods:
        serve(p)
    big = [(f"10.244.99.{i + 1}", True) for i in range(17)]   # never connected to
    api.create(k8s.service("default", "big", [("http", 80, "TCP")], cluster_ip=vip(0)))
    api.create(k8s.endpointslice("default", "big-1", "big", big, [("http", 8080, "TCP")]))
    agent.extra += ["--bpf-lb-service-map-max=16", metrics_flag()]
    agent.start()

    def failing():
        st = agent.ctl_json("status", "--verbose")
        return st if st["unrealized"] else None
    st = wait_for(failing, timeout=5, what="service reported unrealized")
    assert [u["service"] for u in st["unrealized"]] == ["default/big"]
    assert "slot 17 in lb4_services: map full" in st["unrealized"][0]["error"]
    assert services_entries(agent) == 16
    s = scrape(agent)
    assert value(s, "axon_bpf_map_batches_total", map_name="lb4_services", outcome="fail") >= 1
    assert value(s, "axon_bpf_map_batches_total", map_name="lb4_backends",
                 outcome="success") >= 1
    assert value(s, "axon_bpf_map_ops_total", map_name="lb4_backends", operation="update",
                 outcome="success") >= 17
    # Per element: the 16 the batch wrote; the 17th failed in it and alone.
    assert value(s, "axon_bpf_map_ops_total", map_name="lb4_services", operation="update",
                 outcome="success") == 16
    assert value(s, "axon_bpf_map_ops_total", map_name="lb4_services", operation="update",
                 outcome="fail") >= 2

    api.delete("services", "default", "big")
    api.delete("endpointslices", "default", "big-1")
    wait_for(lambda: services_entries(agent) == 0 and
             not agent.ctl_json("status", "--verbose")["unrealized"],
             timeout=40, what="the service's slots all deleted")

    # A service that fits is realized and serves.
    api.create(k8s.service("default", "small", [("http", 80, "TCP")], cluster_ip=vip(1)))
    api.create(k8s.endpointslice("default", "small-1", "small",
                                 [(p.ip, True) for p in pods], [("http", 8080, "TCP")]))
    wait_for(lambda: services_entries(agent) == 3, timeout=10, what="small service written")
    assert reached(client, vip(1))


def services_entries(agent):
    return {m["name"]: m for m in agent.ctl_json("map", "list")}["lb4_services"]["entries"]
