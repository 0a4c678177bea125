"""Endpoints, identities and CiliumEndpointSlices published by the agent itself.

The agent watches the Pods bound to its node; each one with an IPv4 pod address becomes an
endpoint: its labels (Cilium's form and filter) get a CiliumIdentity, created or reused, and
the endpoint is published in a CiliumEndpointSlice of this node, which every agent's own
CES watch reads back (ipcache, routes, policy). See docs/identities.md.

The identity race and the removed node's slices run against the test apiserver and the real
one (tests/lib/realk8s.py). The real one outlives the test: it runs in a namespace of its
own, and deletes the cluster-scoped objects the agents created (CiliumIdentities,
CiliumEndpointSlices) itself.
"""

import time

import pytest

import k8s
from harness import serve, tcp
from metrics import metrics_flag, scrape, value
from netlab import wait_for
from test_datapath import wait_attached

NS = "shop"


def start(lab, api, start_agent, node, *flags):
    for n in lab.nodes:
        api.apply(n.k8s_node())
    agent = start_agent(node, *flags)
    wait_attached(agent, node.native)
    return agent


def pod_obj(pod, labels, ns=NS, **kw):
    return k8s.pod(ns, pod.name, pod.node.name, ip=pod.ip, labels=labels, **kw)


def own_namespace(apiserver, api):
    """NS on the test apiserver; on the real one a namespace of the test's own (the server
    outlives the test), with the `default` ServiceAccount admission wants for every Pod."""
    if hasattr(apiserver, "create_namespace"):
        ns = apiserver.create_namespace("ids")
        apiserver.create_service_account(ns, "default")
        return ns
    api.create(k8s.namespace(NS))
    return NS


def create_pod(api, obj):
    """obj created with its status (the pod's address): the real apiserver drops a status
    given on create, so it is written through the status subresource as the kubelet does."""
    out = api.create(obj)
    if out.get("status", {}).get("podIP") != obj["status"].get("podIP"):
        out["status"] = obj["status"]
        api.update_status(out)


def delete_published(api, ns, pods, nodes):
    """What the agents created for ns, gone: its pods deleted, the agents' slices of nodes
    deleted by them (then by hand, should an agent be gone), the identities of ns deleted."""
    for name in pods:
        try:
            api.delete("pods", ns, name)
        except Exception:   # noqa: BLE001 (already gone)
            pass
    mine = lambda: [s["metadata"]["name"] for s in api.list("ciliumendpointslices")["items"]
                    if any(s["metadata"]["name"].startswith(f"axon-{n.name}-") for n in nodes)]
    try:
        wait_for(lambda: not mine(), timeout=15, what="the agents' slices deleted")
    except AssertionError:
        for name in mine():
            api.delete("ciliumendpointslices", None, name)
    for o in api.list("ciliumidentities")["items"]:
        if o["security-labels"].get("k8s:io.kubernetes.pod.namespace") == ns:
            api.delete("ciliumidentities", None, o["metadata"]["name"])


def identities(api):
    return {int(o["metadata"]["name"]): o["security-labels"]
            for o in api.list("ciliumidentities")["items"]}


def slices(api, node):
    return {o["metadata"]["name"]: o for o in api.list("ciliumendpointslices")["items"]
            if o["metadata"]["name"].startswith(f"axon-{node.name}-")}


def published(api, node):
    """{pod: (identity, ip, node ip, named ports)} over node's slices."""
    out = {}
    for s in slices(api, node).values():
        for e in s["endpoints"]:
            out[e["name"]] = (e["id"], e["networking"]["addressing"][0]["ipv4"],
                              e["networking"]["node"],
                              [(p["name"], p["port"], p["protocol"])
                               for p in e.get("named-ports", [])])
    return out


def endpoints(agent):
    return {e["pod"]: e for e in agent.ctl_json("endpoint", "list")}


def expected_labels(labels, sa="default", ns_labels=None, ns=NS):
    want = {f"k8s:{k}": v for k, v in labels.items()}
    want["k8s:io.kubernetes.pod.namespace"] = ns
    want["k8s:io.cilium.k8s.policy.serviceaccount"] = sa
    want["k8s:io.cilium.k8s.policy.cluster"] = "default"
    for k, v in dict({"kubernetes.io/metadata.name": ns}, **(ns_labels or {})).items():
        want[f"k8s:io.cilium.k8s.namespace.labels.{k}"] = v
    return want


