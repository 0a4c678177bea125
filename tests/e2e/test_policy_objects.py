"""Network-policy objects into the agent: the NetworkPolicy, CiliumNetworkPolicy,
CiliumClusterwideNetworkPolicy, CiliumIdentity and Namespace watches, against the test
apiserver and the real one (v1.26, tests/lib/realk8s.py).

  sync     every policy watch syncs; status's policy section counts what the server holds
           (by kind, identities, namespaces, what Axon does not enforce); the parsed model,
           read over the agent's socket (`policies`, `identities`), is Cilium's reading of
           the objects; live creates, updates and deletes follow
  skipped  a malformed CiliumNetworkPolicy is skipped with its name and reason in status,
           and an update that breaks a good one leaves the good version in effect
  CRDs     missing policy CRDs are reported (not_installed, status --brief says which CRD),
           do not hold readiness back, and sync once installed
  lists    watch-list and pages both bring the recorded lists in whole
  RBAC     under the real RBAC authorizer, the chart's ClusterRole lets the agent sync the
           policy watches, and refuses it every write to those kinds
"""

import json
import pathlib
import random
import socket
import subprocess
import uuid

import pytest

import k8s
import realk8s
from harness import AGENTCTL, Agent
from netlab import wait_for
from test_health import get
from test_real_apiserver import chart_rbac

DASH = " \u2014 "
POLICY_WATCHES = ("networkpolicies", "ciliumnetworkpolicies", "ciliumclusterwidenetworkpolicies",
                  "ciliumidentities", "namespaces")
COUNTED = dict(zip(POLICY_WATCHES, ("network_policies", "cilium_network_policies",
                                    "cilium_clusterwide_network_policies", "identities",
                                    "namespaces")))
CILIUM_POLICY_CRDS = ["ciliumnetworkpolicies", "ciliumclusterwidenetworkpolicies",
                      "ciliumidentities"]


