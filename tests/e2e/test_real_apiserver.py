"""The agent against a real kube-apiserver (v1.26, etcd behind it; tests/lib/realk8s.py).

What only a real apiserver can show: the chart's CRDs and the tests' objects pass its
validation; the chart's RBAC, under the real RBAC authorizer, lets the agent sync and
nothing else; the agent configures itself in-cluster, as in a pod; EndpointSlices written by
the real EndpointSlice controller from Pods are served. And the node-side behaviour the
other e2e files check against the test apiserver, where they are not parametrized over
both: CiliumEndpointSlices and Nodes into the endpoint map, the ipcache and routes, live
and across a restart with deletions made while the agent was down.

Every test runs on the session's one real apiserver (conftest.py: real_apiserver) through a
Scope that deletes what the test created; the cluster always holds the `kubernetes` Service
(10.96.0.1:443, no endpoints), which the agent programs like any other.
"""

import os
import pathlib
import shutil
import signal
import subprocess
import urllib.parse

import pytest

import helm
import k8s
import realk8s
from harness import Agent, serve, tcp, udp, wait_attached
from netlab import wait_for
from test_restart import Cluster, converged, revnat_ids

pytestmark = pytest.mark.parametrize("apiserver", ["real"], indirect=True)

KUBERNETES_FRONTEND = f"{realk8s.KUBERNETES_SERVICE_IP}:443/TCP"
RTPROT_AXON = "196"                 # agent/datapath/routes.h
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
NOT_READY_TAINT = "node.axon.io/agent-not-ready"
HTTP = 8080

# Cilium's own CRDs (cilium/cilium pkg/k8s/apis/cilium.io/client/crds): a cluster that runs
# Cilium already has them, so Axon's must be the same resources.
CILIUM_CRDS = {
    "ciliumendpointslices": ("v2alpha1", False, ["ces"]),
    "ciliumidentities": ("v2", False, ["ciliumid"]),
    "ciliumnetworkpolicies": ("v2", True, ["cnp", "ciliumnp"]),
    "ciliumclusterwidenetworkpolicies": ("v2", False, ["ccnp"]),
}


class RealCluster(Cluster):
    """test_restart's expectations, plus the `kubernetes` Service every real cluster has:
    a frontend with no backends (its one slot 0) and its rev-NAT entry."""

    def lb(self):
        return dict(super().lb(), **{KUBERNETES_FRONTEND: []})


def reached(results):
    return {r["reply"]["pod"] for r in results if r["ok"]}


def endpoints(agent):
    return {e["address"]: e["identity"] for e in agent.ctl_json("bpf", "endpoint", "list")}


def ipcache(agent):
    return {e["prefix"]: (e["identity"], e["tunnel_endpoint"], e["flag_names"])
            for e in agent.ctl_json("bpf", "ipcache", "list")}


def axon_routes(node):
    return {r["dst"]: r["gateway"] for r in node.routes("proto", RTPROT_AXON)}


def chart_rbac(api, namespace, nodes_verbs=None):
    """Apply the ServiceAccount, ClusterRole and ClusterRoleBinding the chart renders (the
    real helm) for a release in namespace; returns (ServiceAccount name, ClusterRole).
    nodes_verbs: the role's verbs on nodes instead of the chart's."""
    objs = helm.render(namespace=namespace, include_crds=False)
    rbac = {o["kind"]: o for o in objs
            if o["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")}
    assert set(rbac) == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}, list(rbac)
    if nodes_verbs is not None:
        (rule,) = [r for r in rbac["ClusterRole"]["rules"] if r["resources"] == ["nodes"]]
        rule["verbs"] = nodes_verbs
    for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding"):
        api.create(rbac[kind])
    return rbac["ServiceAccount"]["metadata"]["name"], rbac["ClusterRole"]


def watched(agent):
    """{(API group, resource)} of every watch the agent runs, from its status."""
    out = set()
    for w in agent.status()["kubernetes"]["watches"]:
        parts = w["path"].strip("/").split("/")      # api/v1/X or apis/G/V/X
        out.add(("" if parts[0] == "api" else parts[1], parts[-1]))
    return out


# -- the API itself --------------------------------------------------------------------------