def test_pods_get_identities_and_slices_and_traffic_flows(lab1, api, start_agent):
    node = lab1.node("a")
    p1, p2 = node.add_pod("p1"), node.add_pod("p2")
    serve(p2)
    api.create(k8s.namespace(NS, {"team": "red"}))
    api.create(pod_obj(p1, {"app": "web", "pod-template-hash": "5d9c7"},
                       ports=[("http", 8080)]))
    api.create(pod_obj(p2, {"app": "web", "pod-template-hash": "77f1a"},
                       ports=[("http", 8080), ("dns", 53, "UDP")]))
    agent = start(lab1, api, start_agent, node, metrics_flag())

    # One identity for both: pod-template-hash is not identity-relevant.
    want = expected_labels({"app": "web"}, ns_labels={"team": "red"})
    ids = wait_for(lambda: [i for i, l in identities(api).items() if l == want] or None,
                   timeout=10, what="the pods' CiliumIdentity")
    assert len(ids) == 1 and 256 <= ids[0] <= 65535, identities(api)
    ident = ids[0]

    pub = wait_for(lambda: (lambda p: p if len(p) == 2 else None)(published(api, node)),
                   timeout=10, what="both pods in the node's CiliumEndpointSlice")
    assert pub == {"p1": (ident, p1.ip, node.ip, [("http", 8080, "TCP")]),
                   "p2": (ident, p2.ip, node.ip, [("dns", 53, "UDP"), ("http", 8080, "TCP")])}
    (name, ces), = slices(api, node).items()
    assert ces["namespace"] == NS and name.startswith(f"axon-{node.name}-")

    eps = wait_for(lambda: (lambda e: e if all(x.get("state") == "ready" and x["id"]
                                               for x in e.values()) and len(e) == 2 else None)(
        endpoints(agent)), timeout=10, what="both endpoints ready in the policy engine")
    assert {k: (e["address"], e["identity"], e["namespace"]) for k, e in eps.items()} == {
        f"{NS}/p1": (p1.ip, ident, NS), f"{NS}/p2": (p2.ip, ident, NS)}
    m = scrape(agent)
    assert value(m, "axon_endpoints", state="ready") == 2
    assert value(m, "axon_endpoints", state="waiting-for-identity") == 0
    assert value(m, "axon_identity_allocations_total", result="created") == 1
    assert value(m, "axon_ciliumendpointslice_writes_total", op="create") == 1
    assert value(m, "axon_ciliumendpointslice_writes_total", op="error") == 0
    # The slice the agent published is what routes them: pod to pod works.
    wait_attached(agent, p1.host_if, p2.host_if)
    assert tcp(p1, p2.ip, 8080)[0]["ok"]

    # A label change: a new identity, and the slice follows; the old one is unused.
    api.patch("pods", NS, "p2", {"metadata": {"labels": {"app": "api"}}})
    want_api = expected_labels({"app": "api"}, ns_labels={"team": "red"})
    new = wait_for(lambda: next((i for i, l in identities(api).items() if l == want_api), None),
                   timeout=10, what="p2's new identity")
    wait_for(lambda: published(api, node)["p2"][0] == new, timeout=10,
             what="p2 published under its new identity")
    assert published(api, node)["p1"][0] == ident
    wait_for(lambda: endpoints(agent)[f"{NS}/p2"]["identity"] == new, timeout=10,
             what="endpoint list shows p2's new identity")

    # Deletion: disconnecting while the Pod terminates is not modelled here (no kubelet);
    # the Pod's removal takes it out of the slice.
    api.delete("pods", NS, "p1")
    wait_for(lambda: "p1" not in published(api, node), timeout=10, what="p1 unpublished")
    assert f"{NS}/p1" not in endpoints(agent)
    # The last one gone: the slice is deleted.
    api.delete("pods", NS, "p2")
    wait_for(lambda: not slices(api, node), timeout=10, what="the empty slice deleted")


def test_pods_without_address_or_host_network_are_not_endpoints(lab1, api, start_agent):
    node = lab1.node("a")
    p1 = node.add_pod("p1")
    api.create(k8s.namespace(NS))
    api.create(k8s.pod(NS, "pending", node.name, labels={"app": "x"}))
    api.create(k8s.pod(NS, "hostnet", node.name, ip=node.ip, labels={"app": "x"},
                       host_network=True))
    api.create(k8s.pod(NS, "done", node.name, ip="10.99.0.9", labels={"app": "x"},
                       phase="Succeeded"))
    api.create(k8s.pod(NS, "elsewhere", "other-node", ip="10.99.0.8", labels={"app": "x"}))
    api.create(pod_obj(p1, {"app": "x"}))
    bad = k8s.pod(NS, "bad", node.name, ip="10.99.0.7")
    bad["status"]["podIPs"] = [{"ip": "300.1.1.1"}]
    api.create(bad)
    agent = start(lab1, api, start_agent, node)
    wait_for(lambda: set(published(api, node)) == {"p1"}, timeout=10, what="only p1 published")
    assert set(endpoints(agent)) == {f"{NS}/p1"}
    skipped = agent.ctl_json("status", "--verbose")
    text = str(skipped)
    assert "shop/bad" in text and "status.podIPs[0].ip" in text, text

    # The address arrives (the kubelet writes it after CNI ADD): an endpoint now.
    api.patch("pods", NS, "pending", {"status": {"podIP": "10.99.0.6",
                                                 "podIPs": [{"ip": "10.99.0.6"}]}},
              subresource="status")
    wait_for(lambda: "pending" in published(api, node), timeout=10, what="pending published")


