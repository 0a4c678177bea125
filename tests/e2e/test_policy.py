"""Network policy end to end, with real traffic: the agent watches NetworkPolicies,
CiliumNetworkPolicies and CiliumIdentities, the engine computes each local endpoint's
policy and the tc programs enforce it on new connections.

Node A holds pods pa, pb and pc (a, b, c below) in namespace default, each with its CiliumIdentity
(app=a, app=b, app=c); b serves TCP 8080. Every step asserts with real connections
from a and c to b, with the agent's view (`agentctl endpoint list`) and with b's
policy trie (`agentctl bpf policy get <id>`). The default-deny, allow and deny sequence runs
against the test apiserver and the real one (tests/lib/realk8s.py).

CiliumNetworkPolicy cases with real traffic: b's egress toEntities world (the world
namespace), host (the node's address), cluster and all, and an egressDeny of world over all;
an ingress rule with toPorts and no fromEndpoints (any peer, that port only); a
CiliumClusterwideNetworkPolicy selecting app=web in two namespaces, against the same rule
as a namespaced CiliumNetworkPolicy.
"""

import signal

import pytest

import k8s
from harness import serve, tcp, udp
from metrics import metrics_flag, scrape, value
from netlab import WORLD_IP, wait_for
from test_datapath import up

NS = "default"


def reaches(src, dst):
    return tcp(src, dst.ip, 8080, 1, timeout=1)[0]["ok"]


def endpoint(agent, pod):
    return next(e for e in agent.ctl_json("endpoint", "list") if e["pod"] == f"{NS}/{pod.name}")


def trie(agent, pod):
    """b's trie entries as (Allow|Deny, identity, port_proto)."""
    doc = agent.ctl_json("bpf", "policy", "get", str(endpoint(agent, pod)["id"]))
    entries = doc[0]["entries"] if doc and "entries" in doc[0] else doc
    return sorted((e["policy"], e["identity"], e["port_proto"]) for e in entries)


def wait_reach(src, dst, want, what):
    wait_for(lambda: reaches(src, dst) == want, timeout=15, what=what)


