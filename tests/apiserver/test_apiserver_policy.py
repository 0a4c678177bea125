"""The network-policy kinds: NetworkPolicy, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy,
CiliumIdentity and Namespace are served, defaulted and validated as a real apiserver does
(what tests/fixtures/k8s/*-list.json recorded from 1.26), and watched like any other kind."""

import pytest

import k8s


def test_networkpolicy_defaults_as_the_real_apiserver(client, ns):
    np = client.create(k8s.networkpolicy(ns, "web", {"app": "web"}, ingress=[
        {"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}},
                   "podSelector": {"matchLabels": {"app": "x"}}}],
         "ports": [{"port": 8080}]}]))
    assert list(np) == ["kind", "apiVersion", "metadata", "spec"]
    assert np["metadata"]["generation"] == 1
    # Go field order: podSelector, ingress, egress, policyTypes; ports then from; a peer's
    # podSelector before its namespaceSelector; protocol before port.
    assert list(np["spec"]) == ["podSelector", "ingress", "policyTypes"]
    rule = np["spec"]["ingress"][0]
    assert list(rule) == ["ports", "from"]
    assert list(rule["from"][0]) == ["podSelector", "namespaceSelector"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    # policyTypes: Ingress always, Egress with egress rules.
    assert np["spec"]["policyTypes"] == ["Ingress"]
    eg = client.create(k8s.networkpolicy(ns, "eg", egress=[{"to": [{"ipBlock": {
        "cidr": "10.0.0.0/8"}}]}]))
    assert eg["spec"]["podSelector"] == {}
    assert eg["spec"]["policyTypes"] == ["Ingress", "Egress"]
    # Given policyTypes are kept, whatever the rules.
    only = client.create(k8s.networkpolicy(ns, "only", ingress=[{}], policy_types=["Egress"]))
    assert only["spec"]["policyTypes"] == ["Egress"]


def test_networkpolicy_strict_validation(client, ns):
    def refused(obj, field):
        with pytest.raises(k8s.ApiError) as e:
            client.create(obj, strict=True)
        assert e.value.code == 422 and e.value.reason == "Invalid"
        assert field in [c["field"] for c in e.value.status["details"]["causes"]], e.value
    refused(k8s.networkpolicy(ns, "a", policy_types=["Sideways"]), "spec.policyTypes[0]")
    refused(k8s.networkpolicy(ns, "b", ingress=[{"from": [{}]}]), "spec.ingress[0].from[0]")
    refused(k8s.networkpolicy(ns, "c", egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"},
                                                         "podSelector": {}}]}]),
            "spec.egress[0].to[0]")
    refused(k8s.networkpolicy(ns, "d", egress=[{"to": [{"ipBlock": {
        "cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]}]),
        "spec.egress[0].to[0].ipBlock.except[0]")
    refused(k8s.networkpolicy(ns, "e", ingress=[{"ports": [{"port": 70000}]}]),
            "spec.ingress[0].ports[0].port")
    # Loose by default: the agent gets to see what a buggy client writes.
    assert client.create(k8s.networkpolicy(ns, "f", ingress=[{"from": [{}]}]))


def test_namespace_defaults_and_status_subresource(client):
    obj = client.create(k8s.namespace("polns-a", {"team": "x", "env": "prod"}))
    assert list(obj) == ["kind", "apiVersion", "metadata", "spec", "status"]
    assert "namespace" not in obj["metadata"] and "generation" not in obj["metadata"]
    # The name label, always, and labels in key order (a Go map).
    assert list(obj["metadata"]["labels"].items()) == [
        ("env", "prod"), ("kubernetes.io/metadata.name", "polns-a"), ("team", "x")]
    assert obj["spec"] == {"finalizers": ["kubernetes"]}
    assert obj["status"] == {"phase": "Active"}
    # /api/v1/namespaces/NAME/status is the Namespace's own subresource.
    st = client.request("GET", "/api/v1/namespaces/polns-a/status").json()
    assert st["metadata"]["name"] == "polns-a"
    # An update cannot rename the label away, nor change status through the main resource.
    obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = "other"
    obj["status"] = {"phase": "Terminating"}
    upd = client.update(obj)
    assert upd["metadata"]["labels"]["kubernetes.io/metadata.name"] == "polns-a"
    assert upd["status"] == {"phase": "Active"}
    client.delete("namespaces", None, "polns-a")
    with pytest.raises(k8s.ApiError) as e:
        client.get("namespaces", None, "polns-a")
    assert e.value.code == 404


def test_cilium_policy_crds_keep_objects_as_written(client, ns):
    rule = {"endpointSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"fromEntities": ["world"], "toPorts": [{"ports": [
                {"port": "80", "protocol": "TCP"}]}]}]}
    cnp = client.create(k8s.ciliumnetworkpolicy(ns, "web", spec=rule))
    # A CRD: keys sorted, kind on the object, nothing defaulted.
    assert list(cnp) == ["apiVersion", "kind", "metadata", "spec"]
    assert cnp["spec"] == rule
    ccnp = client.create(k8s.ciliumclusterwidenetworkpolicy("polccnp", specs=[rule]))
    assert "namespace" not in ccnp["metadata"] and ccnp["specs"] == [rule]
    ident = client.create(k8s.ciliumidentity(70001, ns, {"app": "web"}))
    assert ident["security-labels"]["k8s:app"] == "web"
    assert ident["security-labels"]["k8s:io.kubernetes.pod.namespace"] == ns
    got = client.list("ciliumidentities")
    assert "70001" in [i["metadata"]["name"] for i in got["items"]]


def test_discovery_serves_the_policy_kinds(client):
    core = {r["name"]: r for r in client.request("GET", "/api/v1").json()["resources"]}
    assert core["namespaces"]["namespaced"] is False
    assert core["namespaces"]["shortNames"] == ["ns"]
    assert "namespaces/status" in core
    net = client.request("GET", "/apis/networking.k8s.io/v1").json()
    assert [(r["name"], r["namespaced"]) for r in net["resources"]] == [
        ("networkpolicies", True)]
    group = client.request("GET", "/apis/cilium.io").json()
    assert group["preferredVersion"]["version"] == "v2"
    v2 = {r["name"]: r for r in client.request("GET", "/apis/cilium.io/v2").json()["resources"]}
    assert (v2["ciliumnetworkpolicies"]["namespaced"], v2["ciliumnetworkpolicies"]["shortNames"]) \
        == (True, ["cnp", "ciliumnp"])
    assert v2["ciliumclusterwidenetworkpolicies"]["namespaced"] is False
    assert v2["ciliumidentities"]["shortNames"] == ["ciliumid"]


def test_policy_watch_sees_changes(client, ns):
    lst = client.list("networkpolicies", ns)
    with client.watch("networkpolicies", ns, resource_version=lst["metadata"]["resourceVersion"],
                      timeout_seconds=5) as w:
        client.create(k8s.networkpolicy(ns, "w1"))
        client.delete("networkpolicies", ns, "w1")
        types = [w.next(5)["type"], w.next(5)["type"]]
    assert types == ["ADDED", "DELETED"]