@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_two_agents_racing_on_the_same_labels_end_with_one_identity(lab2, apiserver, api,
                                                                     start_agent):
    a, b = lab2.node("a"), lab2.node("b")
    pa, pb = a.add_pod("pa"), b.add_pod("pb")
    ns = own_namespace(apiserver, api)
    try:
        for n in lab2.nodes:
            api.apply(n.k8s_node())
        create_pod(api, pod_obj(pa, {"app": "race"}, ns))
        create_pod(api, pod_obj(pb, {"app": "race"}, ns))
        # Both start at once, both find no identity for app=race.
        agent_a = start_agent(a, wait=False)
        agent_b = start_agent(b, wait=False)
        agent_a.wait_synced()
        agent_b.wait_synced()
        want = expected_labels({"app": "race"}, ns=ns)
        wait_for(lambda: len(published(api, a)) == 1 and len(published(api, b)) == 1,
                 timeout=10, what="both pods published")
        ids = [i for i, l in identities(api).items() if l == want]
        assert len(ids) == 1, identities(api)
        assert published(api, a)["pa"][0] == published(api, b)["pb"][0] == ids[0]
        wait_for(lambda: all(endpoints(x)[f"{ns}/{p}"].get("state") == "ready"
                             for x, p in ((agent_a, "pa"), (agent_b, "pb"))),
                 timeout=10, what="both endpoints ready")
        # Ready means enforced under that identity, not the init one.
        assert endpoints(agent_a)[f"{ns}/pa"]["identity"] == ids[0]
        assert endpoints(agent_b)[f"{ns}/pb"]["identity"] == ids[0]
    finally:
        delete_published(api, ns, ["pa", "pb"], lab2.nodes)


@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_slices_of_a_removed_node_are_deleted(lab2, apiserver, api, start_agent):
    """A node removed from the cluster (its Node deleted, its agent gone with it) takes its
    CiliumEndpointSlices with it: the live node whose name sorts first deletes them after
    the grace (ces/orphans.h), and its ipcache forgets the removed node's pods."""
    a, b = lab2.node("a"), lab2.node("b")
    pa, pb = a.add_pod("pa"), b.add_pod("pb")
    ns = own_namespace(apiserver, api)
    try:
        for n in lab2.nodes:
            api.apply(n.k8s_node())
        create_pod(api, pod_obj(pa, {"app": "stay"}, ns))
        create_pod(api, pod_obj(pb, {"app": "leave"}, ns))
        agent_a = start_agent(a)
        agent_b = start_agent(b)
        wait_for(lambda: "pa" in published(api, a) and "pb" in published(api, b),
                 timeout=10, what="both pods published")
        ipcache = lambda: {e["address"] for e in agent_a.ctl_json("bpf", "ipcache", "list")}
        wait_for(lambda: pb.ip in ipcache(), timeout=10, what="b's pod in a's ipcache")

        agent_b.stop()
        api.delete("nodes", None, b.name)
        t0 = time.monotonic()
        wait_for(lambda: not slices(api, b), timeout=25, what="b's slices deleted")
        took = time.monotonic() - t0
        assert 9 <= took <= 20, f"deleted after {took:.1f} s, the grace is 10 s"
        wait_for(lambda: pb.ip not in ipcache(), timeout=10, what="b's pod out of a's ipcache")
        # a's own slice is untouched, and the log says what was deleted and why.
        assert "pa" in published(api, a)
        assert "deleted the CiliumEndpointSlice of a node that is gone" in \
            agent_a.log_path.read_text()
    finally:
        delete_published(api, ns, ["pa", "pb"], lab2.nodes)


def test_unused_identity_collected_after_the_grace_period(lab1, api, start_agent):
    node = lab1.node("a")
    p1 = node.add_pod("p1")
    api.create(k8s.namespace(NS))
    api.create(pod_obj(p1, {"app": "gc"}))
    # An identity nobody uses, and one a slice of another node refers to.
    api.create(k8s.ciliumidentity(4000, NS, {"app": "orphan"}))
    api.create(k8s.ciliumidentity(4001, NS, {"app": "remote"}))
    api.create(k8s.ciliumendpointslice("ces-remote", NS, [("r", "10.77.0.1", 4001,
                                                            "192.0.2.1")]))
    start(lab1, api, start_agent, node, "--identity-gc-interval=1s",
          "--identity-heartbeat-timeout=2s")
    want = expected_labels({"app": "gc"})
    ident = wait_for(lambda: next((i for i, l in identities(api).items() if l == want), None),
                     timeout=10, what="p1's identity")
    t0 = time.monotonic()
    wait_for(lambda: 4000 not in identities(api), timeout=10, what="the orphan collected")
    assert time.monotonic() - t0 >= 1.5, "collected before the heartbeat timeout"
    assert {ident, 4001} <= set(identities(api))

    api.delete("pods", NS, "p1")
    wait_for(lambda: ident not in identities(api), timeout=10,
             what="p1's identity collected once p1 is gone")
    assert 4001 in identities(api)