def test_chart_crds_are_ciliums_and_keep_its_objects_as_written(apiserver):
    realk8s.require(helm=True)
    api = apiserver.client()
    # helm picks up crds/ (what `helm install` creates first) and lints the chart clean.
    # helm picks up crds/ (what `helm install` creates first); every object the chart
    # renders passes the apiserver's validation (test_helm_chart.py: a server-side dry
    # run of each values case).
    crds = sorted(o["metadata"]["name"] for o in helm.render(namespace="default")
                  if o["kind"] == "CustomResourceDefinition")
    assert crds == sorted(f"{p}.cilium.io" for p in CILIUM_CRDS), crds
    ns = apiserver.create_namespace("chart")
    # Served as Cilium serves them: versions, scope, short names (API discovery).
    for plural, (version, namespaced, short) in CILIUM_CRDS.items():
        disc = api.request("GET", f"/apis/cilium.io/{version}").json()
        res = {r["name"]: r for r in disc["resources"]}[plural]
        assert (res["namespaced"], res["shortNames"]) == (namespaced, short), res

    # A CiliumEndpointSlice keeps its top-level namespace and endpoints, and fields a
    # newer Cilium may add.
    ces = k8s.ciliumendpointslice("ces-crd-check", "shop",
                                  [("web-1", "10.244.1.10", 12345, "192.168.50.10")])
    ces["endpoints"][0]["named-ports"] = [{"name": "http", "port": 8080, "protocol": "TCP"}]
    ces["from-a-newer-cilium"] = {"kept": True}
    api.create(ces)
    got = api.get("ciliumendpointslices", None, "ces-crd-check")
    for key in ("namespace", "endpoints", "from-a-newer-cilium"):
        assert got[key] == ces[key], (key, got)
    # The schema is enforced: an identity is a number.
    bad = k8s.ciliumendpointslice("ces-crd-bad", "shop", [("x", "10.244.1.11", 1, "1.2.3.4")])
    bad["endpoints"][0]["id"] = "not-a-number"
    with pytest.raises(k8s.ApiError) as e:
        api.create(bad)
    assert e.value.code == 422 and "endpoints[0].id" in str(e.value), e.value

    # Cilium's other resources: an identity's labels, policies' rules, a status.
    api.create({"apiVersion": "cilium.io/v2", "kind": "CiliumIdentity",
                "metadata": {"name": "123456"},
                "security-labels": {"k8s:app": "web", "k8s:io.kubernetes.pod.namespace": "shop"}})
    assert api.get("ciliumidentities", None, "123456")["security-labels"]["k8s:app"] == "web"
    rule = {"endpointSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "client"}}]}]}
    api.create({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                "metadata": {"name": "allow-client", "namespace": ns}, "spec": rule})
    assert api.get("ciliumnetworkpolicies", ns, "allow-client")["spec"] == rule
    api.create({"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
                "metadata": {"name": "axon-ccnp-check"}, "specs": [rule]})
    assert api.get("ciliumclusterwidenetworkpolicies", None, "axon-ccnp-check")["specs"] == [rule]


def test_e2e_builders_pass_real_validation_and_mistakes_do_not(apiserver):
    """The objects the e2e tests build (tests/lib/k8s.py) are valid Kubernetes objects:
    what the agent is tested on is what a cluster can hold. Checked with a server-side dry
    run, which stores nothing."""
    ns = apiserver.create_namespace("valid")
    ok = [k8s.service(ns, "web", [("http", 80, "TCP", 8080), ("dns", 53, "UDP", 5353)],
                      cluster_ip="10.96.10.10"),
          k8s.service(ns, "np", [{"name": "http", "port": 80, "targetPort": 8080,
                                  "protocol": "TCP", "nodePort": 30080}], type="NodePort",
                      externalTrafficPolicy="Local"),
          k8s.endpointslice(ns, "web-1", "web", [("10.244.1.10", True, "node-a"),
                                                 ("10.244.1.11", False)],
                            [("http", 8080, "TCP"), ("dns", 5353, "UDP")]),
          k8s.node("node-a", "192.168.50.10", "10.244.1.0/24"),
          k8s.ciliumendpointslice("ces-p1", ns, [("p1", "10.244.1.10", 10000,
                                                  "192.168.50.10")])]
    for obj in ok:
        out = apiserver.dry_run_apply(obj)
        assert out["metadata"]["name"] == obj["metadata"]["name"]
    svc = apiserver.dry_run_apply(ok[0])
    assert svc["spec"]["clusterIP"] == "10.96.10.10" and svc["spec"]["ports"][1]["targetPort"] \
        == 5353
    with pytest.raises(k8s.ApiError):             # dry run: nothing was stored
        apiserver.client().get("services", ns, "web")

    # Mistakes, refused by a real create (a dry run skips the allocators, and with them
    # the NodePort range check).
    def refused(obj, words):
        with pytest.raises(k8s.ApiError) as e:
            apiserver.client().create(obj)
        assert e.value.code == 422 and all(w in str(e.value) for w in words), e.value
    refused(k8s.service(ns, "far", [80], cluster_ip="10.200.0.10"), ["10.96.0.0/12"])
    refused(k8s.service(ns, "np2", [{"port": 80, "nodePort": 40000, "protocol": "TCP"}],
                        type="NodePort"), ["30000-32767"])
    refused(k8s.endpointslice(ns, "x-1", "x", [("10.244.1.300", True)], [80]),
            ["addresses"])



# -- CiliumEndpointSlices and Nodes into the node's maps and routes --------------------------

def test_endpoints_ipcache_and_routes_follow_ces_and_nodes(lab1, api, start_agent):
    a = lab1.node("a")
    p1, p2 = a.add_pod("p1"), a.add_pod("p2")
    serve(p2)
    api.create(a.k8s_node())
    api.create(k8s.ciliumendpointslice("ces-p1", "default", [("p1", p1.ip, 10001, a.ip)]))
    agent = start_agent(a, "--auto-direct-node-routes=true")
    wait_attached(agent, a.native, p1.host_if)
    assert endpoints(agent) == {p1.ip: 10001}

    # Live: p2's CiliumEndpointSlice, another node and a pod of its.
    api.create(k8s.ciliumendpointslice("ces-p2", "default", [("p2", p2.ip, 10002, a.ip)]))
    api.create(k8s.node("node-r", "192.168.50.20", "10.244.9.0/24"))
    api.create(k8s.ciliumendpointslice("ces-r1", "default",
                                       [("r1", "10.244.9.10", 30000, "192.168.50.20")]))
    want = {f"{p1.ip}/32": (10001, a.ip, ["local"]), f"{p2.ip}/32": (10002, a.ip, ["local"]),
            "10.244.9.10/32": (30000, "192.168.50.20", []),
            "10.244.9.0/24": (0, "192.168.50.20", ["pod-cidr"])}
    wait_for(lambda: endpoints(agent) == {p1.ip: 10001, p2.ip: 10002}, 5, what="endpoints")
    wait_attached(agent, p2.host_if)
    wait_for(lambda: ipcache(agent).items() >= want.items(), 5, what="ipcache")
    wait_for(lambda: axon_routes(a) == {"10.244.9.0/24": "192.168.50.20"}, 5, what="route")
    # The endpoint map carries traffic: p1 reaches p2 through the tc datapath.
    assert reached(tcp(p1, p2.ip, HTTP, 3)) == {"p2"}

    # Deleted objects take their entries with them.
    api.delete("ciliumendpointslices", None, "ces-p2")
    api.delete("ciliumendpointslices", None, "ces-r1")
    api.delete("nodes", None, "node-r")
    wait_for(lambda: endpoints(agent) == {p1.ip: 10001}, 5, what="p2 gone from endpoints")
    wait_for(lambda: set(ipcache(agent)) == {f"{p1.ip}/32"}, 5,
             what="only p1 left in the ipcache")
    wait_for(lambda: axon_routes(a) == {}, 5, what="route removed")


def test_restart_converges_after_deletions_while_the_agent_was_down(lab1, api, start_agent):
    a = lab1.node("a")
    b1, b2, b3, c1, c2 = (a.add_pod(n) for n in ("b1", "b2", "b3", "c1", "c2"))
    for b in (b1, b2, b3):
        serve(b, tcp_port=HTTP)
    cluster = RealCluster(api, a)
    api.create(a.k8s_node())
    for p in (b1, b2, b3, c1, c2):
        cluster.add_pod(p)
    cluster.service("web", "10.96.50.10", {80: HTTP}, [b1])
    cluster.service("gone", "10.96.50.11", {80: HTTP}, [b2])
    cluster.add_remote("remote-1", "192.168.50.101", "10.245.1.0/24")
    agent = start_agent(a, "--auto-direct-node-routes=true")
    wait_attached(agent, a.native, *[p.host_if for p in a.pods.values()])
    wait_for(lambda: converged(agent, cluster) is None, 20, what="first convergence")
    assert agent.lb_frontends()[KUBERNETES_FRONTEND] == []
    assert reached(tcp(c1, "10.96.50.11", 80, 3)) == {"b2"}
    web_revnat = revnat_ids(agent)["10.96.50.10:80"]

    assert agent.stop(signal.SIGKILL) == -signal.SIGKILL
    # While it is down: a Service and its slice deleted, another scaled, a Node replaced,
    # a pod gone (its CiliumEndpointSlice and its veth).
    cluster.delete_service("gone")
    cluster.service("web", "10.96.50.10", {80: HTTP}, [b1, b3])
    cluster.delete_remote("remote-1")
    cluster.add_remote("remote-2", "192.168.50.102", "10.245.2.0/24")
    cluster.remove_pod(b2)
    a.exec("ip", "link", "del", b2.host_if)

    agent.start()
    wait_for(lambda: converged(agent, cluster) is None, 20, what="convergence after restart")
    assert "10.96.50.11:80/TCP" not in agent.lb_frontends()
    assert axon_routes(a) == {"10.245.2.0/24": "192.168.50.102"}
    assert b2.ip not in endpoints(agent) and f"{b2.ip}/32" not in ipcache(agent)
    # The Service that stayed kept its rev-NAT id; both LBs serve the new backends (the
    # socket LB for c1 in its cgroup, tc for c2 outside it).
    assert revnat_ids(agent)["10.96.50.10:80"] == web_revnat
    assert reached(tcp(c1, "10.96.50.10", 80, 20)) == {"b1", "b3"}
    assert reached(tcp(c2, "10.96.50.10", 80, 20, in_cgroup=False)) == {"b1", "b3"}
    assert not any(r["ok"] for r in tcp(c1, "10.96.50.11", 80, 2, timeout=1))


# -- EndpointSlices from the real controller ------------------------------------------------

def test_endpointslices_derived_from_pods_by_the_controller_manager(lab1, apiserver, api,
                                                                    start_agent):
    """The kube-controller-manager's EndpointSlice controller turns Pods (bound to node-a,
    their status set as a kubelet would) into the slices the agent serves."""
    realk8s.require(controller_manager=True)
    a = lab1.node("a")
    b1, b2, client = a.add_pod("b1"), a.add_pod("b2"), a.add_pod("client")
    serve(b1), serve(b2)
    lab1.publish(api)
    ns = apiserver.create_namespace("eps")
    vip = "10.96.60.10"
    api.create(k8s.service(ns, "web", [("http", 80, "TCP", 8080), ("dns", 53, "UDP", 5353)],
                           cluster_ip=vip))
    agent = start_agent(a)
    with apiserver.controller_manager("endpointslice,serviceaccount"):
        wait_for(lambda: api.get("serviceaccounts", ns, "default"), 10,
                 what="the default ServiceAccount")
        for pod in (b1, b2):
            api.create({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": f"web-{pod.name}", "namespace": ns,
                                     "labels": {"app": "web"}},
                        "spec": {"nodeName": a.name, "automountServiceAccountToken": False,
                                 "containers": [{"name": "web", "image": "busybox"}]}})
            set_pod_status(api, ns, f"web-{pod.name}", pod.ip, ready=True)
        want = sorted([f"{b1.ip}:8080", f"{b2.ip}:8080"])
        wait_for(lambda: agent.lb_frontends().get(f"{vip}:80/TCP") == want, 10,
                 what="backends from the controller's slice")
        slices = api.list("endpointslices", ns, labelSelector="kubernetes.io/service-name=web")
        assert [s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
                for s in slices["items"]] == ["endpointslice-controller.k8s.io"]
        assert reached(tcp(client, vip, 80, 20)) == {"b1", "b2"}
        assert all(r["ok"] and r["from"] == f"{vip}:53" for r in udp(client, vip, 53, 3))

        # b2 turns unready: the controller marks it so, the agent stops choosing it.
        set_pod_status(api, ns, "web-b2", b2.ip, ready=False)
        wait_for(lambda: agent.lb_frontends().get(f"{vip}:80/TCP") == [f"{b1.ip}:8080"], 10,
                 what="b2 out of the backends")
        assert reached(tcp(client, vip, 80, 10)) == {"b1"}