def agent_api(agent, cmd):
    """One request on the agent's local API socket (what agentctl speaks)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(agent.socket)
        s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data)


def watches(agent):
    return {w["name"]: w for w in agent.status()["kubernetes"]["watches"]}


def counts(agent):
    p = agent.status()["policy"]
    return {w: p[COUNTED[w]] for w in POLICY_WATCHES}


def server_counts(api):
    """What the server holds of each kind (a real cluster has namespaces of its own)."""
    return {w: len(api.list(w)["items"]) for w in POLICY_WATCHES}


def policies(agent):
    return {(p["kind"], p["namespace"], p["name"]): p
            for p in agent_api(agent, "policies")["policies"]}


def skipped(agent, name):
    return [s for s in agent.status()["skipped_objects"] if s["name"] == name]


def new_namespace(api, prefix, labels):
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    api.create(k8s.namespace(name, labels))
    return name


def web_cnp(ns, port="8080"):
    return k8s.ciliumnetworkpolicy(ns, "web", spec={
        "endpointSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "frontend"}}],
                     "toPorts": [{"ports": [{"port": port, "protocol": "TCP"}]}]}],
        "ingressDeny": [{"fromEntities": ["world"]}]})


@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_policy_objects_sync_count_and_follow_changes(lab1, apiserver, api, start_agent):
    a = lab1.node("a")
    lab1.publish(api)
    ns = new_namespace(api, "polshop", {"team": "payments"})
    base = random.randrange(100000, 900000)
    api.create(k8s.ciliumidentity(base, ns, {"app": "web"}, namespace_labels={"team": "payments"}))
    api.create(k8s.ciliumidentity(base + 1, ns, {"app": "frontend"}))
    api.create(k8s.networkpolicy(ns, "web", {"app": "web"}, ingress=[{
        "from": [{"podSelector": {"matchLabels": {"app": "frontend"}}},
                 {"namespaceSelector": {"matchLabels": {"team": "payments"}},
                  "podSelector": {"matchLabels": {"app": "prometheus"}}}],
        "ports": [{"port": 8080}]}]))
    api.create(k8s.networkpolicy(ns, "deny-all", policy_types=["Ingress", "Egress"]))
    api.create(k8s.networkpolicy(ns, "sctp", {"app": "db"}, ingress=[
        {"ports": [{"protocol": "SCTP", "port": 3868}]}]))
    api.create(web_cnp(ns))
    ccnp = f"dns-{ns}"
    api.create(k8s.ciliumclusterwidenetworkpolicy(ccnp, spec={
        "endpointSelector": {},
        "egress": [{"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace":
                                                     "kube-system", "k8s:k8s-app": "kube-dns"}}],
                    "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}]}]}]}))
    agent = start_agent(a)

    w = watches(agent)
    for name in POLICY_WATCHES:
        assert w[name]["synced"] and w[name]["errors"] == 0 and not w[name]["not_installed"], \
            w[name]
    # The real 1.26 has no watch-list: the agent lists it by pages.
    real = isinstance(apiserver, realk8s.Scope)
    assert w["networkpolicies"]["list_mode"] == ("paginated" if real else "watch-list")
    want = server_counts(api)
    assert want["networkpolicies"] >= 3 and want["ciliumidentities"] >= 2, want
    wait_for(lambda: counts(agent) == want, 10, what=f"status counts {want}")
    assert {w: watches(agent)[w]["objects"] for w in POLICY_WATCHES} == want
    pol = agent.status()["policy"]
    assert {"kind": "NetworkPolicy", "name": f"{ns}/sctp", "unsupported": "SCTP"} in \
        pol["unsupported_policies"], pol

    # The model the engine will read: Cilium's label names, namespaces added.
    p = policies(agent)
    web = p[("NetworkPolicy", ns, "web")]["rules"][0]
    assert web["subject"] == ["k8s:app=web", f"k8s:io.kubernetes.pod.namespace={ns}"]
    assert web["default_deny"] == ["Ingress"]
    assert [peer["selector"] for peer in web["ingress"][0]["peers"]] == [
        ["k8s:app=frontend", f"k8s:io.kubernetes.pod.namespace={ns}"],
        ["k8s:app=prometheus", "k8s:io.cilium.k8s.namespace.labels.team=payments"]]
    assert web["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8080}]
    deny = p[("NetworkPolicy", ns, "deny-all")]["rules"][0]
    assert (deny["default_deny"], deny["ingress"], deny["egress"]) == (
        ["Ingress", "Egress"], [], [])
    cnp = p[("CiliumNetworkPolicy", ns, "web")]["rules"][0]
    assert cnp["subject"] == ["any:app=web", f"k8s:io.kubernetes.pod.namespace={ns}"]
    assert [(e["deny"], [peer.get("entity") for peer in e["peers"]]) for e in cnp["ingress"]] \
        == [(False, [None]), (True, ["world", "world", "world"])]
    dns = p[("CiliumClusterwideNetworkPolicy", "", ccnp)]["rules"][0]
    assert dns["subject"] == [] and dns["default_deny"] == ["Egress"]
    assert dns["egress"][0]["peers"][0]["selector"] == [
        "k8s:io.kubernetes.pod.namespace=kube-system", "k8s:k8s-app=kube-dns"]
    ids = {i["id"]: i for i in agent_api(agent, "identities")["identities"]}
    assert ids[1]["labels"] == ["reserved:host"] and ids[2]["name"] == "world"
    assert ids[7]["labels"] == ["reserved:kube-apiserver", "reserved:remote-node"]
    assert ids[base]["namespace"] == ns and not ids[base]["reserved"]
    assert "k8s:app=web" in ids[base]["labels"]
    assert "k8s:io.cilium.k8s.namespace.labels.team=payments" in ids[base]["labels"]

    # Live: a policy comes and goes, an identity goes, a namespace comes.
    api.create(k8s.ciliumnetworkpolicy(ns, "late", spec={
        "endpointSelector": {}, "egress": [{"toEntities": ["world"]}]}))
    wait_for(lambda: counts(agent)["ciliumnetworkpolicies"] == want["ciliumnetworkpolicies"] + 1,
             10, what="the late CNP")
    api.delete("ciliumnetworkpolicies", ns, "late")
    api.delete("ciliumidentities", None, str(base + 1))
    new_namespace(api, "polother", {})
    want2 = dict(want, ciliumidentities=want["ciliumidentities"] - 1,
                 namespaces=want["namespaces"] + 1)
    wait_for(lambda: counts(agent) == want2, 10, what=f"status counts {want2}")
    assert base + 1 not in {i["id"] for i in agent_api(agent, "identities")["identities"]}

    # A malformed CNP (the CRD keeps rules as written): skipped, named, not counted.
    api.create(k8s.ciliumnetworkpolicy(ns, "bad", spec={
        "endpointSelector": {}, "ingress": [{"fromEntities": ["everyone"]}]}))
    wait_for(lambda: skipped(agent, f"{ns}/bad"), 10, what="the bad CNP skipped")
    s = skipped(agent, f"{ns}/bad")[0]
    assert s == {"kind": "CiliumNetworkPolicy", "name": f"{ns}/bad",
                 "error": 'spec.ingress[0].fromEntities[0]: unsupported entity "everyone"'}, s
    assert "skipping malformed object" in agent.log_tail(200)
    assert counts(agent)["ciliumnetworkpolicies"] == want["ciliumnetworkpolicies"]
    assert ("CiliumNetworkPolicy", ns, "bad") not in policies(agent)
    # An update that breaks a good policy: the last good version stays in effect.
    broken = web_cnp(ns, port="99999")
    broken["metadata"]["resourceVersion"] = \
        api.get("ciliumnetworkpolicies", ns, "web")["metadata"]["resourceVersion"]
    api.update(broken)
    wait_for(lambda: skipped(agent, f"{ns}/web"), 10, what="the broken update skipped")
    assert "99999 is not in 0..65535" in skipped(agent, f"{ns}/web")[0]["error"]
    kept = policies(agent)[("CiliumNetworkPolicy", ns, "web")]["rules"][0]
    assert kept["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert agent.status()["skipped_objects_total"] >= 2


def test_missing_policy_crds_do_not_hold_readiness_and_sync_once_installed(lab1):
    srv = k8s.ApiServer(tls=True, quiet=True, without=CILIUM_POLICY_CRDS).start()
    agent = None
    try:
        api = srv.client()
        a = lab1.node("a")
        lab1.publish(api)
        api.create(k8s.networkpolicy("shop", "np1"))
        agent = Agent(lab1, srv, node=a).start(wait=False)
        wait_for(lambda: get(a, "/healthz") == (200, "ok"), 20, what="/healthz 200")
        w = watches(agent)
        for name in CILIUM_POLICY_CRDS:
            assert w[name]["not_installed"] and not w[name]["synced"], w[name]
        assert w["networkpolicies"]["synced"] and w["namespaces"]["synced"]
        assert agent.status()["health"] == {"port": 9879, "ready": True, "reason": "ok"}
        module = next(m for m in agent.status()["modules"] if m["name"] == "k8s-watch")
        assert module == {"name": "k8s-watch", "health": "degraded",
                          "message": "ciliumnetworkpolicies: resource not installed (404), "
                                     "retrying"}
        r = subprocess.run(["nsenter", f"--net=/var/run/netns/{a.netns}", str(AGENTCTL),
                            "--socket", agent.socket, "status", "--brief"],
                           capture_output=True, text=True)
        assert (r.returncode, r.stdout) == (1, "k8s-watch: waiting for sync "
                                            "(ciliumnetworkpolicies: resource not installed)"
                                            + DASH + "install the CiliumNetworkPolicy CRD\n")

        for name in CILIUM_POLICY_CRDS:
            api.install(name)
        api.create(web_cnp("shop"))
        api.create(k8s.ciliumidentity(4242, "shop", {"app": "web"}))
        wait_for(lambda: all(watches(agent)[n]["synced"] for n in CILIUM_POLICY_CRDS), 20,
                 what="the late CRDs synced")
        wait_for(lambda: counts(agent)["ciliumnetworkpolicies"] == 1 and
                 counts(agent)["ciliumidentities"] == 1, 10, what="their objects")
        assert not any(w["not_installed"] for w in watches(agent).values())
    finally:
        if agent is not None:
            print(agent.log_tail(60))
            agent.stop()
        srv.close()


@pytest.mark.parametrize("flags,mode", [([], "watch-list"),
                                        (["--k8s-watch-list=false", "--k8s-list-limit=2"],
                                         "paginated")])
def test_recorded_lists_by_watch_list_and_by_pages(lab1, flags, mode):
    """The lists recorded from a real apiserver come in whole either way, every object
    parses, and what Axon does not enforce is named."""
    srv = k8s.ApiServer(tls=True, quiet=True, load=[k8s.FIXTURES_DIR / f
                                                    for f in k8s.POLICY_FIXTURE_LISTS]).start()
    agent = None
    try:
        api = srv.client()
        a = lab1.node("a")
        lab1.publish(api)
        agent = Agent(lab1, srv, extra=flags, node=a).start()
        w = watches(agent)
        for name in POLICY_WATCHES:
            assert w[name]["synced"] and w[name]["list_mode"] == mode, w[name]
        if mode == "paginated":
            assert srv.client().stats()["requests"]["ciliumidentities"]["list"] >= 3
        assert counts(agent) == {"networkpolicies": 4, "ciliumnetworkpolicies": 3,
                                 "ciliumclusterwidenetworkpolicies": 2, "ciliumidentities": 5,
                                 "namespaces": 6}
        st = agent.status()
        assert st["skipped_objects_total"] == 0, st["skipped_objects"]
        pol = st["policy"]
        assert pol["unsupported"] == 3
        assert pol["unsupported_policies"] == [
            {"kind": "CiliumClusterwideNetworkPolicy", "name": "host-firewall",
             "unsupported": "node selectors"},
            {"kind": "CiliumNetworkPolicy", "name": "shop/api-l7",
             "unsupported": "L7 rules, toFQDNs"},
            {"kind": "NetworkPolicy", "name": "shop/db", "unsupported": "SCTP"}]
    finally:
        if agent is not None:
            print(agent.log_tail(60))
            agent.stop()
        srv.close()


@pytest.mark.parametrize("apiserver", ["real"], indirect=True)
def test_chart_rbac_syncs_policy_watches_and_refuses_writes(lab1, apiserver, api, start_agent):
    realk8s.require(helm=True)
    a = lab1.node("a")
    lab1.publish(api)
    ns = apiserver.create_namespace("polrbac")
    api.create(k8s.networkpolicy(ns, "web", {"app": "web"}))
    api.create(web_cnp(ns))
    ident = random.randrange(100000, 900000)
    api.create(k8s.ciliumidentity(ident, ns, {"app": "web"}))
    sa, role = chart_rbac(api, ns)
    user = f"system:serviceaccount:{ns}:{sa}"
    token = apiserver.token_for(ns, sa)
    kubeconfig = apiserver.write_kubeconfig(pathlib.Path(a.run_dir) / "kubeconfig-sa", token)

    agent = start_agent(a, kubeconfig=kubeconfig)
    w = watches(agent)
    for name in POLICY_WATCHES:
        assert w[name]["synced"] and w[name]["errors"] == 0, w[name]
    want = server_counts(api)
    wait_for(lambda: counts(agent) == want, 10, what=f"status counts {want}")

    # Least privilege: exactly get, list and watch on each policy kind; on identities also
    # create and delete (the agent allocates its pods' and collects unused ones).
    granted = {(g, r): sorted(rule["verbs"]) for rule in role["rules"]
               for g in rule["apiGroups"] for r in rule["resources"]}
    for group, resource in (("networking.k8s.io", "networkpolicies"),
                            ("cilium.io", "ciliumnetworkpolicies"),
                            ("cilium.io", "ciliumclusterwidenetworkpolicies"),
                            ("cilium.io", "ciliumidentities"), ("", "namespaces")):
        writes = ["create", "delete"] if resource == "ciliumidentities" else []
        assert granted[(group, resource)] == sorted(["get", "list", "watch"] + writes), \
            (group, resource)
        for verb in ("list", "watch"):
            assert apiserver.can_i(user, verb, resource, group)[0], (verb, resource)
        for verb in sorted({"create", "update", "patch", "delete"} - set(writes)):
            allowed, _ = apiserver.can_i(user, verb, resource, group,
                                         ns if resource in ("networkpolicies",
                                                            "ciliumnetworkpolicies") else None)
            assert allowed is False, (verb, resource)
    # And the apiserver refuses the agent's token every write: 403, nothing changed.
    sa_client = apiserver.client(token=token)
    for method, path, body in (
            ("POST", f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
             k8s.networkpolicy(ns, "intruder")),
            ("DELETE", f"/apis/cilium.io/v2/namespaces/{ns}/ciliumnetworkpolicies/web", None),
            ("PATCH", f"/apis/cilium.io/v2/ciliumidentities/{ident}",
             {"security-labels": {"k8s:app": "intruder"}}),
            ("PATCH", f"/api/v1/namespaces/{ns}", {"metadata": {"labels": {"x": "y"}}})):
        with pytest.raises(k8s.ApiError) as e:
            sa_client.request(method, path, body,
                              content_type="application/merge-patch+json"
                              if method == "PATCH" else "application/json")
        assert e.value.code == 403 and e.value.reason == "Forbidden", (method, path, e.value)
        assert user in str(e.value), e.value
    assert api.get("ciliumnetworkpolicies", ns, "web")
    assert "x" not in api.get("namespaces", None, ns)["metadata"].get("labels", {})
