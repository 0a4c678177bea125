#!/usr/bin/python3
"""Axon on a local demo node.

Builds a node out of network namespaces: a node namespace with a native device on a
"world" network (a bridge in a namespace of its own, which also plays a remote
client), three backend pods and one client pod behind it. Starts the test apiserver
with the node's Node and CiliumEndpointSlices and a few Services, starts the agent
with --devices on the node's native device, and shows what it does with real
traffic: socket LB for a pod in the hooked cgroup, tc DNAT for a client outside
it, pod to pod with bpf_redirect_peer (the destination's host-side device never
transmits), NodePort from the world, conntrack and verdict counters, backends
changing under traffic, and the datapath staying when the agent stops. Then a cluster
of three nodes (demo/cluster.py): pods created as Pod objects get their interfaces,
addresses and identities from Axon (axon-cni, a node simulator in the kubelet's place),
each agent publishes its pods in CiliumEndpointSlices, and a Service with a selector is
reached across nodes by ClusterIP and by NodePort. Everything it creates is removed on
exit, Ctrl-C too.

With DEMO_KEEP=1 the agent is started again at the end and the node is left running,
with the commands to use agentctl against it; `demo.py --stop` (make demo-stop)
removes it (demo/keep.py).
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "tests" / "lib"))

import cluster  # noqa: E402
import k8s  # noqa: E402
import keep  # noqa: E402
from harness import AGENTCTL, PODTOOL, PY, Agent, tcp, udp, wait_attached  # noqa: E402
from netlab import WORLD_IP, NetLab, wait_for  # noqa: E402

BOLD = "\033[1m" if sys.stdout.isatty() else ""
RESET = "\033[0m" if sys.stdout.isatty() else ""
EPS_PORTS = [("http", 8080, "TCP"), ("dns", 5353, "UDP")]


def step(text):
    print(f"\n{BOLD}==> {text}{RESET}", flush=True)


def show(cmd, result):
    """Print an agentctl command and its output (a CompletedProcess or the text)."""
    print(f"$ agentctl {cmd}")
    print((result if isinstance(result, str) else result.stdout).rstrip())


def serve(pod):
    """podtool's server in pod (TCP 8080, UDP 5353), as the tests' harness.serve() starts it
    but with its stderr in the node's run directory: the servers of a kept demo must not
    hold the terminal or pipe the demo's output went to."""
    with open(os.path.join(pod.node.run_dir, f"{pod.name}.log"), "a") as log:
        p = pod.spawn([PY, str(PODTOOL), "serve", pod.name, "8080", "5353"], in_cgroup=False,
                      stdout=subprocess.PIPE, stderr=log)
    if p.stdout.readline().decode().strip() != "ready":
        raise RuntimeError(f"server in {pod.name} did not start")
    return p


def spread(results):
    counts = {}
    for r in results:
        key = r["reply"]["pod"] if r["ok"] else r.get("errno", "error")
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


def first_lines(text, n):
    lines = text.rstrip().splitlines()
    more = f"\n  ... {len(lines) - n} more" if len(lines) > n else ""
    return "\n".join(lines[:n]) + more