def set_pod_status(api, namespace, name, ip, ready):
    """What a kubelet reports for a running pod: phase, addresses and the Ready condition."""
    status = "True" if ready else "False"
    api.request("PATCH", k8s._resource("pods").path(namespace, name, "status"),
                {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                            "conditions": [{"type": "Ready", "status": status},
                                           {"type": "ContainersReady", "status": status}]}},
                content_type="application/merge-patch+json")


# -- the chart's RBAC under the real authorizer ---------------------------------------------

def test_chart_rbac_lets_the_agent_sync_and_nothing_more(lab1, apiserver, api, start_agent):
    realk8s.require(helm=True)
    a = lab1.node("a")
    p1 = a.add_pod("p1")
    lab1.publish(api)
    ns = apiserver.create_namespace("rbac")
    api.create(k8s.service(ns, "web", [80], cluster_ip="10.96.70.10"))
    api.create(k8s.endpointslice(ns, "web-1", "web", [(p1.ip, True, a.name)], [80]))
    sa, role = chart_rbac(api, ns)
    user = f"system:serviceaccount:{ns}:{sa}"
    token = apiserver.token_for(ns, sa)
    kubeconfig = apiserver.write_kubeconfig(pathlib.Path(a.run_dir) / "kubeconfig-sa", token)

    # As the chart's ServiceAccount, every watch syncs and the cluster is realized.
    agent = start_agent(a, kubeconfig=kubeconfig)
    st = agent.status()["kubernetes"]
    assert all(w["synced"] and w["errors"] == 0 for w in st["watches"]), st["watches"]
    assert agent.lb_frontends()["10.96.70.10:80/TCP"] == [f"{p1.ip}:80"]
    assert agent.lb_frontends()[KUBERNETES_FRONTEND] == []
    assert endpoints(agent) == {p1.ip: p1.identity}

    # The role names only what the agent watches, with no wildcard and no verb that makes
    # or removes objects but the ones it publishes: identities (create, delete unused) and
    # its node's CiliumEndpointSlices (create, patch, delete); it patches its own Node.
    needs = watched(agent)
    writes = {("cilium.io", "ciliumidentities"): {"create", "delete"},
              ("cilium.io", "ciliumendpointslices"): {"create", "patch", "delete"},
              ("", "nodes"): {"patch"}}
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        granted = {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
        assert granted <= needs, f"granted but not watched: {granted - needs}"
        extra = set(rule["verbs"]) - {"get", "list", "watch"}
        for gr in granted:
            assert extra <= writes.get(gr, set()), (gr, rule["verbs"])
        assert not extra & {"update", "deletecollection", "escalate", "bind",
                            "impersonate"}, rule
    # What it watches, the authorizer allows it, cluster-wide.
    for group, resource in needs:
        for verb in ("list", "watch"):
            assert apiserver.can_i(user, verb, resource, group)[0], (verb, group, resource)

    # Anything outside the role is refused: the authorizer says so, and the same token
    # gets 403 Forbidden from the apiserver; the Service is still there.
    for verb, resource, group, where in (("delete", "services", "", ns),
                                         ("list", "secrets", "", None),
                                         ("get", "secrets", "", "kube-system"),
                                         ("create", "nodes", "", None),
                                         ("update", "endpointslices", "discovery.k8s.io", ns)):
        allowed, _ = apiserver.can_i(user, verb, resource, group, where)
        assert allowed is False, (verb, resource)
    sa_client = apiserver.client(token=token)
    for method, path in (("DELETE", f"/api/v1/namespaces/{ns}/services/web"),
                         ("GET", "/api/v1/secrets"),
                         ("GET", "/api/v1/namespaces/kube-system/secrets")):
        with pytest.raises(k8s.ApiError) as e:
            sa_client.request(method, path)
        assert e.value.code == 403 and e.value.reason == "Forbidden", e.value
        assert user in str(e.value), e.value
    assert api.get("services", ns, "web")
    # And with the same token the agent's own reads are answered.
    assert sa_client.list("services")["items"]


@pytest.mark.parametrize("nodes_verbs", [None, ["get", "list", "watch"]],
                         ids=["chart-role", "role-without-patch"])
def test_not_ready_taint_under_the_real_authorizer(lab1, apiserver, api, start_agent,
                                                   nodes_verbs):
    """The agent, as the chart's ServiceAccount, removes the not-ready taint from its own
    Node once ready; the other taints stay. With a role that cannot patch nodes the
    apiserver refuses (403), the agent says so in status and the taint stays."""
    realk8s.require(helm=True)
    a = lab1.node("a")
    ns = apiserver.create_namespace("taint")
    sa, role = chart_rbac(api, ns, nodes_verbs)
    node = a.k8s_node()
    node["spec"]["taints"] = [{"key": "example.com/keep", "value": "x", "effect": "NoSchedule"},
                              {"key": NOT_READY_TAINT, "effect": "NoSchedule"},
                              {"key": "example.com/evict", "effect": "NoExecute"}]
    # As stored: with the admission's node.kubernetes.io/not-ready too (a new Node is not
    # Ready), which is none of the agent's business either.
    registered = api.create(node)["spec"]["taints"]
    keep = [t for t in registered if t["key"] != NOT_READY_TAINT]
    assert len(keep) == 3, registered
    token = apiserver.token_for(ns, sa)
    kubeconfig = apiserver.write_kubeconfig(pathlib.Path(a.run_dir) / "kubeconfig-sa", token)
    agent = start_agent(a, "--k8s-backoff-max=1s", kubeconfig=kubeconfig)
    assert agent.status()["health"]["ready"] is True

    def taints():
        return api.get("nodes", None, a.name)["spec"].get("taints", [])
    if nodes_verbs is None:
        st = wait_for(lambda: (t := agent.status()["taint"])["state"] == "removed" and t, 10,
                      what="the taint removed")
        assert (st["removed"], st["error"]) == (1, ""), st
        # The others, as they were, in their order.
        assert taints() == keep
        n = api.get("nodes", None, a.name)
        writers = {m["manager"] for m in n["metadata"]["managedFields"]
                   if "f:taints" in str(m.get("fieldsV1"))}
        # The list is atomic: its last writer, the agent, owns it now.
        assert writers == {"axon-agent"}, n["metadata"]["managedFields"]
        return
    user = f"system:serviceaccount:{ns}:{sa}"
    assert apiserver.can_i(user, "patch", "nodes")[0] is False
    st = wait_for(lambda: (t := agent.status()["taint"])["state"] == "error" and t, 10,
                  what="the taint removal failing")
    assert "403" in st["error"] and "patch" in st["error"] and user in st["error"], st
    assert st["removed"] == 0 and st["reads"] >= 1 and st["patches"] >= 1, st
    # Retried, refused each time; the Node keeps every taint, and the agent serves on.
    wait_for(lambda: agent.status()["taint"]["patches"] >= 2, 10, what="a second attempt")
    assert taints() == registered
    assert agent.status()["taint"]["state"] == "error"
    assert agent.status()["health"]["ready"] is True and agent.alive()
    assert 'msg="cannot remove the not-ready taint"' in agent.log_tail(200)


# -- in-cluster configuration, as in a pod --------------------------------------------------

@pytest.fixture
def sa_mountpoint():
    """The directory a pod's service-account volume is mounted on. Created on the
    machine only for as long as the test runs, and only the parts that were missing:
    each agent mounts its own tmpfs over it in a mount namespace of its own."""
    made = []
    path = pathlib.Path(os.path.realpath(SA_DIR))
    for d in reversed([path, *path.parents]):
        if not d.exists():
            d.mkdir()
            made.append(d)
    try:
        yield SA_DIR
    finally:
        for d in reversed(made):
            try:
                d.rmdir()
            except OSError:
                pass


class InClusterAgent(Agent):
    """The agent as the chart runs it in a pod: no --kubeconfig; KUBERNETES_SERVICE_HOST
    and _PORT name the apiserver (127.0.0.1:PORT, served in the node's namespace), and the
    token, CA and namespace are files under /var/run/secrets/kubernetes.io/serviceaccount,
    a tmpfs in a mount namespace of the agent's own, as the kubelet's projected volume."""

    def __init__(self, lab, apiserver, extra=(), node=None, token=None, namespace=None):
        super().__init__(lab, apiserver, extra, node)
        self.files = pathlib.Path(self.node.run_dir) / "serviceaccount"
        self.files.mkdir(exist_ok=True)
        (self.files / "token").write_text(token)
        (self.files / "namespace").write_text(namespace)
        shutil.copy(apiserver.ca, self.files / "ca.crt")

    def argv(self):
        argv = super().argv()
        i = argv.index("--kubeconfig")
        return argv[:i] + argv[i + 2:]

    def start(self, wait=True):
        port = urllib.parse.urlsplit(self.apiserver.url).port
        env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1",
                   KUBERNETES_SERVICE_PORT=str(port))
        # unshare and sh exec in turn: the agent is the process started here.
        script = ('mount -t tmpfs -o size=1m,mode=0755 serviceaccount "$1" && '
                  'cp "$2/token" "$2/ca.crt" "$2/namespace" "$1/" && '
                  'netns=$3 && shift 3 && exec nsenter --net="$netns" "$@"')
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
             SA_DIR, str(self.files), f"/var/run/netns/{self.node.netns}"] + self.argv(),
            env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.lab.procs.append(self.proc)
        if wait:
            self.wait_synced()
        return self


