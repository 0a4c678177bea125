"""IPv4 BIG TCP (--enable-ipv4-big-tcp) on a node, end to end.

Node A (netlab: native device ext0, pods behind veths) runs the agent. The sizes are
read with tests/tools/link_sizes.py (raw rtnetlink, independent of the agent's code;
iproute2 6.1 cannot print them) inside each namespace: both ends of every pod's veth
and the native device must carry 196608 with the flag on, and stay untouched with it
off. A pod-to-pod bulk transfer shows the packets really are larger than 64 KiB: the
sending pod's eth0 transmits fewer, larger packets (its tx bytes / tx packets) and
from_container counts what it delivered with the bytes of each packet.
"""

import json
import re
import subprocess

import k8s
from harness import PY, REPO, reason, wait_attached
from netlab import wait_for
from test_datapath import up

BIG = 196608          # Cilium's bigTCPGSOMaxSize / bigTCPGROMaxSize
DEFAULT = 65536
LINK_SIZES = str(REPO / "tests" / "tools" / "link_sizes.py")
BULK_PORT = 5201

# One connection: the sink counts what arrives until EOF and answers with the
# count; the sender writes N bytes in 256 KiB writes, half-closes, reads the count.
SINK = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {port})); s.listen(8); print("ready", flush=True)
while True:
    c, _ = s.accept(); n = 0
    while (b := c.recv(1 << 20)):
        n += len(b)
    c.sendall(str(n).encode()); c.close()
"""
SEND = """
import json, socket, sys
n, buf = int(sys.argv[2]), bytes(256 << 10)
c = socket.create_connection((sys.argv[1], {port}), timeout=60)
left = n
while left:
    left -= c.send(memoryview(buf)[:min(left, len(buf))])
c.shutdown(socket.SHUT_WR)
print(json.dumps({{"sent": n, "received": int(c.recv(64))}}))
"""


def sizes(ns, dev):
    """(gso_ipv4_max_size, gro_ipv4_max_size) of dev in namespace ns."""
    s = json.loads(ns.exec(PY, LINK_SIZES, "show", dev).stdout)[dev]
    return s["gso_ipv4_max_size"], s["gro_ipv4_max_size"]


def tso_max(ns, dev):
    return json.loads(ns.exec(PY, LINK_SIZES, "show", dev).stdout)[dev]["tso_max_size"]


def all_veth_ends(pods):
    """[(namespace, device)] of both ends of every pod's veth."""
    return [end for p in pods for end in ((p.node, p.host_if), (p, "eth0"))]


def big_tcp_status(agent):
    return agent.status()["big_tcp"]


def wait_devices(agent, n):
    return wait_for(lambda: (lambda s: s if s["devices"] == n else None)(big_tcp_status(agent)),
                    10, what=f"BIG TCP on {n} devices")


def bulk(client, server_ip, nbytes):
    """nbytes over one TCP connection from client to the sink; (sent, received)."""
    r = client.run([PY, "-c", SEND.format(port=BULK_PORT), server_ip, str(nbytes)],
                   timeout=60)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    return res["sent"], res["received"]


