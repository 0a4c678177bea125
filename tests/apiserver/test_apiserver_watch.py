"""WATCH: chunked framing, resumption from a list revision, bookmarks, 410, selectors."""

import json
import re
import time

import pytest

import k8s
from apiserver_testutil import fixture_bytes


def _watch_path(ns, **params):
    q = "&".join(f"{k}={v}" for k, v in dict({"watch": "1"}, **params).items())
    return f"/api/v1/namespaces/{ns}/services?{q}"


def test_events_are_chunked_one_per_chunk_and_flushed_at_once(api, client, raw, ns):
    rv = client.list("services", ns)["metadata"]["resourceVersion"]
    conn = raw()
    conn.send("GET", _watch_path(ns, resourceVersion=rv, timeoutSeconds=10))
    code, headers = conn.headers()
    assert code == 200
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-cache, private"
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["audit-id"])

    # Each write shows up as its own chunk right away, while the stream stays open.
    created = client.create(k8s.service(ns, "tmp", [9000], labels={"app": "tmp"}))
    first = conn.chunk()
    client.patch("services", ns, "tmp", {"spec": {"ports": [{"port": 9000,
                                                             "targetPort": 9001}]}})
    second = conn.chunk()
    client.delete("services", ns, "tmp")
    third = conn.chunk()
    for data in (first, second, third):
        assert data.endswith(b"\n") and data.count(b"\n") == 1, "one JSON event per chunk"
    events = [json.loads(d) for d in (first, second, third)]
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[0]["object"] == created
    assert list(events[0]) == ["type", "object"]
    assert list(events[0]["object"])[:3] == ["kind", "apiVersion", "metadata"]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    assert events[1]["object"]["spec"]["ports"][0]["targetPort"] == 9001


def test_watch_event_encoding_matches_the_fixture(client, ns):
    """Compact Go JSON with kind/apiVersion first, as in services-watch.jsonl."""
    recorded = json.loads(fixture_bytes("services-watch.jsonl").splitlines()[0])
    rv = client.list("services", ns)["metadata"]["resourceVersion"]
    client.create(k8s.service(ns, "tmp", [9000]))
    with client.watch("services", ns, resource_version=rv, timeout_seconds=5) as w:
        ev = w.next(timeout=5)
    assert list(ev["object"]) == list(recorded["object"])
    assert list(ev["object"]["metadata"])[:5] == list(recorded["object"]["metadata"])[:5]
    assert list(ev["object"]["spec"]) == list(recorded["object"]["spec"])
    assert ev["object"]["status"] == recorded["object"]["status"]


def test_watch_from_list_rv_delivers_exactly_later_events_in_order(client, ns):
    client.create(k8s.service(ns, "before", [80]))
    rv = client.list("services", ns)["metadata"]["resourceVersion"]
    client.create(k8s.service(ns, "a", [80]))
    client.patch("services", ns, "a", {"metadata": {"labels": {"v": "2"}}})
    client.create(k8s.service(ns, "b", [80]))
    client.delete("services", ns, "a")
    with client.watch("services", ns, resource_version=rv, timeout_seconds=5) as w:
        got = [w.next(timeout=5) for _ in range(4)]
        client.create(k8s.service(ns, "live", [80]))
        got.append(w.next(timeout=5))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [
        ("ADDED", "a"), ("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a"), ("ADDED", "live")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in got]
    assert rvs == sorted(set(rvs))


@pytest.mark.parametrize("rv", ["", "0"])
def test_watch_without_rv_starts_with_the_current_state(client, ns, rv):
    for name in ("x", "y"):
        client.create(k8s.service(ns, name, [80]))
    with client.watch("services", ns, resource_version=rv, timeout_seconds=5) as w:
        got = [w.next(timeout=5) for _ in range(2)]
        client.create(k8s.service(ns, "z", [80]))
        got.append(w.next(timeout=5))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [
        ("ADDED", "x"), ("ADDED", "y"), ("ADDED", "z")]


def test_bookmarks_arrive_periodically_and_look_like_the_fixture(client, ns):
    recorded = json.loads(fixture_bytes("services-watch.jsonl").splitlines()[-1])
    rv = client.list("services", ns)["metadata"]["resourceVersion"]
    start = time.monotonic()
    with client.watch("services", ns, resource_version=rv, timeout_seconds=10,
                      bookmarks=True) as w:
        ev = w.next(timeout=3)
    assert 0.5 < time.monotonic() - start < 2.5, "a bookmark about every second"
    assert ev["type"] == "BOOKMARK"
    assert int(ev["object"]["metadata"]["resourceVersion"]) >= int(rv)
    ev["object"]["metadata"]["resourceVersion"] = recorded["object"]["metadata"][
        "resourceVersion"]
    assert ev == recorded


