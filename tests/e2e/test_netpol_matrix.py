"""The matrix of Kubernetes' NetworkPolicy e2e suite, as behaviour, with real traffic.

Namespaces x, y and z (labels ns=x, ...) each hold pods a, b and c (label pod=a, ...), nine
pods on node A, each with its CiliumIdentity (pod and namespace labels, as Cilium's operator
writes them) and its CiliumEndpointSlice entry in its namespace (id, address, named ports
serve-80-tcp, serve-81-tcp, serve-80-udp, serve-81-udp, and "web": TCP 81 on the pods c, TCP 80
on the others). Every pod serves TCP and UDP on
ports 80 and 81. After each policy change (once `datapath.policy` in status shows the new
policy revision realized) every ordered pair of pods is probed on the four ports, 324 probes,
all at once, and the result is compared with the case's expected reachability: a predicate
over (source, destination, protocol, port), as the upstream suite's Reachability tables.
A pod always reaches itself (loopback never meets the datapath, as upstream expects).

A cell that disagrees is probed again, up to twice, before it counts (a slow machine can time
out an allowed probe); what still disagrees is printed as upstream prints it: per port, the
expected, observed and comparison ("." agrees, "X" does not) tables, sources in rows.

ipBlock: as in Cilium, a CIDR peer selects the CIDR identities of the prefixes policies name,
never a pod's identity (docs/control-plane.md, "CIDR identities"): an ipBlock over the pods'
addresses matches no pod, and the matrix case asserts that (the selected pod isolated from
every pod), not Kubernetes' answer. test_netpol_ipblock_outside_the_cluster probes ipBlock
with except, egress and ingress, against hosts outside the cluster (the world namespace beside
the node, tests/e2e/test_policy_cidr.py). An egress named port resolves per
destination identity, from the named ports of that identity's CiliumEndpointSlice entries; a
name no destination has allows nothing (fail closed).
"""

import concurrent.futures
import itertools
import json
import time

import k8s
from harness import PODTOOL, PY, serve, wait_attached
from netlab import wait_for
from test_policy_cidr import (EXT_DENIED, EXT_EXCEPT, EXT_IN, EXT_NONE, EXT_OTHER,
                              external_hosts, reach)

NAMESPACES = ("x", "y", "z")
NAMES = ("a", "b", "c")
PORTS = (("tcp", 80), ("tcp", 81), ("udp", 80), ("udp", 81))
TIMEOUT = 1.0


class P:
    """A pod of the matrix: namespace, name, and its lab pod."""

    def __init__(self, ns, name, pod):
        self.ns, self.name, self.pod = ns, name, pod

    def __repr__(self):
        return f"{self.ns}/{self.name}"


