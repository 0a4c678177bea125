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
