#!/usr/bin/python3
"""Pod-to-pod throughput and latency: Axon's tc datapath vs. the kernel's routing vs. loopback.

Paths, measured side by side in the same run, round by round:

  kernel    a node (netlab, nodes=["a"]) with a client and a server pod: veth pairs,
            /32 routes, the node's gateway address; no BPF at all
  kernel+bigtcp  the same, with the IPv4 GSO/GRO maximum set by hand to 196608 on the
            devices axon+bigtcp's agent sets (both ends of each pod's veth, ext0): how
            much BIG TCP gives without Axon
  axon      the same topology in a lab whose node runs axon-agent with its defaults
            (tc programs on the pods' host-side devices and the native device:
            bpf_redirect_peer between pods)
  axon+bigtcp  the same with --enable-ipv4-big-tcp (the agent sets the sizes when it
            attaches, before the first connection is made)
  floor     the kernel path's topology with the least any eBPF host routing can do on
            the pods' host-side devices (tests/bench/bpf/redirect_floor.bpf.c: a FIB
            lookup and bpf_redirect_peer, nothing else): the most that skipping the
            host's forwarding hop can give, with no datapath work of its own
  sockmap   the kernel path with socket-level redirection between the two pods
            (tests/bench/bpf/sockmap_probe.bpf.c: sock_ops + sk_msg on the pods'
            cgroup): TCP/IP skipped on both ends. Not an Axon feature; measured to
            show what it gives and, in the receive-queue check below, why Axon does
            not ship it
  loopback  client and server in one namespace over lo: the limit
  kube-proxy  the kernel's routing on a node that also holds kube-proxy's iptables-mode
            rules for 10,000 services (../shared/bench/kube-proxy-iptables.py): what a
            node Axon replaces pays per packet (netfilter conntrack and hooks), for
            reference; the targets compare against the plain kernel path

Throughput: iperf3, one TCP stream, SECONDS per run (received bits/s). Latency: sockperf
TCP ping-pong, SECONDS per run, full round-trip time, p50 and p99. Each figure is the
median of ROUNDS runs; runs are interleaved (kernel, kernel+bigtcp, axon, ..., kernel,
...) so drift on the machine hits every path alike. Ratios compare medians. "avg pkt"
is what the client pod's eth0 sent per packet during the iperf3 runs (bytes / packets,
one count per GSO packet): above 65536 only with BIG TCP.

CPU: how busy the client's and the server's CPU were during each path's iperf3 runs
(/proc/stat): the path whose sending CPU is saturated is bound by what that CPU does
(copying from user space, TCP, and, through the veth's backlog, the receiving pod's
IP and TCP input), not by the host's hop.

Receive-queue check (kernel and sockmap paths): a server that accepts and does not
read for a while, and a client sending without blocking (at most RECVQ_CAP bytes):
how much the client got accepted. TCP stops it at the socket buffers (a few MiB);
sockmap's ingress redirect charges the receiver only against the node-wide TCP
memory limit (cilium#6431), so one slow reader can hold GiBs of kernel memory.

Targets: throughput >= 1.15x the kernel's routing and >= 0.75x loopback;
latency <= the kernel's routing.

Clients run on CPU 0 and servers on CPU 1 (CPUS="0,1"; CPUS="" lets the scheduler
place them): left to the scheduler, a run lands both ends on one CPU or on two at
random, and a ping-pong's round trip differs by 2x between those, which swamps
the difference between the paths.

Usage: bench_datapath.py [--no-axon] [--no-bigtcp] [--no-kube-proxy] [--no-floor] [--no-sockmap]
(ROUNDS=5, SECONDS_PER_RUN=3, IPERF_LEN=iperf3's 128K by default). Without --no-axon,
a run whose agent cannot attach its programs (or, for axon+bigtcp, set the sizes)
prints the other paths and exits 1, saying why.
"""

import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "tests" / "lib"))

