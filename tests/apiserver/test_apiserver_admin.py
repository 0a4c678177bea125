"""The /_test/ admin API: fault injection, watch cutting, compaction, statistics."""

import time

import pytest

import k8s


def test_429_with_retry_after_for_the_next_n_matching_requests(client):
    client.fault(status=429, retry_after=2, count=2, path_prefix="/api/v1/nodes")
    assert client.list("services")                    # not matching: unaffected
    for _ in range(2):
        with pytest.raises(k8s.ApiError) as e:
            client.list("nodes")
        assert e.value.code == 429
        assert e.value.headers["retry-after"] == "2"
        assert e.value.status == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Too many requests, please try again later.",
            "reason": "TooManyRequests", "details": {"retryAfterSeconds": 2}, "code": 429}
    assert client.list("nodes")["items"], "the fault is used up"


def test_plain_429_as_priority_and_fairness_sends_it(client):
    client.fault(status=429, retry_after=1, plain=True, verb="list", resource="nodes")
    resp = client.request("GET", "/api/v1/nodes", check=False)
    assert resp.code == 429 and resp.headers["retry-after"] == "1"
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert resp.body == b"Too many requests, please try again later.\n"


def test_500_and_403_faults(client):
    client.fault(status=500, verb="get")
    with pytest.raises(k8s.ApiError) as e:
        client.get("services", "shop", "web")
    assert e.value.code == 500 and e.value.reason == "InternalError"
    client.fault(status=403, verb="watch", path_prefix="/apis/discovery.k8s.io")
    with pytest.raises(k8s.ApiError) as e:
        client.watch("endpointslices", timeout_seconds=1)
    assert e.value.status["message"] == (
        'endpointslices.discovery.k8s.io is forbidden: User '
        '"system:serviceaccount:kube-system:axon" cannot watch resource "endpointslices" in '
        'API group "discovery.k8s.io" at the cluster scope')


def test_delay_and_reset(client):
    client.fault(delay_ms=300, verb="list", resource="nodes")
    start = time.monotonic()
    client.list("nodes")
    assert time.monotonic() - start >= 0.3
    client.fault(reset=True, resource="nodes")
    with pytest.raises((ConnectionError, OSError)):
        client.list("nodes")
    assert client.list("nodes")


def test_user_agent_limits_a_fault_to_one_client(api):
    agent = api.client(user_agent="axon-agent")
    other = api.client()
    agent.fault(status=500, count=2, verb="list", user_agent="axon-agent")
    assert other.list("nodes")["items"], "another client passes"
    for _ in range(2):
        with pytest.raises(k8s.ApiError) as e:
            agent.list("nodes")
        assert e.value.code == 500
    assert agent.list("nodes")["items"], "the fault is used up"
    with pytest.raises(k8s.ApiError) as e:
        agent.fault(status=500, user_agent=5)
    assert e.value.code == 400 and "user_agent must be a string" in e.value.status["message"]


def test_pending_faults_can_be_listed_and_cleared(client):
    client.fault(status=503, count=-1, path_prefix="/api/v1/nodes")
    assert client.stats()["faults"][0]["status"] == 503
    for _ in range(3):
        with pytest.raises(k8s.ApiError):
            client.list("nodes")
    client.clear_faults()
    assert client.list("nodes")


def test_bad_fault_spec_is_400(client):
    with pytest.raises(k8s.ApiError) as e:
        client.fault(stauts=500)
    assert e.value.code == 400


def test_drop_watches_cuts_the_stream_without_terminating_chunk(api, raw, client):
    conn = raw()
    conn.send("GET", "/api/v1/services?watch=1&timeoutSeconds=30")
    conn.headers()
    for _ in range(9):
        conn.chunk()                      # the synthetic ADDED events of the fixtures
    result = client.drop_watches()
    assert result["applied"][0]["drop_watches"] >= 1
    with pytest.raises(EOFError):
        while True:
            assert conn.chunk() != b"", "a dropped watch must not end cleanly"


def test_end_watches_ends_them_cleanly(api, raw, client):
    conn = raw()
    conn.send("GET", "/api/v1/nodes?watch=1&resourceVersion=&timeoutSeconds=30")
    conn.headers()
    conn.chunk()
    conn.chunk()
    client.end_watches(resource="nodes")
    assert conn.chunk() == b""


def test_compact_makes_older_revisions_too_old(client, ns):
    rv = client.list("services", ns)["metadata"]["resourceVersion"]
    client.create(k8s.service(ns, "x", [80]))
    assert int(client.compact()["compactedResourceVersion"]) > int(rv)
    with client.watch("services", ns, resource_version=rv) as w:
        ev = w.next(timeout=5)
    assert ev["type"] == "ERROR" and ev["object"]["code"] == 410


def test_history_window_expires_old_revisions(ns):
    with k8s.ApiServer(tls=False, history=5, quiet=True) as api:
        c = api.client()
        rv = c.list("services")["metadata"]["resourceVersion"]
        for i in range(3):
            c.create(k8s.service(ns, f"s{i}", [80]))
        with c.watch("services", resource_version=rv, timeout_seconds=1) as w:
            assert [e["type"] for e in w] == ["ADDED"] * 3
        for i in range(3, 8):
            c.create(k8s.service(ns, f"s{i}", [80]))
        with c.watch("services", resource_version=rv, timeout_seconds=1) as w:
            ev = w.next(timeout=5)
        assert ev["type"] == "ERROR"
        assert ev["object"]["message"] == f"too old resource version: {rv} ({int(rv) + 3})"


def test_stats_count_requests_and_open_watches(api, client, ns):
    client.reset_stats()
    client.list("services", ns)
    client.list("services", ns)
    client.get("nodes", None, "node-a")
    with client.watch("services", ns, timeout_seconds=5):
        deadline = time.monotonic() + 3
        while client.stats()["watches"]["open"].get("services") != 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    st = client.stats()
    assert st["requests"]["services"] == {"list": 2, "watch": 1}
    assert st["requests"]["nodes"] == {"get": 1}
    assert st["total"] == 4, "admin calls are not counted"
    assert st["objects"]["nodes"] == 2
    assert st["watches"]["started"]["services"] >= 1
