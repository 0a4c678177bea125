"""CIDR peers end to end, with real traffic to and from hosts outside the cluster.

Node A (netlab lab1) holds pods pa (app=a, the policies' subject) and pc (app=c, never
selected). The world namespace beside the node stands for the outside: it carries the
addresses below on its lo, reached through the node's native device, and one server
answering TCP and UDP on port 80 on all of them. Each policy names some of these
prefixes; the agent gives every prefix a CIDR identity (agent/policy/cidr.h), writes it
into the ipcache, and the trie allows or denies those identities:

  EXT_IN      203.0.113.10   in 203.0.113.0/24, outside its except 203.0.113.16/28
  EXT_EXCEPT  203.0.113.20   in the except
  EXT_DENIED  203.0.113.40   in 203.0.113.32/27, which an egressDeny names
  EXT_OTHER   198.51.100.10  in 198.51.100.0/24
  EXT_NONE    192.0.2.10     in no prefix: world (2)

Every step is asserted with probes (new connections, each from its own source port, so
conntrack never answers for the policy), with `agentctl bpf ipcache list`, `agentctl
policy selectors` and `agentctl bpf policy get`. The restart test kills the agent under a
CIDR policy while a pod keeps probing: no probe may flip, and the ipcache and the trie
come back byte for byte (the trie's packet and byte counters aside, which the probes move).
"""

import itertools
import json
import signal
import threading
import time

import k8s
from harness import PODTOOL, PY, serve
from netlab import wait_for
from test_datapath import up

NS = "default"
PORT = 80
EXT_IN, EXT_EXCEPT, EXT_DENIED = "203.0.113.10", "203.0.113.20", "203.0.113.40"
EXT_OTHER, EXT_NONE = "198.51.100.10", "192.0.2.10"
EXTERNAL = (EXT_IN, EXT_EXCEPT, EXT_DENIED, EXT_OTHER, EXT_NONE)
CIDR_MIN = 1 << 24
_sports = itertools.count(30000)


def external_hosts(lab):
    """The outside: EXTERNAL on the world's lo, one server answering on every address."""
    for ip in EXTERNAL:
        lab.world.exec("ip", "addr", "add", f"{ip}/32", "dev", "lo")
    serve(lab.world, PORT, PORT, name="world")


def probe(ns, targets, timeout=1.0):
    """targets: (proto, ip[, source ip]) probed at once from namespace ns (a pod or the
    world) on PORT; returns [reached] in order. A reply must come from the target."""
    args = [f"{t[0]}:{t[1]}:{PORT}:{next(_sports)}" + (f":{t[2]}" if len(t) > 2 else "")
            for t in targets]
    r = ns.run([PY, str(PODTOOL), "probe", "--timeout", str(timeout), *args], timeout=30)
    lines = [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]
    assert len(lines) == len(targets), (targets, r.stdout, r.stderr)
    return [ln["ok"] for ln in lines]


def reach(ns, want, timeout=1.0, tries=3):
    """want: {target: reached}; probed again (up to tries) where a slow probe disagrees."""
    targets = list(want)
    got = dict(zip(targets, probe(ns, targets, timeout)))
    for _ in range(tries - 1):
        wrong = [t for t in targets if got[t] != want[t]]
        if not wrong:
            break
        got.update(zip(wrong, probe(ns, wrong, 2 * timeout)))
    return {t: got[t] for t in targets if got[t] != want[t]}


def policy_status(agent):
    return agent.status()["datapath"]["policy"]


def change(agent, fn):
    """Apply a policy change and wait until every endpoint realizes it."""
    before = policy_status(agent)["policy_revision"]
    fn()

    def realized():
        st = policy_status(agent)
        return (st["policy_revision"] > before and
                st["policy_revision_realized"] == st["policy_revision"] and not st["failed"])
    wait_for(realized, timeout=15, what="the policy change realized")


def cidr_entries(agent):
    """The ipcache's CIDR entries: prefix -> identity."""
    return {e["prefix"]: e for e in agent.ctl_json("bpf", "ipcache", "list")
            if e["identity"] >= CIDR_MIN}


def endpoint(agent, pod):
    return next(e for e in agent.ctl_json("endpoint", "list") if e["pod"] == f"{NS}/{pod.name}")


def trie(agent, pod):
    doc = agent.ctl_json("bpf", "policy", "get", str(endpoint(agent, pod)["id"]))
    return doc[0]["entries"] if doc and "entries" in doc[0] else doc


