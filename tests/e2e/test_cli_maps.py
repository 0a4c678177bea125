"""agentctl's map commands against maps with known contents, no agent needed.

Every test pins the real maps (key/value sizes and types from include/axon, via
tests/tools/mapfill) under its own bpffs directory /sys/fs/bpf/axon-clitest-<pid>-<n>,
writes known entries, runs the built agentctl with --bpf-root and asserts the exact
text and JSON. monitor is fed through the pinned "events" ring buffer by a tiny tc
program that mapfill runs with BPF_PROG_TEST_RUN. Pins are removed even on failure.
"""

import itertools
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import time

import pytest

from harness import AGENTCTL, OUT, FakeAgent

MAPFILL = OUT / "tests" / "tools" / "mapfill"
_seq = itertools.count()

# Numbers from include/axon (the test talks to the tools in their terms).
TCP, UDP, ICMP = 6, 17, 1
CT_EGRESS, CT_INGRESS, CT_SERVICE = 0, 1, 2
CT_F_SEEN_NON_SYN, CT_F_SNAT = 1 << 2, 1 << 4
CT_F_INGRESS_ALLOWED, CT_F_EGRESS_ALLOWED = 1 << 9, 1 << 10
EVENT_DROP, EVENT_TRACE, EVENT_POLICY_VERDICT = 1, 2, 3
DIR_INGRESS, DIR_EGRESS = 1, 2
DROP_INVALID_HDR, REASON_TO_ENDPOINT = 134, 5
DROP_POLICY, DROP_POLICY_DENY, REASON_POLICY_ALLOWED = 148, 149, 16
POLICY_INGRESS, POLICY_EGRESS = 0, 1
POLICY_ACTION_ALLOW, POLICY_ACTION_DENY = 1, 2
POLICY_MATCH_NONE, POLICY_MATCH_L3_L4, POLICY_MATCH_L4_ONLY = 0, 2, 3


def possible_cpus():
    """Number of possible CPUs, as the kernel sizes per-CPU values."""
    n = 0
    for part in open("/sys/devices/system/cpu/possible").read().strip().split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


