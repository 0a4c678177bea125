"""Streaming lists (watch-list, KEP-3157): initial state, the initial-events-end bookmark,
what follows it, the resourceVersion variants, the 422s, a server with the gate off, faults
and statistics."""

import json
import threading
import time

import pytest

import k8s

WATCH_LIST = "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan" \
             "&allowWatchBookmarks=true"
ADDED_PREFIX = b'{"type":"ADDED","object":'


def _path(ns=None, extra="", plural="services"):
    q = WATCH_LIST + (f"&{extra}" if extra else "")
    return k8s.resources.lookup(plural).path(ns) + "?" + q


def _end_bookmark(rv):
    """The exact initial-events-end event line of a Service watch-list at revision rv."""
    return (b'{"type":"BOOKMARK","object":{"kind":"Service","apiVersion":"v1","metadata":'
            b'{"resourceVersion":"%d","creationTimestamp":null,"annotations":'
            b'{"k8s.io/initial-events-end":"true"}},"spec":{},"status":{"loadBalancer":{}}}}\n'
            % rv)


def _read_until_end(conn):
    """Chunks up to and including the initial-events-end bookmark: (events, bookmark)."""
    events = []
    while True:
        ev = json.loads(conn.chunk())
        if k8s.is_initial_events_end(ev):
            return events, ev
        events.append(ev)


def _current_rv(client):
    return int(client.stats()["resourceVersion"])


def _create(client, ns, names, **kw):
    return [client.create(k8s.service(ns, n, [80], **kw)) for n in names]


@pytest.fixture(scope="module")
def gate_off():
    with k8s.ApiServer(tls=False, fixtures=True, bookmark_interval=1,
                       watch_list=False) as server:
        yield server


# What the stream holds ---------------------------------------------------------------------

def test_initial_state_then_the_end_bookmark_then_live_events(client, raw, ns):
    created = _create(client, ns, ["c", "a", "b"])
    rv = _current_rv(client)
    conn = raw()
    conn.send("GET", _path(ns, "timeoutSeconds=10"))
    code, headers = conn.headers()
    assert code == 200 and headers["transfer-encoding"] == "chunked"
    assert headers["content-type"] == "application/json"
    initial = [conn.chunk() for _ in range(3)]
    # One event per chunk, in key order, each object exactly as GET renders it (typed).
    for chunk, name in zip(initial, ["a", "b", "c"]):
        assert chunk.startswith(ADDED_PREFIX) and chunk.endswith(b"}\n")
        assert chunk.count(b"\n") == 1
        want = client.request("GET", f"/api/v1/namespaces/{ns}/services/{name}").body
        assert chunk[len(ADDED_PREFIX):-2] + b"\n" == want
    assert {json.loads(c)["object"]["metadata"]["uid"] for c in initial} == \
        {o["metadata"]["uid"] for o in created}
    assert conn.chunk() == _end_bookmark(rv)

    live = client.create(k8s.service(ns, "d", [80]))
    ev = json.loads(conn.chunk())
    assert ev == {"type": "ADDED", "object": live}
    assert int(live["metadata"]["resourceVersion"]) == rv + 1


def test_a_crd_watch_list_ends_with_an_unstructured_bookmark(client, raw):
    rv = _current_rv(client)
    conn = raw()
    conn.send("GET", _path(plural="ciliumendpointslices", extra="timeoutSeconds=10"))
    assert conn.headers()[0] == 200
    events, _ = _read_until_end(conn)
    assert [e["object"]["metadata"]["name"] for e in events] == \
        [i["metadata"]["name"] for i in client.list("ciliumendpointslices")["items"]]
    assert all(list(e["object"]) == sorted(e["object"]) for e in events)
    # _read_until_end decoded the bookmark; compare the bytes of a second stream's.
    conn = raw()
    conn.send("GET", _path(plural="ciliumendpointslices", extra="timeoutSeconds=10"))
    conn.headers()
    for _ in events:
        conn.chunk()
    assert conn.chunk() == (
        b'{"type":"BOOKMARK","object":{"apiVersion":"cilium.io/v2alpha1",'
        b'"kind":"CiliumEndpointSlice","metadata":{"annotations":'
        b'{"k8s.io/initial-events-end":"true"},"resourceVersion":"%d"}}}\n' % rv)