def start_cluster(lab, api, start_agent):
    node = lab.node("a")
    pa, pc = node.add_pod("pa"), node.add_pod("pc")
    for pod, app in ((pa, "a"), (pc, "c")):
        api.create(k8s.ciliumidentity(pod.identity, NS, {"app": app}))
        serve(pod, PORT, PORT)
    external_hosts(lab)
    agent = up(lab, api, start_agent)
    return agent, pa, pc


EGRESS_SPEC = {
    "endpointSelector": {"matchLabels": {"app": "a"}},
    "egress": [
        {"toCIDR": ["198.51.100.0/24"]},
        {"toCIDRSet": [{"cidr": "203.0.113.0/24", "except": ["203.0.113.16/28"]}],
         "toPorts": [{"ports": [{"port": str(PORT), "protocol": "TCP"}]}]},
    ],
    "egressDeny": [{"toCIDR": ["203.0.113.32/27"]}],
}


def test_cnp_to_cidr_set_except_and_deny(lab1, api, start_agent):
    agent, pa, pc = start_cluster(lab1, api, start_agent)
    everything = {(proto, ip): True for ip in EXTERNAL for proto in ("tcp", "udp")}
    assert reach(pa, everything) == {}
    assert cidr_entries(agent) == {}

    change(agent, lambda: api.create(k8s.ciliumnetworkpolicy(NS, "egress", spec=EGRESS_SPEC)))
    want = {("tcp", EXT_IN): True, ("udp", EXT_IN): False,       # TCP 80 only
            ("tcp", EXT_EXCEPT): False, ("udp", EXT_EXCEPT): False,
            ("tcp", EXT_DENIED): False, ("udp", EXT_DENIED): False,   # the deny wins
            ("tcp", EXT_OTHER): True, ("udp", EXT_OTHER): True,
            ("tcp", EXT_NONE): False, ("udp", EXT_NONE): False,
            ("tcp", pc.ip): False}                                 # no pod is allowed
    assert reach(pa, want) == {}
    # pc is selected by nothing: it reaches everything.
    assert reach(pc, everything) == {}

    # One CIDR identity per prefix, no tunnel endpoint, flagged cidr.
    ents = cidr_entries(agent)
    assert sorted(ents) == ["198.51.100.0/24", "203.0.113.0/24", "203.0.113.16/28",
                            "203.0.113.32/27"], ents
    ids = {p: e["identity"] for p, e in ents.items()}
    assert len(set(ids.values())) == 4, ids
    for e in ents.values():
        assert (e["tunnel_endpoint"], e["flag_names"]) == ("0.0.0.0", ["cidr"]), e
    # The selectors: the except leaves 203.0.113.16/28 out; the /27 is inside the /24.
    sels = {s["selector"]: s["identities"] for s in agent.ctl_json("policy", "selectors")}
    assert sels["cidr:203.0.113.0/24 except 203.0.113.16/28"] == sorted(
        [ids["203.0.113.0/24"], ids["203.0.113.32/27"]]), sels
    assert sels["cidr:203.0.113.32/27"] == [ids["203.0.113.32/27"]], sels
    assert sels["cidr:198.51.100.0/24"] == [ids["198.51.100.0/24"]], sels
    # The trie, labels as Cilium prints a CIDR identity; the /27's allow on TCP 80 lies
    # under its deny, so it is never written (policy/map.c).
    got = sorted((e["policy"], e["labels"], e["port_proto"]) for e in trie(agent, pa))
    assert got == [("Allow", ["cidr:198.51.100.0/24"], "ANY"),
                   ("Allow", ["cidr:203.0.113.0/24"], "80/TCP"),
                   ("Deny", ["cidr:203.0.113.32/27"], "ANY")], got
    table = agent.ctl("bpf", "policy", "get", str(endpoint(agent, pa)["id"])).stdout
    assert "cidr:203.0.113.16/28" not in table and "cidr:203.0.113.32/27" in table, table

    # The deny goes: EXT_DENIED reachable on TCP 80; the other prefixes keep their numbers,
    # the /27 is released.
    spec = dict(EGRESS_SPEC)
    del spec["egressDeny"]
    change(agent, lambda: api.apply(k8s.ciliumnetworkpolicy(NS, "egress", spec=spec)))
    assert reach(pa, {("tcp", EXT_DENIED): True, ("udp", EXT_DENIED): False,
                      ("tcp", EXT_EXCEPT): False}) == {}
    after = {p: e["identity"] for p, e in cidr_entries(agent).items()}
    assert after == {p: i for p, i in ids.items() if p != "203.0.113.32/27"}, (ids, after)

    # Deleted: everything reachable, no CIDR entry left.
    change(agent, lambda: api.delete("ciliumnetworkpolicies", NS, "egress"))
    assert reach(pa, everything) == {}
    assert cidr_entries(agent) == {}


