"""Strict validation, applied only when asked (?strict=1 on a write, or --strict).

By default the stand-in stores any object that has a name, so tests can hand the agent the
malformed input a buggy controller or a hostile user could produce. Strict mode checks the
rules a real apiserver enforces that matter to a datapath (names, ports, protocols, addresses,
types) and answers the real 422 Invalid Status. It is a subset, not the full validation.
"""

import ipaddress
import re

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(rf"^{_LABEL}$")
_DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_PROTOCOLS = ("TCP", "UDP", "SCTP")
_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


def _required(field):
    return (field, "FieldValueRequired", "Required value")


def _bad(field, value, why):
    shown = f'"{value}"' if isinstance(value, str) else value
    return (field, "FieldValueInvalid", f"Invalid value: {shown}: {why}")


def _unsupported(field, value, allowed):
    quoted = ", ".join(f'"{a}"' for a in allowed)
    return (field, "FieldValueNotSupported",
            f'Unsupported value: "{value}": supported values: {quoted}')


def _check_name(name, label_only):
    rx = _DNS1123_LABEL if label_only else _DNS1123_SUBDOMAIN
    if not isinstance(name, str) or not rx.match(name) or len(name) > (63 if label_only else 253):
        return [_bad("metadata.name", name, "a lowercase RFC 1123 "
                     + ("label" if label_only else "subdomain") + " must consist of lower case "
                     "alphanumeric characters, '-' or '.'")]
    return []


def _check_port_number(field, value, allow_zero=False):
    if not isinstance(value, int) or isinstance(value, bool) \
            or not (0 if allow_zero else 1) <= value <= 65535:
        return [_bad(field, value, "must be between 1 and 65535, inclusive")]
    return []


def _check_service(obj, alloc):
    errs = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [_required("spec")]
    svc_type = spec.get("type", "ClusterIP")
    if svc_type not in _SERVICE_TYPES:
        errs.append(_unsupported("spec.type", svc_type, _SERVICE_TYPES))
    if svc_type == "ExternalName":
        if not spec.get("externalName"):
            errs.append(_required("spec.externalName"))
        return errs
    ports = spec.get("ports")
    if not isinstance(ports, list) or not ports:
        if spec.get("clusterIP") != "None":
            errs.append(_required("spec.ports"))
        ports = []
    names = set()
    for i, p in enumerate(ports):
        f = f"spec.ports[{i}]"
        if not isinstance(p, dict):
            errs.append(_bad(f, p, "must be an object"))
            continue
        errs += _check_port_number(f + ".port", p.get("port"))
        if p.get("protocol", "TCP") not in _PROTOCOLS:
            errs.append(_unsupported(f + ".protocol", p.get("protocol"), _PROTOCOLS))
        if len(ports) > 1 and not p.get("name"):
            errs.append(_required(f + ".name"))
        if p.get("name") in names:
            errs.append((f + ".name", "FieldValueDuplicate", f'Duplicate value: "{p["name"]}"'))
        names.add(p.get("name"))
        tp = p.get("targetPort")
        if isinstance(tp, int):
            errs += _check_port_number(f + ".targetPort", tp)
        np = p.get("nodePort")
        if np not in (None, 0):
            lo, hi = alloc.node_ports
            if not isinstance(np, int) or not lo <= np <= hi:
                errs.append(_bad(f + ".nodePort", np, f"provided port is not in the valid "
                                 f"range. The range of valid ports is {lo}-{hi}"))
    ip = spec.get("clusterIP")
    if ip not in (None, "", "None"):
        try:
            addr = ipaddress.ip_address(ip)
        except (TypeError, ValueError):
            errs.append(_bad("spec.clusterIPs[0]", ip, "must be a valid IP address, "
                             "(e.g. 10.9.8.7 or 2001:db8::ffff)"))
        else:
            if not alloc.in_range(addr):
                errs.append(_bad("spec.clusterIPs", f"[]string{{\"{ip}\"}}",
                                 f"failed to allocate IP {ip}: the provided IP ({ip}) is not "
                                 f"in the valid range. The range of valid IPs is {alloc.net}"))
    return errs


