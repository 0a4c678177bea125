"""What the agent's maps must hold, computed from the apiserver's objects, and the maps
as the agent holds them, in the same shape, so a test compares the two with ==.

  expected_frontends(api)          {"ip:port/PROTO": sorted ["ip:port", ...]}
  expected_ipcache(api, node)      {"prefix": (identity, tunnel_endpoint, flags)}
  actual_frontends(agent)          `agentctl bpf lb list -o json`, same shape
  actual_ipcache(agent)            `agentctl bpf ipcache list -o json`, same shape

The rules restate Kubernetes (and README's "Desired state"), independently of the agent's
code: a ClusterIP Service has one frontend per ClusterIP and port; its backends are the
IPv4 endpoints of the EndpointSlices labelled kubernetes.io/service-name=<service> whose
port has the Service port's name and protocol, the ready ones (ready unset = true), or if
there are none the serving-and-terminating ones; duplicates merged. The ipcache holds
every CiliumEndpointSlice endpoint's IPv4 /32 (identity, its node address, flag local
when that is this node's) and every other node's pod CIDRs (identity 0, the node's
InternalIP, else ExternalIP, flag pod-cidr). Only what the fault tests create is covered:
a Service of another type, or with a Local traffic policy, raises rather than guess.
"""

import k8s

IPCACHE_F_LOCAL, IPCACHE_F_POD_CIDR = 1, 2


def _list(api, what):
    """Every object of a resource (through the API: call with no fault rule pending)."""
    try:
        return api.list_all(what)[0]
    except k8s.ApiError as e:
        if e.code == 404:          # a CRD that is not installed holds nothing
            return []
        raise


def _ipv4(addr):
    return addr.count(".") == 3 and ":" not in addr


def _backends(svc_port, slices):
    name, proto = svc_port.get("name", ""), svc_port.get("protocol", "TCP")
    ready, fallback = set(), set()
    for s in slices:
        if s.get("addressType", "IPv4") != "IPv4":
            continue
        port = next((p for p in s.get("ports") or []
                     if p.get("name", "") == name and p.get("protocol", "TCP") == proto
                     and p.get("port")), None)
        if port is None:
            continue
        for ep in s.get("endpoints") or []:
            cond = ep.get("conditions") or {}
            is_ready = cond.get("ready") is not False
            serving = cond.get("serving", is_ready) is not False
            terminating = cond.get("terminating") is True
            for addr in ep.get("addresses") or []:
                if not _ipv4(addr):
                    continue
                if is_ready:
                    ready.add(f"{addr}:{port['port']}")
                elif serving and terminating:
                    fallback.add(f"{addr}:{port['port']}")
    return sorted(ready or fallback)


def expected_frontends(api):
    """The LB frontends and their backends the apiserver's objects call for."""
    slices = {}
    for s in _list(api, "endpointslices"):
        owner = (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
        if owner:
            slices.setdefault((s["metadata"]["namespace"], owner), []).append(s)
    out = {}
    for svc in _list(api, "services"):
        spec, meta = svc["spec"], svc["metadata"]
        kind = spec.get("type", "ClusterIP")
        if kind == "ExternalName":
            continue
        if kind != "ClusterIP" or spec.get("externalIPs") or \
                spec.get("internalTrafficPolicy") == "Local":
            raise NotImplementedError(f"{meta['namespace']}/{meta['name']}: only plain "
                                      "ClusterIP Services are modelled")
        ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]
               if ip and ip != "None" and _ipv4(ip)]
        mine = slices.get((meta["namespace"], meta["name"]), [])
        for port in spec.get("ports") or []:
            backends = _backends(port, mine)
            for ip in ips:
                out[f"{ip}:{port['port']}/{port.get('protocol', 'TCP')}"] = backends
    return out


def _node_ip(node):
    addrs = {a["type"]: a["address"] for a in (node.get("status") or {}).get("addresses") or []}
    return addrs.get("InternalIP") or addrs.get("ExternalIP")


def expected_ipcache(api, self_name):
    """The ipcache the objects call for, for the agent whose Node is self_name."""
    nodes = _list(api, "nodes")
    me = next((n for n in nodes if n["metadata"]["name"] == self_name), None)
    addrs = {a["address"] for a in ((me or {}).get("status") or {}).get("addresses") or []
             if a["type"] in ("InternalIP", "ExternalIP")}
    out = {}
    # The slice whose name sorts first wins an address listed twice.
    for ces in sorted(_list(api, "ciliumendpointslices"), key=lambda c: c["metadata"]["name"]):
        for ep in ces.get("endpoints") or []:
            net = ep.get("networking") or {}
            ip = next((a["ipv4"] for a in net.get("addressing") or [] if a.get("ipv4")), None)
            if not ip or f"{ip}/32" in out:
                continue
            node_ip = net.get("node", "0.0.0.0")
            out[f"{ip}/32"] = (ep.get("id", 0), node_ip,
                               IPCACHE_F_LOCAL if node_ip in addrs else 0)
    for n in nodes:
        ip = _node_ip(n)
        if n["metadata"]["name"] == self_name or not ip:
            continue
        for cidr in (n.get("spec") or {}).get("podCIDRs") or \
                [c for c in [(n.get("spec") or {}).get("podCIDR")] if c]:
            out.setdefault(cidr, (0, ip, IPCACHE_F_POD_CIDR))
    return out


def actual_frontends(agent):
    """The frontends in the agent's pinned LB maps; a slot whose backend is missing from
    the backends map shows as "missing:<id>", so it can never look right."""
    out = {}
    for fe in agent.ctl_json("bpf", "lb", "list"):
        out[fe["frontend"]] = sorted(
            f"{b['address']}:{b['port']}" if b.get("address") else f"missing:{b['backend_id']}"
            for b in fe.get("backends", []))
    return out


def actual_ipcache(agent):
    return {e["prefix"]: (e["identity"], e["tunnel_endpoint"], e["flags"])
            for e in agent.ctl_json("bpf", "ipcache", "list")}
