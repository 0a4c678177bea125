"""Network policy end to end, with real traffic: the agent watches NetworkPolicies,
CiliumNetworkPolicies and CiliumIdentities, the engine computes each local endpoint's
policy and the tc programs enforce it on new connections.

Node A holds pods pa, pb and pc (a, b, c below) in namespace default, each with its CiliumIdentity
(app=a, app=b, app=c); b serves TCP 8080. Every step asserts with real connections
from a and c to b, with the agent's view (`agentctl endpoint list`) and with b's
policy trie (`agentctl bpf policy get <id>`).
"""

import signal

import k8s
from harness import serve, tcp
from metrics import metrics_flag, scrape, value
from netlab import wait_for
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