import k8s  # noqa: E402
from harness import Agent, wait_attached  # noqa: E402
from netlab import NetLab, wait_for  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "5"))
SECONDS = int(os.environ.get("SECONDS_PER_RUN", "3"))
IPERF_PORT = 5201
SOCKPERF_PORT = 11111
SHARED_BENCH = REPO.parent / "shared" / "bench"
_CPUS = [c for c in os.environ.get("CPUS", "0,1").split(",") if c]
CLIENT_PIN = ["taskset", "-c", _CPUS[0]] if len(_CPUS) == 2 else []
SERVER_PIN = ["taskset", "-c", _CPUS[1]] if len(_CPUS) == 2 else []
KUBE_PROXY_SERVICES = 10000
# iperf3's write size (-l); "" = its default, 128 KiB. A write is the most one
# GSO packet takes from it unless writes coalesce, so BIG TCP's 192 KiB packets
# need larger ones (IPERF_LEN=512K).
IPERF_LEN = os.environ.get("IPERF_LEN", "")
BIG_TCP = 196608                # Cilium's (and the agent's) IPv4 GSO/GRO maximum
LINK_SIZES = str(REPO / "tests" / "tools" / "link_sizes.py")
PY = "/usr/bin/python3"
BENCH_BPF = REPO / ".output" / "tests" / "bench"      # make bench builds these
RECVQ_PORT = 5301
RECVQ_CAP = 1 << 30             # the receive-queue check stops the client here


