"""Initial sync on a fresh node: Services are realized as their EndpointSlices arrive.

One agent on node A (native device, so the tc datapath loads), LB maps empty at start.
600 Services with one EndpointSlice each, plus one Service with no slice: the Services
LIST takes two pages (the agent's limit is 500) and every Services LIST request is
delayed 3 s by the test apiserver, so the first page arrives at ~3 s and the second at
~6 s while the EndpointSlices list is complete at once. In between, the Services of the
first page are in the maps with their backends while the Services watch is not yet
synced; the one without a slice is not (it waits for the complete lists); once synced,
all 601 are. The agent lists by pages here (--k8s-watch-list=false): with watch-list
each Service is realized as its event arrives, which needs no test of its own beyond
the watch-list tests in test_k8s_client.py and test_faults.py. The restart case (pinned state: nothing realized before the lists are
complete) is test_clusterip.py's test_datapath_outlives_agent_and_cleanup_removes_it.
"""

import k8s
from netlab import wait_for

N = 600


def vip(i):
    return f"10.96.{50 + i // 250}.{i % 250 + 1}"


def backend(i):
    return f"10.250.{i // 250}.{i % 250 + 1}"


def services_synced(agent):
    w = next(w for w in agent.status()["kubernetes"]["watches"] if w["name"] == "services")
    return bool(w["synced"])


def test_fresh_node_realizes_services_before_the_lists_complete(lab1, api, start_agent):
    a = lab1.node("a")
    lab1.publish(api)
    for i in range(N):
        api.create(k8s.service("default", f"s{i}", [("http", 80, "TCP")], cluster_ip=vip(i)))
        api.create(k8s.endpointslice("default", f"s{i}-1", f"s{i}", [(backend(i), True)],
                                     [("http", 8080, "TCP")]))
    # "default/a-lonely" sorts into the first page.
    api.create(k8s.service("default", "a-lonely", [("http", 80, "TCP")],
                           cluster_ip="10.96.60.1"))
    keys = sorted([f"s{i}" for i in range(N)] + ["a-lonely"])
    first_page = set(keys[:500])
    api.fault(delay_ms=3000, verb="list", resource="services", count=-1)
    agent = start_agent(a, "--k8s-watch-list=false", wait=False)

    def page_one_realized():
        fe = agent.lb_frontends()
        return fe if len(fe) >= len(first_page) - 1 else None
    fe = wait_for(page_one_realized, timeout=20, what="the first page's services realized")
    assert not services_synced(agent), "the Services list completed before the check"
    want = {f"{vip(i)}:80/TCP": [f"{backend(i)}:8080"] for i in range(N) if f"s{i}" in first_page}
    assert fe == want
    assert "10.96.60.1:80/TCP" not in fe

    agent.wait_synced(timeout=20)
    api.clear_faults()
    fe = agent.lb_frontends()
    assert len(fe) == N + 1
    assert fe["10.96.60.1:80/TCP"] == []
    assert all(fe[f"{vip(i)}:80/TCP"] == [f"{backend(i)}:8080"] for i in range(N))
