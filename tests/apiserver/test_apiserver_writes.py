"""Writes: defaults and allocation, optimistic concurrency, patch, delete, loose vs strict."""

import ipaddress

import pytest

import k8s

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")


def test_create_fills_the_defaults_a_real_apiserver_fills(client, ns):
    svc = client.create(k8s.service(ns, "web", [(None, 80, "TCP", 8080)]))
    meta, spec = svc["metadata"], svc["spec"]
    assert list(svc) == ["kind", "apiVersion", "metadata", "spec", "status"]
    assert list(meta)[:5] == ["name", "namespace", "uid", "resourceVersion",
                              "creationTimestamp"]
    assert "generation" not in meta, "Services have no generation"
    assert ipaddress.ip_address(spec["clusterIP"]) in SERVICE_CIDR
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["sessionAffinity"] == "None" and spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ports"] == [{"protocol": "TCP", "port": 80, "targetPort": 8080}]
    assert "externalTrafficPolicy" not in spec
    assert svc["status"] == {"loadBalancer": {}}
    assert list(spec) == ["ports", "selector", "clusterIP", "clusterIPs", "type",
                          "sessionAffinity", "ipFamilies", "ipFamilyPolicy",
                          "internalTrafficPolicy"]


def test_nodeport_and_loadbalancer_get_node_ports(client, ns):
    np = client.create(k8s.service(ns, "np", [80, 81], type="NodePort"))["spec"]
    lb = client.create(k8s.service(ns, "lb", [80], type="LoadBalancer",
                                   externalTrafficPolicy="Local"))["spec"]
    ports = [p["nodePort"] for p in np["ports"]] + [lb["ports"][0]["nodePort"],
                                                     lb["healthCheckNodePort"]]
    assert all(30000 <= p <= 32767 for p in ports) and len(set(ports)) == 4
    assert np["externalTrafficPolicy"] == "Cluster"
    assert lb["allocateLoadBalancerNodePorts"] is True
    assert [p["targetPort"] for p in np["ports"]] == [80, 81]


def test_headless_and_external_name(client, ns):
    headless = client.create(k8s.service(ns, "h", [5432], cluster_ip="None"))["spec"]
    assert headless["clusterIP"] == "None" and headless["clusterIPs"] == ["None"]
    ext = client.create({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": "ext", "namespace": ns},
                         "spec": {"type": "ExternalName", "externalName": "db.example.com"}})
    assert ext["spec"] == {"type": "ExternalName", "sessionAffinity": "None",
                           "externalName": "db.example.com"}


def test_cluster_ips_are_unique_and_in_range(client, ns):
    ips = [client.create(k8s.service(ns, f"s{i}", [80]))["spec"]["clusterIP"]
           for i in range(150)]
    assert len(set(ips)) == len(ips)
    assert all(ipaddress.ip_address(ip) in SERVICE_CIDR for ip in ips)


def test_taken_cluster_ip_is_422(client, ns):
    ip = client.get("services", "shop", "web")["spec"]["clusterIP"]
    with pytest.raises(k8s.ApiError) as e:
        client.create(k8s.service(ns, "dup", [80], cluster_ip=ip))
    st = e.value.status
    assert e.value.code == 422 and st["reason"] == "Invalid"
    assert st["message"] == (f'Service "dup" is invalid: spec.clusterIPs: Invalid value: '
                             f'[]string{{"{ip}"}}: failed to allocate IP {ip}: provided IP is '
                             f'already allocated')
    assert st["details"]["causes"][0]["field"] == "spec.clusterIPs"


def test_deleted_service_frees_its_cluster_ip(client, ns):
    client.create(k8s.service(ns, "a", [80], cluster_ip="10.96.0.77"))
    client.delete("services", ns, "a")
    assert client.create(k8s.service(ns, "b", [80], cluster_ip="10.96.0.77"))


def test_stale_update_is_409_and_current_update_bumps_rv(client, ns):
    svc = client.create(k8s.service(ns, "web", [80]))
    svc["metadata"]["labels"] = {"v": "1"}
    updated = client.update(svc)
    assert int(updated["metadata"]["resourceVersion"]) > int(svc["metadata"]["resourceVersion"])
    assert updated["spec"]["clusterIP"] == svc["spec"]["clusterIP"]
    svc["metadata"]["labels"] = {"v": "2"}                # svc still has the old revision
    with pytest.raises(k8s.ApiError) as e:
        client.update(svc)
    assert e.value.code == 409 and e.value.reason == "Conflict"
    assert e.value.status["message"] == (
        f'Operation cannot be fulfilled on services "web": the object has been modified; '
        f'please apply your changes to the latest version and try again')


