"""Service defaulting and the ClusterIP / NodePort allocators.

What a 1.26 apiserver does to a Service on the way in, reproduced because the agent sees it:
  - defaults: type ClusterIP, sessionAffinity None (ClientIP gets a 10800 s timeout config),
    protocol TCP and targetPort = port on each port; for everything but ExternalName:
    clusterIPs, ipFamilies [IPv4], ipFamilyPolicy SingleStack, internalTrafficPolicy Cluster;
    NodePort/LoadBalancer: externalTrafficPolicy Cluster, a nodePort per port,
    allocateLoadBalancerNodePorts true, and a healthCheckNodePort for LB with policy Local.
  - ClusterIPs are allocated at random from the service CIDR (default 10.96.0.0/12). Like
    1.26's static-subrange allocator, random picks come from above the lower static range
    (the first 256 addresses here), leaving it to explicit requests such as 10.96.0.10.
  - An address or node port already held by another Service is refused with the real 422
    message; on update, values not resent are carried over from the stored object.
An unparsable clusterIP or nodePort is stored untouched (not tracked): tests use that to
hand the agent malformed Services. strict mode (validation.py) rejects those first.
"""

import ipaddress
import random
import socket

from wire import invalid

CLUSTER_IP_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")


class Allocator:
    """Addresses and node ports held by stored Services."""

    def __init__(self, cidr="10.96.0.0/12", node_ports=(30000, 32767), seed=None):
        self.net = ipaddress.ip_network(cidr)
        self.node_ports = node_ports
        self.rng = random.Random(seed)
        self.ips = set()
        self.ports = set()
        size = self.net.num_addresses
        self.static_size = min(max(16, size // 16), 256)
        self.first = int(self.net.network_address) + 1         # skip the network address
        self.last = int(self.net.broadcast_address) - 1        # and the broadcast one

    def in_range(self, ip):
        return ip in self.net and self.first <= int(ip) <= self.last

    def pick_ip(self):
        lo = min(self.first + self.static_size, self.last)
        for _ in range(64):
            ip = str(ipaddress.ip_address(self.rng.randint(lo, self.last)))
            if ip not in self.ips:
                return ip
        for n in range(self.first, self.last + 1):   # nearly full: scan
            if str(ipaddress.ip_address(n)) not in self.ips:
                return str(ipaddress.ip_address(n))
        return None

    def pick_port(self, exclude=()):
        """A free node port, also avoiding exclude (ports this request already took)."""
        lo, hi = self.node_ports
        for _ in range(64):
            p = self.rng.randint(lo, hi)
            if p not in self.ports and p not in exclude:
                return p
        return next((p for p in range(lo, hi + 1)
                     if p not in self.ports and p not in exclude), None)


def _ip_version(value):
    """4 or 6 for a valid address string, else None (inet_pton: fast and strict)."""
    if not isinstance(value, str):
        return None
    for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
        try:
            socket.inet_pton(family, value)
            return version
        except OSError:
            pass
    return None


def held(svc):
    """(ips, ports) a stored Service holds in the allocator."""
    spec = svc.get("spec") if isinstance(svc, dict) else None
    if not isinstance(spec, dict) or spec.get("type", "ClusterIP") not in CLUSTER_IP_TYPES:
        return set(), set()
    ips = {ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")])
           if _ip_version(ip)}
    ports = set()
    for p in spec.get("ports") or []:
        if isinstance(p, dict) and isinstance(p.get("nodePort"), int) and p["nodePort"] > 0:
            ports.add(p["nodePort"])
    if isinstance(spec.get("healthCheckNodePort"), int) and spec["healthCheckNodePort"] > 0:
        ports.add(spec["healthCheckNodePort"])
    return ips, ports


def _apply_defaults(spec):
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        spec.setdefault("sessionAffinityConfig", {"clientIP": {"timeoutSeconds": 10800}})
    for p in spec.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            if "port" in p:
                p.setdefault("targetPort", p["port"])
    if spec["type"] not in CLUSTER_IP_TYPES:
        return
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    spec.setdefault("internalTrafficPolicy", "Cluster")


def _carry_over(spec, old_spec):
    """Values a client may leave out of an update and the server keeps (patchAllocatedValues)."""
    if not isinstance(old_spec, dict) or old_spec.get("type") not in CLUSTER_IP_TYPES:
        return
    if spec["type"] not in CLUSTER_IP_TYPES:
        return
    if not spec.get("clusterIP") and not spec.get("clusterIPs"):
        for f in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if f in old_spec:
                spec[f] = old_spec[f]
    if spec["type"] in ("NodePort", "LoadBalancer"):
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                     for p in old_spec.get("ports") or [] if isinstance(p, dict)}
        for p in spec.get("ports") or []:
            if isinstance(p, dict) and not p.get("nodePort"):
                np = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
                if np:
                    p["nodePort"] = np
        if not spec.get("healthCheckNodePort") and old_spec.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]


