#!/usr/bin/python3
"""CNI ADD and DEL latency: axon-cni against the reference plugins' ptp + host-local.

Both wire the same pod shape (a veth, the pod's /32, a route on the node) in node A of
a lab (netlab, nodes=["a"]); each invocation is the plugin binary run the way a runtime
runs it (CNI_* environment, config on stdin, CNI_NETNS a path), timed from spawn to exit
by tests/tools/cni_burst, a C driver that starts a burst's plugins back to back with
posix_spawn and waits for them together (a Python driver's own CPU, on the same two
cores, would be part of what it measures); axon-cni is exec'd directly, as containerd and CRI-O do (it only talks to the agent's
socket, so the namespace it runs in does not matter); ptp builds the node's side in the
namespace it runs in, so it runs under nsenter into the node's namespace.

  axon-cni   one request to the node's agent, which allocates from the Node's pod CIDR,
             builds the veth and routes, writes the endpoints map entry and attaches
             from_container / to_container before answering
  ptp        containernetworking-plugins' ptp with host-local IPAM (/usr/lib/cni):
             the same wiring with no datapath to program, for reference

Concurrency 1: ADDS pods added one after the other, then deleted one after the other.
Concurrency 20: rounds of 20 ADDs started at once (then 20 DELs at once), ROUNDS rounds.
Figures: p50 and p99 of the per-invocation latency, in ms. Target: axon-cni's ADD p99
<= 20 ms at both concurrencies. For axon-cni also the agent's own time per ADD (its
"CNI endpoint added" log line: ms from the request to the answer) and the median of
each step it logs (IPAM, netlink sockets, veth create, host end, pod end, node route,
endpoint record, device events, datapath sync), in us; and axon-cni's VERSION, which it
answers without the agent: the process start every invocation pays, one at a time and
20 at once (the floor of an ADD in a burst of 20), and a static program that does nothing,
20 at once (the machine's floor for any plugin); and the kernel's floor for a burst:
the node side of 20 pods wired by one `ip -batch` process, no CNI.

CLUSTER_EPS=N publishes N endpoints of another node (CiliumEndpointSlices of 100): what an
ADD costs with that many endpoints in the cluster. NODES=N adds N other Nodes on node A's subnet and runs the agent with
--auto-direct-node-routes, which then installs a route to each one's pod CIDR: what an ADD
costs in a cluster of that size.

Usage: bench_cni.py (ADDS=100 ROUNDS=5 NODES=0 CLUSTER_EPS=0; PTP=0 skips ptp).
"""

import json
import os
import re
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "tests" / "lib"))

import k8s  # noqa: E402
from harness import OUT, Agent  # noqa: E402
from netlab import NetLab, wait_for  # noqa: E402

ADDS = int(os.environ.get("ADDS", 100))
NODES = int(os.environ.get("NODES", 0))
CLUSTER_EPS = int(os.environ.get("CLUSTER_EPS", 0))
ROUNDS = int(os.environ.get("ROUNDS", 5))
CONCURRENCY = 20
CNI_BIN = "/usr/lib/cni"
CNI_BURST = OUT / "tests" / "tools" / "cni_burst"
STEPS = ("ipam", "sockets", "create", "host", "pod", "route", "record", "devices", "sync")