def test_update_without_change_is_a_no_op(client, ns):
    svc = client.create(k8s.service(ns, "web", [80]))
    again = client.update(svc)
    assert again["metadata"]["resourceVersion"] == svc["metadata"]["resourceVersion"]


def test_update_keeps_allocated_values_and_refuses_an_ip_change(client, ns):
    svc = client.create(k8s.service(ns, "np", [80], type="NodePort"))
    body = k8s.service(ns, "np", [80], type="NodePort")       # no clusterIP, no nodePort
    kept = client.update(body)
    assert kept["spec"]["clusterIP"] == svc["spec"]["clusterIP"]
    assert kept["spec"]["ports"][0]["nodePort"] == svc["spec"]["ports"][0]["nodePort"]
    body["spec"]["clusterIP"] = "10.96.0.99"
    with pytest.raises(k8s.ApiError) as e:
        client.update(body)
    assert e.value.code == 422


def test_create_existing_is_409_already_exists(client, ns):
    client.create(k8s.service(ns, "web", [80]))
    with pytest.raises(k8s.ApiError) as e:
        client.create(k8s.service(ns, "web", [80]))
    assert e.value.code == 409 and e.value.reason == "AlreadyExists"


def test_patches(client, ns):
    client.create(k8s.service(ns, "web", [80], labels={"a": "1", "b": "2"}))
    merged = client.patch("services", ns, "web", {"metadata": {"labels": {"a": None, "c": "3"}}})
    assert merged["metadata"]["labels"] == {"b": "2", "c": "3"}
    patched = client.patch("services", ns, "web",
                           [{"op": "replace", "path": "/spec/ports/0/port", "value": 81}],
                           patch_type="json")
    assert patched["spec"]["ports"][0]["port"] == 81
    with pytest.raises(k8s.ApiError) as e:
        client.patch("services", ns, "web", {"metadata": {"resourceVersion": "1"}})
    assert e.value.code == 409


def test_status_subresource(client, ns):
    svc = client.create(k8s.service(ns, "lb", [80], type="LoadBalancer"))
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.50"}]}}
    svc["spec"]["sessionAffinity"] = "ClientIP"                 # ignored by /status
    out = client.update_status(svc)
    assert out["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.50"}]
    assert out["spec"]["sessionAffinity"] == "None"
    # ... and the main resource ignores status.
    out["status"] = {"loadBalancer": {}}
    assert client.update(out)["status"]["loadBalancer"]["ingress"]


def test_delete_answers_like_the_real_registry(client, ns):
    svc = client.create(k8s.service(ns, "web", [80]))
    gone = client.delete("services", ns, "web")
    assert gone["kind"] == "Service" and gone["metadata"]["uid"] == svc["metadata"]["uid"]
    assert int(gone["metadata"]["resourceVersion"]) > int(svc["metadata"]["resourceVersion"])
    eps = client.create(k8s.endpointslice(ns, "web-1", "web", [("10.0.0.1", True)], [80]))
    st = client.delete("endpointslices", ns, "web-1")
    assert st == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                  "details": {"name": "web-1", "group": "discovery.k8s.io",
                              "kind": "endpointslices", "uid": eps["metadata"]["uid"]}}
    with pytest.raises(k8s.ApiError) as e:
        client.delete("services", ns, "web")
    assert e.value.code == 404


def test_finalizers_hold_a_delete_until_removed(client, ns):
    svc = k8s.service(ns, "held", [80])
    svc["metadata"]["finalizers"] = ["example.com/hold"]
    client.create(svc)
    pending = client.delete("services", ns, "held")
    assert pending["metadata"]["deletionTimestamp"]
    assert client.get("services", ns, "held")
    pending["metadata"]["finalizers"] = []
    client.update(pending)
    with pytest.raises(k8s.ApiError):
        client.get("services", ns, "held")


def test_endpointslice_generation_and_defaults(client, ns):
    eps = client.create(k8s.endpointslice(ns, "web-1", "web", [("10.0.0.1", True)],
                                          [{"port": 80}]))
    assert eps["metadata"]["generation"] == 1
    assert eps["ports"] == [{"name": "", "protocol": "TCP", "port": 80}]
    eps["endpoints"].append({"addresses": ["10.0.0.2"]})
    eps = client.update(eps)
    assert eps["metadata"]["generation"] == 2
    assert eps["endpoints"][1]["conditions"] == {}, "Go's zero value for conditions"
    eps["metadata"]["labels"]["extra"] = "x"
    assert client.update(eps)["metadata"]["generation"] == 2, "metadata does not count"


def test_empty_endpointslice_has_null_endpoints(client, ns):
    eps = client.create({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                         "metadata": {"name": "empty", "namespace": ns},
                         "addressType": "IPv4"})
    assert eps["endpoints"] is None