def test_writes_racing_the_snapshot_show_up_once_after_the_bookmark_or_in_it(client, ns):
    """Whatever a concurrent writer does, the initial state is one revision's state, and
    every later write arrives after the bookmark exactly once, in order."""
    writes = []                           # (rv, name, type) of every committed write
    started = threading.Event()

    def writer():
        for i in range(120):
            o = client.create(k8s.service(ns, f"s{i}", [80]))
            writes.append((int(o["metadata"]["resourceVersion"]), f"s{i}", "ADDED"))
            if i % 3 == 0:
                o = client.patch("services", ns, f"s{i}", {"metadata": {"labels": {"v": "2"}}})
                writes.append((int(o["metadata"]["resourceVersion"]), f"s{i}", "MODIFIED"))
            if i == 40:
                started.set()

    t = threading.Thread(target=writer)
    t.start()
    started.wait(10)
    with client.watch_list("services", ns, timeout_seconds=30) as w:
        initial = []
        for ev in w:
            if k8s.is_initial_events_end(ev):
                bookmark_rv = int(ev["object"]["metadata"]["resourceVersion"])
                break
            initial.append(ev)
        t.join()
        marker = client.create(k8s.service(ns, "zz-marker", [80]))
        live = []
        while True:
            ev = w.next(timeout=10)
            if ev["type"] == "BOOKMARK":
                continue
            live.append(ev)
            if ev["object"]["metadata"]["name"] == "zz-marker":
                break

    def rv(e):
        return int(e["object"]["metadata"]["resourceVersion"])

    assert 0 < len(initial) < 120, "the snapshot fell in the middle of the writes"
    assert all(e["type"] == "ADDED" and rv(e) <= bookmark_rv for e in initial)
    assert all(rv(e) > bookmark_rv for e in live)
    assert [rv(e) for e in live] == sorted({rv(e) for e in live}), "in order, no duplicate"
    later = sorted((r, n, t) for r, n, t in writes if r > bookmark_rv)
    got = [(rv(e), e["object"]["metadata"]["name"], e["type"]) for e in live[:-1]]
    assert got == later
    # The snapshot is the state at the bookmark's revision: the latest write of each object
    # at or before it.
    at_bookmark = {}
    for r, n, _ in sorted(writes):
        if r <= bookmark_rv:
            at_bookmark[n] = r
    assert {e["object"]["metadata"]["name"]: rv(e) for e in initial} == at_bookmark
    assert rv(live[-1]) == int(marker["metadata"]["resourceVersion"])


def test_selectors_pick_the_initial_state_and_turn_changes_into_enter_and_leave(client, ns):
    _create(client, ns, ["in1", "in2"], labels={"tier": "web"})
    _create(client, ns, ["out"], labels={"tier": "db"})
    with client.watch_list("services", ns, timeout_seconds=10,
                           labelSelector="tier=web") as w:
        initial = [w.next(timeout=5) for _ in range(3)]
        client.patch("services", ns, "out", {"metadata": {"labels": {"tier": "web"}}})
        client.patch("services", ns, "in1", {"metadata": {"labels": {"tier": "db"}}})
        live = [w.next(timeout=5) for _ in range(2)]
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in initial] == [
        ("ADDED", "in1"), ("ADDED", "in2"), ("BOOKMARK", None)]
    assert k8s.is_initial_events_end(initial[2])
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in live] == [
        ("ADDED", "out"), ("DELETED", "in1")]
    with client.watch_list("services", ns, timeout_seconds=10,
                           fieldSelector="metadata.name=in2") as w:
        got = [w.next(timeout=5) for _ in range(2)]
    assert got[0]["object"]["metadata"]["name"] == "in2"
    assert k8s.is_initial_events_end(got[1])