def burst(node, plugin, command, config, jobs, direct):
    """ms of each invocation of jobs [(container id, netns path)], all started at once by
    cni_burst (tests/tools/cni_burst.c), which execs the plugin as a runtime does. ptp
    builds the node's side where it runs: its driver runs in the node's namespace."""
    with tempfile.NamedTemporaryFile("w", prefix="axon-bench-conf-", suffix=".json") as f:
        json.dump(config, f)
        f.flush()
        argv = [str(CNI_BURST), plugin, f.name, command, CNI_BIN, "bench"]
        if not direct:
            argv = ["nsenter", f"--net=/var/run/netns/{node.netns}"] + argv
        r = subprocess.run(argv, input="".join(f"{c} {n}\n" for c, n in jobs),
                           capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{plugin} {command}: {r.stdout}{r.stderr}")
    return [float(line.split()[1]) for line in r.stdout.splitlines()]


def exec_floor(plugin, config, n=40):
    """ms of VERSION invocations, which the plugin answers itself: starting it and reading
    its answer, the part of every figure that is no CNI work. One at a time (n), then
    ROUNDS bursts of CONCURRENCY at once through cni_burst: the floor of an ADD's latency
    in a burst of that size, whatever the agent does."""
    single = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([plugin], input=json.dumps(config), env={"CNI_COMMAND": "VERSION"},
                       capture_output=True, text=True, check=True)
        single.append((time.perf_counter() - t0) * 1000)
    bursts = []
    for _ in range(ROUNDS):
        bursts += burst(None, plugin, "VERSION", config,
                        [(f"v{i}", "/proc/self/ns/net") for i in range(CONCURRENCY)], True)
    return single, bursts


def noop_floor():
    """ms of a static C program that does nothing, CONCURRENCY at once through cni_burst
    (ROUNDS bursts): what creating and reaping that many processes costs here, below any
    plugin."""
    with tempfile.TemporaryDirectory(prefix="axon-bench-noop-") as d:
        noop = pathlib.Path(d, "noop")
        subprocess.run(["cc", "-O2", "-static", "-x", "c", "-", "-o", str(noop)],
                       input="int main(void) { return 0; }\n", text=True, check=True)
        times = []
        for _ in range(ROUNDS):
            times += burst(None, str(noop), "VERSION", {},
                           [(f"n{i}", "/proc/self/ns/net") for i in range(CONCURRENCY)], True)
    return times


def kernel_floor(lab, node, rounds=5):
    """ms the kernel takes for the node side of a burst of CONCURRENCY pods, with no CNI
    plugin and no agent: CONCURRENCY veth pairs, each peer created in its own namespace,
    brought up with a /32 route on the node, in ONE `ip -batch` process in the node's
    namespace (less that process's start, timed on a batch that changes nothing). The
    kernel creates links and routes under one lock (RTNL), so the last ADD of a burst
    cannot be answered sooner, whatever serves it."""
    ns = [f"{lab.prefix}-kf{i}" for i in range(CONCURRENCY)]
    times = []
    with tempfile.TemporaryDirectory(prefix="axon-bench-kf-") as d:
        noop, batch = pathlib.Path(d, "noop"), pathlib.Path(d, "batch")
        noop.write_text("link show dev lo\n" * 3)
        batch.write_text("".join(
            f"link add {lab.prefix}kf{i} type veth peer name eth0 netns {n}\n"
            f"link set {lab.prefix}kf{i} up\n"
            f"route add 10.254.0.{i + 1}/32 dev {lab.prefix}kf{i}\n"
            for i, n in enumerate(ns)))
        for _ in range(rounds):
            for n in ns:
                subprocess.run(["ip", "netns", "add", n], check=True)
            try:
                spent = []
                for f in (noop, batch):
                    t0 = time.perf_counter()
                    subprocess.run(["ip", "-n", node.netns, "-batch", str(f)], check=True,
                                   capture_output=True)
                    spent.append((time.perf_counter() - t0) * 1000)
                times.append(spent[1] - spent[0])
            finally:
                for n in ns:    # the veths go with their peers' namespaces
                    subprocess.run(["ip", "netns", "del", n], check=False)
    return times


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def agent_adds(log_path):
    """{container id: {"ms": agent ms, step: us, ...}} from the agent's ADD log lines."""
    out = {}
    for line in pathlib.Path(log_path).read_text().splitlines():
        if 'msg="CNI endpoint added"' not in line:
            continue
        kv = dict(re.findall(r'(\w+)=(\S+)', line))
        r = {"ms": float(kv["ms"]), **{s: int(kv.get(f"{s}_us", 0)) for s in STEPS}}
        # Checks, the MTU look-up, the answer: what no step covers.
        r["other"] = max(0, int(r["ms"] * 1000) - sum(r[s] for s in STEPS))
        out[kv["container"]] = r
    return out


def measure(lab, node, plugin, config, tag, direct=False):
    """{(concurrency, command): [ms, ...]}, and the container ids of each concurrency."""
    out = {}
    ids = {1: [f"{tag}-{i}" for i in range(ADDS)], CONCURRENCY: []}
    netns = []
    for i in range(max(ADDS, CONCURRENCY)):
        name = f"{lab.prefix}-{tag}{i}"
        lab._add_netns(name)
        netns.append(f"/var/run/netns/{name}")
    # Concurrency 1.
    for cmd in ("ADD", "DEL"):
        out[(1, cmd)] = [burst(node, plugin, cmd, config, [(f"{tag}-{i}", netns[i])], direct)[0]
                         for i in range(ADDS)]
    # Concurrency 20.
    for r in range(ROUNDS):
        jobs = [(f"{tag}-r{r}-{i}", netns[i]) for i in range(CONCURRENCY)]
        for cmd in ("ADD", "DEL"):
            out.setdefault((CONCURRENCY, cmd), []).extend(
                burst(node, plugin, cmd, config, jobs, direct))
        ids[CONCURRENCY].extend(c for c, _ in jobs)
    return out, ids


def main():
    results, steps, floor, floor20, kfloor, adds_by_id = {}, {}, [], [], [], {}
    nfloor = noop_floor()
    apiserver = k8s.ApiServer(tls=True, quiet=True).start()
    lab = NetLab("bc", nodes=["a"])
    agent = None
    try:
        node = lab.node("a")
        kfloor = kernel_floor(lab, node)    # before the agent, which watches links
        lab.publish(apiserver.client())
        extra = []
        if NODES:
            # Other nodes on node A's subnet, each with a pod CIDR node A routes to.
            api = apiserver.client()
            for i in range(NODES):
                api.apply(k8s.node(f"other-{i}", f"192.168.50.{20 + i}",
                                   f"10.245.{i}.0/24"))
            extra = ["--auto-direct-node-routes=true"]
        if CLUSTER_EPS:
            # Pods of another node, in slices of 100, as the cluster's endpoints.
            api = apiserver.client()
            for c in range(0, CLUSTER_EPS, 100):
                api.apply(k8s.ciliumendpointslice(f"bench-remote-{c // 100}", "bench", [
                    (f"remote-{i}", f"10.246.{i // 250}.{i % 250 + 1}", 1000 + i % 50,
                     "192.168.50.20") for i in range(c, min(c + 100, CLUSTER_EPS))]))
        agent = Agent(lab, apiserver, extra=extra, node=node).start()
        axon = {"cniVersion": "1.0.0", "name": "axon", "type": "axon-cni",
                "agent-socket": agent.socket}
        wait_for(lambda: subprocess.run(
            [str(OUT / "axon-cni")], input=json.dumps(axon), capture_output=True, text=True,
            env={"CNI_COMMAND": "STATUS"}).returncode == 0, 20, what="agent ready for pods")
        floor, floor20 = exec_floor(str(OUT / "axon-cni"), axon)
        results["axon-cni"], ids = measure(lab, node, str(OUT / "axon-cni"), axon, "x",
                                           direct=True)
        adds = adds_by_id = agent_adds(agent.log_path)
        steps = {c: [adds[i] for i in ids[c] if i in adds] for c in ids}
        if os.environ.get("PTP", "1") != "0" and os.path.exists(f"{CNI_BIN}/ptp"):
            data = tempfile.mkdtemp(prefix="axon-bench-ipam-")
            ptp = {"cniVersion": "1.0.0", "name": "ptp", "type": "ptp",
                   "ipam": {"type": "host-local", "subnet": "10.244.9.0/24",
                            "dataDir": data}}
            results["ptp"], _ = measure(lab, node, f"{CNI_BIN}/ptp", ptp, "p")
    finally:
        if agent and agent.alive():
            agent.stop()
        lab.close()
        apiserver.close()
    print(f"CNI latency, ms (concurrency 1: {ADDS} pods; concurrency {CONCURRENCY}: "
          f"{ROUNDS} rounds):")
    print(f"  {'plugin':<10} {'conc':>4}  {'ADD p50':>8} {'ADD p99':>8}  "
          f"{'DEL p50':>8} {'DEL p99':>8}")
    ok = True
    for plugin, r in results.items():
        for conc in (1, CONCURRENCY):
            add, dele = r[(conc, "ADD")], r[(conc, "DEL")]
            print(f"  {plugin:<10} {conc:>4}  {statistics.median(add):8.1f} "
                  f"{pct(add, 99):8.1f}  {statistics.median(dele):8.1f} {pct(dele, 99):8.1f}")
            if plugin == "axon-cni" and pct(add, 99) > 20:
                ok = False
    if floor:
        print(f"axon-cni VERSION (process start, no agent): p50 {statistics.median(floor):.1f}"
              f" p99 {pct(floor, 99):.1f}; {CONCURRENCY} at once: p50 "
              f"{statistics.median(floor20):.1f} p99 {pct(floor20, 99):.1f}")
    print(f"a static program that does nothing, {CONCURRENCY} at once: p50 "
          f"{statistics.median(nfloor):.1f} p99 {pct(nfloor, 99):.1f}")
    if kfloor:
        print(f"kernel floor, the node side of {CONCURRENCY} pods in one ip process (no CNI): "
              f"min {min(kfloor):.1f} median {statistics.median(kfloor):.1f} ms")
    print("axon-agent's own time per ADD (request to answer), ms, and the median of each "
          "step, us:")
    print(f"  {'conc':>4}  {'p50':>6} {'p99':>6}  " +
          " ".join(f"{s:>7}" for s in STEPS + ("other",)))
    for conc in (1, CONCURRENCY):
        rows = steps.get(conc, [])
        if not rows:
            continue
        ms = [r["ms"] for r in rows]
        print(f"  {conc:>4}  {statistics.median(ms):6.1f} {pct(ms, 99):6.1f}  " +
              " ".join(f"{statistics.median(r[s] for r in rows):7.0f}"
                       for s in STEPS + ("other",)))
    # One at a time the pods stay until the DELs: the n-th ADD finds n-1 on the node.
    seq = [adds_by_id[f"x-{i}"] for i in range(ADDS) if f"x-{i}" in adds_by_id]
    if len(seq) >= 10:
        print("axon-agent's own time per ADD one at a time, by pods already on the node "
              "(median ms; devices and sync, us):")
        fifth = len(seq) // 5
        for lo in range(0, fifth * 5, fifth):
            rows = seq[lo:lo + fifth]
            print(f"  {lo:>4}-{lo + fifth - 1:<4} {statistics.median(r['ms'] for r in rows):6.2f}"
                  f"  devices {statistics.median(r['devices'] for r in rows):6.0f}"
                  f"  sync {statistics.median(r['sync'] for r in rows):6.0f}")
    print(f"  target: axon-cni ADD p99 <= 20 ms: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