def test_restart_adopts_slices_and_churn_matches_pods(lab1, api, start_agent):
    node = lab1.node("a")
    api.create(k8s.namespace(NS))
    api.create(k8s.namespace("other"))
    agent = start(lab1, api, start_agent, node)
    # 230 pods in two namespaces: three slices in shop (100 + 100 + 30), one in other.
    want = {}
    for i in range(230):
        ns = NS if i < 200 else "other"
        ip = f"10.98.{i // 200}.{i % 200 + 1}"
        api.create(k8s.pod(ns, f"p{i}", node.name, ip=ip, labels={"app": f"a{i % 3}"}))
        want[f"p{i}"] = ip
    def pub_ips():
        return {k: v[1] for k, v in published(api, node).items()}
    wait_for(lambda: pub_ips() == want, timeout=20, what="230 pods published")
    by_ns = {}
    for s in slices(api, node).values():
        assert len(s["endpoints"]) <= 100
        by_ns.setdefault(s["namespace"], []).append(len(s["endpoints"]))
    assert sorted(by_ns[NS]) == [100, 100] and by_ns["other"] == [30], by_ns

    # Churn: delete 60, relabel 20, add 10.
    for i in range(0, 120, 2):
        ns = NS if i < 200 else "other"
        api.delete("pods", ns, f"p{i}")
        del want[f"p{i}"]
    for i in range(1, 41, 2):
        api.patch("pods", NS, f"p{i}", {"metadata": {"labels": {"app": "moved"}}})
    for i in range(230, 240):
        ip = f"10.98.2.{i - 229}"
        api.create(k8s.pod(NS, f"p{i}", node.name, ip=ip, labels={"app": "new"}))
        want[f"p{i}"] = ip
    wait_for(lambda: pub_ips() == want, timeout=20, what="slices match the pods after churn")
    moved = next(i for i, l in identities(api).items() if l == expected_labels({"app": "moved"}))
    wait_for(lambda: all(published(api, node)[f"p{i}"][0] == moved for i in range(1, 41, 2)),
             timeout=10, what="relabelled pods under their new identity")

    # Restart: the slices are adopted as they are, nothing is rewritten.
    before = slices(api, node)
    agent.stop()
    api.reset_stats()
    agent = start_agent(node)
    time.sleep(2)
    reqs = api.stats()["requests"]
    writes = {r: {v: n for v, n in verbs.items() if v in ("create", "update", "patch",
                                                           "delete")}
              for r, verbs in reqs.items() if r in ("ciliumendpointslices", "ciliumidentities")}
    assert not any(writes.values()), writes
    assert {k: v["metadata"]["resourceVersion"] for k, v in slices(api, node).items()} == \
        {k: v["metadata"]["resourceVersion"] for k, v in before.items()}
    assert len([e for e in endpoints(agent).values() if e.get("state") == "ready"]) == len(want)


def test_endpoint_waits_for_its_identity_while_creates_fail(lab1, api, start_agent):
    node = lab1.node("a")
    p1 = node.add_pod("p1")
    api.create(k8s.namespace(NS))
    api.create(pod_obj(p1, {"app": "late"}))
    # The agent's identity creates are refused until the fault is cleared.
    api.fault(status=403, verb="create", resource="ciliumidentities", count=-1,
              user_agent="axon-agent")
    agent = start(lab1, api, start_agent, node)
    def waiting():
        e = endpoints(agent).get(f"{NS}/p1")
        return e if e and "HTTP 403" in e.get("reason", "") else None
    ep = wait_for(waiting, timeout=10, what="p1 waiting, with the error")
    assert (ep["state"], ep["identity"], ep["id"]) == ("waiting-for-identity", 0, 0), ep
    assert ep["reason"].startswith("allocating: "), ep
    assert not published(api, node)
    text = agent.ctl("endpoint", "list").stdout
    assert "waiting-for-identity" in text, text
    api.clear_faults()
    wait_for(lambda: endpoints(agent)[f"{NS}/p1"].get("state") == "ready", timeout=15,
             what="p1 ready once creates succeed (after the backoff)")
    wait_for(lambda: set(published(api, node)) == {"p1"}, timeout=10, what="p1 published")