def start_servers(pod):
    """iperf3 and sockperf servers in pod, on every address (the pod IP and lo)."""
    pod.spawn(SERVER_PIN + ["iperf3", "-s", "-p", str(IPERF_PORT)], stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL)
    pod.spawn(SERVER_PIN + ["sockperf", "server", "--tcp", "-i", "0.0.0.0", "-p",
                            str(SOCKPERF_PORT)],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_listening(pod):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = pod.exec("ss", "-Htln").stdout
        if f":{IPERF_PORT} " in out and f":{SOCKPERF_PORT} " in out:
            return
        time.sleep(0.1)
    raise RuntimeError(f"servers in {pod.name} did not start")


def throughput(client, ip, dev):
    """(Gbit/s received by the server over one iperf3 TCP stream, bytes per packet the
    client's dev sent meanwhile)."""
    before = client.link_stats(dev)
    r = client.run(CLIENT_PIN + ["iperf3", "-c", ip, "-p", str(IPERF_PORT), "-t", str(SECONDS),
                                 "-J"] + (["-l", IPERF_LEN] if IPERF_LEN else []),
                   timeout=SECONDS + 30)
    after = client.link_stats(dev)
    try:
        res = json.loads(r.stdout)
        gbit = res["end"]["sum_received"]["bits_per_second"] / 1e9
    except (ValueError, KeyError):
        raise RuntimeError(f"iperf3 to {ip} failed: {r.stderr}{r.stdout[-500:]}") from None
    pkts = after["tx_packets"] - before["tx_packets"]
    return gbit, (after["tx_bytes"] - before["tx_bytes"]) / pkts if pkts else 0.0


def latency(client, ip):
    """(p50, p99) round-trip microseconds of sockperf TCP ping-pong."""
    r = client.run(CLIENT_PIN + ["sockperf", "ping-pong", "--tcp", "-i", ip, "-p", str(SOCKPERF_PORT),
                    "-t", str(SECONDS), "--full-rtt"], timeout=SECONDS + 30)
    out = r.stdout + r.stderr
    p = dict(re.findall(r"percentile (\d+\.\d+) =\s+([\d.]+)", out))
    if "50.000" not in p or "99.000" not in p:
        raise RuntimeError(f"sockperf to {ip} failed: {out[-800:]}")
    return float(p["50.000"]), float(p["99.000"])


def lab_with_pods(tag):
    lab = NetLab(tag, nodes=["a"])
    a = lab.node("a")
    server, client = a.add_pod("server"), a.add_pod("client")
    start_servers(server)
    start_servers(client)            # for loopback
    wait_listening(server)
    wait_listening(client)
    return lab, server, client


def load_kube_proxy_rules(lab, backend_ip):
    """kube-proxy's iptables-mode nat table for KUBE_PROXY_SERVICES services, loaded
    into lab's node namespace (which turns on netfilter conntrack there)."""
    gen = SHARED_BENCH / "kube-proxy-iptables.py"
    rules = subprocess.run(["/usr/bin/python3", str(gen), str(KUBE_PROXY_SERVICES)],
                           capture_output=True, text=True, check=True).stdout
    subprocess.run(["nsenter", f"--net=/var/run/netns/{lab.node('a').netns}",
                    "iptables-restore"], input=rules.replace("10.9.1.2", backend_ip),
                   text=True, check=True, capture_output=True)


def big_tcp_devices(lab):
    """[(namespace, device)] the agent gives BIG TCP in lab: both ends of each pod's veth
    and the native device."""
    a = lab.node("a")
    return [(a, a.native)] + [end for p in a.pods.values() for end in ((a, p.host_if),
                                                                         (p, "eth0"))]


def ipv4_sizes(ns, dev):
    s = json.loads(ns.exec(PY, LINK_SIZES, "show", dev).stdout)[dev]
    return s["gso_ipv4_max_size"], s["gro_ipv4_max_size"]


def set_big_tcp_by_hand(lab):
    """kernel+bigtcp: the sizes axon+bigtcp's agent sets, on the same devices."""
    for ns, dev in big_tcp_devices(lab):
        ns.exec(PY, LINK_SIZES, "set", dev, str(BIG_TCP))


def start_axon(lab, apiserver, flags=()):
    """The agent on lab's node; returns it once programs sit on every device (and, with
    --enable-ipv4-big-tcp, every device carries the size), or raises RuntimeError saying
    why not."""
    a = lab.node("a")
    lab.publish(apiserver.client())
    agent = Agent(lab, apiserver, node=a, extra=flags)
    try:
        agent.start()
        wait_attached(agent, a.native, *[p.host_if for p in a.pods.values()], timeout=15)
        if "--enable-ipv4-big-tcp" in flags:
            want = len(big_tcp_devices(lab))
            wait_for(lambda: agent.status()["big_tcp"]["devices"] == want, 15,
                     what=f"BIG TCP on {want} devices")
    except AssertionError as e:
        raise RuntimeError(f"{str(e).splitlines()[0]}\n{agent.log_tail(15)}") from None
    return agent


def cpu_ticks():
    """{cpu number: (busy, total)} jiffies from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *v = line.split()
            if name.startswith("cpu") and name[3:].isdigit():
                v = [int(x) for x in v[:8]]
                out[int(name[3:])] = (sum(v) - v[3] - v[4], sum(v))
    return out


def busy_percent(before, after, cpu):
    b = after[cpu][0] - before[cpu][0]
    t = after[cpu][1] - before[cpu][1]
    return 100.0 * b / t if t else 0.0


def bench_object(name):
    path = BENCH_BPF / f"{name}.bpf.o"
    if not path.exists():
        raise RuntimeError(f"{path} missing: run `make bench` (it builds tests/bench/bpf/)")
    return str(path)


def attach_floor(lab):
    """redirect_floor on tc ingress of each pod's host-side device (devices this lab
    made). Loaded by bpftool and attached by its pin: tc loading the object itself
    would leave iproute2's pin directories in the machine's bpffs."""
    a = lab.node("a")
    pin = f"/sys/fs/bpf/axon-bench-{lab.prefix}-floor"
    subprocess.run(["bpftool", "prog", "load", bench_object("redirect_floor"), pin, "type",
                    "classifier"], check=True, capture_output=True)
    try:
        for p in a.pods.values():
            a.exec("tc", "qdisc", "add", "dev", p.host_if, "clsact")
            a.exec("tc", "filter", "add", "dev", p.host_if, "ingress", "bpf", "da", "pinned", pin)
    finally:
        os.unlink(pin)          # the filters hold the program; the lab's devices go with it


class SockmapProbe:
    """sockmap_probe's programs pinned under a bpffs directory of its own, sock_ops on
    the lab node's cgroup root (which holds only the lab's pods), sk_msg on its map."""

    def __init__(self, lab):
        self.pin = f"/sys/fs/bpf/axon-bench-{lab.prefix}"
        self.cgroup = lab.node("a").cgroup_root
        subprocess.run(["bpftool", "prog", "loadall", bench_object("sockmap_probe"), self.pin,
                        "pinmaps", f"{self.pin}/maps"], check=True, capture_output=True)
        subprocess.run(["bpftool", "cgroup", "attach", self.cgroup, "sock_ops", "pinned",
                        f"{self.pin}/probe_sockops"], check=True, capture_output=True)
        subprocess.run(["bpftool", "prog", "attach", "pinned", f"{self.pin}/probe_msg",
                        "msg_verdict", "pinned", f"{self.pin}/maps/probe_socks"],
                       check=True, capture_output=True)

    def close(self):
        subprocess.run(["bpftool", "cgroup", "detach", self.cgroup, "sock_ops", "pinned",
                        f"{self.pin}/probe_sockops"], capture_output=True)
        subprocess.run(["rm", "-rf", self.pin], check=False)


RECVQ_SERVER = """
import socket, sys, time
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1]))); s.listen(1)
print("listening", flush=True)
c, _ = s.accept(); time.sleep(float(sys.argv[2])); n = 0
while True:
    b = c.recv(1 << 20)
    if not b: break
    n += len(b)