class Maps:
    """A private bpffs root with Axon's maps pinned under maps/."""

    def __init__(self):
        self.root = f"/sys/fs/bpf/axon-clitest-{os.getpid()}-{next(_seq)}"

    def tool(self, *args):
        r = subprocess.run([str(MAPFILL), self.root] + list(args), capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, f"mapfill {' '.join(args)}: {r.stderr}"
        return r.stdout

    def create(self, *names):
        self.tool("create", *names)
        return self

    def put(self, name, **fields):
        self.tool("put", name, json.dumps(fields))

    def emit(self, **fields):
        self.tool("emit", json.dumps(fields))

    def count(self, name):
        return int(self.tool("count", name))

    def ctl(self, *args, check=True):
        r = subprocess.run([str(AGENTCTL), "--bpf-root", self.root] + list(args),
                           capture_output=True, text=True, timeout=30)
        if check:
            assert r.returncode == 0, f"agentctl {' '.join(args)}: {r.stderr}{r.stdout}"
        return r

    def text(self, *args):
        return self.ctl(*args).stdout

    def json(self, *args):
        return json.loads(self.ctl("-o", "json", *args).stdout)

    def close(self):
        maps = os.path.join(self.root, "maps")
        if os.path.isdir(maps):
            for name in os.listdir(maps):
                os.unlink(os.path.join(maps, name))
            os.rmdir(maps)
        if os.path.isdir(self.root):
            os.rmdir(self.root)


@pytest.fixture
def maps():
    if os.geteuid() != 0:
        pytest.skip("needs root (bpffs, BPF maps)")
    assert MAPFILL.exists(), "build first: make .output/tests/tools/mapfill"
    m = Maps()
    try:
        yield m.create()
    finally:
        m.close()


# --- conntrack -----------------------------------------------------------------------------

def fill_ct(maps):
    maps.put("ct4_tcp", saddr="10.0.0.1", sport=4321, daddr="10.96.0.10", dport=80, proto=TCP,
             dir=CT_EGRESS, rx_packets=1, rx_bytes=60, rx_flags_seen=0x12, tx_packets=1,
             tx_bytes=74, tx_flags_seen=0x02, flags=CT_F_SEEN_NON_SYN, rev_nat=5,
             backend_id=3, lifetime_in=8000)
    maps.put("ct4_tcp", saddr="10.244.1.10", sport=8080, daddr="10.0.0.1", dport=4321,
             proto=TCP, dir=CT_INGRESS, rx_packets=2, rx_bytes=120, flags=0x3,
             src_identity=12345, last_report=77, lifetime_in=10)
    maps.put("ct4_any", saddr="10.244.1.10", sport=53000, daddr="203.0.113.5", dport=53,
             proto=UDP, dir=CT_SERVICE, tx_packets=4, tx_bytes=400, flags=CT_F_SNAT,
             nat_addr="192.168.50.10", nat_port=32768, lifetime_in=-5)
    maps.put("ct4_any", saddr="10.244.1.10", sport=7, daddr="10.244.2.20", dport=7,
             proto=ICMP, dir=CT_EGRESS, lifetime_in=60,
             flags=CT_F_INGRESS_ALLOWED | CT_F_EGRESS_ALLOWED)
    maps.put("ct4_any", saddr="10.244.1.10", sport=0, daddr="10.244.2.20", dport=0,
             proto=47, dir=CT_EGRESS, lifetime_in=60)


REMAINING = re.compile(r"\(remaining: (-?\d+) sec\(s\)\)")


def split_remaining(line):
    """The line with its remaining seconds replaced by N, and those seconds."""
    m = REMAINING.search(line)
    assert m, line
    return REMAINING.sub("(remaining: N sec(s))", line), int(m.group(1))


def split_lines(out):
    """Lines with the remaining seconds masked (two runs may straddle a second)."""
    return [split_remaining(line)[0] for line in out.splitlines()]


def test_ct_list_cilium_layout(maps):
    fill_ct(maps)
    out = maps.text("bpf", "ct", "list", "global")
    assert split_lines(maps.text("bpf", "ct", "list")) == split_lines(out)
    lines = out.splitlines()
    expected = [
        ("TCP OUT 10.0.0.1:4321 -> 10.96.0.10:80 expires={} (remaining: N sec(s)) RxPackets=1 "
         "RxBytes=60 RxFlagsSeen=0x12 TxPackets=1 TxBytes=74 TxFlagsSeen=0x02 LastReport=0 "
         "Flags=0x0004 [ SeenNonSyn ] RevNAT=5 SourceSecurityID=0 BackendID=3", 8000),
        ("TCP IN 10.244.1.10:8080 -> 10.0.0.1:4321 expires={} (remaining: N sec(s)) "
         "RxPackets=2 RxBytes=120 RxFlagsSeen=0x00 TxPackets=0 TxBytes=0 TxFlagsSeen=0x00 "
         "LastReport=77 Flags=0x0003 [ RxClosing TxClosing ] RevNAT=0 "
         "SourceSecurityID=12345 BackendID=0", 10),
        # ct4_any after ct4_tcp, each sorted by tuple
        ("47 OUT 10.244.1.10:0 -> 10.244.2.20:0 expires={} (remaining: N sec(s)) RxPackets=0 "
         "RxBytes=0 RxFlagsSeen=0x00 TxPackets=0 TxBytes=0 TxFlagsSeen=0x00 LastReport=0 "
         "Flags=0x0000 [ ] RevNAT=0 SourceSecurityID=0 BackendID=0", 60),
        ("ICMP OUT 10.244.1.10:7 -> 10.244.2.20:7 expires={} (remaining: N sec(s)) "
         "RxPackets=0 RxBytes=0 RxFlagsSeen=0x00 TxPackets=0 TxBytes=0 TxFlagsSeen=0x00 "
         "LastReport=0 Flags=0x0600 [ IngressAllowed EgressAllowed ] RevNAT=0 "
         "SourceSecurityID=0 BackendID=0", 60),
        ("UDP SVC 10.244.1.10:53000 -> 203.0.113.5:53 expires={} (remaining: N sec(s)) "
         "RxPackets=0 RxBytes=0 RxFlagsSeen=0x00 TxPackets=4 TxBytes=400 TxFlagsSeen=0x00 "
         "LastReport=0 Flags=0x0010 [ SNAT ] RevNAT=0 SourceSecurityID=0 BackendID=0 "
         "SNAT=192.168.50.10:32768", -5),
    ]
    assert len(lines) == len(expected), out
    for line, (want, remaining) in zip(lines, expected):
        shape, got_remaining = split_remaining(line)
        expires = int(re.search(r"expires=(\d+)", line).group(1))
        assert shape == want.format(expires)
        # lifetime was written as now+N on CLOCK_MONOTONIC; a slow run may cost a second
        assert remaining - 2 <= got_remaining <= remaining, line
        assert abs(got_remaining - (expires - int(time.monotonic()))) <= 1, line


def test_ct_list_json(maps):
    fill_ct(maps)
    entries = maps.json("bpf", "ct", "list", "global")
    assert [(e["map"], e["protocol"], e["direction"]) for e in entries] == [
        ("ct4_tcp", "TCP", "OUT"), ("ct4_tcp", "TCP", "IN"), ("ct4_any", "47", "OUT"),
        ("ct4_any", "ICMP", "OUT"), ("ct4_any", "UDP", "SVC")]
    first = entries[0]
    assert 7998 <= first.pop("remaining") <= 8000
    assert first.pop("expires") > 8000
    assert first == {
        "map": "ct4_tcp", "protocol": "TCP", "nexthdr": 6, "direction": "OUT",
        "direction_code": 0, "source": "10.0.0.1", "source_port": 4321,
        "destination": "10.96.0.10", "destination_port": 80, "rx_packets": 1, "rx_bytes": 60,
        "rx_flags_seen": 0x12, "tx_packets": 1, "tx_bytes": 74, "tx_flags_seen": 2,
        "last_report": 0, "flags": 4, "flag_names": ["SeenNonSyn"], "rev_nat_id": 5,
        "source_identity": 0, "backend_id": 3}
    assert entries[3]["flag_names"] == ["IngressAllowed", "EgressAllowed"]
    svc = entries[4]
    assert svc["flag_names"] == ["SNAT"]
    assert (svc["nat_address"], svc["nat_port"]) == ("192.168.50.10", 32768)
    assert svc["remaining"] < 0


def test_ct_list_empty(maps):
    assert maps.text("bpf", "ct", "list") == ""
    assert maps.json("bpf", "ct", "list") == []


def test_ct_flush_empties_ct_and_nat(maps):
    fill_ct(maps)
    fill_nat(maps)
    assert (maps.count("ct4_tcp"), maps.count("ct4_any"), maps.count("nat4")) == (2, 3, 2)
    out = maps.text("bpf", "ct", "flush", "global")
    assert out == (f"Flushed 2 entries from {maps.root}/maps/ct4_tcp\n"
                   f"Flushed 3 entries from {maps.root}/maps/ct4_any\n"
                   f"Flushed 2 entries from {maps.root}/maps/nat4\n")
    assert (maps.count("ct4_tcp"), maps.count("ct4_any"), maps.count("nat4")) == (0, 0, 0)
    assert maps.text("bpf", "ct", "list") == ""
    fill_ct(maps)
    doc = maps.json("bpf", "ct", "flush")
    assert doc == {"maps": [
        {"map": "ct4_tcp", "path": f"{maps.root}/maps/ct4_tcp", "deleted": 2},
        {"map": "ct4_any", "path": f"{maps.root}/maps/ct4_any", "deleted": 3},
        {"map": "nat4", "path": f"{maps.root}/maps/nat4", "deleted": 0}], "deleted": 5}


def test_ct_flush_deletes_nothing_when_a_map_is_missing(maps):
    fill_ct(maps)
    os.unlink(f"{maps.root}/maps/nat4")
    r = maps.ctl("bpf", "ct", "flush", check=False)
    assert r.returncode == 1
    assert r.stderr == (f"agentctl: {maps.root}/maps/nat4: not found (is the agent running "
                        f"with --bpf-root {maps.root}?)\n")
    assert maps.count("ct4_tcp") == 2


# --- NAT -----------------------------------------------------------------------------------

def fill_nat(maps):
    maps.put("nat4", saddr="10.244.1.10", sport=40000, daddr="203.0.113.5", dport=80,
             proto=TCP, dir=0, to_addr="192.168.50.10", to_port=32768, created_ago=120,
             needed_ago=5)
    maps.put("nat4", saddr="203.0.113.5", sport=80, daddr="192.168.50.10", dport=32768,
             proto=TCP, dir=1, to_addr="10.244.1.10", to_port=40000, created_ago=120,
             needed_ago=5)


def test_nat_list(maps):
    fill_nat(maps)
    out = maps.text("bpf", "nat", "list")
    ages = re.compile(r"Created=(\d+)sec ago NeededAt=(\d+)sec ago")
    lines = out.splitlines()
    assert [ages.sub("Created=Csec ago NeededAt=Nsec ago", line) for line in lines] == [
        "TCP OUT 10.244.1.10:40000 -> 203.0.113.5:80 XLATE_SRC 192.168.50.10:32768 "
        "Created=Csec ago NeededAt=Nsec ago",
        "TCP IN 203.0.113.5:80 -> 192.168.50.10:32768 XLATE_DST 10.244.1.10:40000 "
        "Created=Csec ago NeededAt=Nsec ago"]
    for line in lines:
        created, needed = map(int, ages.search(line).groups())
        assert 120 <= created <= 122 and 5 <= needed <= 7
    doc = maps.json("bpf", "nat", "list")
    for e in doc:
        e.pop("created"), e.pop("needed")
        assert 120 <= e.pop("created_ago") <= 122 and 5 <= e.pop("needed_ago") <= 7
    assert doc == [
        {"protocol": "TCP", "nexthdr": 6, "direction": "OUT", "source": "10.244.1.10",
         "source_port": 40000, "destination": "203.0.113.5", "destination_port": 80,
         "xlate": "XLATE_SRC", "to_address": "192.168.50.10", "to_port": 32768},
        {"protocol": "TCP", "nexthdr": 6, "direction": "IN", "source": "203.0.113.5",
         "source_port": 80, "destination": "192.168.50.10", "destination_port": 32768,
         "xlate": "XLATE_DST", "to_address": "10.244.1.10", "to_port": 40000}]


def test_nat_flush(maps):
    fill_nat(maps)
    assert maps.text("bpf", "nat", "flush") == f"Flushed 2 entries from {maps.root}/maps/nat4\n"
    assert maps.count("nat4") == 0
    assert maps.json("bpf", "nat", "flush")["deleted"] == 0


# --- ipcache, endpoints, metrics -------------------------------------------------------------

def test_ipcache_list(maps):
    maps.put("ipcache", prefix="10.244.2.0/24", tunnel_endpoint="192.168.50.12", flags=2)
    maps.put("ipcache", prefix="10.244.1.10/32", identity=12345,
             tunnel_endpoint="192.168.50.11", flags=1)
    maps.put("ipcache", prefix="10.244.1.0/24", tunnel_endpoint="192.168.50.11", flags=3)
    maps.put("ipcache", prefix="0.0.0.0/0", identity=2)
    assert maps.text("bpf", "ipcache", "list") == (
        "IP PREFIX/ADDRESS   IDENTITY   TUNNEL ENDPOINT   FLAGS\n"
        "0.0.0.0/0           2          0.0.0.0           <none>\n"
        "10.244.1.0/24       0          192.168.50.11     local,pod-cidr\n"
        "10.244.1.10/32      12345      192.168.50.11     local\n"
        "10.244.2.0/24       0          192.168.50.12     pod-cidr\n")
    doc = maps.json("bpf", "ipcache", "list")
    assert doc[2] == {"prefix": "10.244.1.10/32", "address": "10.244.1.10", "prefix_len": 32,
                      "identity": 12345, "tunnel_endpoint": "192.168.50.11", "flags": 1,
                      "flag_names": ["local"]}
    assert [e["prefix"] for e in doc] == ["0.0.0.0/0", "10.244.1.0/24", "10.244.1.10/32",
                                          "10.244.2.0/24"]


def test_endpoint_list(maps):
    # ifindex 1 is lo in every namespace; 999999 is no device here.
    maps.put("endpoints", address="10.244.1.11", ifindex=999999, identity=7,
             mac="0a:58:0a:f4:01:0b", node_mac="6e:1f:00:00:00:02", flags=1)
    maps.put("endpoints", address="10.244.1.10", ifindex=1, identity=12345,
             mac="0a:58:0a:f4:01:0a", node_mac="6e:1f:00:00:00:01", id=12, policy=3)
    assert maps.text("bpf", "endpoint", "list") == (
        "IPv4 ADDRESS   ID   IFINDEX   DEVICE   MAC                 NODE MAC            "
        "IDENTITY   POLICY           FLAGS\n"
        "10.244.1.10    12   1         lo       0a:58:0a:f4:01:0a   6e:1f:00:00:00:01   "
        "12345      ingress,egress   <none>\n"
        "10.244.1.11    0    999999    -        0a:58:0a:f4:01:0b   6e:1f:00:00:00:02   "
        "7          <none>           host\n")
    assert maps.json("bpf", "endpoint", "list") == [
        {"address": "10.244.1.10", "id": 12, "ifindex": 1, "device": "lo",
         "mac": "0a:58:0a:f4:01:0a", "node_mac": "6e:1f:00:00:00:01", "identity": 12345,
         "flags": 0, "flag_names": [], "policy_enforced": ["ingress", "egress"]},
        {"address": "10.244.1.11", "id": 0, "ifindex": 999999, "device": None,
         "mac": "0a:58:0a:f4:01:0b", "node_mac": "6e:1f:00:00:00:02", "identity": 7,
         "flags": 1, "flag_names": ["host"], "policy_enforced": []}]


# --- network policy ------------------------------------------------------------------------

def fill_policy(maps):
    maps.put("policy", endpoint=12, identity=1001, proto=TCP, port=8080, port_prefix=16,
             packets=2, bytes=148)
    maps.put("policy", endpoint=12, identity=0, proto=TCP, port=0, port_prefix=6, deny=True,
             packets=1, bytes=74)
    maps.put("policy", endpoint=12, identity=1)
    maps.put("policy", endpoint=12, identity=2, dir=POLICY_EGRESS, proto=UDP)
    maps.put("policy", endpoint=12, identity=70000, dir=POLICY_EGRESS, proto=TCP, port=8080,
             port_prefix=13)
    maps.put("policy", endpoint=3, identity=6, proto=ICMP, port=8, port_prefix=16)


POLICY_HEADER = ("POLICY   DIRECTION   LABELS (source:key[=value])   PORT/PROTO      "
                 "PROXY PORT   AUTH TYPE   BYTES   PACKETS   PREFIX\n")


def test_policy_get(maps):
    fill_policy(maps)
    assert maps.text("bpf", "policy", "get", "12") == POLICY_HEADER + (
        "Deny     Ingress     ANY                           0-1023/TCP      NONE         "
        "disabled    74      1         14\n"
        "Allow    Ingress     reserved:host                 ANY             NONE         "
        "disabled    0       0         0\n"
        "Allow    Ingress     1001                          8080/TCP        NONE         "
        "disabled    148     2         24\n"
        "Allow    Egress      reserved:world                UDP             NONE         "
        "disabled    0       0         8\n"
        "Allow    Egress      70000                         8080-8087/TCP   NONE         "
        "disabled    0       0         21\n")
    doc = maps.json("bpf", "policy", "get", "12")
    assert doc[2] == {"policy": "Allow", "direction": "Ingress", "identity": 1001,
                      "labels": ["1001"], "protocol": 6, "port": 8080, "port_proto": "8080/TCP",
                      "prefix": 24, "proxy_port": 0, "auth_type": "disabled", "bytes": 148,
                      "packets": 2}
    assert [e["port_proto"] for e in doc] == ["0-1023/TCP", "ANY", "8080/TCP", "UDP",
                                              "8080-8087/TCP"]


IDENTITIES = {"identities": [
    {"id": 1, "reserved": True, "name": "host", "labels": ["reserved:host"]},
    {"id": 1001, "reserved": False, "namespace": "default",
     "labels": ["k8s:io.kubernetes.pod.namespace=default", "k8s:app=web",
                "k8s:io.cilium.k8s.policy.cluster=default"]},
]}


def test_policy_get_labels(maps, tmp_path):
    """With the agent answering, an identity's labels, sorted, one per line (Cilium's
    layout); one the agent does not know (70000) stays a number, as does every one with
    --numeric."""
    fill_policy(maps)
    sock = str(tmp_path / "agent.sock")
    agent = FakeAgent(sock, IDENTITIES)
    try:
        out = maps.text("--socket", sock, "bpf", "policy", "get", "12")
        # The LABELS column as wide as its longest label; continuation lines carry the
        # label alone (every other cell empty, padded as Cilium's tabwriter pads them).
        w = len("k8s:io.cilium.k8s.policy.cluster=default")

        def row(policy, direction, label, rest):
            return f"{policy:<6}   {direction:<9}   {label:<{w}}   {rest}"
        more = " " * len("8080-8087/TCP   NONE         disabled    0       0         ")
        assert out.splitlines()[3:8] == [
            row("Allow", "Ingress", "k8s:app=web",
                "8080/TCP        NONE         disabled    148     2         24"),
            row("", "", "k8s:io.cilium.k8s.policy.cluster=default", more),
            row("", "", "k8s:io.kubernetes.pod.namespace=default", more),
            row("Allow", "Egress", "reserved:world",
                "UDP             NONE         disabled    0       0         8"),
            row("Allow", "Egress", "70000",
                "8080-8087/TCP   NONE         disabled    0       0         21")]
        doc = maps.json("--socket", sock, "bpf", "policy", "get", "12")
        assert [e["labels"] for e in doc] == [
            ["ANY"], ["reserved:host"],
            ["k8s:app=web", "k8s:io.cilium.k8s.policy.cluster=default",
             "k8s:io.kubernetes.pod.namespace=default"],
            ["reserved:world"], ["70000"]]
        for flag in ("--numeric", "-n"):
            assert maps.text("--socket", sock, "bpf", "policy", "get", "12", flag) == \
                maps.text("--socket", str(tmp_path / "none.sock"), "bpf", "policy", "get",
                          "12")
        doc = maps.json("--socket", sock, "bpf", "policy", "get", "--all")
        assert doc[1]["entries"][2]["labels"][0] == "k8s:app=web"
    finally:
        agent.close()
    # No agent at all: the numbers, as before.
    assert "Allow    Ingress     1001  " in maps.text("--socket", sock, "bpf", "policy", "get",
                                                      "12")


def test_policy_get_all(maps):
    fill_policy(maps)
    out = maps.text("bpf", "policy", "get", "--all")
    first, second = out.split("\n\nEndpoint ID: 12\n\n")
    assert first.splitlines() == [
        "Endpoint ID: 3", "",
        "POLICY   DIRECTION   LABELS (source:key[=value])   PORT/PROTO   PROXY PORT   "
        "AUTH TYPE   BYTES   PACKETS   PREFIX",
        "Allow    Ingress     reserved:remote-node          8/ICMP       NONE         "
        "disabled    0       0         24"]
    assert second == maps.text("bpf", "policy", "get", "12")
    doc = maps.json("bpf", "policy", "get", "--all")
    assert [(ep["endpoint_id"], len(ep["entries"])) for ep in doc] == [(3, 1), (12, 5)]
    assert doc[0]["entries"][0]["port_proto"] == "8/ICMP"


def test_policy_get_errors(maps):
    r = maps.ctl("bpf", "policy", "get", "4", check=False)
    assert (r.returncode, r.stderr) == (
        1, f"agentctl: endpoint 4 has no policy map in {maps.root}/maps/policy\n")
    r = maps.ctl("bpf", "policy", "get", check=False)
    assert (r.returncode, r.stderr) == (
        2, "agentctl: bpf policy get: give an endpoint id or --all\n")
    r = maps.ctl("bpf", "policy", "get", "0", check=False)
    assert (r.returncode, r.stderr) == (
        2, "agentctl: bpf policy get: '0' is not an endpoint id (1-65535)\n")
    r = maps.ctl("bpf", "policy", "get", "1", "--all", check=False)
    assert r.returncode == 2
    r = maps.ctl("-o", "json", "bpf", "policy", "get", "4", check=False)
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"error": f"endpoint 4 has no policy map in {maps.root}/maps/policy"}
    assert maps.text("bpf", "policy", "get", "--all") == "no maps found\n"
    assert maps.json("bpf", "policy", "get", "--all") == []