class Matrix:
    def __init__(self, lab, api, agent, pods):
        self.lab, self.api, self.agent, self.pods = lab, api, agent, pods
        self.by_name = {repr(p): p for p in pods}
        self.next_sport = {repr(p): 20000 for p in pods}
        self.probes = 0
        self.reprobed = 0

    def __getitem__(self, name):
        return self.by_name[name]

    # -- the agent's view --

    def policy_status(self):
        return self.agent.status()["datapath"]["policy"]

    def change(self, fn):
        """Apply a change to the policies and wait until the agent realized it."""
        before = self.policy_status()["policy_revision"]
        fn()

        def realized():
            st = self.policy_status()
            return (st["policy_revision"] > before and
                    st["policy_revision_realized"] == st["policy_revision"] and
                    not st["failed"])
        wait_for(realized, timeout=15, what="the policy change realized")

    def endpoint(self, p):
        return next(e for e in self.policy_status()["endpoints"] if e["pod"] == repr(p))

    # -- probing --

    def _sport(self, src):
        s = self.next_sport[repr(src)]
        self.next_sport[repr(src)] = s + 1
        return s

    def probe(self, cells, timeout):
        """cells: (src, dst, proto, port); returns {cell: reached}."""
        by_src = {}
        for cell in cells:
            by_src.setdefault(cell[0], []).append(cell)

        def run(src):
            pending = by_src[src]
            targets = [f"{proto}:{dst.pod.ip}:{port}:{self._sport(src)}"
                       for _, dst, proto, port in pending]
            r = src.pod.run([PY, str(PODTOOL), "probe", "--timeout", str(timeout), *targets],
                            timeout=30)
            lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
            assert len(lines) == len(pending), (src, r.stdout, r.stderr)
            out = {}
            for cell, line in zip(pending, lines):
                res = json.loads(line)
                # A reply names the pod that answered: the destination, nothing else.
                assert not res["ok"] or res["pod"] == cell[1].pod.name, (cell, res)
                out[cell] = res["ok"]
            return out

        self.probes += len(cells)
        result = {}
        with concurrent.futures.ThreadPoolExecutor(len(by_src)) as ex:
            for out in ex.map(run, list(by_src)):
                result.update(out)
        return result

    def check(self, case, expect):
        """Probe every pair on every port; compare with expect(src, dst, proto, port)."""
        cells = [(s, d, proto, port) for s, d in itertools.product(self.pods, self.pods)
                 for proto, port in PORTS]
        want = {c: (c[0] is c[1]) or bool(expect(*c)) for c in cells}
        got = self.probe(cells, TIMEOUT)
        for _ in range(2):
            wrong = [c for c in cells if got[c] != want[c]]
            if not wrong:
                return
            self.reprobed += len(wrong)
            got.update(self.probe(wrong, 2 * TIMEOUT))
        wrong = [c for c in cells if got[c] != want[c]]
        assert not wrong, f"case {case}: {len(wrong)} of {len(cells)} disagree\n" + \
            self.table(want, got)

    def table(self, want, got):
        out = []
        w = 5
        head = " " * w + "".join(f"{repr(d):>{w}}" for d in self.pods)
        for proto, port in PORTS:
            if all(want[(s, d, proto, port)] == got[(s, d, proto, port)]
                   for s in self.pods for d in self.pods):
                continue
            for title, cell in (("expected", lambda c: "1" if want[c] else "0"),
                                ("observed", lambda c: "1" if got[c] else "0"),
                                ("comparison", lambda c: "." if want[c] == got[c] else "X")):
                out.append(f"{title} {proto.upper()}/{port}:")
                out.append(head)
                for s in self.pods:
                    out.append(f"{repr(s):<{w}}" + "".join(
                        f"{cell((s, d, proto, port)):>{w}}" for d in self.pods))
        return "\n".join(out)


# -- the policies (as the upstream suite writes them) --

def sel(**labels):
    return {"matchLabels": labels}


def expr(key, op, *values):
    e = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return {"matchExpressions": [e]}


def netpol(ns, name, pod_selector, ingress=None, egress=None, types=None):
    obj = k8s.networkpolicy(ns, name, None, ingress=ingress, egress=egress, policy_types=types)
    obj["spec"]["podSelector"] = pod_selector
    return obj


def ces(p):
    """p's CiliumEndpointSlice: its id, address and named ports."""
    pod = p.pod
    named = [{"name": f"serve-{port}-{proto}", "port": port, "protocol": proto.upper()}
             for proto, port in PORTS]
    named.append({"name": "web", "port": 81 if p.name == "c" else 80, "protocol": "TCP"})
    return k8s.ciliumendpointslice(f"ces-{p.ns}{p.name}", p.ns, [{
        "id": pod.identity, "name": p.name, "named-ports": named,
        "networking": {"addressing": [{"ipv4": pod.ip}],
                       "node": pod.node.ip or pod.node.router_ip}}])


def relabel(api, p, identity, labels, namespace_labels):
    """p's labels (or its namespace's) changed: a new identity, the CES entry its id."""
    api.create(k8s.ciliumidentity(identity, p.ns, labels, namespace_labels=namespace_labels))
    p.pod.identity = identity
    api.apply(ces(p))


def build(lab, api, start_agent):
    node = lab.node("a")
    pods = []
    for ns in NAMESPACES:
        api.create(k8s.namespace(ns, {"ns": ns, "kubernetes.io/metadata.name": ns}))
        for name in NAMES:
            pod = node.add_pod(f"{ns}{name}")
            pods.append(P(ns, name, pod))
            api.create(k8s.ciliumidentity(pod.identity, ns, {"pod": name},
                                          namespace_labels={"ns": ns}))
            api.create(ces(pods[-1]))
            serve(pod, 80, 80)
            serve(pod, 81, 81)
    for obj in lab.k8s_objects():
        if obj["kind"] == "Node":
            api.apply(obj)
    agent = start_agent(node)
    wait_attached(agent, node.native, *[p.pod.host_if for p in pods])

    def endpoints_known():
        eps = {e["pod"]: e for e in agent.ctl_json("endpoint", "list")}
        return all(repr(p) in eps and eps[repr(p)]["identity"] == p.pod.identity
                   for p in pods)
    wait_for(endpoints_known, timeout=15, what="the nine endpoints with their identities")
    return Matrix(lab, api, agent, pods)