print(n)
"""
RECVQ_CLIENT = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2]))); c.setblocking(False)
cap, n, buf, end = int(sys.argv[3]), 0, b"x" * 65536, time.monotonic() + 1.0
while n < cap and time.monotonic() < end:
    try: n += c.send(buf)
    except BlockingIOError: time.sleep(0.005)
print(n, flush=True); c.setblocking(True); c.close()
"""


def recv_queue_check(server, client):
    """Bytes a non-blocking client got accepted in 1 s by a server that does not read
    (capped at RECVQ_CAP), and whether the server then read all of them."""
    srv = server.spawn([PY, "-c", RECVQ_SERVER, str(RECVQ_PORT), "2"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    srv.stdout.readline()
    r = client.run([PY, "-c", RECVQ_CLIENT, server.ip, str(RECVQ_PORT), str(RECVQ_CAP)],
                   timeout=20)
    out, _ = srv.communicate(timeout=30)
    sent = int(r.stdout.split()[0]) if r.stdout.split() else -1
    read = int(out.split()[-1]) if out.split() else -1
    return sent, read


def main(argv):
    with_axon = "--no-axon" not in argv
    with_bigtcp = "--no-bigtcp" not in argv
    with_kube_proxy = "--no-kube-proxy" not in argv and (SHARED_BENCH /
                                                         "kube-proxy-iptables.py").exists()
    with_floor = "--no-floor" not in argv
    with_sockmap = "--no-sockmap" not in argv
    labs, agents, servers, probes, axon_error = [], [], [], [], None
    paths, lab_of, server_of, recvq = {}, {}, {}, {}

    def add_path(name, tag, prepare=lambda lab, server: None):
        """A lab of its own for path name: prepare(lab, server) sets it up (raising
        RuntimeError if it cannot), then the client's iperf3 goes to the server pod."""
        lab, server, client = lab_with_pods(tag)
        labs.append(lab)
        prepare(lab, server)
        paths[name] = (client, server.ip, "eth0")
        lab_of[name], server_of[name] = lab, server
        return client

    try:
        client_k = add_path("kernel", "bk")
        paths["loopback"] = (client_k, "127.0.0.1", "lo")
        if with_bigtcp:
            add_path("kernel+bigtcp", "bkb", lambda lab, _: set_big_tcp_by_hand(lab))
        if with_kube_proxy:
            add_path("kube-proxy", "bp", lambda lab, srv: load_kube_proxy_rules(lab, srv.ip))
        if with_floor:
            add_path("floor", "bf", lambda lab, _: attach_floor(lab))
        if with_sockmap:
            add_path("sockmap", "bs", lambda lab, _: probes.append(SockmapProbe(lab)))
        if with_axon:
            for name, tag, flags in (("axon", "bx", ()),
                                     ("axon+bigtcp", "bxb", ("--enable-ipv4-big-tcp",))):
                if name == "axon+bigtcp" and not with_bigtcp:
                    continue
                srv = k8s.ApiServer(tls=True, quiet=True).start()
                servers.append(srv)
                try:
                    add_path(name, tag, lambda lab, _: agents.append(start_axon(lab, srv, flags)))
                except RuntimeError as e:
                    axon_error = f"{name}: {e}"
        # Each BIG TCP path really carries the size on every device it should.
        for name in ("kernel+bigtcp", "axon+bigtcp"):
            if name in paths:
                got = {dev: ipv4_sizes(ns, dev) for ns, dev in big_tcp_devices(lab_of[name])}
                if any(v != (BIG_TCP, BIG_TCP) for v in got.values()):
                    raise RuntimeError(f"{name}: IPv4 GSO/GRO maximum not {BIG_TCP}: {got}")
        order = [p for p in ("kernel", "kernel+bigtcp", "floor", "axon", "axon+bigtcp",
                             "sockmap", "kube-proxy", "loopback") if p in paths]
        tput = {p: [] for p in order}
        cpu_c = {p: [] for p in order}
        cpu_s = {p: [] for p in order}
        pkt = {p: [] for p in order}
        p50 = {p: [] for p in order}
        p99 = {p: [] for p in order}
        for rnd in range(ROUNDS):
            for p in order:
                before = cpu_ticks()
                t, size = throughput(*paths[p])
                after = cpu_ticks()
                if CLIENT_PIN:
                    cpu_c[p].append(busy_percent(before, after, int(_CPUS[0])))
                    cpu_s[p].append(busy_percent(before, after, int(_CPUS[1])))
                tput[p].append(t)
                pkt[p].append(size)
            for p in order:
                a, b = latency(*paths[p][:2])
                p50[p].append(a)
                p99[p].append(b)
            print(f"round {rnd + 1}/{ROUNDS}: " + "  ".join(
                f"{p} {tput[p][-1]:.1f} Gbit/s {p50[p][-1]:.1f} us" for p in order),
                flush=True)
        for p in ("kernel", "sockmap"):
            if p in paths:
                recvq[p] = recv_queue_check(server_of[p], paths[p][0])
    finally:
        for probe in probes:
            probe.close()
        for agent in agents:
            agent.stop()
        for lab in labs:
            lab.close()
        for srv in servers:
            srv.close()

    med = {p: (statistics.median(tput[p]), statistics.median(p50[p]),
               statistics.median(p99[p]), statistics.median(pkt[p])) for p in order}
    print(f"\npod -> pod on one node, median of {ROUNDS} interleaved runs of {SECONDS} s "
          f"(iperf3, 1 TCP stream, {IPERF_LEN or '128K'} writes; sockperf TCP ping-pong, "
          f"full round trip; "
          f"{'client on CPU %s, server on CPU %s' % tuple(_CPUS) if CLIENT_PIN else 'unpinned'})")
    print(f"{'path':14} {'throughput':>13} {'avg pkt':>9} {'rtt p50':>10} {'rtt p99':>10}"
          f"{'  cpu busy client/server' if CLIENT_PIN else ''}")
    for p in order:
        t, a, b, size = med[p]
        cpu = (f"   {statistics.median(cpu_c[p]):5.1f}% / {statistics.median(cpu_s[p]):5.1f}%"
               if CLIENT_PIN else "")
        print(f"{p:14} {t:>8.2f} Gbit/s {size:>9.0f} {a:>7.1f} us {b:>7.1f} us{cpu}")

    def ratio(x, y, what):
        tx, ty = med[x], med[y]
        return (f"{what:28} throughput {tx[0] / ty[0]:.2f}x, rtt p50 {tx[1] / ty[1]:.2f}x, "
                f"p99 {tx[2] / ty[2]:.2f}x")

    k, lo = med["kernel"], med["loopback"]
    if "floor" in med:
        print(ratio("floor", "kernel", "floor/kernel:") + "  (any host routing's most)")
    if "sockmap" in med:
        print(ratio("sockmap", "kernel", "sockmap/kernel:") + "  (not shipped: see below)")
    print(f"{'kernel/loopback:':28} throughput {k[0] / lo[0]:.2f}x, rtt p50 {k[1] / lo[1]:.2f}x")
    if "kernel+bigtcp" in med:
        print(ratio("kernel+bigtcp", "kernel", "kernel+bigtcp/kernel:") + "  (BIG TCP alone)")
    for x in ("axon", "axon+bigtcp"):
        if x in med:
            print(ratio(x, "kernel", f"{x}/kernel:") + "  (targets: >= 1.15x; <= 1.00x)")
    if "axon+bigtcp" in med and "kernel+bigtcp" in med:
        print(ratio("axon+bigtcp", "kernel+bigtcp", "axon+bigtcp/kernel+bigtcp:") +
              "  (Axon's host routing, same sizes)")
    for x in ("axon", "axon+bigtcp"):
        if x in med:
            print(f"{x + '/loopback:':28} throughput {med[x][0] / lo[0]:.2f}x (target >= 0.75x)")
            if "kube-proxy" in med:
                print(ratio(x, "kube-proxy", f"{x}/kube-proxy node:"))
    for p, (sent, read) in recvq.items():
        print(f"receive queue, {p}: a client sending for 1 s to a server that does not read got "
              f"{sent / 2**20:.1f} MiB accepted{' (the cap)' if sent >= RECVQ_CAP else ''}; "
              f"the server then read {read / 2**20:.1f} MiB")
    if axon_error:
        print(f"not measured: the agent did not get ready:\n{axon_error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