def prepare(alloc, svc, old=None):
    """Default and allocate svc in place (old: the stored version on update).

    Returns a commit() callable that makes the allocation permanent and frees what old held
    but svc no longer does; raises the 422 ApiError when an address or port is taken.
    Nothing in the allocator changes until commit() is called.
    """
    spec = svc.get("spec")
    name = (svc.get("metadata") or {}).get("name", "")
    old_ips, old_ports = held(old) if old else (set(), set())
    if not isinstance(spec, dict):
        return _committer(alloc, set(), set(), old_ips, old_ports)
    _apply_defaults(spec)
    if old:
        _carry_over(spec, old.get("spec"))
        old_ip = (old.get("spec") or {}).get("clusterIP")
        new_ip = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
        if (old_ip and old_ip != "None" and new_ip and new_ip != old_ip
                and spec["type"] in CLUSTER_IP_TYPES):
            raise invalid("Service", "", name, [("spec.clusterIPs[0]", "FieldValueInvalid",
                                                 f'Invalid value: []string{{"{new_ip}"}}: '
                                                 f"may not change once set")])
    if spec["type"] not in CLUSTER_IP_TYPES:
        return _committer(alloc, set(), set(), old_ips, old_ports)

    new_ips, new_ports = set(), set()
    ip = spec.get("clusterIP") or (spec.get("clusterIPs") or [""])[0]
    if not ip:
        ip = alloc.pick_ip()
        if ip is None:
            raise invalid("Service", "", name, [("spec.clusterIPs", "FieldValueInvalid",
                                                 "failed to allocate IP: range is full")])
    version = _ip_version(ip)
    if version:
        if ip in alloc.ips and ip not in old_ips:
            raise invalid("Service", "", name, [
                ("spec.clusterIPs", "FieldValueInvalid",
                 f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: '
                 f"provided IP is already allocated")])
        new_ips.add(ip)
    spec["clusterIP"] = ip
    spec.setdefault("clusterIPs", [ip])
    spec.setdefault("ipFamilies", ["IPv6" if version == 6 else "IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")

    wants_node_ports = spec["type"] == "NodePort" or (
        spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False)
    for i, p in enumerate(spec.get("ports") or []):
        if not isinstance(p, dict):
            continue
        np = p.get("nodePort")
        if not np and wants_node_ports:
            np = alloc.pick_port(exclude=new_ports)
            p["nodePort"] = np
        if isinstance(np, int) and np > 0:
            _take_port(alloc, np, new_ports, old_ports, name, f"spec.ports[{i}].nodePort")
    if spec["type"] == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local":
        hc = spec.get("healthCheckNodePort")
        if not hc:
            hc = spec["healthCheckNodePort"] = alloc.pick_port(exclude=new_ports)
        if isinstance(hc, int) and hc > 0:
            _take_port(alloc, hc, new_ports, old_ports, name, "spec.healthCheckNodePort")
    return _committer(alloc, new_ips, new_ports, old_ips, old_ports)


def _take_port(alloc, port, new_ports, old_ports, name, field):
    if (port in alloc.ports and port not in old_ports) or port in new_ports:
        raise invalid("Service", "", name, [(field, "FieldValueInvalid",
                                             f"Invalid value: {port}: provided port is "
                                             f"already allocated")])
    new_ports.add(port)


def _committer(alloc, new_ips, new_ports, old_ips, old_ports):
    def commit():
        alloc.ips -= old_ips - new_ips
        alloc.ports -= old_ports - new_ports
        alloc.ips |= new_ips
        alloc.ports |= new_ports
    return commit


def release(alloc, svc):
    ips, ports = held(svc)
    alloc.ips -= ips
    alloc.ports -= ports