def start_sink(pod):
    p = pod.spawn([PY, "-c", SINK.format(port=BULK_PORT)], in_cgroup=False,
                  stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"ready"


def average_packet(before, after):
    return (after["tx_bytes"] - before["tx_bytes"]) / (after["tx_packets"] - before["tx_packets"])


def metric(agent, code):
    """(packets, bytes) counted under reason code, over all directions."""
    rows = [e for e in agent.ctl_json("bpf", "metrics", "list") if e["reason"] == code]
    return sum(int(e["packets"]) for e in rows), sum(int(e["bytes"]) for e in rows)


def drops(agent):
    return [e for e in agent.ctl_json("bpf", "metrics", "list") if e["drop"]]


def test_both_veth_ends_and_the_native_device_get_196608(lab1, api, start_agent):
    a = lab1.node("a")
    pods = [a.add_pod("p1"), a.add_pod("p2")]
    # Before the agent: the kernel's defaults everywhere.
    for ns, dev in all_veth_ends(pods) + [(a, "ext0")]:
        assert sizes(ns, dev) == (DEFAULT, DEFAULT), dev
    agent = up(lab1, api, start_agent, "--enable-ipv4-big-tcp")
    st = wait_devices(agent, 5)          # 2 pods x 2 ends + ext0
    for ns, dev in all_veth_ends(pods) + [(a, "ext0")]:
        assert sizes(ns, dev) == (BIG, BIG), dev
    assert st["ipv4"] is True and st["active"] is True
    assert (st["gso_ipv4_max_size"], st["gro_ipv4_max_size"]) == (BIG, BIG)
    assert st["refused"] == 0 and st["native_left_alone"] == 0, st
    # Devices the agent does not attach to keep theirs: the node's lo, and ext0's
    # peer on the world bridge.
    assert sizes(a, "lo") == (DEFAULT, DEFAULT)
    world_port = next(d for d in lab1.world.links() if d.startswith(lab1.prefix[-8:] + "w"))
    assert sizes(lab1.world, world_port) == (DEFAULT, DEFAULT)
    # A pod added while the agent runs gets it too.
    p3 = a.add_pod("p3")
    lab1.publish(api)
    wait_attached(agent, p3.host_if)
    wait_devices(agent, 7)
    assert sizes(a, p3.host_if) == (BIG, BIG)
    assert sizes(p3, "eth0") == (BIG, BIG)
    line = next(l for l in agent.ctl("status").stdout.splitlines() if l.startswith("  big-tcp "))
    assert re.search(rf"\bok\b.*GSO/GRO max {BIG} on 7 device\(s\)", line), line
    # Each device was set once: link changes (p3's veth) read them again, no rewrite.
    log = agent.log_tail(400)
    assert log.count("IPv4 BIG TCP set") == 7, log


def test_pod_to_pod_packets_over_64k_through_axon(lab1, api, start_agent):
    a = lab1.node("a")
    client, server = a.add_pod("client"), a.add_pod("server")
    start_sink(server)
    agent = up(lab1, api, start_agent, "--enable-ipv4-big-tcp")
    wait_devices(agent, 5)
    nbytes = 512 << 20
    before = {p: p.link_stats("eth0") for p in (client, server)}
    pkts0, bytes0 = metric(agent, reason("REASON_TO_ENDPOINT"))
    sent, received = bulk(client, server.ip, nbytes)
    after = {p: p.link_stats("eth0") for p in (client, server)}
    pkts1, bytes1 = metric(agent, reason("REASON_TO_ENDPOINT"))
    # Every byte arrived ...
    assert received == sent == nbytes, (sent, received)
    # ... in packets larger than 64 KiB: the client's eth0 sent them (one count per
    # GSO packet) ...
    avg_tx = average_packet(before[client], after[client])
    assert avg_tx > DEFAULT, (before[client], after[client], avg_tx)
    # ... and from_container delivered them into the server pod as they were
    # (bpf_redirect_peer; it counts skb->len per packet). It also delivered the
    # server's ACKs to the client: those are what the server's eth0 sent.
    acks = after[server]["tx_packets"] - before[server]["tx_packets"]
    ack_bytes = after[server]["tx_bytes"] - before[server]["tx_bytes"]
    data_pkts, data_bytes = pkts1 - pkts0 - acks, bytes1 - bytes0 - ack_bytes
    assert data_pkts > 0 and data_bytes >= nbytes, (data_pkts, data_bytes)
    assert data_bytes / data_pkts > DEFAULT, (data_pkts, data_bytes)
    assert drops(agent) == [], drops(agent)


def test_flag_off_leaves_every_size_as_it_is(lab1, api, start_agent):
    a = lab1.node("a")
    client, server = a.add_pod("client"), a.add_pod("server")
    # One device already at 196608 (a previous run, or an operator): left so.
    a.exec(PY, LINK_SIZES, "set", server.host_if, str(BIG))
    start_sink(server)
    agent = up(lab1, api, start_agent)
    st = big_tcp_status(agent)
    assert st["ipv4"] is False and st["devices"] == 0 and st["gso_ipv4_max_size"] is None, st
    line = next(l for l in agent.ctl("status").stdout.splitlines() if l.startswith("  big-tcp "))
    assert re.search(r"\boff\b", line), line
    for ns, dev in all_veth_ends([client]) + [(server, "eth0"), (a, "ext0")]:
        assert sizes(ns, dev) == (DEFAULT, DEFAULT), dev
    assert sizes(a, server.host_if) == (BIG, BIG)
    # The control: without it a pod's packets stay within 64 KiB.
    before = client.link_stats("eth0")
    sent, received = bulk(client, server.ip, 128 << 20)
    assert received == sent
    assert average_packet(before, client.link_stats("eth0")) <= DEFAULT
    assert "BIG TCP" not in agent.log_tail(400)


def test_refusals_are_warned_once_counted_and_do_not_stop_attach(lab1, api, start_agent):
    """A native device whose driver cannot send 196608 (a bridge without ports:
    tso_max_size 65536) is left alone; a pod device the kernel refuses it on (a /32
    route via another such bridge) is warned about once and counted; both still get
    their programs, and the real pods their sizes."""
    a = lab1.node("a")
    p1 = a.add_pod("p1")
    for br in ("axbrn", "axbrp"):
        a.exec("ip", "link", "add", br, "type", "bridge")
        a.exec("ip", "link", "set", br, "up")
        assert tso_max(a, br) < BIG
    a.exec("ip", "route", "add", "10.244.1.99/32", "dev", "axbrp")
    api.apply(k8s.ciliumendpointslice("ces-odd", "default",
                                      [("odd", "10.244.1.99", 20001, a.ip)]))
    agent = up(lab1, api, start_agent, "--enable-ipv4-big-tcp", "--devices=ext0,axbrn",
               devs=("axbrn", "axbrp"))
    st = wait_for(lambda: (lambda s: s if s["devices"] == 3 and s["refused"] == 1 else None)(
        big_tcp_status(agent)), 10, what="BIG TCP on p1's veth and ext0, axbrp refused")
    assert st["native_left_alone"] == 1, st
    assert st["last_error"].startswith("axbrp (host-side): Invalid argument"), st
    for ns, dev in all_veth_ends([p1]) + [(a, "ext0")]:
        assert sizes(ns, dev) == (BIG, BIG), dev
    assert sizes(a, "axbrn") == (DEFAULT, DEFAULT)
    assert sizes(a, "axbrp") == (DEFAULT, DEFAULT)
    line = next(l for l in agent.ctl("status").stdout.splitlines() if l.startswith("  big-tcp "))
    assert "degraded" in line and "axbrp" in line, line
    # Link changes make the agent read every device again; the refusal is not
    # retried, so it is warned about once.
    p2 = a.add_pod("p2")
    lab1.publish(api)
    wait_devices(agent, 5)
    log = agent.log_tail(400)
    assert len(re.findall(r"IPv4 BIG TCP not set on a device.*dev=axbrp role=host-side "
                          r"error=\"Invalid argument\" errno=22", log)) == 1, log
    assert len(re.findall(r"native device left alone.*dev=axbrn role=native "
                          r"tso_max_size=65536", log)) == 1, log
    assert big_tcp_status(agent)["refused"] == 1
    assert sizes(p2, "eth0") == (BIG, BIG)