def keep_running(lab, node, client, srv, agent):
    """DEMO_KEEP: the agent again, and how to use and stop what is left running."""
    step("Starting the agent again: it adopts the pinned maps and links (DEMO_KEEP)")
    t0 = time.monotonic()
    agent.start()
    print(f"  synced {time.monotonic() - t0:.1f} s after exec; "
          f"10 ClusterIP connects -> {spread(tcp(client, '10.96.0.80', 80, 10))}")
    ctl, in_client = keep.save(lab, node, client, srv, AGENTCTL)
    step("The demo node keeps running")
    print(f"""\
  agentctl against it: in the node's network namespace, with the node's bpffs root, socket
  and state directory:

    nsenter --net=/var/run/netns/{node.netns} {AGENTCTL} \\
        --bpf-root {node.bpf_root} --socket {node.socket} \\
        --state-dir {node.state_dir} status

  The same through a wrapper with those flags, {ctl} COMMAND:

    {ctl} status
    {ctl} bpf lb list
    {ctl} bpf ct list global
    {ctl} bpf metrics list
    {ctl} -o json bpf endpoint list
    {ctl} monitor --type drop          (until Ctrl-C)

  Traffic from the client pod {client.ip}: {in_client} runs a command in the pod's
  network namespace and cgroup (the socket LB translates); with `nsenter --net` alone,
  outside the cgroup, the tc programs do:

    {in_client} {PY} {PODTOOL} tcp 10.96.0.80 80 5
    nsenter --net=/var/run/netns/{client.netns} {PY} {PODTOOL} udp 10.96.0.80 53 3

  The test apiserver, {srv.url} (also at that address inside the node):

    curl -s --cacert {srv.ca} -H "Authorization: Bearer {srv.token}" \\
        {srv.url}/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices

  Stop it and remove everything it created: make -C {REPO} demo-stop""")


