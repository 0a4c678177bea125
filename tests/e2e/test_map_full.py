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
