"""The /_test/ admin API: fault injection and inspection for tests. Same token as the API.

    GET    /_test/stats                 request counts by resource and verb, open watches,
                                        status codes, store revision and object counts
    DELETE /_test/stats                 reset the counters
    POST   /_test/compact               drop all watch history: older revisions now get 410
    POST   /_test/faults                add fault rule(s) (faults.py), or one-shot actions:
                                          {"drop_watches": true}  cut every open watch
                                          {"end_watches": true}   end every watch cleanly
                                          {"expire_continue": true} refuse every continue
                                                                  token issued so far (410)
                                        optional "resource" limits the watch actions
    GET    /_test/faults                pending fault rules
    DELETE /_test/faults                clear every pending rule
    POST   /_test/install?resource=R    serve R (e.g. a CRD applied late)
    POST   /_test/uninstall?resource=R  stop serving R, delete its objects, end its watches
    GET    /_test/dump                  every stored object (a v1 List), for debugging
    GET    /_test/sent                  the latest events written to watch streams, oldest
                                        first: {"events": [{"resource", "type", "key", "rv",
                                        "time"}]}, time = time.time() after the write
    POST   /_test/listen?netns=NAME[&host=IP]  also listen on the same address (or IP, an
                                        address of that namespace's, e.g. a Service's
                                        ClusterIP put on its lo) and port inside network
                                        namespace NAME (idempotent; see netns.py)
Answers are JSON; errors are Status objects like the rest of the API.
"""

import json

import resources
from wire import bad_request, method_not_allowed, page_not_found

_WATCH_ACTIONS = {"drop_watches": "drop", "end_watches": "end"}


def _resource_param(params):
    name = params.get("resource", "")
    try:
        return resources.lookup(name).plural
    except KeyError:
        raise bad_request(f"unknown resource {name!r}") from None


def _faults(app, body):
    try:
        spec = json.loads(body or b"{}")
    except ValueError as e:
        raise bad_request(f"fault spec is not JSON: {e}") from None
    specs = spec if isinstance(spec, list) else [spec]
    done = []
    for s in specs:
        if not isinstance(s, dict):
            raise bad_request("a fault spec is a JSON object")
        s = dict(s)
        actions = [k for k in (*_WATCH_ACTIONS, "expire_continue") if s.pop(k, False)]
        for action in actions:
            if action == "expire_continue":
                app.store.expire_continue_tokens()
            else:
                only = _resource_param(s) if s.get("resource") else None
                n = 0
                for w in app.store.all_watchers():
                    if only in (None, w.plural):
                        w.close(_WATCH_ACTIONS[action])
                        n += 1
                done.append({action: n})
        if actions:
            s.pop("resource", None)
            if not s:
                continue
        try:
            done.append(app.faults.add(s).describe())
        except (ValueError, TypeError) as e:
            raise bad_request(f"invalid fault: {e}") from None
    return {"applied": done, "pending": app.faults.pending()}


def _listen(app, params):
    name = params.get("netns", "")
    if not name or getattr(app, "listen_netns", None) is None:
        raise bad_request("listen needs ?netns=NAME on a server started by apiserver.py")
    try:
        added = app.listen_netns(name, params.get("host") or None)
    except OSError as e:
        raise bad_request(f"cannot listen in netns {name}: {e}") from None
    return {"netns": name, "added": added}


def _stats(app):
    out = app.stats.snapshot()
    with app.store.lock:
        out["resourceVersion"] = str(app.store.rv)
        out["compactedResourceVersion"] = str(app.store.compacted_rv)
        out["objects"] = {p: len(o) for p, o in sorted(app.store.objects.items())}
    out["installed"] = sorted(app.installed)
    out["faults"] = app.faults.pending()
    return out


def handle(app, method, path, params, body):
    """(code, JSON object) for an admin request; raises ApiError."""
    route = (method, path.rstrip("/"))
    if route == ("GET", "/_test/stats"):
        return 200, _stats(app)
    if route == ("DELETE", "/_test/stats"):
        app.stats.reset()
        return 200, _stats(app)
    if route == ("POST", "/_test/compact"):
        app.store.compact()
        return 200, {"compactedResourceVersion": str(app.store.compacted_rv)}
    if route == ("POST", "/_test/faults"):
        return 200, _faults(app, body)
    if route == ("GET", "/_test/faults"):
        return 200, {"pending": app.faults.pending()}
    if route == ("DELETE", "/_test/faults"):
        app.faults.clear()
        return 200, {"pending": []}
    if route == ("POST", "/_test/install"):
        app.install(_resource_param(params))
        return 200, {"installed": sorted(app.installed)}
    if route == ("POST", "/_test/uninstall"):
        app.uninstall(_resource_param(params))
        return 200, {"installed": sorted(app.installed)}
    if route == ("GET", "/_test/sent"):
        return 200, {"events": app.stats.sent_events()}
    if route == ("GET", "/_test/dump"):
        return 200, app.dump()
    if route == ("POST", "/_test/listen"):
        return 200, _listen(app, params)
    if route[1] in ("/_test/stats", "/_test/compact", "/_test/faults", "/_test/install",
                    "/_test/uninstall", "/_test/dump", "/_test/listen"):
        raise method_not_allowed()
    raise page_not_found()
