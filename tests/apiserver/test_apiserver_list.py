"""LIST against the recorded kube-apiserver responses: shape, pagination, selectors."""

import base64
import json
import re

import pytest

import k8s
import wire
from apiserver_testutil import fixture_bytes, fixture_json

LISTS = [("services", "services-list.json"),
         ("endpointslices", "endpointslices-list.json"),
         ("nodes", "nodes-list.json"),
         ("ciliumendpointslices", "ciliumendpointslices-list.json"),
         ("networkpolicies", "networkpolicies-list.json"),
         ("ciliumnetworkpolicies", "ciliumnetworkpolicies-list.json"),
         ("ciliumclusterwidenetworkpolicies", "ciliumclusterwidenetworkpolicies-list.json"),
         ("ciliumidentities", "ciliumidentities-list.json"),
         ("namespaces", "namespaces-list.json")]


def _blank_rvs(data):
    return re.sub(rb'"resourceVersion": "\d+"', b'"resourceVersion": "RV"', data)


def _strip_volatile(obj):
    obj = json.loads(json.dumps(obj))
    obj["metadata"].pop("resourceVersion", None)
    return obj


def _decode_token(token):
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


@pytest.mark.parametrize("plural,fixture", LISTS)
def test_list_is_byte_identical_to_the_fixture_but_for_revisions(api, plural, fixture):
    # curl's User-Agent makes the real server pretty-print: the fixtures are that output.
    c = api.client(user_agent="curl/7.88.1")
    got = c.request("GET", k8s.resources.lookup(plural).path()).body
    assert _blank_rvs(got) == _blank_rvs(fixture_bytes(fixture))


@pytest.mark.parametrize("plural,fixture", LISTS)
def test_list_items_match_the_fixture_field_by_field(client, plural, fixture):
    want = fixture_json(fixture)
    got = client.list(plural)
    assert list(got) == list(want), "top-level field order (sorted for the CRD)"
    assert got["kind"] == want["kind"] and got["apiVersion"] == want["apiVersion"]
    assert int(got["metadata"]["resourceVersion"]) >= max(
        int(i["metadata"]["resourceVersion"]) for i in got["items"])
    # shop/* objects from other tests are excluded by comparing the fixture's own names.
    names = {(i["metadata"].get("namespace"), i["metadata"]["name"]) for i in want["items"]}
    items = [i for i in got["items"]
             if (i["metadata"].get("namespace"), i["metadata"]["name"]) in names]
    assert len(items) == len(want["items"])
    for g, w in zip(items, want["items"]):
        assert list(g) == list(w), "field order"
        assert ("kind" in g) == ("kind" in w), "kind/apiVersion on items as in the fixture"
        assert _strip_volatile(g) == _strip_volatile(w)


def test_list_compact_output_ends_with_newline(client):
    body = client.request("GET", "/api/v1/nodes").body
    assert body.endswith(b"}\n") and b"\n" not in body[:-1]


def test_pages_match_the_recorded_pages(client):
    page1 = client.list("services", limit=3)
    want1 = fixture_json("services-list-page1.json")
    assert [i["metadata"]["name"] for i in page1["items"]] == \
        [i["metadata"]["name"] for i in want1["items"]]
    assert page1["metadata"]["remainingItemCount"] == 6
    assert list(page1["metadata"]) == list(want1["metadata"])

    got_token = _decode_token(page1["metadata"]["continue"])
    want_token = _decode_token(want1["metadata"]["continue"])
    assert list(got_token) == list(want_token) == ["v", "rv", "start"]
    assert got_token["start"] == want_token["start"] == "shop/dns\x00"
    assert got_token["rv"] == int(page1["metadata"]["resourceVersion"])
    # Same encoding as the server's: unpadded URL-safe base64 of Go's compact JSON.
    raw = base64.urlsafe_b64decode(want1["metadata"]["continue"] + "==")
    assert raw == b'{"v":"meta.k8s.io/v1","rv":254,"start":"shop/dns\\u0000"}'

    page2 = client.list("services", limit=3, **{"continue": page1["metadata"]["continue"]})
    want2 = fixture_json("services-list-page2.json")
    assert [i["metadata"]["name"] for i in page2["items"]] == \
        [i["metadata"]["name"] for i in want2["items"]]
    assert page2["metadata"]["remainingItemCount"] == 3
    assert _decode_token(page2["metadata"]["continue"])["start"] == "shop/headless\x00"


def test_pagination_returns_every_item_once_from_one_snapshot(client, ns):
    for i in range(7):
        client.create(k8s.service(ns, f"s{i}", [80]))
    first = client.list("services", ns, limit=3)
    rv = first["metadata"]["resourceVersion"]
    assert first["metadata"]["remainingItemCount"] == 4
    # Writes after the first page must not show in the later pages.
    client.delete("services", ns, "s5")
    client.create(k8s.service(ns, "s9", [80]))
    client.patch("services", ns, "s4", {"metadata": {"labels": {"late": "yes"}}})
    names, page, remaining = [], first, []
    while True:
        names += [i["metadata"]["name"] for i in page["items"]]
        assert page["metadata"]["resourceVersion"] == rv
        assert all("late" not in (i["metadata"].get("labels") or {}) for i in page["items"])
        token = page["metadata"].get("continue")
        if not token:
            assert "remainingItemCount" not in page["metadata"]
            break
        remaining.append(page["metadata"]["remainingItemCount"])
        page = client.list("services", ns, limit=3, **{"continue": token})
    assert names == [f"s{i}" for i in range(7)]
    assert remaining == [4, 1]


