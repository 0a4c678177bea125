"""--k8s-api-server-urls: the agent tries its apiservers in turn, at start and when the one
in use goes away, and its maps follow whichever answers.

Two test apiservers stand for two control-plane nodes: B shares A's CA, token and (when A
stops) A's stored objects and resourceVersions, as two apiservers over one etcd do. The
agent runs in the lab node's namespace, where both listen on 127.0.0.1.
"""

import shutil

import k8s
from cluster_state import actual_frontends, expected_frontends
from harness import Agent
from netlab import wait_for

DEAD = "https://127.0.0.1:1"      # nothing listens there: connection refused


def second_apiserver(a, tmp_path):
    """An apiserver with A's certificates and token, not started."""
    work = tmp_path / "apiserver-b"
    work.mkdir()
    for f in ("ca.crt", "server.crt", "server.key"):
        shutil.copy(a.workdir / f, work / f)
    return k8s.ApiServer(tls=True, token=a.token, quiet=True, workdir=str(work))


def web(api, name, vip, ips):
    api.create(k8s.service("default", name, [("http", 80, "TCP")], cluster_ip=vip))
    api.create(k8s.endpointslice("default", f"{name}-1", name, [(ip, True) for ip in ips],
                                 [("http", 8080, "TCP")]))


def kube(agent):
    return agent.status()["kubernetes"]


def maps_match(agent, api):
    want = expected_frontends(api)
    return want if actual_frontends(agent) == want else None


def test_first_url_dead_at_start_syncs_from_the_next(lab, apiserver, api):
    web(api, "web", "10.96.40.10", ["10.244.0.20", "10.244.0.21"])
    agent = Agent(lab, apiserver, extra=[f"--k8s-api-server-urls={DEAD},{apiserver.url}"])
    try:
        agent.start()
        k = kube(agent)
        assert k["server"] == apiserver.url
        assert k["servers"] == [DEAD, apiserver.url]
        assert k["connected"] is True
        want = wait_for(lambda: maps_match(agent, api), timeout=5, what="maps as A holds")
        assert want == {"10.96.40.10:80/TCP": ["10.244.0.20:8080", "10.244.0.21:8080"]}
        log = agent.log_path.read_text()
        assert f'msg="k8s apiserver unreachable" server={DEAD} next={apiserver.url}' in log
    finally:
        agent.stop()


def test_apiserver_stopped_mid_run_fails_over_and_resyncs(lab, apiserver, api, tmp_path):
    b = second_apiserver(apiserver, tmp_path)
    b.start()                      # once, to learn its port; it comes back with A's data
    b_port = b.port
    b.stop()
    web(api, "web", "10.96.40.10", ["10.244.0.20", "10.244.0.21"])
    web(api, "old", "10.96.40.11", ["10.244.0.30"])
    agent = Agent(lab, apiserver, extra=[f"--k8s-api-server-urls={apiserver.url},{b.url}"])
    b.listen_in(lab.node_ns)
    try:
        agent.start()
        assert kube(agent)["server"] == apiserver.url
        wait_for(lambda: maps_match(agent, api), timeout=5, what="maps as A holds")

        # A goes away; B comes up over the same objects and revisions (one etcd).
        apiserver.stop()
        shutil.copy(apiserver.state_file, b.state_file)
        b.start()
        assert b.port == b_port
        bapi = b.client()
        # Changes only B has seen: a scale-up, a new Service, a deleted one.
        cur = bapi.get("endpointslices", "default", "web-1")
        eps = k8s.endpointslice("default", "web-1", "web",
                                [(ip, True) for ip in ("10.244.0.20", "10.244.0.21",
                                                       "10.244.0.22")],
                                [("http", 8080, "TCP")])
        eps["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        bapi.update(eps)
        web(bapi, "new", "10.96.40.12", ["10.244.0.40"])
        bapi.delete("services", "default", "old")
        bapi.delete("endpointslices", "default", "old-1")

        want = wait_for(lambda: maps_match(agent, bapi), timeout=10, what="maps as B holds")
        assert want == {"10.96.40.10:80/TCP": ["10.244.0.20:8080", "10.244.0.21:8080",
                                               "10.244.0.22:8080"],
                        "10.96.40.12:80/TCP": ["10.244.0.40:8080"]}
        # Watches that failed on both servers before B was up come back after their
        # backoff (--k8s-backoff-base 1s: under 2 s).
        def settled():
            k = kube(agent)
            return k if k["connected"] and all(w["state"] == "watching" for w in
                                               k["watches"]) else None
        k = wait_for(settled, timeout=5, what="every watch on B")
        assert k["server"] == b.url
        assert agent.alive()
        # A watch that A ended while it was idle (no event yet) was resumed, not
        # counted as a failed request with a backoff.
        assert 'error="HTTP 200' not in agent.log_path.read_text()
        # B serves the agent's watches now.
        assert b.client().stats()["watches"]["open"].get("services") == 1
    finally:
        agent.stop()
        b.close()