def test_without_allow_watch_bookmarks_there_is_no_end_bookmark(client, raw, ns):
    """The real server accepts it (no validation error) and simply sends no bookmark."""
    _create(client, ns, ["x", "y"])
    conn = raw()
    conn.send("GET", f"/api/v1/namespaces/{ns}/services?watch=1&sendInitialEvents=true"
                     "&resourceVersionMatch=NotOlderThan&timeoutSeconds=2")
    assert conn.headers()[0] == 200
    chunks = []
    while (c := conn.chunk()) != b"":
        chunks.append(json.loads(c))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in chunks] == [
        ("ADDED", "x"), ("ADDED", "y")]


def test_timeout_seconds_ends_a_watch_list_cleanly_with_a_bookmark(raw, ns):
    conn = raw()
    start = time.monotonic()
    conn.send("GET", _path(ns, "timeoutSeconds=1"))
    conn.headers()
    chunks = []
    while (c := conn.chunk()) != b"":
        chunks.append(json.loads(c))
    assert 0.9 < time.monotonic() - start < 1.6
    assert k8s.is_initial_events_end(chunks[0]), "an empty namespace: only the bookmark"
    assert chunks[-1]["type"] == "BOOKMARK" and not k8s.is_initial_events_end(chunks[-1])


def test_sent_log_has_the_initial_events(client, ns):
    _create(client, ns, ["p", "q"])
    client.reset_stats()
    with client.watch_list("services", ns, timeout_seconds=5) as w:
        assert k8s.is_initial_events_end([w.next(timeout=5) for _ in range(3)][-1])
    # Logged right after the write: the client may have read the events first.
    deadline = time.monotonic() + 2
    while len(sent := client.request("GET", "/_test/sent").json()["events"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert [(e["resource"], e["type"], e["key"]) for e in sent] == [
        ("services", "ADDED", f"{ns}/p"), ("services", "ADDED", f"{ns}/q")]


def test_hundreds_of_initial_events_keep_one_event_per_chunk(client, raw, ns):
    for i in range(300):
        client.create(k8s.endpointslice(ns, f"e{i:03}", "svc", [(f"10.9.{i // 250}.{i % 250}",
                                                                 True)], [80]))
    conn = raw()
    conn.send("GET", _path(ns, "timeoutSeconds=10", plural="endpointslices"))
    conn.headers()
    names = []
    while True:
        c = conn.chunk()
        assert c.endswith(b"\n") and c.count(b"\n") == 1
        ev = json.loads(c)
        if k8s.is_initial_events_end(ev):
            break
        names.append(ev["object"]["metadata"]["name"])
    assert names == [f"e{i:03}" for i in range(300)]


# resourceVersion ----------------------------------------------------------------------------

@pytest.mark.parametrize("rv", [None, "", "0", "1", "current"])
def test_every_resource_version_up_to_now_serves_the_current_state(client, ns, rv):
    _create(client, ns, ["m", "n"])
    client.create(k8s.service("t-other", f"elsewhere-{ns}", [80]))   # moves the revision
    now = _current_rv(client)
    given = str(now) if rv == "current" else rv
    with client.watch_list("services", ns, resource_version=given, timeout_seconds=5) as w:
        got = [w.next(timeout=5) for _ in range(3)]
    assert [e["object"]["metadata"].get("name") for e in got[:2]] == ["m", "n"]
    assert k8s.is_initial_events_end(got[2])
    assert int(got[2]["object"]["metadata"]["resourceVersion"]) == now


def test_a_revision_reached_while_waiting_is_served(client, ns):
    target = _current_rv(client) + 1
    timer = threading.Timer(0.5, lambda: client.create(k8s.service(ns, "late", [80])))
    timer.start()
    start = time.monotonic()
    with client.watch_list("services", ns, resource_version=str(target),
                           timeout_seconds=5) as w:
        got = [w.next(timeout=5) for _ in range(2)]
    timer.join()
    assert 0.4 < time.monotonic() - start < 2.5
    assert got[0]["object"]["metadata"]["name"] == "late"
    assert int(got[1]["object"]["metadata"]["resourceVersion"]) == target


def test_a_future_revision_is_200_then_an_error_event_after_3_s(client, raw):
    now = _current_rv(client)
    conn = raw(timeout=10)
    start = time.monotonic()
    conn.send("GET", _path(extra=f"resourceVersion={now + 1000}"))
    code, headers = conn.headers()
    assert code == 200 and headers["transfer-encoding"] == "chunked"
    assert 2.9 < time.monotonic() - start < 4.5
    assert conn.chunk() == (
        b'{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},'
        b'"status":"Failure","message":"Timeout: Too large resource version: %d, current: '
        b'%d","reason":"Timeout","details":{"causes":[{"reason":"ResourceVersionTooLarge",'
        b'"message":"Too large resource version"}],"retryAfterSeconds":1},"code":504}}\n'
        % (now + 1000, now))
    assert conn.chunk() == b"", "the stream ends after the ERROR event"


def test_a_plain_watch_from_a_future_revision_gets_the_same_error(client, raw):
    """What a client that watched a server since restored from an older backup meets."""
    now = _current_rv(client)
    conn = raw(timeout=10)
    start = time.monotonic()
    conn.send("GET", k8s.resources.lookup("services").path(None) +
              f"?watch=1&allowWatchBookmarks=true&resourceVersion={now + 500}")
    code, _ = conn.headers()
    assert code == 200
    assert 2.9 < time.monotonic() - start < 4.5
    ev = json.loads(conn.chunk())
    assert ev["type"] == "ERROR" and ev["object"]["code"] == 504
    assert ev["object"]["message"] == f"Timeout: Too large resource version: {now + 500}, " \
        f"current: {now}"
    assert conn.chunk() == b""


def test_send_initial_events_false_starts_from_now_or_after_the_revision(client, ns):
    before = _create(client, ns, ["old"])[0]
    q = {"sendInitialEvents": "false", "resourceVersionMatch": "NotOlderThan"}
    with client.watch("services", ns, timeout_seconds=5, **q) as w:
        new = client.create(k8s.service(ns, "new", [80]))
        assert w.next(timeout=5) == {"type": "ADDED", "object": new}
    rv = before["metadata"]["resourceVersion"]
    with client.watch("services", ns, resource_version=rv, timeout_seconds=5, **q) as w:
        assert w.next(timeout=5)["object"]["metadata"]["name"] == "new"


def test_a_plain_watch_from_the_current_state_is_defaulted_to_a_watch_list(client, ns):
    """With the gate on, SetListOptionsDefaults turns a watch from "" or "0" into a watch-list,
    so a client allowing bookmarks gets the annotated one after the initial state."""
    _create(client, ns, ["w"])
    for rv in ("", "0"):
        with client.watch("services", ns, resource_version=rv, timeout_seconds=5,
                          bookmarks=True) as w:
            got = [w.next(timeout=5) for _ in range(2)]
        assert got[0]["object"]["metadata"]["name"] == "w"
        assert k8s.is_initial_events_end(got[1])


# 422 Invalid --------------------------------------------------------------------------------

def _invalid_message(*errors):
    joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    return f'ListOptions.meta.k8s.io "" is invalid: {joined}'


@pytest.mark.parametrize("query,errors", [
    ("watch=1&sendInitialEvents=true&allowWatchBookmarks=true",
     ["resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
      "resourceVersionMatch to NotOlderThan"]),
    ("watch=1&resourceVersionMatch=NotOlderThan&resourceVersion=5",
     ["resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless "
      "sendInitialEvents is provided"]),
    ("watch=1&sendInitialEvents=true&resourceVersionMatch=Exact",
     ["resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
      "resourceVersionMatch to NotOlderThan",
      'resourceVersionMatch: Unsupported value: "Exact": supported values: "NotOlderThan"']),
    ("watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&continue=x",
     ["resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is "
      "provided"]),
    ("sendInitialEvents=true", ["sendInitialEvents: Forbidden: sendInitialEvents is "
                                "forbidden for list"]),
    ("resourceVersionMatch=NotOlderThan", ["resourceVersionMatch: Forbidden: "
                                           "resourceVersionMatch is forbidden unless "
                                           "resourceVersion is provided"]),
    ("resourceVersion=0&resourceVersionMatch=Exact",
     ['resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for '
      'resourceVersion "0"']),
])
def test_invalid_list_options_are_422_with_the_real_messages(client, query, errors):
    resp = client.request("GET", "/api/v1/services?" + query, check=False)
    assert resp.code == 422
    st = resp.json()
    assert st["message"] == _invalid_message(*errors)
    assert (st["reason"], st["code"]) == ("Invalid", 422)
    assert st["details"]["group"] == "meta.k8s.io" and st["details"]["kind"] == "ListOptions"
    assert "name" not in st["details"]
    assert [f"{c['field']}: {c['message']}" for c in st["details"]["causes"]] == errors


def test_the_legacy_watch_path_validates_as_a_list(client):
    """/api/v1/watch/... serves a watch without the watch parameter: the real server then
    checks the options as a list's."""
    resp = client.request("GET", "/api/v1/watch/services?sendInitialEvents=true&"
                                 "resourceVersionMatch=NotOlderThan", check=False)
    assert resp.code == 422
    assert resp.json()["message"] == _invalid_message(
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
        "resourceVersion is provided",
        "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list")


# The WatchList feature gate off --------------------------------------------------------------

GATE_OFF_BODY = (
    b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
    b'"ListOptions.meta.k8s.io \\"\\" is invalid: sendInitialEvents: Forbidden: '
    b'sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",'
    b'"reason":"Invalid","details":{"group":"meta.k8s.io","kind":"ListOptions","causes":'
    b'[{"reason":"FieldValueForbidden","message":"Forbidden: sendInitialEvents is forbidden '
    b'for watch unless the WatchList feature gate is enabled","field":"sendInitialEvents"}]},'
    b'"code":422}\n')


@pytest.mark.parametrize("sie", ["true", "false"])
def test_gate_off_refuses_send_initial_events_with_422(gate_off, sie):
    c = gate_off.client()
    resp = c.request("GET", "/api/v1/services?watch=1&sendInitialEvents=" + sie +
                     "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
                     check=False)
    assert resp.code == 422
    assert resp.headers["content-type"] == "application/json"
    assert resp.body == GATE_OFF_BODY
    with pytest.raises(k8s.ApiError) as e:
        c.watch_list("services")
    assert e.value.code == 422 and e.value.reason == "Invalid"


def test_gate_off_is_a_1_33_server_that_lists_and_watches_the_old_way(gate_off):
    c = gate_off.client()
    v = c.request("GET", "/version").json()
    assert (v["major"], v["minor"]) == ("1", "33")
    assert v["gitVersion"].startswith("v1.33.") and v["gitVersion"].endswith("-axon-test")
    items, rv = c.list_all("services", limit=3)
    assert len(items) == len(c.list("services")["items"]) > 3
    # No defaulting: a watch from "" is the old one, no initial-events-end bookmark.
    with c.watch("services", resource_version="", timeout_seconds=2, bookmarks=True) as w:
        events = list(w)
    assert [e["type"] for e in events[:len(items)]] == ["ADDED"] * len(items)
    assert not any(k8s.is_initial_events_end(e) for e in events)
    assert events[-1]["type"] == "BOOKMARK"


# Faults -------------------------------------------------------------------------------------

def test_a_drop_fault_cuts_the_stream_in_the_middle_of_the_initial_events(client, raw, ns):
    _create(client, ns, [f"d{i}" for i in range(10)])
    client.fault(reset=True, after_events=4, verb="watchlist", path_prefix=f"/api/v1/"
                 f"namespaces/{ns}/")
    conn = raw()
    conn.send("GET", _path(ns, "timeoutSeconds=10"))
    assert conn.headers()[0] == 200
    got = [json.loads(conn.chunk()) for _ in range(4)]
    assert [e["object"]["metadata"]["name"] for e in got] == ["d0", "d1", "d2", "d3"]
    with pytest.raises((EOFError, ConnectionError)):
        conn.chunk()                  # no terminating chunk, no end bookmark: just gone
    assert conn.buf == b""
    assert client.stats()["faults"] == [], "used up"
    # The next watch-list is whole.
    with client.watch_list("services", ns, timeout_seconds=5) as w:
        assert k8s.is_initial_events_end([w.next(timeout=5) for _ in range(11)][-1])


def test_an_error_fault_mid_stream_is_an_error_event_and_a_clean_end(client, raw, ns):
    _create(client, ns, ["e1", "e2", "e3"])
    client.fault(status=410, after_events=2, verb="watch", path_prefix=f"/api/v1/"
                 f"namespaces/{ns}/")
    conn = raw()
    conn.send("GET", _path(ns, "timeoutSeconds=10"))
    assert conn.headers()[0] == 200
    assert [json.loads(conn.chunk())["type"] for _ in range(2)] == ["ADDED", "ADDED"]
    err = json.loads(conn.chunk())
    assert err == {"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "resource expired", "reason": "Expired", "code": 410}}
    assert conn.chunk() == b""


def test_a_fault_after_every_initial_event_hits_the_end_bookmark(client, raw, ns):
    _create(client, ns, ["b1"])
    client.fault(reset=True, after_events=2, verb="watchlist",
                 path_prefix=f"/api/v1/namespaces/{ns}/")
    conn = raw()
    conn.send("GET", _path(ns, "timeoutSeconds=10"))
    conn.headers()
    assert json.loads(conn.chunk())["type"] == "ADDED"
    assert k8s.is_initial_events_end(json.loads(conn.chunk()))
    with pytest.raises((EOFError, ConnectionError)):
        conn.chunk()


@pytest.mark.parametrize("verb", ["watch", "watchlist"])
@pytest.mark.parametrize("status,reason", [(410, "Expired"), (429, "TooManyRequests"),
                                           (500, "InternalError")])
def test_answer_faults_for_watch_and_watchlist_hit_a_watch_list(client, verb, status, reason):
    client.fault(status=status, verb=verb, resource="nodes")
    with pytest.raises(k8s.ApiError) as e:
        client.watch_list("nodes", timeout_seconds=1)
    assert (e.value.code, e.value.reason) == (status, reason)
    assert client.stats()["faults"] == []


def test_a_watchlist_fault_leaves_plain_watches_and_lists_alone(client):
    client.fault(status=500, verb="watchlist", resource="nodes", count=-1)
    try:
        assert client.list("nodes")["items"]
        rv = client.list("nodes")["metadata"]["resourceVersion"]
        with client.watch("nodes", resource_version=rv, timeout_seconds=1) as w:
            assert list(w) == []
        with pytest.raises(k8s.ApiError):
            client.watch_list("nodes", timeout_seconds=1)
    finally:
        client.clear_faults()


def test_a_slow_fault_delays_a_watch_list(client):
    client.fault(delay_ms=400, verb="watchlist", resource="nodes")
    start = time.monotonic()
    with client.watch_list("nodes", timeout_seconds=5) as w:
        while not k8s.is_initial_events_end(w.next(timeout=5)):
            pass
    assert time.monotonic() - start >= 0.4


@pytest.mark.parametrize("spec,message", [
    ({"after_events": 3}, "after_events needs status or reset"),
    ({"after_events": -1, "reset": True}, "after_events must be a count (0 or more)"),
    ({"verb": "stream", "status": 500}, "verb must be one of"),
])
def test_bad_stream_fault_specs_are_400(client, spec, message):
    with pytest.raises(k8s.ApiError) as e:
        client.fault(**spec)
    assert e.value.code == 400 and message in e.value.status["message"]


# Statistics ---------------------------------------------------------------------------------

def test_stats_tell_watch_list_requests_from_lists_and_watches(client):
    client.reset_stats()
    before = time.time()
    with client.watch_list("nodes", timeout_seconds=5) as w:
        while not k8s.is_initial_events_end(w.next(timeout=5)):
            pass
    st = client.stats()
    assert st["requests"] == {"nodes": {"watchlist": 1}}
    assert list(st["first_request"]) == ["watchlist"]
    assert before <= st["first_request"]["watchlist"] <= time.time()
    rv = client.list("nodes")["metadata"]["resourceVersion"]
    with client.watch("nodes", resource_version=rv, timeout_seconds=1) as w:
        list(w)
    st = client.stats()
    assert st["requests"] == {"nodes": {"watchlist": 1, "list": 1, "watch": 1}}
    assert sorted(st["first_request"]) == ["list", "watch", "watchlist"]
    assert st["first_request"]["watchlist"] < st["first_request"]["list"] < \
        st["first_request"]["watch"]