def test_in_cluster_config_from_the_service_account_files(lab1, apiserver, api, start_agent,
                                                           sa_mountpoint):
    realk8s.require(helm=True)
    a = lab1.node("a")
    p1 = a.add_pod("p1")
    lab1.publish(api)
    ns = apiserver.create_namespace("incluster")
    sa, _ = chart_rbac(api, ns)
    api.create(k8s.service(ns, "web", [80], cluster_ip="10.96.80.10"))
    api.create(k8s.endpointslice(ns, "web-1", "web", [(p1.ip, True, a.name)], [80]))
    agent = start_agent(a, cls=InClusterAgent, token=apiserver.token_for(ns, sa), namespace=ns)

    st = agent.status()["kubernetes"]
    assert st["server"] == apiserver.url and st["connected"] is True, st
    assert st["version"] == apiserver.version
    assert all(w["synced"] and w["errors"] == 0 for w in st["watches"]), st["watches"]
    assert agent.lb_frontends()["10.96.80.10:80/TCP"] == [f"{p1.ip}:80"]
    # The files were the pod's own: the machine's directory is empty.
    assert not any(pathlib.Path(sa_mountpoint).iterdir())
    # It authenticates with that token, which the apiserver maps to the ServiceAccount:
    # with the binding gone, the next list is refused and the agent says so.
    api.delete("clusterrolebindings", None, "axon")
    agent.stop(signal.SIGKILL)
    agent.start(wait=False)
    wait_for(lambda: any("403" in w["last_error"]
                         for w in agent.status()["kubernetes"]["watches"]), 10,
             what="the agent reporting 403")
    assert agent.alive()