def test_metrics_list_sums_cpus(maps):
    ncpus = possible_cpus()
    per_cpu = [2, 3] if ncpus >= 2 else [5]
    maps.put("metrics", reason=DROP_INVALID_HDR, dir=DIR_INGRESS, packets=per_cpu,
             bytes=[p * 60 for p in per_cpu])
    maps.put("metrics", reason=REASON_TO_ENDPOINT, dir=DIR_EGRESS, packets=[7], bytes=[700])
    maps.put("metrics", reason=REASON_TO_ENDPOINT, dir=DIR_INGRESS, packets=[1], bytes=[70])
    maps.put("metrics", reason=200, dir=DIR_INGRESS, packets=[1], bytes=[1])
    assert maps.text("bpf", "metrics", "list") == (
        "REASON                         DIRECTION   PACKETS   BYTES\n"
        "Delivered to local endpoint    INGRESS     1         70\n"
        "Delivered to local endpoint    EGRESS      7         700\n"
        "Invalid packet header [drop]   INGRESS     5         300\n"
        "Unknown reason (200) [drop]    INGRESS     1         1\n")
    doc = maps.json("bpf", "metrics", "list")
    assert doc[2] == {"reason": 134, "reason_name": "Invalid packet header", "drop": True,
                      "direction": 1, "direction_name": "INGRESS", "packets": 5, "bytes": 300}
    assert doc[1]["drop"] is False