def main(keep_node):
    if keep_node and keep.kept():
        print(f"demo: a kept demo node is running ({keep.STATE_FILE}); "
              "run `make demo-stop` first", file=sys.stderr)
        return 1
    # Ctrl-C and SIGTERM unwind through the finally blocks below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    lab = NetLab("demo", nodes=["a"])
    srv = None
    kept = False
    try:
        node, world = lab.node("a"), lab.world
        step("Building a node: namespaces as pods, veths, /32 routes, a world network")
        backends = [node.add_pod(f"web-{i}") for i in range(3)]
        client = node.add_pod("client")
        for b in backends:
            serve(b)
            print(f"  pod {b.name:8} {b.ip:12} serving TCP 8080, UDP 5353")
        print(f"  pod {client.name:8} {client.ip:12} (its own cgroup under {node.cgroup_root})")
        print(f"  node {node.name}: {node.native} {node.ip} on the world network "
              f"(remote client {WORLD_IP})")

        step("Starting the test apiserver (HTTPS, bearer token): Node, CiliumEndpointSlices, "
             "Services")
        srv = k8s.ApiServer(tls=True, quiet=True).start()
        api = srv.client()
        lab.publish(api)
        web_ports = [dict(name="http", port=80, targetPort=8080, protocol="TCP", nodePort=30080),
                     dict(name="dns", port=53, targetPort=5353, protocol="UDP", nodePort=30053)]
        api.create(k8s.service("shop", "web", web_ports, cluster_ip="10.96.0.80",
                               type="NodePort"))
        api.create(k8s.endpointslice("shop", "web-1", "web",
                                     [(b.ip, True, node.name) for b in backends[:2]], EPS_PORTS))
        api.create(k8s.service("shop", "empty", [("http", 80, "TCP")], cluster_ip="10.96.0.81"))
        print(f"  {srv.url}: shop/web 10.96.0.80, NodePort 30080/30053 (2 ready endpoints); "
              "shop/empty 10.96.0.81 (none)")

        step("Starting axon-agent on the node")
        agent = Agent(lab, srv, node=node).start()
        wait_attached(agent, node.native, *[p.host_if for p in node.pods.values()])
        print(f"  bpffs root {node.bpf_root}, socket {agent.socket}")
        show("status", agent.ctl("status"))
        print()
        show("bpf lb list", agent.ctl("bpf", "lb", "list"))
        print()
        show("bpf endpoint list", agent.ctl("bpf", "endpoint", "list"))

        step("Socket LB: the client pod (in the hooked cgroup) reaches the Service")
        results = tcp(client, "10.96.0.80", 80, 20)
        print(f"  20 TCP connects to 10.96.0.80:80 -> {spread(results)}")
        print(f"  getpeername() in the client: {results[0]['peername']}")
        u = udp(client, "10.96.0.80", 53, 4)
        print(f"  4 UDP queries to 10.96.0.80:53 -> {spread(u)}; replies from {u[0]['from']}")
        print(f"  connect to shop/empty 10.96.0.81:80 -> "
              f"{spread(tcp(client, '10.96.0.81', 80, 1))}")

        step("tc LB: the same client outside the hooked cgroup, translated per packet")
        results = tcp(client, "10.96.0.80", 80, 10, in_cgroup=False)
        print(f"  10 TCP connects to 10.96.0.80:80 -> {spread(results)}")
        print(f"  the backend saw the client as {results[0]['reply']['peer'].split(':')[0]} "
              "(no SNAT on the node)")

        step("Pod to pod: bpf_redirect_peer straight into the destination pod")
        dst = backends[2]
        before = dst.host_stats()
        results = tcp(client, dst.ip, 8080, 20, in_cgroup=False)
        after = dst.host_stats()
        print(f"  20 TCP connects {client.ip} -> {dst.ip}:8080 -> {spread(results)}")
        print(f"  {dst.host_if} (the host side of {dst.name}) received "
              f"{after['rx_packets'] - before['rx_packets']} packets from {dst.name} and transmitted "
              f"{after['tx_packets'] - before['tx_packets']} to it: the host stack was skipped "
              "both ways into pods")

        step("NodePort: a remote client on the world network")
        results = tcp(world, node.ip, 30080, 10)
        print(f"  10 TCP connects {WORLD_IP} -> {node.ip}:30080 -> {spread(results)}")
        u = udp(world, node.ip, 30053, 3)
        print(f"  3 UDP queries to {node.ip}:30053 -> {spread(u)}; replies from {u[0]['from']}")

        step("Conntrack and verdict counters")
        show("bpf ct list", first_lines(agent.ctl("bpf", "ct", "list", "global").stdout, 6))
        print()
        show("bpf metrics list", agent.ctl("bpf", "metrics", "list"))

        step("Scaling shop/web to web-2 only: traffic follows")
        cur = api.get("endpointslices", "shop", "web-1")
        eps = k8s.endpointslice("shop", "web-1", "web", [(backends[2].ip, True, node.name)],
                                EPS_PORTS)
        eps["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        t0 = time.monotonic()
        api.update(eps)
        wait_for(lambda: agent.lb_frontends().get("10.96.0.80:80/TCP") ==
                 [f"{backends[2].ip}:8080"], timeout=5, what="backends updated")
        print(f"  maps updated {1000 * (time.monotonic() - t0):.0f} ms after the write")
        print(f"  20 TCP connects -> {spread(tcp(client, '10.96.0.80', 80, 20))}")
        print(f"  10 NodePort connects from the world -> "
              f"{spread(tcp(world, node.ip, 30080, 10))}")

        step("Stopping the agent: the datapath stays (as on an upgrade)")
        agent.stop()
        print(f"  agent stopped; 10 ClusterIP connects -> "
              f"{spread(tcp(client, '10.96.0.80', 80, 10))}; 10 NodePort connects -> "
              f"{spread(tcp(world, node.ip, 30080, 10))}")
        cluster.run(step, show, spread)
        if keep_node:
            keep_running(lab, node, client, srv, agent)
            kept = True
            return 0
        show("cleanup", agent.ctl("cleanup"))
        print("\nDemo complete.")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up")
        return 130
    finally:
        if not kept:
            if keep_node:
                # Refused above when it existed: whatever is there, this run wrote.
                shutil.rmtree(keep.STATE_DIR, ignore_errors=True)
            if srv:
                srv.close()
            lab.close()
            print("cleaned up: namespaces, cgroups, bpffs pins, apiserver")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("demo: run as root (namespaces, cgroups, BPF)")
    if sys.argv[1:] == ["--stop"]:
        sys.exit(keep.stop())
    if sys.argv[1:]:
        sys.exit("usage: demo.py [--stop]   (DEMO_KEEP=1: leave the demo node running)")
    sys.exit(main(os.environ.get("DEMO_KEEP", "") not in ("", "0")))