# -- endpoints, identities and slices published by the agent ----------------------------------

def test_identities_and_slices_published_under_the_chart_rbac(lab1, apiserver, api,
                                                              start_agent):
    """As the chart's ServiceAccount, against the real validation of Cilium's CRDs: the
    agent creates its pods' CiliumIdentity, publishes them in a CiliumEndpointSlice,
    follows a label change, keeps a terminating pod published as disconnecting, deletes
    the slice once the pods are gone and collects the unused identities."""
    realk8s.require(helm=True)
    a = lab1.node("a")
    p1, p2 = a.add_pod("p1"), a.add_pod("p2")
    serve(p2)
    api.apply(a.k8s_node())
    ns = apiserver.create_namespace("ident")
    sa, _ = chart_rbac(api, ns)
    token = apiserver.token_for(ns, sa)
    kubeconfig = apiserver.write_kubeconfig(pathlib.Path(a.run_dir) / "kubeconfig-sa", token)
    apiserver.create_service_account(ns, "web")
    for pod in (p1, p2):
        api.create({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod.name, "namespace": ns,
                                 "labels": {"app": "web", "pod-template-hash": pod.name}},
                    "spec": {"nodeName": a.name, "serviceAccountName": "web",
                             "automountServiceAccountToken": False,
                             "containers": [{"name": "web", "image": "busybox",
                                             "ports": [{"name": "http",
                                                        "containerPort": HTTP}]}]}})
        set_pod_status(api, ns, pod.name, pod.ip, ready=True)
    agent = start_agent(a, "--identity-gc-interval=1s", "--identity-heartbeat-timeout=2s",
                        kubeconfig=kubeconfig)

    def node_slices():
        return [s for s in api.list("ciliumendpointslices")["items"]
                if s["metadata"]["name"].startswith(f"axon-{a.name}-")]

    def mine():
        return [s for s in node_slices() if s["namespace"] == ns]

    def ident_of(labels):
        for o in api.list("ciliumidentities")["items"]:
            sl = o["security-labels"]
            if sl.get("k8s:io.kubernetes.pod.namespace") == ns and all(
                    sl.get(f"k8s:{k}") == v for k, v in labels.items()):
                return int(o["metadata"]["name"]), sl
        return None

    ident, labels = wait_for(lambda: ident_of({"app": "web"}), 15, what="the CiliumIdentity")
    assert labels == {"k8s:app": "web", "k8s:io.kubernetes.pod.namespace": ns,
                      "k8s:io.cilium.k8s.policy.serviceaccount": "web",
                      "k8s:io.cilium.k8s.policy.cluster": "default",
                      f"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name": ns}
    (ces,) = wait_for(lambda: (lambda m: m if m and len(m[0]["endpoints"]) == 2 else None)(
        mine()), 15, what="the node's CiliumEndpointSlice")
    assert ces["namespace"] == ns
    assert [(e["name"], e["id"], e["networking"]["addressing"], e["networking"]["node"],
             e["named-ports"]) for e in ces["endpoints"]] == [
        (p.name, ident, [{"ipv4": p.ip}], a.ip,
         [{"name": "http", "port": HTTP, "protocol": "TCP"}]) for p in (p1, p2)]
    wait_for(lambda: {e["pod"]: e.get("state") for e in agent.ctl_json("endpoint", "list")}
             == {f"{ns}/p1": "ready", f"{ns}/p2": "ready"}, 10, what="endpoints ready")
    wait_attached(agent, p1.host_if, p2.host_if)
    assert tcp(p1, p2.ip, HTTP)[0]["ok"]

    # A label change: p2 moves to a new identity; p1 keeps its own.
    api.patch("pods", ns, "p2", {"metadata": {"labels": {"app": "api"}}})
    new, _ = wait_for(lambda: ident_of({"app": "api"}), 15, what="p2's new identity")
    wait_for(lambda: {e["name"]: e["id"] for e in mine()[0]["endpoints"]}
             == {"p1": ident, "p2": new}, 15, what="the slice under the new identity")

    # Terminating (no kubelet to finish it): still published, disconnecting.
    api.request("DELETE", k8s._resource("pods").path(ns, "p1"))
    wait_for(lambda: {e["pod"]: e.get("state") for e in agent.ctl_json("endpoint", "list")}
             .get(f"{ns}/p1") == "disconnecting", 10, what="p1 disconnecting")
    assert "p1" in {e["name"] for e in mine()[0]["endpoints"]}
    for name in ("p1", "p2"):
        api.request("DELETE", k8s._resource("pods").path(ns, name),
                    params={"gracePeriodSeconds": "0"})
    # Deleted, and so is any slice an earlier agent of this node left behind (killed
    # before its pods went): the agent adopts the node's slices and keeps only its pods'.
    wait_for(lambda: not node_slices(), 15, what="the node's slices deleted")
    wait_for(lambda: not ident_of({"app": "web"}) and not ident_of({"app": "api"}), 15,
             what="the unused identities collected")
