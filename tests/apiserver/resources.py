"""The resource table and URL routing.

One row per served resource, with what the real API says about it (group, version, kind,
scope, whether it is a built-in type or a CRD). Routing turns a request path into a Route, or
raises Go's plain-text "404 page not found" for anything the real server would not route,
including every path of a resource that is not installed (a CRD not yet applied). That
matters: an agent must tell "CRD missing" (text 404) from "object missing" (Status 404).

The client library (tests/lib/k8s.py) imports this module to build paths, so it has no
dependency beyond the standard library.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    group: str              # "" for the core group
    version: str
    namespaced: bool
    builtin: bool           # typed Go struct (field order kept) vs CRD (unstructured, keys sorted)
    has_generation: bool    # metadata.generation maintained (EndpointSlice, CRDs)
    subresources: tuple = ()
    short_names: tuple = ()
    # DELETE answers the deleted object (the registry's ReturnDeletedObject) rather than a
    # Success Status: true for Services since 1.23, false for the others here.
    returns_deleted: bool = False

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self):
        """The group-version root: /api/v1 or /apis/GROUP/VERSION."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def list_kind(self):
        return self.kind + "List"

    def path(self, namespace=None, name=None, subresource=None):
        """The URL path of a collection or an object (namespace ignored when cluster-scoped)."""
        p = self.prefix
        if self.namespaced and namespace:
            p += f"/namespaces/{namespace}"
        p += f"/{self.plural}"
        if name:
            p += f"/{name}"
            if subresource:
                p += f"/{subresource}"
        return p


RESOURCES = (
    Resource("services", "Service", "", "v1", namespaced=True, builtin=True,
             has_generation=False, subresources=("status",), short_names=("svc",),
             returns_deleted=True),
    Resource("endpointslices", "EndpointSlice", "discovery.k8s.io", "v1", namespaced=True,
             builtin=True, has_generation=True),
    Resource("nodes", "Node", "", "v1", namespaced=False, builtin=True, has_generation=False,
             subresources=("status",), short_names=("no",)),
    # Cilium's CRD: cluster-scoped, with the namespace as a top-level field of the object.
    Resource("ciliumendpointslices", "CiliumEndpointSlice", "cilium.io", "v2alpha1",
             namespaced=False, builtin=False, has_generation=True, short_names=("ces",)),
    # Network policy: the policies, the identities they select, the namespaces' labels.
    Resource("networkpolicies", "NetworkPolicy", "networking.k8s.io", "v1", namespaced=True,
             builtin=True, has_generation=True, short_names=("netpol",)),
    Resource("ciliumnetworkpolicies", "CiliumNetworkPolicy", "cilium.io", "v2",
             namespaced=True, builtin=False, has_generation=True, subresources=("status",),
             short_names=("cnp", "ciliumnp")),
    Resource("ciliumclusterwidenetworkpolicies", "CiliumClusterwideNetworkPolicy", "cilium.io",
             "v2", namespaced=False, builtin=False, has_generation=True,
             subresources=("status",), short_names=("ccnp",)),
    Resource("ciliumidentities", "CiliumIdentity", "cilium.io", "v2", namespaced=False,
             builtin=False, has_generation=True, subresources=("status",),
             short_names=("ciliumid",)),
    Resource("namespaces", "Namespace", "", "v1", namespaced=False, builtin=True,
             has_generation=False, subresources=("status",), short_names=("ns",)),
    # Pods: what an agent publishes its endpoints and identities from (fieldSelector
    # spec.nodeName). No scheduler or kubelet here: tests bind them and write status.podIP.
    Resource("pods", "Pod", "", "v1", namespaced=True, builtin=True, has_generation=False,
             subresources=("status",), short_names=("po",)),
)

BY_PLURAL = {r.plural: r for r in RESOURCES}
BY_KIND = {r.kind: r for r in RESOURCES}


def lookup(name):
    """A resource by plural, kind (any case) or short name; KeyError if unknown."""
    if name in BY_PLURAL:
        return BY_PLURAL[name]
    for r in RESOURCES:
        if name.lower() in (r.kind.lower(), r.plural) or name in r.short_names:
            return r
    raise KeyError(name)


@dataclass
class Route:
    """A request path resolved against the table."""
    resource: Resource
    namespace: str = None   # set for namespaced paths (/namespaces/NS/...)
    name: str = None        # set for object paths
    subresource: str = None
    legacy_watch: bool = False  # /api/v1/watch/...: the deprecated watch prefix


class NotRouted(Exception):
    """The path is not served: answer Go's plain-text 404."""


def _group_versions():
    gv = {}
    for r in RESOURCES:
        gv.setdefault(r.prefix, []).append(r)
    return gv


_BY_PREFIX = _group_versions()


def route(path, installed):
    """Resolve path; installed is the set of plurals currently served. Raises NotRouted."""
    for prefix, members in _BY_PREFIX.items():
        if path.startswith(prefix + "/"):
            parts = path[len(prefix) + 1:].split("/")
            return _route_parts(parts, {r.plural: r for r in members if r.plural in installed})
    raise NotRouted(path)


def _route_parts(parts, served):
    legacy_watch = False
    if parts[0] == "watch":
        legacy_watch, parts = True, parts[1:]
    namespace = None
    # /api/v1/namespaces/NS/status is the Namespace NS's subresource, not a resource of NS.
    ns_object = (len(parts) == 3 and parts[0] == "namespaces" and "namespaces" in served
                 and parts[2] not in served)
    if len(parts) >= 3 and parts[0] == "namespaces" and not ns_object:
        namespace, parts = parts[1], parts[2:]
        if not namespace:
            raise NotRouted()
    if not parts or parts[0] not in served or any(p == "" for p in parts):
        raise NotRouted()
    res = served[parts[0]]
    # A namespaced resource is listed cluster-wide at /RESOURCE, but its objects only live
    # under /namespaces/NS/; a cluster-scoped one has no /namespaces/ form at all.
    if namespace is not None and not res.namespaced:
        raise NotRouted()
    if len(parts) > 1 and res.namespaced and namespace is None:
        raise NotRouted()
    name = parts[1] if len(parts) > 1 else None
    sub = parts[2] if len(parts) > 2 else None
    if len(parts) > 3 or (sub and sub not in res.subresources):
        raise NotRouted()
    if legacy_watch and sub:
        raise NotRouted()
    return Route(res, namespace, name, sub, legacy_watch)