# --- errors and help -----------------------------------------------------------------------

@pytest.mark.parametrize("cmd,missing", [
    (("bpf", "ct", "list"), "ct4_tcp"), (("bpf", "nat", "list"), "nat4"),
    (("bpf", "ipcache", "list"), "ipcache"), (("bpf", "endpoint", "list"), "endpoints"),
    (("bpf", "metrics", "list"), "metrics"), (("monitor",), "events"),
    (("bpf", "lb", "list"), "lb4_services"), (("bpf", "nat", "flush"), "nat4")])
def test_missing_map_is_one_line_error(cmd, missing):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    root = f"/sys/fs/bpf/axon-clitest-{os.getpid()}-absent"
    r = subprocess.run([str(AGENTCTL), "--bpf-root", root] + list(cmd), capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == (f"agentctl: {root}/maps/{missing}: not found (is the agent running "
                        f"with --bpf-root {root}?)\n")
    r = subprocess.run([str(AGENTCTL), "--bpf-root", root, "-o", "json"] + list(cmd),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"error": f"{root}/maps/{missing}: not found (is the agent "
                                             f"running with --bpf-root {root}?)"}


def test_wrong_map_layout_is_refused(maps):
    # A map pinned under the conntrack name with another value size: a different build.
    os.unlink(f"{maps.root}/maps/ct4_tcp")
    os.rename(f"{maps.root}/maps/nat4", f"{maps.root}/maps/ct4_tcp")
    r = maps.ctl("bpf", "ct", "list", check=False)
    assert r.returncode == 1
    assert re.fullmatch(rf"agentctl: {maps.root}/maps/ct4_tcp: key/value size 16/24, this "
                        r"agentctl expects 16/\d+ \(agent and agentctl from different "
                        r"builds\?\)\n", r.stderr), r.stderr


def test_bad_arguments(maps):
    r = maps.ctl("bpf", "ct", "list", "--bogus", check=False)
    assert (r.returncode, r.stderr) == (
        2, "agentctl: bpf ct list: unknown argument '--bogus'; run 'agentctl --help'\n")
    r = maps.ctl("monitor", "--type", "flow", check=False)
    assert (r.returncode, r.stderr) == (
        2, "agentctl: monitor: --type takes drop, trace or policy-verdict, not 'flow'\n")


def test_help_lists_commands():
    r = subprocess.run([str(AGENTCTL), "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    for cmd in ("bpf lb affinity list", "bpf ct list [global]", "bpf ct flush [global]", "bpf nat list",
                "bpf nat flush", "bpf ipcache list", "bpf endpoint list", "bpf metrics list",
                "bpf policy get <id>|--all",
                "monitor [--type drop|trace|policy-verdict]"):
        assert f"  {cmd} " in r.stdout, cmd
    assert "one read position" in r.stdout


# --- monitor -------------------------------------------------------------------------------

def ipv4_tcp(src, sport, dst, dport, flags, ihl=5):
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0)
    opts = b"\x01" * ((ihl - 5) * 4)
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(tcp), 1, 0, 64, TCP, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return eth + ip + opts + tcp


def ipv4_icmp_echo(src, dst, ident):
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    icmp = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, ICMP, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return eth + ip + icmp


class Monitor:
    """agentctl monitor as a subprocess, read line by line with a deadline.

    Reads the pipes unbuffered: a buffered reader would swallow several lines at once
    and leave select() waiting for data it already has."""

    def __init__(self, maps, *args):
        self.proc = subprocess.Popen([str(AGENTCTL), "--bpf-root", maps.root, "monitor"] +
                                     list(args), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.bufs = {self.proc.stdout.fileno(): b"", self.proc.stderr.fileno(): b""}
        # The listening notice goes to stderr, so stdout stays one event per line.
        ready = self._readline(self.proc.stderr.fileno(), 10)
        assert ready.startswith("Listening for "), ready

    def _readline(self, fd, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.bufs[fd]:
            left = deadline - time.monotonic()
            r, _, _ = select.select([fd], [], [], max(left, 0))
            assert r, f"no output from agentctl monitor within {timeout}s"
            chunk = os.read(fd, 65536)
            assert chunk, "agentctl monitor closed its output"
            self.bufs[fd] += chunk
        line, _, self.bufs[fd] = self.bufs[fd].partition(b"\n")
        return line.decode()

    def line(self, timeout=10):
        return self._readline(self.proc.stdout.fileno(), timeout)

    def no_line(self, timeout=0.5):
        fd = self.proc.stdout.fileno()
        if self.bufs[fd]:
            return False
        r, _, _ = select.select([fd], [], [], timeout)
        return not r

    def stop(self):
        pending_out = self.bufs[self.proc.stdout.fileno()]
        pending_err = self.bufs[self.proc.stderr.fileno()]
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=10)
        out, err = pending_out + out, pending_err + err
        return self.proc.returncode, out.decode(), err.decode()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def monitor(maps):
    started = []

    def start(*args):
        m = Monitor(maps, *args)
        started.append(m)
        return m
    try:
        yield start
    finally:
        for m in started:
            m.kill()


TIME = r"\d\d:\d\d:\d\d\.\d{6}"


def test_monitor_decodes_drop_and_trace(maps, monitor):
    syn = ipv4_tcp("10.244.1.10", 1234, "10.96.0.10", 80, 0x02)
    synack = ipv4_tcp("10.96.0.10", 80, "10.244.1.10", 1234, 0x12)
    mon = monitor()
    maps.emit(type=EVENT_DROP, dir=DIR_INGRESS, reason=DROP_INVALID_HDR, ifindex=1,
              orig_len=len(syn), data=syn.hex())
    line = mon.line()
    assert re.fullmatch(TIME + r" drop \(Invalid packet header, 134\) INGRESS ifindex=1 \(lo\) "
                        r"identity 0->0 len=54: 10\.244\.1\.10:1234 -> 10\.96\.0\.10:80 tcp SYN",
                        line), line
    maps.emit(type=EVENT_TRACE, dir=DIR_EGRESS, reason=REASON_TO_ENDPOINT, ifindex=999999,
              ifindex_out=1, src_identity=2, dst_identity=12345, orig_len=1500,
              data=synack.hex())
    line = mon.line()
    assert re.fullmatch(TIME + r" trace \(Delivered to local endpoint, 5\) EGRESS "
                        r"ifindex=999999 to ifindex=1 \(lo\) identity 2->12345 len=1500: "
                        r"10\.96\.0\.10:80 -> 10\.244\.1\.10:1234 tcp SYN, ACK", line), line
    maps.emit(type=EVENT_DROP, dir=DIR_INGRESS, reason=137, ifindex=1,
              data=ipv4_icmp_echo("10.244.1.10", "10.244.2.20", 77).hex())
    line = mon.line()
    assert line.endswith("(IPv4 options not supported, 137) INGRESS ifindex=1 (lo) identity "
                         "0->0 len=0: 10.244.1.10 -> 10.244.2.20 icmp EchoRequest id=77"), line
    rc, out, err = mon.stop()
    assert rc == 0 and out == ""
    assert err.endswith("3 event(s) received, 3 shown\n")


def test_monitor_type_filter(maps, monitor):
    pkt = ipv4_tcp("10.244.1.10", 1234, "10.96.0.10", 80, 0x10).hex()
    mon = monitor("--type", "drop")
    maps.emit(type=EVENT_TRACE, reason=REASON_TO_ENDPOINT, data=pkt)
    maps.emit(type=EVENT_DROP, reason=DROP_INVALID_HDR, data=pkt)
    maps.emit(type=EVENT_TRACE, reason=REASON_TO_ENDPOINT, data=pkt)
    assert " drop (Invalid packet header, 134) " in mon.line()
    assert mon.no_line()
    rc, out, err = mon.stop()
    assert (rc, out) == (0, "")
    assert err.endswith("3 event(s) received, 1 shown\n")

    mon = monitor("--type=trace")
    maps.emit(type=EVENT_DROP, reason=DROP_INVALID_HDR, data=pkt)
    maps.emit(type=EVENT_TRACE, reason=REASON_TO_ENDPOINT, data=pkt)
    line = mon.line()
    assert " trace (Delivered to local endpoint, 5) " in line and line.endswith("tcp ACK")
    assert mon.no_line()
    assert mon.stop()[0] == 0


def test_monitor_policy_verdict(maps, monitor):
    syn = ipv4_tcp("203.0.113.10", 40000, "10.244.1.12", 8080, 0x02)
    out = ipv4_tcp("10.244.1.12", 40001, "10.244.2.20", 22, 0x02)
    mon = monitor("--type", "policy-verdict")
    maps.emit(type=EVENT_DROP, reason=DROP_POLICY, data=out.hex())
    maps.emit(type=EVENT_POLICY_VERDICT, dir=DIR_INGRESS, reason=REASON_POLICY_ALLOWED,
              endpoint_id=12, remote_identity=2, src_identity=2, dst_identity=1002,
              action=POLICY_ACTION_ALLOW, match_type=POLICY_MATCH_L3_L4,
              flow_hash=0x3c1e5a77, orig_len=len(syn), data=syn.hex())
    line = mon.line()
    assert re.fullmatch(TIME + r" Policy verdict log: flow 0x3c1e5a77 local EP ID 12, remote "
                        r"ID world, proto 6, ingress, action allow, auth: disabled, match "
                        r"L3-L4, 203\.0\.113\.10:40000 -> 10\.244\.1\.12:8080 tcp SYN",
                        line), line
    maps.emit(type=EVENT_POLICY_VERDICT, dir=DIR_EGRESS, reason=DROP_POLICY_DENY,
              endpoint_id=12, remote_identity=3005, action=POLICY_ACTION_DENY,
              match_type=POLICY_MATCH_L4_ONLY, data=out.hex())
    line = mon.line()
    assert line.endswith(" Policy verdict log: flow 0x0 local EP ID 12, remote ID 3005, proto 6, "
                         "egress, action deny, auth: disabled, match L4-Only, "
                         "10.244.1.12:40001 -> 10.244.2.20:22 tcp SYN"), line
    assert mon.no_line()
    rc, _, err = mon.stop()
    assert rc == 0 and err.endswith("3 event(s) received, 2 shown\n"), err

    mon = monitor("-o", "json")
    maps.emit(type=EVENT_POLICY_VERDICT, dir=DIR_INGRESS, reason=DROP_POLICY, endpoint_id=7,
              remote_identity=12345, action=POLICY_ACTION_DENY, match_type=POLICY_MATCH_NONE,
              data=syn.hex())
    ev = json.loads(mon.line())
    assert {k: ev[k] for k in ("type", "reason_name", "endpoint_id", "remote_identity",
                               "remote_identity_name", "policy_direction", "action",
                               "match")} == {
        "type": "policy-verdict", "reason_name": "Policy denied", "endpoint_id": 7,
        "remote_identity": 12345, "remote_identity_name": "12345",
        "policy_direction": "ingress", "action": "deny", "match": "none"}
    assert ev["packet"]["destination_port"] == 8080
    assert mon.stop()[0] == 0


def test_monitor_json(maps, monitor):
    syn = ipv4_tcp("10.244.1.10", 1234, "10.96.0.10", 80, 0x02)
    mon = monitor("-o", "json")
    maps.emit(type=EVENT_DROP, dir=DIR_INGRESS, reason=DROP_INVALID_HDR, ifindex=1,
              src_identity=5, dst_identity=6, orig_len=54, data=syn.hex(), ts_ns=123)
    ev = json.loads(mon.line())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", ev.pop("time"))
    assert re.fullmatch(TIME, ev.pop("time_local"))
    assert ev == {
        "ts_ns": 123, "type": "drop", "reason": 134, "reason_name": "Invalid packet header",
        "dir": 1, "direction": "INGRESS", "ifindex": 1, "ifname": "lo", "ifindex_out": 0,
        "ifname_out": None, "src_identity": 5, "dst_identity": 6, "orig_len": 54,
        "cap_len": 54, "summary": "10.244.1.10:1234 -> 10.96.0.10:80 tcp SYN",
        "packet": {"ethertype": 0x0800, "source": "10.244.1.10", "destination": "10.96.0.10",
                   "protocol": 6, "fragment": False, "source_port": 1234,
                   "destination_port": 80, "tcp_flags": "SYN", "truncated": False,
                   "malformed": False}}
    assert mon.stop()[0] == 0


def test_monitor_survives_malformed_captures(maps, monitor):
    syn = ipv4_tcp("10.244.1.10", 1234, "10.96.0.10", 80, 0x02)
    frag = bytearray(syn)
    frag[14 + 6:14 + 8] = struct.pack("!H", 185)          # fragment offset, no L4 header
    bad_version = bytearray(syn)
    bad_version[14] = 0x65
    cases = [
        (syn[:14 + 10].hex(), None, "IPv4 [truncated: 10 of 20 header bytes]"),
        (syn[:14 + 20 + 6].hex(), None, "10.244.1.10:1234 -> 10.96.0.10:80 tcp [truncated]"),
        (syn[:8].hex(), None, "[truncated Ethernet header: 8 bytes]"),
        ("", None, "[no packet bytes captured]"),
        (bytes(bad_version).hex(), None, "IPv4 [bad header: version 6 ihl 5]"),
        (bytes(frag).hex(), None, "10.244.1.10 -> 10.96.0.10 tcp [fragment]"),
        (ipv4_tcp("10.0.0.1", 1, "10.0.0.2", 2, 0x04, ihl=7).hex(), None,
         "10.0.0.1:1 -> 10.0.0.2:2 tcp RST [IP options]"),
        (ipv4_tcp("10.0.0.1", 1, "10.0.0.2", 2, 0x04, ihl=15)[:14 + 40].hex(), None,
         "10.0.0.1 -> 10.0.0.2 proto 6 [truncated]"),
        (b"\xff".hex() * 128, None, "ethertype 0xffff"),
        # cap_len claims more than the capture holds: clamped, never read past the event
        (syn.hex(), 4096, "10.244.1.10:1234 -> 10.96.0.10:80 tcp SYN"),
        ((b"\x00" * 12 + b"\x81\x00").hex(), None, "VLAN [truncated]"),
    ]
    mon = monitor()
    for data, cap_len, _ in cases:
        fields = dict(type=EVENT_DROP, reason=DROP_INVALID_HDR, data=data)
        if cap_len is not None:
            fields["cap_len"] = cap_len
        maps.emit(**fields)
    for _, _, summary in cases:
        line = mon.line()
        assert line.endswith(": " + summary), (line, summary)
    # A record shorter than an event header, and an unknown event type.
    maps.emit(type=EVENT_DROP, size=12)
    assert mon.line() == "short event: 12 bytes, a header is 48"
    maps.emit(type=9, reason=250, data=syn.hex())
    assert " type-9 (Unknown reason, 250) " in mon.line()
    # Still decoding afterwards.
    maps.emit(type=EVENT_DROP, reason=DROP_INVALID_HDR, data=syn.hex())
    assert mon.line().endswith("tcp SYN")
    rc, _, err = mon.stop()
    assert rc == 0, err


# --- status: extra sections rendered generically -------------------------------------------

STATUS = {
    "kubernetes": {"connected": True, "server": "https://127.0.0.1:6443", "version": "v1.30.0",
                   "last_event": "now", "watches": []},
    "load_balancing": {"services": 1, "frontends": 1, "backends": 2, "endpoints": 2,
                       "endpoint_slices": 1},
    "maps": [], "attach": [], "modules": [], "unrealized": [], "skipped_objects_total": 0,
    "skipped_objects": [],
    "node": {"name": "node-a", "addresses": ["192.168.50.10"], "pod_cidr": "10.244.1.0/24"},
    "ct_gc": {"passes": 3, "last_deleted": 12, "interval_ms": 5000},
    "routes": [{"cidr": "10.244.2.0/24", "via": "192.168.50.11"},
               {"cidr": "10.244.3.0/24", "via": "192.168.50.12"}],
    "some_new_thing": {"nested": {"depth": 2}, "enabled": False, "missing": None},
}


def test_status_renders_new_sections(tmp_path):
    sock = str(tmp_path / "agent.sock")
    agent = FakeAgent(sock, STATUS)
    try:
        def status(*args):
            r = subprocess.run([str(AGENTCTL), "--socket", sock, "status"] + list(args),
                               capture_output=True, text=True, timeout=10)
            assert r.returncode == 0, r.stderr
            return r.stdout
        plain = status()
        extras = ("Node:\n"
                  "  name: node-a\n"
                  "  addresses: 192.168.50.10\n"
                  "  pod_cidr: 10.244.1.0/24\n"
                  "Conntrack GC:\n"
                  "  passes: 3\n"
                  "  last_deleted: 12\n"
                  "  interval_ms: 5000\n")
        assert extras in plain
        assert "Routes: 2 item(s)\n" in plain
        assert ("Some new thing:\n"
                "  nested:\n"
                "    depth: 2\n"
                "  enabled: false\n"
                "  missing: -\n") in plain
        verbose = status("--verbose")
        assert extras in verbose
        assert ("Routes:\n"
                "  - cidr=10.244.2.0/24 via=192.168.50.11\n"
                "  - cidr=10.244.3.0/24 via=192.168.50.12\n") in verbose
    finally:
        agent.close()
