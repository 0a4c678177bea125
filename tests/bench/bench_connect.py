#!/usr/bin/python3
"""Connection setup cost: Axon's socket LB vs. kube-proxy's rule shapes.

One node (network namespace), a server pod and a client pod. For each number
of services N, N ClusterIP services VIP_i:80 -> server:8080 are loaded three
ways, and connect()+close() is timed (tests/tools/sock_bench, mean ns per
connection) side by side in the same run:

  bare      client outside Axon's cgroup, no rules: straight to the pod IP
  axon      client inside the cgroup, to the last VIP: the agent programmed
            the services from the test apiserver
  iptables  kube-proxy iptables-mode rules (iptables-restore), to the last VIP
  nftables  kube-proxy nftables-mode rules (nft -f), to the last VIP

bare and axon runs are interleaved round by round; each figure is the median
of ROUNDS runs. Ratios are to the median bare connect of the whole run.

Usage: bench_connect.py [N ...]   (default 1 10000 100000)
"""

import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "tests" / "lib"))

import k8s  # noqa: E402
from harness import Agent, OUT  # noqa: E402
from netlab import NetLab  # noqa: E402

SHARED_BENCH = REPO.parent / "shared" / "bench"
SOCK_BENCH = str(OUT / "tests" / "tools" / "sock_bench")
ROUNDS = int(os.environ.get("ROUNDS", "5"))
COUNT = int(os.environ.get("COUNT", "4000"))


def vip(i):
    # The same addresses kube-proxy's generators use.
    return "10.%d.%d.%d" % (96 + (i >> 16), (i >> 8) & 255, i & 255)


def services_file(n, backend_ip, path):
    items = []
    for i in range(n):
        items.append({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": f"svc{i}", "namespace": "bench"},
                      "spec": {"type": "ClusterIP", "clusterIP": vip(i), "clusterIPs": [vip(i)],
                               "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
        items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": f"svc{i}-1", "namespace": "bench",
                                   "labels": {"kubernetes.io/service-name": f"svc{i}"}},
                      "addressType": "IPv4",
                      "endpoints": [{"addresses": [backend_ip], "conditions": {"ready": True}}],
                      "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
    pathlib.Path(path).write_text(json.dumps({"items": items}))


def measure(lab, pod, addr, in_cgroup):
    p = pod.spawn([SOCK_BENCH, "--addr", addr, "--count", str(COUNT), "--warmup", "200"],
                  in_cgroup=in_cgroup, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=300)
    m = re.search(r"mean_ns=(\d+)", out.decode())
    if p.returncode != 0 or not m:
        raise RuntimeError(f"sock_bench {addr} failed: {err.decode()}{out.decode()}")
    return int(m.group(1))


def rounds(fns):
    """Run each fn ROUNDS times, interleaved; return the median of each."""
    samples = [[] for _ in fns]
    for _ in range(ROUNDS):
        for i, fn in enumerate(fns):
            samples[i].append(fn())
    return [statistics.median(s) for s in samples]


def kube_proxy_rules(mode, n, backend_ip):
    script = SHARED_BENCH / f"kube-proxy-{mode}.py"
    r = subprocess.run(["/usr/bin/python3", str(script), str(n)], capture_output=True,
                       text=True, check=True)
    return r.stdout.replace("10.9.1.2", backend_ip)


def main(ns):
    lab = NetLab("bench")
    rows, bare_all = [], []
    try:
        server, client = lab.add_pod("server"), lab.add_pod("client")
        server.spawn([SOCK_BENCH, "--serve", f"{server.ip}:8080"], in_cgroup=False)
        time.sleep(0.3)
        direct = f"{server.ip}:8080"
        for n in ns:
            last = f"{vip(n - 1)}:80"
            # -- Axon: agent programs N services from the test apiserver.
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "services.json")
                services_file(n, server.ip, path)
                srv = k8s.ApiServer(tls=True, quiet=True, load=[path]).start()
                try:
                    agent = Agent(lab, srv, extra=["--bpf-lb-map-max",
                                                   str(max(65536, 2 * n + 1024))])
                    t0 = time.monotonic()
                    agent.start(wait=False)
                    agent.wait_synced(timeout=600)
                    sync_s = time.monotonic() - t0
                    fe = agent.status()["load_balancing"]["frontends"]
                    assert fe == n, f"agent programmed {fe} frontends, expected {n}"
                    bare, miss, axon = rounds([lambda: measure(lab, client, direct, False),
                                               lambda: measure(lab, client, direct, True),
                                               lambda: measure(lab, client, last, True)])
                    bare_all.append(bare)
                    rows.append(("axon", n, bare, axon,
                                 f"sync {sync_s:.1f}s; pod IP in cgroup {miss / bare:.2f}x"))
                    agent.stop()
                    agent.ctl("cleanup")
                finally:
                    srv.close()
            # -- kube-proxy shapes, loaded into the node namespace.
            for mode, loader, flush in (
                    ("iptables", ["iptables-restore"], [["iptables", "-t", "nat", "-F"],
                                                        ["iptables", "-t", "nat", "-X"]]),
                    ("nftables", ["nft", "-f", "-"], [["nft", "delete", "table", "ip",
                                                       "kube-proxy"]])):
                rules = kube_proxy_rules(mode, n, server.ip)
                t0 = time.monotonic()
                subprocess.run(["nsenter", f"--net=/var/run/netns/{lab.node_ns}"] + loader,
                               input=rules, text=True, check=True, capture_output=True)
                load_s = time.monotonic() - t0
                try:
                    pod_ip, to_vip = rounds([lambda: measure(lab, client, direct, False),
                                             lambda: measure(lab, client, last, False)])
                finally:
                    for cmd in flush:
                        lab.node_exec(*cmd, check=False)
                rows.append((mode, n, pod_ip, to_vip, f"load {load_s:.2f}s"))
    finally:
        lab.close()

    bare = statistics.median(bare_all)
    print(f"\nconnect()+close() mean per connection, median of {ROUNDS} interleaved runs "
          f"of {COUNT}; bare pod-IP connect = {bare / 1000:.1f} us")
    # VIP/pod IP compares runs interleaved in the same rounds (for axon: the
    # bare connect; for kube-proxy: the pod IP with its rules loaded).
    print(f"{'mode':9} {'services':>9} {'pod IP':>10} {'last VIP':>10} {'VIP/podIP':>10} "
          f"{'VIP/bare':>9}   note")
    for mode, n, pod_ip, to_vip, note in rows:
        print(f"{mode:9} {n:>9} {pod_ip / 1000:>8.1f}us {to_vip / 1000:>8.1f}us "
              f"{to_vip / pod_ip:>9.2f}x {to_vip / bare:>8.2f}x   {note}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1, 10000, 100000])