def test_cnp_from_cidr(lab1, api, start_agent):
    agent, pa, pc = start_cluster(lab1, api, start_agent)
    change(agent, lambda: api.create(k8s.ciliumnetworkpolicy(NS, "ingress", spec={
        "endpointSelector": {"matchLabels": {"app": "a"}},
        "ingress": [{"fromCIDR": ["198.51.100.0/24"]},
                    {"fromCIDRSet": [{"cidr": "203.0.113.0/24",
                                      "except": ["203.0.113.16/28"]}]}]})))
    # From the outside, each probe from one of the world's addresses.
    want = {}
    for src, ok in ((EXT_IN, True), (EXT_EXCEPT, False), (EXT_DENIED, True),
                    (EXT_OTHER, True), (EXT_NONE, False)):
        for proto in ("tcp", "udp"):
            want[(proto, pa.ip, src)] = ok
            want[(proto, pc.ip, src)] = True        # pc: not selected
    assert reach(lab1.world, want) == {}
    # A pod is not a CIDR peer: pc is denied.
    assert reach(pc, {("tcp", pa.ip): False, ("udp", pa.ip): False}) == {}
    ep = endpoint(agent, pa)
    assert (ep["ingress"], ep["egress"], ep["not_enforced"]) == ("enabled", "disabled", 0), ep


def test_cidr_identities_survive_a_restart(lab1, api, start_agent):
    agent, pa, pc = start_cluster(lab1, api, start_agent)
    # A prefix given a number first and released: the policy's prefixes do not hold the
    # first numbers, so a restarted agent that numbered them afresh would differ.
    change(agent, lambda: api.create(k8s.ciliumnetworkpolicy(NS, "first", spec={
        "endpointSelector": {"matchLabels": {"app": "c"}},
        "egress": [{"toCIDR": ["100.64.0.0/10"]}]})))
    change(agent, lambda: api.create(k8s.ciliumnetworkpolicy(NS, "egress", spec=EGRESS_SPEC)))
    change(agent, lambda: api.delete("ciliumnetworkpolicies", NS, "first"))
    assert min(e["identity"] for e in cidr_entries(agent).values()) == CIDR_MIN + 2
    targets = {("tcp", EXT_IN): True, ("tcp", EXT_EXCEPT): False,
               ("tcp", EXT_DENIED): False, ("tcp", EXT_OTHER): True, ("tcp", EXT_NONE): False}
    assert reach(pa, targets) == {}

    def counters_aside(entries):
        return sorted(tuple(sorted((k, v) for k, v in e.items() if k not in ("bytes", "packets")))
                      for e in entries)
    ipcache_before = agent.ctl_json("bpf", "ipcache", "list")
    trie_before = counters_aside(trie(agent, pa))
    ep_before = endpoint(agent, pa)

    # A pod probing all along: every round must answer as the policy says.
    rounds, flips, stop = [], [], threading.Event()

    def prober():
        while not stop.is_set():
            got = dict(zip(targets, probe(pa, list(targets), timeout=1.5)))
            rounds.append(time.monotonic())
            flips.extend((t, got[t]) for t in targets if got[t] != targets[t])
    th = threading.Thread(target=prober)
    th.start()
    try:
        time.sleep(1.5)
        agent.stop(signal.SIGKILL)
        time.sleep(1.5)
        agent.start()

        def realized():
            st = policy_status(agent)
            return (st["policies"] == 1 and st["policy_revision_realized"] > 0 and
                    st["policy_revision_realized"] == st["policy_revision"] and
                    endpoint(agent, pa)["entries"] == ep_before["entries"])
        wait_for(realized, timeout=20, what="the policy realized after the restart")
        time.sleep(3)
    finally:
        stop.set()
        th.join()
    assert len(rounds) >= 4, rounds
    assert flips == [], flips
    assert agent.ctl_json("bpf", "ipcache", "list") == ipcache_before
    assert counters_aside(trie(agent, pa)) == trie_before
    assert reach(pa, targets) == {}
