"""Non-resource endpoints: /version, API discovery, health checks.

Discovery lists only installed resources, so a client that probes /apis before watching a
CRD (as controllers do) sees it appear when /_test/install adds it.
"""

import resources

# What /version says decides what a client may expect: WatchList is beta and on by default
# from 1.34 (streaming lists), off in 1.33. Field sets as recorded from 1.34.2 and 1.33.3
# servers (the emulation/minCompatibility fields exist since 1.33).
VERSION_WATCH_LIST = {
    "major": "1",
    "minor": "34",
    "emulationMajor": "1",
    "emulationMinor": "34",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "33",
    "gitVersion": "v1.34.2-axon-test",
    "gitCommit": "8cc511e399b929453cd98ae65b419c3cc227ec79",
    "gitTreeState": "clean",
    "buildDate": "2025-11-11T19:00:39Z",
    "goVersion": "go1.24.9",
    "compiler": "gc",
    "platform": "linux/amd64",
}
VERSION_NO_WATCH_LIST = {
    "major": "1",
    "minor": "33",
    "emulationMajor": "1",
    "emulationMinor": "33",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "32",
    "gitVersion": "v1.33.3-axon-test",
    "gitCommit": "236cbf257332b293f444abe6f24d699ff628173e",
    "gitTreeState": "clean",
    "buildDate": "2025-07-26T02:08:27Z",
    "goVersion": "go1.24.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}

HEALTH_PATHS = ("/healthz", "/livez", "/readyz")

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _resource_list(group_version, installed):
    out = []
    for r in resources.RESOURCES:
        if r.api_version != group_version or r.plural not in installed:
            continue
        entry = {"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": _VERBS}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        out.append(entry)
        for sub in r.subresources:
            out.append({"name": f"{r.plural}/{sub}", "singularName": "",
                        "namespaced": r.namespaced, "kind": r.kind,
                        "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": out}


def _group(name, installed):
    versions = sorted({r.version for r in resources.RESOURCES
                       if r.group == name and r.plural in installed})
    if not versions:
        return None
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def answer(path, installed, server_address, watch_list=True):
    """The JSON object for a discovery path, or None when path is not one."""
    if path == "/version":
        return VERSION_WATCH_LIST if watch_list else VERSION_NO_WATCH_LIST
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": server_address}]}
    if path == "/api/v1":
        return _resource_list("v1", installed)
    if path == "/apis":
        groups = [g for g in (_group(n, installed) for n in
                              sorted({r.group for r in resources.RESOURCES if r.group})) if g]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    parts = path.strip("/").split("/")
    if parts[0] == "apis" and len(parts) == 2:
        g = _group(parts[1], installed)
        return dict({"kind": "APIGroup", "apiVersion": "v1"}, **g) if g else None
    if parts[0] == "apis" and len(parts) == 3:
        gv = f"{parts[1]}/{parts[2]}"
        lst = _resource_list(gv, installed)
        return lst if lst["resources"] else None
    return None