def test_no_bookmarks_unless_allowed(client, ns):
    with client.watch("services", ns, resource_version="", timeout_seconds=1) as w:
        assert list(w) == []


def test_crd_watch_keeps_sorted_keys_and_unstructured_bookmarks(client):
    rv = client.list("ciliumendpointslices")["metadata"]["resourceVersion"]
    with client.watch("ciliumendpointslices", resource_version=rv, timeout_seconds=5,
                      bookmarks=True) as w:
        client.create(k8s.ciliumendpointslice("ces-watch", "t-crd",
                                              [("p1", "10.0.0.1", 1234, "192.0.2.1")]))
        added, bookmark = w.next(timeout=5), w.next(timeout=5)
    assert added["type"] == "ADDED"
    assert list(added["object"]) == sorted(added["object"])
    assert added["object"]["namespace"] == "t-crd"
    assert "namespace" not in added["object"]["metadata"]
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"] == {"apiVersion": "cilium.io/v2alpha1",
                                  "kind": "CiliumEndpointSlice",
                                  "metadata": {"resourceVersion": bookmark["object"][
                                      "metadata"]["resourceVersion"]}}


def test_too_old_rv_is_200_then_the_exact_410_error_event(api, client, raw):
    recorded = fixture_bytes("services-watch-too-old.jsonl")
    client.create(k8s.service("t-old", "bump", [80]))
    client.compact()
    compacted = client.stats()["compactedResourceVersion"]
    conn = raw()
    conn.send("GET", "/api/v1/services?watch=1&resourceVersion=1")
    code, headers = conn.headers()
    assert code == 200 and headers["transfer-encoding"] == "chunked"
    event = conn.chunk()
    assert conn.chunk() == b"", "the stream ends after the ERROR event"
    assert event == recorded.replace(b"(230)", f"({compacted})".encode())


def test_timeout_seconds_ends_the_stream_cleanly_with_a_final_bookmark(api, raw, ns):
    conn = raw()
    start = time.monotonic()
    conn.send("GET", _watch_path(ns, resourceVersion="", timeoutSeconds=1,
                                 allowWatchBookmarks="true"))
    conn.headers()
    chunks = []
    while True:
        c = conn.chunk()
        if not c:
            break
        chunks.append(json.loads(c))
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 1.6
    assert chunks and chunks[-1]["type"] == "BOOKMARK"
    # The connection is still usable afterwards (keep-alive).
    conn.send("GET", "/version")
    code, headers = conn.headers()
    assert code == 200 and json.loads(conn.body(headers))["major"] == "1"


def test_label_selector_on_watch_turns_leaving_objects_into_deleted(client, ns):
    client.create(k8s.service(ns, "s", [80], labels={"role": "a"}))
    rv = client.list("services", ns)["metadata"]["resourceVersion"]
    with client.watch("services", ns, resource_version=rv, timeout_seconds=5,
                      labelSelector="role=b") as w:
        client.create(k8s.service(ns, "other", [80], labels={"role": "a"}))   # never seen
        client.patch("services", ns, "s", {"metadata": {"labels": {"role": "b"}}})
        client.patch("services", ns, "s", {"metadata": {"labels": {"x": "1"}}})
        client.patch("services", ns, "s", {"metadata": {"labels": {"role": "a"}}})
        got = [w.next(timeout=5) for _ in range(3)]
    assert [e["type"] for e in got] == ["ADDED", "MODIFIED", "DELETED"]
    assert all(e["object"]["metadata"]["name"] == "s" for e in got)
    # The DELETED object is the last matching state, at the revision it stopped matching.
    assert got[2]["object"]["metadata"]["labels"] == {"role": "b", "x": "1"}
    assert int(got[2]["object"]["metadata"]["resourceVersion"]) > \
        int(got[1]["object"]["metadata"]["resourceVersion"])


def test_legacy_watch_path(api, raw):
    conn = raw()
    conn.send("GET", "/api/v1/watch/namespaces/shop/services?timeoutSeconds=1")
    code, headers = conn.headers()
    assert code == 200 and headers["transfer-encoding"] == "chunked"
    assert json.loads(conn.chunk())["type"] == "ADDED"


def test_client_disconnect_closes_the_watch(client, ns):
    def wait_open(pred, what):
        deadline = time.monotonic() + 5
        while not pred(client.stats()["watches"]["open"].get("services", 0)):
            assert time.monotonic() < deadline, what
            time.sleep(0.02)

    wait_open(lambda n: n == 0, "earlier tests' watches did not wind down")
    w = client.watch("services", ns, resource_version="", timeout_seconds=30)
    wait_open(lambda n: n == 1, "watch not registered")
    w.close()
    wait_open(lambda n: n == 0, "watch not closed after the client left")
