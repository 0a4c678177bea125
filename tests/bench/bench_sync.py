#!/usr/bin/python3
"""Control plane: initial sync, agent memory, programming latency; kube-proxy load times.

One node namespace with a native device (netlab), the test apiserver preloaded with
SERVICES ClusterIP Services (port 80/TCP) with ENDPOINTS ready endpoints each (one
EndpointSlice per Service) and CES_ENDPOINTS endpoints of other nodes in
CiliumEndpointSlices of 100, plus the Node objects.

  sync      from the apiserver's first LIST or watch-list request (its wall clock,
            /_test/stats first_request) to every Service's slot 0 holding count ENDPOINTS and every
            CES endpoint in the ipcache (tests/tools/sync_poll reads the pinned maps
            by key, CLOCK_REALTIME); the agent is started fresh each round
  rss       the agent's VmRSS (and VmHWM, the peak) once the maps are complete
  latency   CHANGES EndpointSlice updates (a merge patch adding an 11th endpoint to a
            different Service each time) written at RATE/s; for each, the time from the
            apiserver writing the MODIFIED event to the agent's watch stream (/_test/sent)
            to sync_poll seeing the Service's slot 0 count become ENDPOINTS + 1
  iptables, nftables
            the same SERVICES services as kube-proxy-shaped rules (../shared/bench
            generators, one endpoint each), loaded with iptables-restore / nft -f into
            the node namespace, wall time of the loader

sync, rss and the loaders are medians of ROUNDS runs (default 3); the machine is
shared, so figures move between runs. Environment: SERVICES (10000), ENDPOINTS (10),
CES_ENDPOINTS (50000), CHANGES (1000), RATE (100), ROUNDS (3), AGENT_FLAGS (extra agent
flags, e.g. "--k8s-client-qps=100 --k8s-client-burst=200"; default none: the agent's
defaults, QPS 10 and burst 20).

Usage: bench_sync.py          (as root, from the repository, after make)
"""

import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "tests" / "lib"))

import k8s  # noqa: E402
from harness import Agent, OUT  # noqa: E402
from netlab import NetLab  # noqa: E402

SHARED_BENCH = REPO.parent / "shared" / "bench"
SYNC_POLL = str(OUT / "tests" / "tools" / "sync_poll")
SERVICES = int(os.environ.get("SERVICES", "10000"))
ENDPOINTS = int(os.environ.get("ENDPOINTS", "10"))
CES_ENDPOINTS = int(os.environ.get("CES_ENDPOINTS", "50000"))
CHANGES = int(os.environ.get("CHANGES", "1000"))
RATE = float(os.environ.get("RATE", "100"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
AGENT_FLAGS = os.environ.get("AGENT_FLAGS", "").split()
NS = "bench"


def vip(i):
    # The addresses kube-proxy's generators use.
    return "10.%d.%d.%d" % (96 + (i >> 16), (i >> 8) & 255, i & 255)


def ip_of(base, n):
    return ".".join(str((base + n) >> s & 255) for s in (24, 16, 8, 0))


BACKENDS = 10 << 24 | 128 << 16          # 10.128.0.0/12: service endpoints
EXTRA = 10 << 24 | 144 << 16             # 10.144.0.0/16: endpoints added by the changes
CES_PODS = 10 << 24 | 160 << 16          # 10.160.0.0/12: CES endpoints (other nodes)


def backend(i, j):
    return ip_of(BACKENDS, i * ENDPOINTS + j)


def slice_endpoints(i, extra=None):
    eps = [(backend(i, j), True) for j in range(ENDPOINTS)]
    if extra:
        eps.append((extra, True))
    return k8s.endpointslice(NS, f"svc{i}-1", f"svc{i}", eps, [("http", 8080, "TCP")])


def objects_file(lab, path):
    items = list(lab.k8s_objects())
    # Other nodes the CES endpoints live on.
    for n in range(8):
        items.append(k8s.node(f"remote-{n}", f"192.168.60.{10 + n}", f"10.250.{n}.0/24"))
    for i in range(SERVICES):
        items.append(k8s.service(NS, f"svc{i}", [("http", 80, "TCP")], cluster_ip=vip(i)))
        items.append(slice_endpoints(i))
    for c in range(0, CES_ENDPOINTS, 100):
        eps = [(f"pod-{k}", ip_of(CES_PODS, k), 1000 + k % 50, f"192.168.60.{10 + k % 8}")
               for k in range(c, min(c + 100, CES_ENDPOINTS))]
        items.append(k8s.ciliumendpointslice(f"ces-{c // 100}", NS, eps))
    pathlib.Path(path).write_text(json.dumps({"items": items}))


def expect_complete():
    lines = [f"svc {vip(i)} 80 {ENDPOINTS}" for i in range(SERVICES)]
    lines += [f"ipc {ip_of(CES_PODS, k)}" for k in range(CES_ENDPOINTS)]
    return "\n".join(lines) + "\n"


def rss_kib(pid):
    out = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0])
    return out