def test_expired_continue_token_is_410_with_a_token_to_go_on(client, ns):
    for i in range(4):
        client.create(k8s.service(ns, f"s{i}", [80]))
    page = client.list("services", ns, limit=2)
    client.expire_continue()
    with pytest.raises(k8s.ApiError) as e:
        client.list("services", ns, limit=2, **{"continue": page["metadata"]["continue"]})
    st = e.value.status
    assert e.value.code == 410 and st["reason"] == "Expired" and st["code"] == 410
    assert st["message"] == (
        "The provided continue parameter is too old to display a consistent list result. "
        "You can start a new list without the continue parameter, or use the continue token "
        "in this response to retrieve the remainder of the results. Continuing with the "
        "provided token results in an inconsistent list - objects that were created, "
        "modified, or deleted between the time the first chunk was returned and now may "
        "show up in the list.")
    assert list(st) == ["kind", "apiVersion", "metadata", "status", "message", "reason", "code"]
    rest = client.list("services", ns, limit=2, **{"continue": st["metadata"]["continue"]})
    assert [i["metadata"]["name"] for i in rest["items"]] == ["s2", "s3"]


def test_compaction_expires_continue_tokens(client, ns):
    for i in range(3):
        client.create(k8s.service(ns, f"s{i}", [80]))
    page = client.list("services", ns, limit=1)
    client.create(k8s.service(ns, "later", [80]))
    client.compact()
    with pytest.raises(k8s.ApiError) as e:
        client.list("services", ns, limit=1, **{"continue": page["metadata"]["continue"]})
    assert e.value.code == 410


def test_bad_continue_token_is_400(client):
    with pytest.raises(k8s.ApiError) as e:
        client.list("services", limit=1, **{"continue": "bm90IGEgdG9rZW4"})
    assert e.value.code == 400 and e.value.reason == "BadRequest"


def test_resource_version_0_is_served_from_cache_without_limit(client):
    page = client.list("services", limit=2, resourceVersion="0")
    assert len(page["items"]) >= 9 and "continue" not in page["metadata"]


def test_namespaced_path_lists_one_namespace(client):
    got = client.list("services", "default")
    assert {i["metadata"]["name"] for i in got["items"]} == {"echo", "kubernetes"}


@pytest.mark.parametrize("selector,names", [
    ("app=web", {"web"}),
    ("app==web", {"web"}),
    ("app!=web", {"db", "cache", "plain"}),
    ("app", {"web", "db", "cache"}),
    ("!app", {"plain"}),
    ("app=web,tier=front", {"web"}),
    ("app,tier!=front", {"db", "cache"}),
    ("app in (db, cache)", {"db", "cache"}),
    ("app notin (db)", {"web", "cache", "plain"}),
])
def test_label_selector(client, ns, selector, names):
    for name, labels in [("web", {"app": "web", "tier": "front"}), ("db", {"app": "db"}),
                         ("cache", {"app": "cache", "tier": "back"}), ("plain", None)]:
        client.create(k8s.service(ns, name, [80], labels=labels))
    got = client.list("services", ns, labelSelector=selector)
    assert {i["metadata"]["name"] for i in got["items"]} == names


def test_label_selector_with_limit_omits_remaining_count(client, ns):
    for i in range(5):
        client.create(k8s.service(ns, f"s{i}", [80], labels={"x": "y"}))
    page = client.list("services", ns, limit=2, labelSelector="x=y")
    assert len(page["items"]) == 2 and page["metadata"]["continue"]
    assert "remainingItemCount" not in page["metadata"]


def test_field_selector(client, ns):
    client.create(k8s.service(ns, "web", [80]))
    got = client.list("services", fieldSelector="metadata.name=web")
    pairs = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in got["items"]}
    assert {("shop", "web"), (ns, "web")} <= pairs and {n for _, n in pairs} == {"web"}
    got = client.list("services", fieldSelector=f"metadata.name==web,metadata.namespace={ns}")
    assert [i["metadata"]["namespace"] for i in got["items"]] == [ns]
    got = client.list("services", fieldSelector="metadata.namespace=default,metadata.name!=echo")
    assert [i["metadata"]["name"] for i in got["items"]] == ["kubernetes"]


@pytest.mark.parametrize("params", [{"labelSelector": "a=b=c"}, {"labelSelector": "in in"},
                                    {"fieldSelector": "spec.clusterIP=1.2.3.4"}])
def test_bad_selector_is_400(client, params):
    with pytest.raises(k8s.ApiError) as e:
        client.list("services", **params)
    assert e.value.code == 400


def test_future_resource_version_times_out_with_504(client):
    current = int(client.list("nodes")["metadata"]["resourceVersion"])
    with pytest.raises(k8s.ApiError) as e:
        client.list("nodes", resourceVersion=str(current + 1000))
    assert e.value.code == 504
    assert e.value.status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


@pytest.mark.parametrize("plural,fixture", LISTS)
def test_compact_and_pretty_lists_are_the_same_document(api, plural, fixture):
    """Compact lists are assembled from cached per-object JSON (render.py): same bytes as
    serialising the whole document, as the pretty path does."""
    path = k8s.resources.lookup(plural).path()
    compact = api.client().request("GET", path).body
    pretty = api.client(user_agent="curl/7.88.1").request("GET", path).body
    doc = json.loads(pretty)
    assert compact == wire.encode(doc, sort_keys=plural == "ciliumendpointslices")