def test_netpol_matrix(lab1, api, start_agent):
    t0 = time.monotonic()
    m = build(lab1, api, start_agent)
    xa, xb, xc, yb = m["x/a"], m["x/b"], m["x/c"], m["y/b"]

    m.check("no policy", lambda s, d, proto, port: True)

    # Default deny ingress for namespace x, then egress.
    m.change(lambda: api.create(netpol("x", "deny-ingress", {}, types=["Ingress"])))
    m.check("default deny ingress in x", lambda s, d, proto, port: d.ns != "x")
    m.change(lambda: api.delete("networkpolicies", "x", "deny-ingress"))
    m.change(lambda: api.create(netpol("x", "deny-egress", {}, types=["Egress"])))
    m.check("default deny egress in x", lambda s, d, proto, port: s.ns != "x")
    m.change(lambda: api.delete("networkpolicies", "x", "deny-egress"))

    # Peers on ingress to x/a: podSelector, namespaceSelector, both (AND), either (OR).
    def only_to_xa(allowed):
        return lambda s, d, proto, port: d is not xa or allowed(s, proto, port)

    cases = [
        ("podSelector pod=b", [{"podSelector": sel(pod="b")}],
         lambda s, proto, port: s is xb),
        ("namespaceSelector ns=y", [{"namespaceSelector": sel(ns="y")}],
         lambda s, proto, port: s.ns == "y"),
        ("namespaceSelector ns=y AND podSelector pod=b",
         [{"namespaceSelector": sel(ns="y"), "podSelector": sel(pod="b")}],
         lambda s, proto, port: s is yb),
        ("namespaceSelector ns=y OR podSelector pod=b",
         [{"namespaceSelector": sel(ns="y")}, {"podSelector": sel(pod="b")}],
         lambda s, proto, port: s.ns == "y" or s is xb),
        ("podSelector pod In (b, c)", [{"podSelector": expr("pod", "In", "b", "c")}],
         lambda s, proto, port: s in (xb, xc)),
        ("namespaceSelector ns NotIn (x, y)",
         [{"namespaceSelector": expr("ns", "NotIn", "x", "y")}],
         lambda s, proto, port: s.ns == "z"),
    ]
    for what, peers, allowed in cases:
        m.change(lambda: api.create(netpol("x", "allow", sel(pod="a"), ingress=[{
            "from": peers}])))
        m.check(f"ingress to x/a from {what}", only_to_xa(allowed))
        m.change(lambda: api.delete("networkpolicies", "x", "allow"))

    # matchExpressions Exists, on both sides: every pod of x, from pods c of any namespace
    # with an ns label.
    m.change(lambda: api.create(netpol("x", "exists", expr("pod", "Exists"), ingress=[{
        "from": [{"namespaceSelector": expr("ns", "Exists"), "podSelector": sel(pod="c")}]}])))
    m.check("ingress to x from pod=c of namespaces where ns Exists",
            lambda s, d, proto, port: d.ns != "x" or s.name == "c")
    m.change(lambda: api.delete("networkpolicies", "x", "exists"))

    # matchExpressions DoesNotExist: x/b relabelled role=temporary is the one pod of x with a
    # role label; every pod of x without one is selected and takes only pods without one
    # (podSelector) from any namespace (namespaceSelector with DoesNotExist on a key no
    # namespace has: every namespace).
    xb_identity = xb.pod.identity
    relabel(api, xb, 20100, {"pod": "b", "role": "temporary"}, {"ns": "x"})
    wait_for(lambda: m.endpoint(xb)["identity"] == xb.pod.identity, timeout=15,
             what="x/b with its role label")
    m.change(lambda: api.create(netpol("x", "no-role", expr("role", "DoesNotExist"), ingress=[{
        "from": [{"namespaceSelector": expr("team", "DoesNotExist"),
                  "podSelector": expr("role", "DoesNotExist")}]}])))
    m.check("ingress to x's pods without role from pods without role",
            lambda s, d, proto, port: d.ns != "x" or d is xb or s is not xb)
    m.change(lambda: api.delete("networkpolicies", "x", "no-role"))
    # Back to its first identity; the temporary one deleted, as Cilium's operator does.
    xb.pod.identity = xb_identity
    api.apply(ces(xb))
    api.delete("ciliumidentities", None, "20100")
    wait_for(lambda: m.endpoint(xb)["identity"] == xb_identity, timeout=15,
             what="x/b with its first identity again")

    # Ports: named (the endpoint's named ports from its CiliumEndpointSlice), endPort
    # ranges, a protocol without a port (TCP allowed, UDP not).
    port_cases = [
        ("named ports serve-81-tcp and UDP serve-80-udp",
         [{"port": "serve-81-tcp"}, {"protocol": "UDP", "port": "serve-80-udp"}],
         lambda s, proto, port: (proto, port) in (("tcp", 81), ("udp", 80))),
        ("TCP 80-81 and UDP 81-90 (endPort)",
         [{"protocol": "TCP", "port": 80, "endPort": 81},
          {"protocol": "UDP", "port": 81, "endPort": 90}],
         lambda s, proto, port: proto == "tcp" or port == 81),
        ("TCP only (no port)", [{"protocol": "TCP"}],
         lambda s, proto, port: proto == "tcp"),
    ]
    for what, ports, allowed in port_cases:
        m.change(lambda: api.create(netpol("x", "ports", sel(pod="a"), ingress=[{
            "ports": ports}])))
        m.check(f"ingress to x/a on {what}", only_to_xa(allowed))
        m.change(lambda: api.delete("networkpolicies", "x", "ports"))

    # ipBlock with except over the pods' addresses: Kubernetes would let every pod but x/b
    # in. As in Cilium a CIDR never selects a pod: x/a is isolated from every pod, its trie
    # allows the CIDR's identity alone.
    m.change(lambda: api.create(netpol("x", "cidr", sel(pod="a"), ingress=[{"from": [{
        "ipBlock": {"cidr": "10.244.0.0/16", "except": [f"{xb.pod.ip}/32"]}}]}])))
    m.check("ipBlock with except over pod addresses: no pod matches (as in Cilium)",
            only_to_xa(lambda s, proto, port: False))
    ep = m.endpoint(xa)
    assert (ep["ingress"], ep["entries"], ep["not_enforced"]) == ("enabled", 1, 0), ep
    m.change(lambda: api.delete("networkpolicies", "x", "cidr"))

    # Two policies on x/a: the union of what each allows.
    m.change(lambda: api.create(netpol("x", "from-b", sel(pod="a"), ingress=[{
        "from": [{"podSelector": sel(pod="b")}],
        "ports": [{"protocol": "TCP", "port": 80}]}])))
    m.change(lambda: api.create(netpol("x", "from-y", sel(pod="a"), ingress=[{
        "from": [{"namespaceSelector": sel(ns="y")}]}])))
    m.check("stacked: x/b on TCP 80, and namespace y",
            only_to_xa(lambda s, proto, port: (s is xb and (proto, port) == ("tcp", 80)) or
                       s.ns == "y"))

    # An update in place (from-b becomes from-c, every port), then deletions.
    m.change(lambda: api.apply(netpol("x", "from-b", sel(pod="a"), ingress=[{
        "from": [{"podSelector": sel(pod="c")}]}])))
    m.check("stacked after the update of from-b to pod=c",
            only_to_xa(lambda s, proto, port: s is xc or s.ns == "y"))
    m.change(lambda: api.delete("networkpolicies", "x", "from-y"))
    m.check("after deleting from-y", only_to_xa(lambda s, proto, port: s is xc))
    m.change(lambda: api.delete("networkpolicies", "x", "from-b"))
    m.check("every policy deleted: traffic restored", lambda s, d, proto, port: True)

    # Egress: x/a only to namespace y; then no egress at all for namespace y.
    m.change(lambda: api.create(netpol("x", "egress-y", sel(pod="a"), egress=[{
        "to": [{"namespaceSelector": sel(ns="y")}]}], types=["Egress"])))
    m.check("egress from x/a to namespace y only",
            lambda s, d, proto, port: s is not xa or d.ns == "y")
    m.change(lambda: api.delete("networkpolicies", "x", "egress-y"))

    # A named port on egress names the destination's port, resolved per destination
    # identity: serve-80-tcp is TCP 80 everywhere; "web" is TCP 81 on the pods c, TCP 80 on
    # the others; a name no destination has allows nothing (fail closed, not_enforced).
    egress_named = [
        ("serve-80-tcp", lambda d, proto, port: (proto, port) == ("tcp", 80)),
        ("web", lambda d, proto, port: (proto, port) == ("tcp", 81 if d.name == "c" else 80)),
        ("no-such-name", lambda d, proto, port: False),
    ]
    for name, allowed in egress_named:
        m.change(lambda: api.create(netpol("x", "egress-named", sel(pod="a"), egress=[{
            "ports": [{"port": name}]}], types=["Egress"])))
        m.check(f"egress from x/a on named port {name}",
                lambda s, d, proto, port: s is not xa or allowed(d, proto, port))
        ep = m.endpoint(xa)
        if name == "no-such-name":
            assert (ep["egress"], ep["entries"], ep["not_enforced"]) == ("enabled", 0, 1), ep
        else:
            assert (ep["egress"], ep["not_enforced"]) == ("enabled", 0), ep
        m.change(lambda: api.delete("networkpolicies", "x", "egress-named"))
    m.change(lambda: api.create(netpol("y", "no-egress", {}, egress=[], types=["Egress"])))
    m.check("egress denied for namespace y", lambda s, d, proto, port: s.ns != "y")
    m.change(lambda: api.delete("networkpolicies", "y", "no-egress"))

    # Egress: stacked, the allow-all policy wins the union over one allowing y only;
    # Ingress and Egress in one policy.
    m.change(lambda: api.create(netpol("x", "egress-y", sel(pod="a"), egress=[{
        "to": [{"namespaceSelector": sel(ns="y")}]}], types=["Egress"])))
    m.change(lambda: api.create(netpol("x", "egress-all", sel(pod="a"), egress=[{}],
                                       types=["Egress"])))
    m.check("egress from x/a to y, and to everything", lambda s, d, proto, port: True)
    m.change(lambda: api.delete("networkpolicies", "x", "egress-all"))
    m.change(lambda: api.delete("networkpolicies", "x", "egress-y"))
    m.change(lambda: api.create(netpol("x", "both", sel(pod="a"), types=["Ingress", "Egress"],
                                       ingress=[{"from": [{"namespaceSelector": sel(ns="z")}]}],
                                       egress=[{"to": [{"podSelector": sel(pod="b")}],
                                                "ports": [{"protocol": "UDP", "port": 81}]}])))
    m.check("x/a: ingress from z, egress to x/b on UDP 81",
            lambda s, d, proto, port: (d is not xa or s.ns == "z") and
            (s is not xa or (d is xb and (proto, port) == ("udp", 81))))
    m.change(lambda: api.delete("networkpolicies", "x", "both"))

    # An empty podSelector peer: every pod of the policy's namespace, and only those.
    m.change(lambda: api.create(netpol("x", "same-ns", {}, ingress=[{
        "from": [{"podSelector": {}}]}])))
    m.check("ingress to x from x only", lambda s, d, proto, port: d.ns != "x" or s.ns == "x")
    m.change(lambda: api.delete("networkpolicies", "x", "same-ns"))

    # Default deny ingress in x, and an empty rule (every peer, every port) for x/a.
    m.change(lambda: api.create(netpol("x", "deny-ingress", {}, types=["Ingress"])))
    m.change(lambda: api.create(netpol("x", "allow-all", sel(pod="a"), ingress=[{}])))
    m.check("ingress to x denied, to x/a allowed from all",
            lambda s, d, proto, port: d.ns != "x" or d is xa)
    m.change(lambda: api.delete("networkpolicies", "x", "allow-all"))
    m.change(lambda: api.delete("networkpolicies", "x", "deny-ingress"))

    # Updated namespace labels: y gains team=blue, which a namespaceSelector names. As with
    # Cilium, an identity's labels are fixed and carry its namespace's: y's pods get new
    # identities with the new labels, their CiliumEndpointSlice entries the new ids.
    m.change(lambda: api.create(netpol("x", "team", sel(pod="a"), ingress=[{
        "from": [{"namespaceSelector": sel(team="blue")}]}])))
    m.check("ingress to x/a from team=blue (none yet)", only_to_xa(lambda s, proto, port: False))
    api.apply(k8s.namespace("y", {"ns": "y", "kubernetes.io/metadata.name": "y",
                                  "team": "blue"}))
    ys = [p for p in m.pods if p.ns == "y"]
    for i, p in enumerate(ys):
        relabel(api, p, 30000 + i, {"pod": p.name}, {"ns": "y", "team": "blue"})
    wait_for(lambda: all(m.endpoint(p)["identity"] == p.pod.identity for p in ys) and
             m.endpoint(xa)["entries"] == 3, timeout=15,
             what="y's pods with their new identities, in x/a's trie")
    m.check("ingress to x/a from team=blue (namespace y relabelled)",
            only_to_xa(lambda s, proto, port: s.ns == "y"))
    m.change(lambda: api.delete("networkpolicies", "x", "team"))

    # Updated pod labels: x/b gets a new identity (role=updated), its CiliumEndpointSlice
    # entry the new id.
    m.change(lambda: api.create(netpol("x", "role", sel(pod="a"), ingress=[{
        "from": [{"podSelector": sel(role="updated")}]}])))
    m.check("ingress to x/a from role=updated (none yet)",
            only_to_xa(lambda s, proto, port: False))
    relabel(api, xb, 20000, {"pod": "b", "role": "updated"}, {"ns": "x"})
    wait_for(lambda: m.endpoint(xb)["identity"] == xb.pod.identity and
             m.endpoint(xa)["entries"] == 1, timeout=15,
             what="x/b with its new identity, in x/a's trie")
    m.check("ingress to x/a from role=updated (x/b relabelled)",
            only_to_xa(lambda s, proto, port: s is xb))
    m.change(lambda: api.delete("networkpolicies", "x", "role"))
    m.check("restored", lambda s, d, proto, port: True)

    took = time.monotonic() - t0
    print(f"netpol matrix: {m.probes} probes ({m.reprobed} probed again) in {took:.1f} s")