def cpu_s(pid):
    """User + system CPU seconds the process has used."""
    f = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def sync_round(lab, srv, api, expect):
    """Start a fresh agent; return (seconds from first LIST to maps complete, rss, agent)."""
    agent = Agent(lab, srv, extra=["--bpf-lb-map-max", str(max(65536, 4 * SERVICES *
                                                                (ENDPOINTS + 2)))] + AGENT_FLAGS)
    poll = subprocess.Popen([SYNC_POLL, agent.bpf_root, "all", "120"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    poll.stdin.write(expect)
    poll.stdin.close()
    api.reset_stats()
    agent.start(wait=False)
    out, err = poll.stdout.read(), poll.stderr.read()
    poll.wait(timeout=180)
    if poll.returncode != 0:
        raise RuntimeError(f"maps not complete: {err}\n{agent.log_tail(30)}")
    done = int(out.split("done_ns=")[1].split()[0]) / 1e9
    cpu = cpu_s(agent.proc.pid)
    # The agent's first LIST: a watch-list request, or a page where the server
    # refuses watch-list.
    first = api.stats()["first_request"]
    first_list = min(first[v] for v in ("list", "watchlist") if v in first)
    time.sleep(0.5)   # the agent's own follow-up work (status, GC) settles
    if os.environ.get("VERBOSE"):
        print(f"first LIST at {first_list:.3f}, maps complete at {done:.3f}, agent CPU "
              f"{cpu:.2f} s (since its start)\n"
              f"{agent.log_tail(40)}")
    return done - first_list, rss_kib(agent.proc.pid), agent


def latency(agent, api):
    """Per-change latencies (s) of CHANGES EndpointSlice patches at RATE/s."""
    n = min(CHANGES, SERVICES)
    expect = "".join(f"svc {vip(i)} 80 {ENDPOINTS + 1}\n" for i in range(n))
    poll = subprocess.Popen([SYNC_POLL, agent.bpf_root, "each", str(int(n / RATE) + 60)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    poll.stdin.write(expect)
    poll.stdin.close()
    seen = {}

    def read():
        for line in poll.stdout:
            i, t = line.split()
            seen[int(i)] = int(t) / 1e9
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    api.reset_stats()
    t0 = time.monotonic()
    for i in range(n):
        # Paced by the schedule, not by the answers: RATE changes per second.
        delay = t0 + i / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        eps = slice_endpoints(i, extra=ip_of(EXTRA, i))
        api.patch("endpointslices", NS, f"svc{i}-1", {"endpoints": eps["endpoints"]})
    rate = n / (time.monotonic() - t0)
    poll.wait(timeout=120)
    reader.join(timeout=5)
    if poll.returncode != 0:
        raise RuntimeError(f"changes not programmed: {poll.stderr.read()}")
    sent = {}
    for ev in api.request("GET", "/_test/sent").json()["events"]:
        if ev["resource"] == "endpointslices" and ev["type"] == "MODIFIED":
            sent.setdefault(ev["key"], ev["time"])
    lat = [seen[i] - sent[f"{NS}/svc{i}-1"] for i in range(n)]
    return lat, rate


def kube_proxy_load(lab, mode):
    rules = subprocess.run(["/usr/bin/python3", str(SHARED_BENCH / f"kube-proxy-{mode}.py"),
                            str(SERVICES)], capture_output=True, text=True, check=True).stdout
    loader = ["iptables-restore"] if mode == "iptables" else ["nft", "-f", "-"]
    flush = ([["iptables", "-t", "nat", "-F"], ["iptables", "-t", "nat", "-X"]]
             if mode == "iptables" else [["nft", "delete", "table", "ip", "kube-proxy"]])
    t0 = time.monotonic()
    subprocess.run(["nsenter", f"--net=/var/run/netns/{lab.node_ns}"] + loader, input=rules,
                   text=True, check=True, capture_output=True)
    took = time.monotonic() - t0
    for cmd in flush:
        lab.node_exec(*cmd, check=False)
    return took


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    lab = NetLab("bsync", nodes=["a"])
    syncs, rss, hwm, loads = [], [], [], {"iptables": [], "nftables": []}
    lat = rate = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "objects.json")
            objects_file(lab, path)
            srv = k8s.ApiServer(tls=True, quiet=True, load=[path]).start()
            try:
                api = srv.client(timeout=120)
                expect = expect_complete()
                for r in range(ROUNDS):
                    s, m, agent = sync_round(lab, srv, api, expect)
                    syncs.append(s)
                    rss.append(m["VmRSS"])
                    hwm.append(m["VmHWM"])
                    print(f"round {r + 1}: sync {s * 1000:.0f} ms, rss {m['VmRSS'] / 1024:.1f} "
                          f"MiB (peak {m['VmHWM'] / 1024:.1f})", flush=True)
                    if r == ROUNDS - 1:
                        lat, rate = latency(agent, api)
                    agent.stop()
                    agent.ctl("cleanup")
            finally:
                srv.close()
        for r in range(ROUNDS):
            for mode in loads:
                loads[mode].append(kube_proxy_load(lab, mode))
    finally:
        lab.close()

    n_eps = SERVICES * ENDPOINTS + CES_ENDPOINTS
    sync = statistics.median(syncs)
    print(f"\ncontrol plane, {SERVICES} Services x {ENDPOINTS} endpoints + {CES_ENDPOINTS} "
          f"CiliumEndpointSlice endpoints; medians of {ROUNDS} runs; agent flags: "
          f"{' '.join(AGENT_FLAGS) or '(defaults: QPS 10, burst 20, list limit 500)'}")
    print(f"  initial sync (first LIST -> maps complete) {sync * 1000:8.0f} ms   "
          f"runs: {', '.join(f'{s * 1000:.0f}' for s in syncs)}")
    print(f"  agent RSS after sync                       {statistics.median(rss) / 1024:8.1f} "
          f"MiB  ({statistics.median(rss) * 1024 / n_eps:.0f} B per endpoint; "
          f"peak {statistics.median(hwm) / 1024:.1f} MiB)")
    print(f"  programming latency, {len(lat)} changes at {rate:.0f}/s    "
          f"p50 {pct(lat, 50) * 1000:.2f} ms  p99 {pct(lat, 99) * 1000:.2f} ms  "
          f"max {max(lat) * 1000:.2f} ms")
    for mode, v in loads.items():
        m = statistics.median(v)
        print(f"  kube-proxy {mode:8} rules load ({SERVICES} services) {m * 1000:8.0f} ms   "
              f"= {m / sync:.1f}x Axon's sync")


if __name__ == "__main__":
    main()
