#!/usr/bin/python3
"""Pod-to-pod throughput and latency: Axon's tc datapath vs. the kernel's routing vs. loopback.

Three paths, measured side by side in the same run, round by round:

  kernel    a node (netlab, nodes=["a"]) with a client and a server pod: veth pairs,
            /32 routes, the node's gateway address; no BPF at all
  axon      the same topology in a second lab whose node runs axon-agent (tc programs on
            the pods' host-side devices and the native device: bpf_redirect_peer
            between pods)
  loopback  client and server in one namespace over lo: the limit
  kube-proxy  the kernel's routing on a node that also holds kube-proxy's iptables-mode
            rules for 10,000 services (../shared/bench/kube-proxy-iptables.py): what a
            node Axon replaces pays per packet (netfilter conntrack and hooks), for
            reference; the targets compare against the plain kernel path

Throughput: iperf3, one TCP stream, SECONDS per run (received bits/s). Latency: sockperf
TCP ping-pong, SECONDS per run, full round-trip time, p50 and p99. Each figure is the
median of ROUNDS runs; runs are interleaved (kernel, axon, loopback, kernel, ...) so
drift on the machine hits every path alike. Ratios compare medians.

Targets (issue 3): throughput >= 1.15x the kernel's routing and >= 0.75x loopback;
latency <= the kernel's routing.

Clients run on CPU 0 and servers on CPU 1 (CPUS="0,1"; CPUS="" lets the scheduler
place them): left to the scheduler, a run lands both ends on one CPU or on two at
random, and a ping-pong's round trip differs by 2x between those, which swamps
the difference between the paths.

Usage: bench_datapath.py [--no-axon] [--no-kube-proxy]   (ROUNDS=5, SECONDS_PER_RUN=3 by default)
Without --no-axon, a run whose agent cannot attach its programs prints the other two
paths and exits 1, saying why.
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
from netlab import NetLab  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "5"))
SECONDS = int(os.environ.get("SECONDS_PER_RUN", "3"))
IPERF_PORT = 5201
SOCKPERF_PORT = 11111
SHARED_BENCH = REPO.parent / "shared" / "bench"
_CPUS = [c for c in os.environ.get("CPUS", "0,1").split(",") if c]
CLIENT_PIN = ["taskset", "-c", _CPUS[0]] if len(_CPUS) == 2 else []
SERVER_PIN = ["taskset", "-c", _CPUS[1]] if len(_CPUS) == 2 else []
KUBE_PROXY_SERVICES = 10000


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


def throughput(client, ip):
    """Gbit/s received by the server over one iperf3 TCP stream."""
    r = client.run(CLIENT_PIN + ["iperf3", "-c", ip, "-p", str(IPERF_PORT), "-t", str(SECONDS),
                                 "-J"],
                   timeout=SECONDS + 30)
    try:
        res = json.loads(r.stdout)
        return res["end"]["sum_received"]["bits_per_second"] / 1e9
    except (ValueError, KeyError):
        raise RuntimeError(f"iperf3 to {ip} failed: {r.stderr}{r.stdout[-500:]}") from None


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


def start_axon(lab, apiserver):
    """The agent on lab's node; returns it once programs sit on every device, or raises
    RuntimeError saying why not."""
    a = lab.node("a")
    lab.publish(apiserver.client())
    agent = Agent(lab, apiserver, node=a)
    try:
        agent.start()
        wait_attached(agent, a.native, *[p.host_if for p in a.pods.values()], timeout=15)
    except AssertionError as e:
        raise RuntimeError(f"{str(e).splitlines()[0]}\n{agent.log_tail(15)}") from None
    return agent


def main(argv):
    with_axon = "--no-axon" not in argv
    with_kube_proxy = "--no-kube-proxy" not in argv and (SHARED_BENCH /
                                                         "kube-proxy-iptables.py").exists()
    labs, agent, axon_error = [], None, None
    srv = None
    try:
        lab_k, server_k, client_k = lab_with_pods("bk")
        labs.append(lab_k)
        paths = {"kernel": (client_k, server_k.ip), "loopback": (client_k, "127.0.0.1")}
        if with_kube_proxy:
            lab_p, server_p, client_p = lab_with_pods("bp")
            labs.append(lab_p)
            load_kube_proxy_rules(lab_p, server_p.ip)
            paths["kube-proxy"] = (client_p, server_p.ip)
        if with_axon:
            lab_x, server_x, client_x = lab_with_pods("bx")
            labs.append(lab_x)
            srv = k8s.ApiServer(tls=True, quiet=True).start()
            try:
                agent = start_axon(lab_x, srv)
                paths["axon"] = (client_x, server_x.ip)
            except RuntimeError as e:
                axon_error = str(e)
        order = [p for p in ("kernel", "axon", "kube-proxy", "loopback") if p in paths]
        tput = {p: [] for p in order}
        p50 = {p: [] for p in order}
        p99 = {p: [] for p in order}
        for rnd in range(ROUNDS):
            for p in order:
                tput[p].append(throughput(*paths[p]))
            for p in order:
                a, b = latency(*paths[p])
                p50[p].append(a)
                p99[p].append(b)
            print(f"round {rnd + 1}/{ROUNDS}: " + "  ".join(
                f"{p} {tput[p][-1]:.1f} Gbit/s {p50[p][-1]:.1f} us" for p in order),
                flush=True)
    finally:
        if agent is not None:
            agent.stop()
        for lab in labs:
            lab.close()
        if srv is not None:
            srv.close()

    med = {p: (statistics.median(tput[p]), statistics.median(p50[p]),
               statistics.median(p99[p])) for p in order}
    print(f"\npod -> pod on one node, median of {ROUNDS} interleaved runs of {SECONDS} s "
          f"(iperf3, 1 TCP stream; sockperf TCP ping-pong, full round trip; "
          f"{'client on CPU %s, server on CPU %s' % tuple(_CPUS) if CLIENT_PIN else 'unpinned'})")
    print(f"{'path':10} {'throughput':>13} {'rtt p50':>10} {'rtt p99':>10}")
    for p in order:
        t, a, b = med[p]
        print(f"{p:10} {t:>8.2f} Gbit/s {a:>7.1f} us {b:>7.1f} us")
    k, lo = med["kernel"], med["loopback"]
    print(f"kernel/loopback: throughput {k[0] / lo[0]:.2f}x, rtt p50 {k[1] / lo[1]:.2f}x")
    if "axon" in med:
        x = med["axon"]
        print(f"axon/kernel:     throughput {x[0] / k[0]:.2f}x (target >= 1.15x), "
              f"rtt p50 {x[1] / k[1]:.2f}x, p99 {x[2] / k[2]:.2f}x (target <= 1.00x)")
        print(f"axon/loopback:   throughput {x[0] / lo[0]:.2f}x (target >= 0.75x)")
        if "kube-proxy" in med:
            kp = med["kube-proxy"]
            print(f"axon/kube-proxy node: throughput {x[0] / kp[0]:.2f}x, "
                  f"rtt p50 {x[1] / kp[1]:.2f}x, p99 {x[2] / kp[2]:.2f}x")
    elif with_axon:
        print(f"axon: not measured: the agent did not attach its programs:\n{axon_error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