def test_malformed_objects_are_stored_unless_strict(client, ns):
    bad = k8s.service(ns, "bad", [{"port": "eighty", "protocol": "QUIC"}],
                      cluster_ip="not-an-ip")
    stored = client.create(bad)
    assert stored["spec"]["clusterIP"] == "not-an-ip"
    assert stored["spec"]["ports"][0]["port"] == "eighty"
    bad["metadata"]["name"] = "bad2"
    with pytest.raises(k8s.ApiError) as e:
        client.create(bad, strict=True)
    assert e.value.code == 422
    fields = {c["field"] for c in e.value.status["details"]["causes"]}
    assert {"spec.ports[0].port", "spec.ports[0].protocol", "spec.clusterIPs[0]"} <= fields
    eps = k8s.endpointslice(ns, "e", "x", [("300.1.1.1", True)], [80])
    with pytest.raises(k8s.ApiError):
        client.create(eps, strict=True)
    assert client.create(eps)["endpoints"][0]["addresses"] == ["300.1.1.1"]


def test_a_name_is_required_even_when_loose(client, ns):
    with pytest.raises(k8s.ApiError) as e:
        client.request("POST", f"/api/v1/namespaces/{ns}/services", {"spec": {}})
    assert e.value.code == 422
    with pytest.raises(k8s.ApiError) as e:
        client.request("POST", f"/api/v1/namespaces/{ns}/services", b"{not json")
    assert e.value.code == 400


def test_cluster_scoped_objects_drop_metadata_namespace(client):
    node = k8s.node("node-t", "192.0.2.30", "10.244.9.0/24")
    node["metadata"]["namespace"] = "ignored"
    out = client.create(node)
    assert "namespace" not in out["metadata"]
    assert out["status"]["nodeInfo"]["kubeletVersion"] == "", "Go zero values"
    assert client.get("nodes", None, "node-t")["spec"]["podCIDR"] == "10.244.9.0/24"
    client.delete("nodes", None, "node-t")


def test_node_taints_by_json_patch_with_tests(client):
    """What the agent sends to remove its not-ready taint (agent/health/taint.c): tests
    on the resourceVersion and the taints read, then replace or remove; a write in
    between makes the test fail with 422 and changes nothing."""
    key = "node.axon.io/agent-not-ready"
    node = k8s.node("node-taint", "192.0.2.31", "10.244.10.0/24")
    taints = [{"key": key, "effect": "NoSchedule"},
              {"key": "keep", "value": "x", "effect": "NoExecute"}]
    node["spec"]["taints"] = taints
    rv = client.create(node)["metadata"]["resourceVersion"]

    def patch(rv, seen, ops):
        return client.patch("nodes", None, "node-taint",
                            [{"op": "test", "path": "/metadata/resourceVersion", "value": rv},
                             {"op": "test", "path": "/spec/taints", "value": seen}] + ops,
                            patch_type="json")

    # Someone else writes first: the agent's patch, built on what it read, fails whole.
    other = client.patch("nodes", None, "node-taint", {"metadata": {"labels": {"o": "1"}}})
    with pytest.raises(k8s.ApiError) as e:
        patch(rv, taints, [{"op": "replace", "path": "/spec/taints", "value": taints[1:]}])
    assert e.value.code == 422 and e.value.reason == "Invalid"
    assert "/metadata/resourceVersion" in e.value.status["message"]
    assert client.get("nodes", None, "node-taint")["spec"]["taints"] == taints
    # Taints read before a change to them fail the second test, whatever the rv says.
    rv = other["metadata"]["resourceVersion"]
    with pytest.raises(k8s.ApiError) as e:
        patch(rv, taints[:1], [{"op": "replace", "path": "/spec/taints", "value": []}])
    assert e.value.code == 422 and "/spec/taints" in e.value.status["message"]

    out = patch(rv, taints, [{"op": "replace", "path": "/spec/taints", "value": taints[1:]}])
    assert out["spec"]["taints"] == taints[1:]
    assert out["metadata"]["labels"]["o"] == "1"
    assert int(out["metadata"]["resourceVersion"]) > int(rv)
    out = patch(out["metadata"]["resourceVersion"], taints[1:],
                [{"op": "remove", "path": "/spec/taints"}])
    assert "taints" not in out["spec"]
    assert "taints" not in client.get("nodes", None, "node-taint")["spec"]
    # A JSON patch is only taken as application/json-patch+json.
    with pytest.raises(k8s.ApiError) as e:
        client.request("PATCH", "/api/v1/nodes/node-taint", [], content_type="text/plain")
    assert e.value.code == 415
    client.delete("nodes", None, "node-taint")