@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_policy_default_deny_allow_and_deny(lab1, api, start_agent):
    node = lab1.node("a")
    a, b, c = node.add_pod("pa"), node.add_pod("pb"), node.add_pod("pc")
    for pod, app in ((a, "a"), (b, "b"), (c, "c")):
        api.create(k8s.ciliumidentity(pod.identity, NS, {"app": app}))
    serve(b)
    agent = up(lab1, api, start_agent)

    # No policy: everything reaches b, nothing is enforced.
    assert reaches(a, b) and reaches(c, b)
    ep = endpoint(agent, b)
    assert (ep["identity"], ep["ingress"], ep["egress"]) == (b.identity, "disabled", "disabled")

    # Default deny ingress on b: a and c are both dropped; b's trie is empty.
    api.create(k8s.networkpolicy(NS, "deny", {"app": "b"}, policy_types=["Ingress"]))
    wait_reach(a, b, False, "a -> b dropped by default deny")
    assert not reaches(c, b)
    ep = endpoint(agent, b)
    assert (ep["ingress"], ep["egress"]) == ("enabled", "disabled")
    assert trie(agent, b) == []
    # a is not selected: it still reaches c's side freely (nothing enforced on a).
    assert endpoint(agent, a)["ingress"] == "disabled"

    # Allow from app=a: a reaches b, c stays dropped.
    api.create(k8s.networkpolicy(NS, "allow-a", {"app": "b"}, ingress=[
        {"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}]))
    wait_reach(a, b, True, "a -> b allowed by podSelector app=a")
    assert not reaches(c, b)
    assert trie(agent, b) == [("Allow", a.identity, "ANY")]
    # The peer by its labels, from the agent's identities (Cilium's LABELS column).
    doc = agent.ctl_json("bpf", "policy", "get", str(endpoint(agent, b)["id"]))
    labels = doc[0]["labels"]
    assert labels == sorted(labels) and labels[0] == "k8s:app=a", doc
    assert {"k8s:io.cilium.k8s.policy.cluster=default",
            f"k8s:io.kubernetes.pod.namespace={NS}"} <= set(labels), doc
    assert "k8s:app=a" in agent.ctl("bpf", "policy", "get",
                                    str(endpoint(agent, b)["id"])).stdout
    sel = agent.ctl_json("policy", "selectors")
    assert any(s["identities"] == [a.identity] and "k8s:app=a" in s["selector"] for s in sel), sel

    # A CiliumNetworkPolicy's ingressDeny from app=a on TCP 8080 wins over the allow.
    api.create(k8s.ciliumnetworkpolicy(NS, "deny-a", spec={
        "endpointSelector": {"matchLabels": {"app": "b"}},
        "ingressDeny": [{"fromEndpoints": [{"matchLabels": {"app": "a"}}],
                         "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}]}))
    wait_reach(a, b, False, "a -> b dropped by the ingressDeny")
    assert not reaches(c, b)
    assert ("Deny", a.identity, "8080/TCP") in trie(agent, b), trie(agent, b)

    # Deleting every policy restores everything.
    api.delete("ciliumnetworkpolicies", NS, "deny-a")
    wait_reach(a, b, True, "a -> b allowed again without the deny")
    api.delete("networkpolicies", NS, "allow-a")
    api.delete("networkpolicies", NS, "deny")
    wait_for(lambda: endpoint(agent, b)["ingress"] == "disabled", timeout=15,
             what="b no longer enforced")
    assert reaches(a, b) and reaches(c, b)
    st = agent.status()
    mod = next(m for m in st["modules"] if m["name"] == "policy-reconciler")
    assert mod["health"] == "ok", mod


def test_policy_survives_an_agent_restart(lab1, api, start_agent):
    node = lab1.node("a")
    a, b, c = node.add_pod("pa"), node.add_pod("pb"), node.add_pod("pc")
    for pod, app in ((a, "a"), (b, "b"), (c, "c")):
        api.create(k8s.ciliumidentity(pod.identity, NS, {"app": app}))
    api.create(k8s.networkpolicy(NS, "allow-a", {"app": "b"}, ingress=[
        {"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}]))
    serve(b)
    agent = up(lab1, api, start_agent)
    wait_reach(c, b, False, "c -> b dropped")
    assert reaches(a, b)
    before = endpoint(agent, b)

    # The agent down: the pinned maps keep enforcing b's policy.
    agent.stop(signal.SIGKILL)
    assert reaches(a, b) and not reaches(c, b)

    # Back: b keeps its id (its slot) and its policy, never unenforced in between.
    agent.start()
    wait_for(lambda: endpoint(agent, b)["entries"] == 1, timeout=20, what="b's policy realized")
    after = endpoint(agent, b)
    assert (after["id"], after["ingress"]) == (before["id"], "enabled"), (before, after)
    assert trie(agent, b) == [("Allow", a.identity, "ANY")]
    assert reaches(a, b) and not reaches(c, b)


def test_policy_metrics(lab1, api, start_agent):
    """The policy families on /metrics follow what the agent does: a policy created after
    the sync is a time to enforce, every pass a computation; the tries' sizes are the
    entries histogram; the drops it causes are the verdict counters by reason and direction."""
    node = lab1.node("a")
    a, b, c = node.add_pod("pa"), node.add_pod("pb"), node.add_pod("pc")
    for pod, app in ((a, "a"), (b, "b"), (c, "c")):
        api.create(k8s.ciliumidentity(pod.identity, NS, {"app": app}))
    serve(b)
    agent = up(lab1, api, start_agent, metrics_flag())
    wait_for(lambda: value(scrape(agent), "axon_policy_entries_count") == 3, timeout=15,
             what="three endpoints realized")
    s = scrape(agent)
    assert value(s, "axon_policy_computation_seconds_count") >= 1
    assert value(s, "axon_policy_time_to_enforce_seconds_count") == 0, "the sync is not a change"
    assert value(s, "axon_policy_entries_bucket", le="0") == 3
    assert value(s, "axon_policy_endpoints_failed") == 0

    api.create(k8s.networkpolicy(NS, "allow-a", {"app": "b"}, ingress=[
        {"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}]))
    wait_reach(c, b, False, "c -> b dropped")
    assert reaches(a, b)
    s = scrape(agent)
    enforced = value(s, "axon_policy_time_to_enforce_seconds_count")
    assert enforced >= 1, "the policy's arrival to its trie is observed"
    assert 0 < value(s, "axon_policy_time_to_enforce_seconds_sum") < 15 * enforced
    assert value(s, "axon_policy_time_to_enforce_seconds_bucket", le="+Inf") == enforced
    # b's trie holds one entry, a and c none.
    assert value(s, "axon_policy_entries_bucket", le="0") == 2
    assert value(s, "axon_policy_entries_bucket", le="4") == 3
    assert value(s, "axon_policy_entries_sum") == 1
    assert value(s, "axon_drop_count_total", reason="Policy denied", direction="INGRESS") >= 1
    assert value(s, "axon_forward_count_total", reason="Allowed by policy",
                 direction="INGRESS") >= 1


def test_policy_status_revision_and_failed_endpoint(lab1, api, start_agent):
    """`agentctl status` (text and -o json) follows the policy revision (one more per
    policy, identity or namespace change) and the revision realized, the policy module's
    health and the endpoints whose policy failed: a policy larger than
    --bpf-policy-map-max fails on b, which keeps its old trie (fail closed)."""
    node = lab1.node("a")
    a, b, c = node.add_pod("pa"), node.add_pod("pb"), node.add_pod("pc")
    for pod, app in ((a, "a"), (b, "b"), (c, "c")):
        api.create(k8s.ciliumidentity(pod.identity, NS, {"app": app}))
    serve(b)
    agent = up(lab1, api, start_agent, "--bpf-policy-map-max", "256")

    def pol():
        return agent.status()["policy"]

    wait_for(lambda: pol()["revision"] == pol()["revision_realized"] > 0, timeout=15,
             what="the initial policy revision realized")
    st = pol()
    assert (st["health"], st["endpoints"], st["endpoints_enforcing"], st["endpoints_failed"],
            st["failed_endpoints"]) == ("ok", 3, 0, 0, []), st
    rev = st["revision"]

    # One policy: one revision more, realized; b enforcing.
    api.create(k8s.networkpolicy(NS, "allow-a", {"app": "b"}, ingress=[
        {"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}]))
    wait_for(lambda: pol()["revision_realized"] == rev + 1, timeout=15,
             what="the policy's revision realized")
    st = pol()
    assert (st["revision"], st["health"], st["endpoints_enforcing"]) == (rev + 1, "ok", 1), st
    # A namespace change is a revision too (identities' selectors may read its labels).
    api.create(k8s.namespace("other", {"team": "x"}))
    wait_for(lambda: pol()["revision_realized"] == rev + 2, timeout=15,
             what="the namespace's revision realized")

    # 300 ports from a: more entries than b's map holds. b keeps its trie (a in, c out).
    api.create(k8s.networkpolicy(NS, "too-big", {"app": "b"}, ingress=[
        {"from": [{"podSelector": {"matchLabels": {"app": "c"}}}],
         "ports": [{"protocol": "TCP", "port": 10000 + i} for i in range(300)]}]))
    wait_for(lambda: pol()["endpoints_failed"] == 1, timeout=15, what="b's policy failing")
    st = pol()
    assert st["health"] == "degraded", st
    assert st["revision"] == rev + 3 and st["revision_realized"] == rev + 2, st
    assert st["failed_endpoints"] == [{"pod": f"{NS}/pb", "id": endpoint(agent, b)["id"],
                                       "entries": 1, "error": "No space left on device"}], st
    assert reaches(a, b) and not reaches(c, b)
    r = agent.ctl("status", check=False)
    assert r.returncode == 1, r.stdout
    lines = r.stdout.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith("Policy:"))
    assert lines[i] == (f"Policy:           degraded   revision {rev + 3}, realized {rev + 2}   "
                        "3 endpoints, 1 enforcing, 1 failed"), lines[i]
    assert lines[i + 1] == ("  objects:        2 NetworkPolicy, 0 CiliumNetworkPolicy, "
                            f"0 CiliumClusterwideNetworkPolicy; 3 identities, "
                            f"{st['namespaces']} namespaces"), lines[i + 1]
    assert lines[i + 2] == (f"  failed:         {NS}/pb (id {endpoint(agent, b)['id']}, "
                            "1 entries realized): No space left on device"), lines[i + 2]
    doc = agent.ctl_json("status")
    assert doc["policy"]["failed_endpoints"] == st["failed_endpoints"]
    mod = next(m for m in doc["modules"] if m["name"] == "policy-reconciler")
    assert mod["health"] == "degraded", mod
    assert f"(revision {rev + 2} of {rev + 3} realized)" in mod["message"], mod

    # Deleted: realized again, healthy.
    api.delete("networkpolicies", NS, "too-big")
    wait_for(lambda: pol()["revision_realized"] == pol()["revision"] == rev + 4, timeout=20,
             what="recovered after the big policy's deletion")
    st = pol()
    assert (st["health"], st["endpoints_failed"], st["failed_endpoints"]) == ("ok", 0, []), st
    assert agent.ctl("status", check=False).returncode == 0


# -- CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy, with real traffic --------------

def change(agent, fn):
    """Apply a policy change; wait until every endpoint realizes it (status's policy
    revision one more, realized, nothing failing)."""
    before = agent.status()["policy"]["revision"]
    fn()

    def realized():
        p = agent.status()["policy"]
        return p["revision"] > before and p["revision_realized"] == p["revision"] and \
            p["health"] == "ok"
    wait_for(realized, timeout=15, what="the policy change realized")


def reach_all(src, targets):
    """{name: reached} for each (name, ip) in targets, TCP 8080."""
    return {name: tcp(src, ip, 8080, 1, timeout=1)[0]["ok"] for name, ip in targets}


def expect_reach(src, targets, want, what):
    """Probe until the reachability is want (a change may take a moment to cut a fresh
    flow in); then it must stay so for one more probe."""
    got = {}

    def ok():
        got.update(reach_all(src, targets))
        return got == want
    try:
        wait_for(ok, timeout=10, what=what)
    except AssertionError:
        raise AssertionError(f"{what}: want {want}, got {got}")
    assert reach_all(src, targets) == want, what


def test_cnp_entities_egress(lab1, api, start_agent):
    """toEntities world, host, cluster and all on b's egress, each alone, then all with an
    egressDeny of world over it: to pod a (cluster), to the node's address (host) and to
    the world namespace (world), with TCP connections."""
    node = lab1.node("a")
    a, b = node.add_pod("pa"), node.add_pod("pb")
    for pod, app in ((a, "a"), (b, "b")):
        api.create(k8s.ciliumidentity(pod.identity, NS, {"app": app}))
    serve(a)
    serve(node, name="node")
    serve(lab1.world)
    agent = up(lab1, api, start_agent)
    targets = (("pod", a.ip), ("host", node.ip), ("world", WORLD_IP))
    expect_reach(b, targets, {"pod": True, "host": True, "world": True}, "no policy")

    def cnp(egress, deny=None):
        spec = {"endpointSelector": {"matchLabels": {"app": "b"}}, "egress": egress}
        if deny:
            spec["egressDeny"] = deny
        return k8s.ciliumnetworkpolicy(NS, "entities", spec=spec)

    cases = [
        ("world", {"pod": False, "host": False, "world": True}),
        ("host", {"pod": False, "host": True, "world": False}),
        ("cluster", {"pod": True, "host": True, "world": False}),
        ("all", {"pod": True, "host": True, "world": True}),
    ]
    for entity, want in cases:
        change(agent, lambda: api.apply(cnp([{"toEntities": [entity]}])))
        expect_reach(b, targets, want, f"egress toEntities {entity}")
        assert endpoint(agent, b)["egress"] == "enabled"

    # A deny wins over an allow: everything allowed, world denied.
    change(agent, lambda: api.apply(cnp([{"toEntities": ["all"]}],
                                        deny=[{"toEntities": ["world"]}])))
    expect_reach(b, targets, {"pod": True, "host": True, "world": False},
                 "egressDeny world over toEntities all")
    doc = agent.ctl_json("bpf", "policy", "get", str(endpoint(agent, b)["id"]))
    assert [(e["policy"], e["direction"], e["labels"][0]) for e in doc] == [
        ("Deny", "Egress", "reserved:world"), ("Allow", "Egress", "ANY")], doc

    change(agent, lambda: api.delete("ciliumnetworkpolicies", NS, "entities"))
    expect_reach(b, targets, {"pod": True, "host": True, "world": True}, "policy deleted")


def test_cnp_l4_only(lab1, api, start_agent):
    """An ingress rule with toPorts and no fromEndpoints: TCP 8080 from any peer (pods and
    the world), nothing else (UDP 5353 dropped)."""
    node = lab1.node("a")
    a, b = node.add_pod("pa"), node.add_pod("pb")
    for pod, app in ((a, "a"), (b, "b")):
        api.create(k8s.ciliumidentity(pod.identity, NS, {"app": app}))
    serve(b)
    agent = up(lab1, api, start_agent)
    assert udp(a, b.ip, 5353, 1, timeout=1)[0]["ok"]

    change(agent, lambda: api.create(k8s.ciliumnetworkpolicy(NS, "l4", spec={
        "endpointSelector": {"matchLabels": {"app": "b"}},
        "ingress": [{"toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}]})))
    wait_reach(a, b, True, "a -> b TCP 8080 allowed")
    assert tcp(lab1.world, b.ip, 8080, 1, timeout=1)[0]["ok"], "the world on TCP 8080 too"
    assert not udp(a, b.ip, 5353, 1, timeout=1)[0]["ok"], "UDP 5353 is no port of the rule"
    assert not udp(lab1.world, b.ip, 5353, 1, timeout=1)[0]["ok"]
    ep = endpoint(agent, b)
    assert (ep["ingress"], ep["egress"], ep["entries"]) == ("enabled", "disabled", 1), ep
    doc = agent.ctl_json("bpf", "policy", "get", str(ep["id"]))
    assert [(e["labels"], e["port_proto"]) for e in doc] == [(["ANY"], "8080/TCP")], doc


def test_ccnp_selects_pods_in_two_namespaces(lab1, api, start_agent):
    """A CiliumClusterwideNetworkPolicy selecting app=web selects it in every namespace
    (n1 and n2), and its fromEndpoints app=client any namespace's clients; the same rule as
    a CiliumNetworkPolicy in n1 selects n1's web only, from n1's clients only."""
    node = lab1.node("a")
    web1, web2 = node.add_pod("web1"), node.add_pod("web2")
    client1, client2, other = node.add_pod("client1"), node.add_pod("client2"), \
        node.add_pod("other")
    for pod, ns, app in ((web1, "n1", "web"), (web2, "n2", "web"), (client1, "n1", "client"),
                         (client2, "n2", "client"), (other, "n2", "other")):
        api.create(k8s.ciliumidentity(pod.identity, ns, {"app": app}))
    for pod in (web1, web2, other):
        serve(pod)
    agent = up(lab1, api, start_agent)
    spec = {"endpointSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "client"}}]}]}
    targets = (("web1", web1.ip), ("web2", web2.ip), ("other", other.ip))

    change(agent, lambda: api.create(k8s.ciliumclusterwidenetworkpolicy("web", spec=spec)))
    for src in (client1, client2):
        expect_reach(src, targets, {"web1": True, "web2": True, "other": True},
                     f"CCNP: {src.name} to web in n1 and n2")
    expect_reach(other, (("web1", web1.ip), ("web2", web2.ip)),
                 {"web1": False, "web2": False}, "CCNP: other to web denied in n1 and n2")
    assert all(endpoint(agent, w)["ingress"] == "enabled" for w in (web1, web2))
    assert endpoint(agent, other)["ingress"] == "disabled"

    # The same rule namespaced in n1: n1's web only, from n1's clients only.
    change(agent, lambda: api.delete("ciliumclusterwidenetworkpolicies", None, "web"))
    change(agent, lambda: api.create(k8s.ciliumnetworkpolicy("n1", "web", spec=spec)))
    expect_reach(client1, targets, {"web1": True, "web2": True, "other": True},
                 "CNP in n1: client1 to web1; web2 not selected")
    expect_reach(client2, targets, {"web1": False, "web2": True, "other": True},
                 "CNP in n1: client2 (n2) to web1 denied")
    assert endpoint(agent, web2)["ingress"] == "disabled"
