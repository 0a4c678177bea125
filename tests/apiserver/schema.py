"""What Go's structs make of an object: field order and zero values of the built-in types.

A real apiserver decodes every built-in object into its Go struct and encodes it back, so the
client always sees fields in struct order, and non-omitempty fields that were absent come back
as their zero value ("endpoints": null, "status": {"loadBalancer": {}}, a Node's empty
nodeInfo). Reproducing this keeps our output byte-compatible with the recorded fixtures and
shows the agent the same nulls and empty objects a real cluster does. Fields unknown to the
struct are kept after the known ones (a real server would drop them; tests may rely on them
to feed the agent odd input).

CRDs are unstructured maps: no zero values, and keys come out sorted (wire.encode does that).

An order spec is a list of field names or (name, spec) pairs; a nested spec applies to a dict
value, or to each dict in a list value.
"""

_META = ["name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
         "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
         "annotations", "ownerReferences", "finalizers",
         ("managedFields", ["manager", "operation", "apiVersion", "time", "fieldsType",
                            "fieldsV1", "subresource"])]

_SERVICE = [
    ("metadata", _META),
    ("spec", [("ports", ["name", "protocol", "appProtocol", "port", "targetPort", "nodePort"]),
              "selector", "clusterIP", "clusterIPs", "type", "externalIPs", "sessionAffinity",
              "loadBalancerIP", "loadBalancerSourceRanges", "externalName",
              "externalTrafficPolicy", "healthCheckNodePort", "publishNotReadyAddresses",
              "sessionAffinityConfig", "ipFamilies", "ipFamilyPolicy",
              "allocateLoadBalancerNodePorts", "loadBalancerClass", "internalTrafficPolicy"]),
    ("status", [("loadBalancer", [("ingress", ["ip", "hostname", "ports"])]), "conditions"]),
]

_ENDPOINTSLICE = [
    ("metadata", _META),
    "addressType",
    ("endpoints", ["addresses", ("conditions", ["ready", "serving", "terminating"]),
                   "hostname",
                   ("targetRef", ["kind", "namespace", "name", "uid", "apiVersion",
                                  "resourceVersion", "fieldPath"]),
                   "deprecatedTopology", "nodeName", "zone", "hints"]),
    ("ports", ["name", "protocol", "port", "appProtocol"]),
]

_NODE_INFO = ["machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
              "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion", "operatingSystem",
              "architecture"]

_NODE = [
    ("metadata", _META),
    ("spec", ["podCIDR", "podCIDRs", "providerID", "unschedulable",
              ("taints", ["key", "value", "effect", "timeAdded"]), "configSource", "externalID"]),
    ("status", ["capacity", "allocatable", "phase", "conditions",
                ("addresses", ["type", "address"]), "daemonEndpoints", ("nodeInfo", _NODE_INFO),
                "images", "volumesInUse", "volumesAttached", "config"]),
]

_SELECTOR = ["matchLabels", ("matchExpressions", ["key", "operator", "values"])]
_NP_PEER = [("podSelector", _SELECTOR), ("namespaceSelector", _SELECTOR),
            ("ipBlock", ["cidr", "except"])]
_NP_PORT = ["protocol", "port", "endPort"]

_NETWORKPOLICY = [
    ("metadata", _META),
    ("spec", [("podSelector", _SELECTOR), ("ingress", [("ports", _NP_PORT), ("from", _NP_PEER)]),
              ("egress", [("ports", _NP_PORT), ("to", _NP_PEER)]), "policyTypes"]),
    "status",
]

_NAMESPACE = [("metadata", _META), ("spec", ["finalizers"]), ("status", ["phase", "conditions"])]


def _compile(spec):
    """An order spec as (field names in order, {field: compiled nested spec})."""
    names, subs = [], {}
    for entry in spec:
        name, sub = entry if isinstance(entry, tuple) else (entry, None)
        names.append(name)
        if sub:
            subs[name] = _compile(sub)
    return names, subs


_ORDER = {kind: _compile(spec) for kind, spec in
          (("Service", _SERVICE), ("EndpointSlice", _ENDPOINTSLICE), ("Node", _NODE),
           ("NetworkPolicy", _NETWORKPOLICY), ("Namespace", _NAMESPACE))}
_DEFAULT_ORDER = _compile([("metadata", _META)])


def _ordered(value, compiled):
    if isinstance(value, list):
        return [_ordered(v, compiled) for v in value]
    if not isinstance(value, dict):
        return value
    names, subs = compiled
    out = {name: value[name] for name in names if name in value}
    if len(out) != len(value):                  # fields the struct does not know go last
        out.update((k, v) for k, v in value.items() if k not in out)
    for name, sub in subs.items():
        if name in out:
            out[name] = _ordered(out[name], sub)
    return out


def _fill_zero(kind, obj):
    """Add the zero values Go would emit for absent non-omitempty fields (in place)."""
    if kind == "Service":
        if not isinstance(obj.get("spec"), dict):
            obj.setdefault("spec", {})
        status = obj.setdefault("status", {})
        if isinstance(status, dict):
            status.setdefault("loadBalancer", {})
    elif kind == "EndpointSlice":
        obj.setdefault("addressType", "")
        obj.setdefault("endpoints", None)
        for ep in obj["endpoints"] or []:
            if isinstance(ep, dict):
                ep.setdefault("addresses", None)
                ep.setdefault("conditions", {})
    elif kind == "Node":
        obj.setdefault("spec", {})
        status = obj.setdefault("status", {})
        if isinstance(status, dict):
            status.setdefault("daemonEndpoints", {"kubeletEndpoint": {"Port": 0}})
            info = status.setdefault("nodeInfo", {})
            if isinstance(info, dict):
                for f in _NODE_INFO:
                    info.setdefault(f, "")
    elif kind == "NetworkPolicy":
        # podSelector is not omitempty. (1.26 also wrote "status": {}, as the recorded list
        # shows; the status field was removed in 1.27, so a 1.34 server writes none.)
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("podSelector", {})
    elif kind == "Namespace":
        obj.setdefault("spec", {})
        obj.setdefault("status", {})


def normalize(resource, obj):
    """obj (without kind/apiVersion) as the Go struct round trip would return it."""
    if not resource.builtin:
        return obj
    _fill_zero(resource.kind, obj)
    return _ordered(obj, _ORDER.get(resource.kind, _DEFAULT_ORDER))


def with_type(resource, obj):
    """obj with kind and apiVersion, as a GET or a watch event carries them."""
    out = {"kind": resource.kind, "apiVersion": resource.api_version}
    for k, v in obj.items():
        if k not in out:
            out[k] = v
    return out


def strip_type(obj):
    """obj without kind/apiVersion: how the store keeps it and typed lists show items."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def bookmark(resource, rv, initial_events_end=False):
    """A BOOKMARK's object: the zero object of the type carrying only the resourceVersion,
    and for the one that closes a watch-list's initial events the annotation saying so."""
    meta = {"resourceVersion": str(rv)}
    if initial_events_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    if not resource.builtin:
        return {"apiVersion": resource.api_version, "kind": resource.kind, "metadata": meta}
    meta["creationTimestamp"] = None
    return with_type(resource, normalize(resource, {"metadata": meta}))