def test_netpol_ipblock_outside_the_cluster(lab1, api, start_agent):
    """ipBlock with except, egress then ingress, against hosts outside the cluster: the
    world namespace's addresses (test_policy_cidr.py), probed from and to every pod."""
    m = build(lab1, api, start_agent)
    external_hosts(lab1)
    xa = m["x/a"]
    block = {"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.16/28"]}}
    outside = (EXT_IN, EXT_EXCEPT, EXT_DENIED, EXT_OTHER, EXT_NONE)

    def egress_from_every_pod(allowed):
        for p in m.pods:
            want = {(proto, ip): p is not xa or allowed(ip) for ip in outside
                    for proto in ("tcp", "udp")}
            assert reach(p.pod, want) == {}, (p, reach(p.pod, want))

    def ingress_to_every_pod(allowed):
        want = {(proto, p.pod.ip, src): p is not xa or allowed(src)
                for p in m.pods for src in outside for proto in ("tcp", "udp")}
        assert reach(lab1.world, want) == {}, reach(lab1.world, want)

    egress_from_every_pod(lambda ip: True)
    ingress_to_every_pod(lambda src: True)

    # Egress from x/a to 203.0.113.0/24 except 203.0.113.16/28: .10 and .40 yes, .20 (the
    # except) no, nor what lies outside the block; x/a reaches no pod.
    m.change(lambda: api.create(netpol("x", "egress-block", sel(pod="a"), egress=[{
        "to": [block]}], types=["Egress"])))
    egress_from_every_pod(lambda ip: ip in (EXT_IN, EXT_DENIED))
    m.check("egress from x/a to an ipBlock outside the cluster: no pod",
            lambda s, d, proto, port: s is not xa)
    m.change(lambda: api.delete("networkpolicies", "x", "egress-block"))

    # Ingress to x/a from the same block: only from .10 and .40, from no pod.
    m.change(lambda: api.create(netpol("x", "ingress-block", sel(pod="a"), ingress=[{
        "from": [block]}], types=["Ingress"])))
    ingress_to_every_pod(lambda src: src in (EXT_IN, EXT_DENIED))
    m.check("ingress to x/a from an ipBlock outside the cluster: no pod",
            lambda s, d, proto, port: d is not xa)
    ep = m.endpoint(xa)
    assert (ep["ingress"], ep["entries"], ep["not_enforced"]) == ("enabled", 1, 0), ep
    m.change(lambda: api.delete("networkpolicies", "x", "ingress-block"))
    ingress_to_every_pod(lambda src: True)