def _check_endpointslice(obj):
    errs = []
    family = obj.get("addressType")
    if family not in ("IPv4", "IPv6", "FQDN"):
        errs.append(_unsupported("addressType", family, ("IPv4", "IPv6", "FQDN")))
    eps = obj.get("endpoints")
    if eps is not None and not isinstance(eps, list):
        errs.append(_bad("endpoints", eps, "must be a list"))
        eps = []
    for i, ep in enumerate(eps or []):
        f = f"endpoints[{i}]"
        addrs = ep.get("addresses") if isinstance(ep, dict) else None
        if not isinstance(addrs, list) or not addrs:
            errs.append(_required(f + ".addresses"))
            continue
        if len(addrs) > 100:
            errs.append((f + ".addresses", "FieldValueTooMany", "must have at most 100 items"))
        for j, a in enumerate(addrs):
            if family in ("IPv4", "IPv6"):
                try:
                    ok = ipaddress.ip_address(a).version == (4 if family == "IPv4" else 6)
                except (TypeError, ValueError):
                    ok = False
                if not ok:
                    errs.append(_bad(f"{f}.addresses[{j}]", a,
                                     f"must be a valid {family} address"))
    ports = obj.get("ports")
    for i, p in enumerate(ports if isinstance(ports, list) else []):
        f = f"ports[{i}]"
        if not isinstance(p, dict):
            errs.append(_bad(f, p, "must be an object"))
            continue
        if p.get("port") is not None:
            errs += _check_port_number(f + ".port", p.get("port"), allow_zero=True)
        if p.get("protocol", "TCP") not in _PROTOCOLS:
            errs.append(_unsupported(f + ".protocol", p.get("protocol"), _PROTOCOLS))
    return errs


def _check_cidr(field, value, within=None):
    try:
        net = ipaddress.ip_network(value, strict=False)
    except (TypeError, ValueError):
        return None, [_bad(field, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or "
                           "2001:db8::/64)")]
    if within is not None and (net.version != within.version or not net.subnet_of(within)
                               or net == within):
        return net, [_bad(field, value, "must be a strict subset of `cidr`")]
    return net, []


def _check_networkpolicy(obj):
    """What ValidateNetworkPolicy checks of the parts a datapath reads."""
    errs = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [_required("spec")]
    for i, t in enumerate(spec.get("policyTypes") or []):
        if t not in ("Ingress", "Egress"):
            errs.append(_unsupported(f"spec.policyTypes[{i}]", t, ("Ingress", "Egress")))
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            f = f"spec.{direction}[{i}]"
            for j, port in enumerate(rule.get("ports") or []):
                pf = f"{f}.ports[{j}]"
                if port.get("protocol", "TCP") not in _PROTOCOLS:
                    errs.append(_unsupported(pf + ".protocol", port.get("protocol"),
                                             _PROTOCOLS))
                if isinstance(port.get("port"), int):
                    errs += _check_port_number(pf + ".port", port["port"])
            for j, peer in enumerate(rule.get(peers_key) or []):
                pf = f"{f}.{peers_key}[{j}]"
                block = peer.get("ipBlock")
                if block is not None and (peer.get("podSelector") is not None
                                          or peer.get("namespaceSelector") is not None):
                    errs.append((pf, "FieldValueForbidden", "Forbidden: may not specify more "
                                 "than 1 peer type"))
                elif block is None and peer.get("podSelector") is None \
                        and peer.get("namespaceSelector") is None:
                    errs.append((pf, "FieldValueRequired", "Required value: must specify a "
                                 "peer"))
                if block is not None:
                    net, e = _check_cidr(pf + ".ipBlock.cidr", block.get("cidr"))
                    errs += e
                    for k, exc in enumerate(block.get("except") or []):
                        if net is not None:
                            errs += _check_cidr(f"{pf}.ipBlock.except[{k}]", exc, net)[1]
    return errs


def validate(resource, obj, alloc):
    """[(field, reason, message)] for obj; empty when valid."""
    meta = obj.get("metadata") or {}
    errs = _check_name(meta.get("name"), label_only=resource.kind in ("Service", "Namespace"))
    if resource.kind == "Service":
        errs += _check_service(obj, alloc)
    elif resource.kind == "EndpointSlice":
        errs += _check_endpointslice(obj)
    elif resource.kind == "NetworkPolicy":
        errs += _check_networkpolicy(obj)
    elif resource.kind == "CiliumEndpointSlice":
        if not isinstance(obj.get("endpoints", []), list):
            errs.append(_bad("endpoints", obj.get("endpoints"), "must be a list"))
    return errs
