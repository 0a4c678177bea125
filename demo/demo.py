#!/usr/bin/python3
"""Axon on a local demo node.

Builds a node out of network namespaces (three backend pods, one client pod),
starts the test apiserver with a few Services and EndpointSlices, starts the
agent against it, and shows a Service being reached, its backends changing
and traffic following. Everything it creates is removed on exit, Ctrl-C too.
"""

import os
import signal
import sys
import time
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "tests" / "lib"))

import k8s  # noqa: E402
from harness import Agent, serve, tcp, udp  # noqa: E402
from netlab import NetLab, wait_for  # noqa: E402

BOLD = "\033[1m" if sys.stdout.isatty() else ""
RESET = "\033[0m" if sys.stdout.isatty() else ""
PORTS = [("http", 80, "TCP"), ("dns", 53, "UDP")]
EPS_PORTS = [("http", 8080, "TCP"), ("dns", 5353, "UDP")]


def step(text):
    print(f"\n{BOLD}==> {text}{RESET}", flush=True)


def show(cmd, result):
    print(f"$ agentctl {cmd}")
    print(result.stdout.rstrip())


def spread(results):
    counts = {}
    for r in results:
        key = r["reply"]["pod"] if r["ok"] else r.get("errno", "error")
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


def main():
    # Ctrl-C and SIGTERM unwind through the finally blocks below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    lab = NetLab("demo")
    srv = None
    try:
        step("Building a node: namespaces as pods, veths and /32 routes")
        backends = [lab.add_pod(f"web-{i}") for i in range(3)]
        client = lab.add_pod("client")
        for b in backends:
            serve(b)
            print(f"  pod {b.name:8} {b.ip:12} serving TCP 8080, UDP 5353")
        print(f"  pod {client.name:8} {client.ip:12} (its own cgroup under {lab.cgroup_root})")

        step("Starting the test apiserver (HTTPS, bearer token) with Services")
        srv = k8s.ApiServer(tls=True, quiet=True).start()
        api = srv.client()
        api.create(k8s.service("shop", "web", PORTS, cluster_ip="10.96.0.80"))
        api.create(k8s.endpointslice("shop", "web-1", "web",
                                     [(b.ip, True) for b in backends[:2]], EPS_PORTS))
        api.create(k8s.service("shop", "empty", [("http", 80, "TCP")], cluster_ip="10.96.0.81"))
        print(f"  {srv.url}: shop/web 10.96.0.80 (2 ready endpoints), "
              "shop/empty 10.96.0.81 (none)")

        step("Starting axon-agent")
        agent = Agent(lab, srv).start()
        print(f"  bpffs root {lab.bpf_root}, socket {agent.socket}")
        show("status", agent.ctl("status"))
        print()
        show("bpf lb list", agent.ctl("bpf", "lb", "list"))

        step("Reaching the Service from the client pod")
        results = tcp(client, "10.96.0.80", 80, 20)
        print(f"  20 TCP connects to 10.96.0.80:80 -> {spread(results)}")
        print(f"  getpeername() in the client: {results[0]['peername']}")
        u = udp(client, "10.96.0.80", 53, 4)
        print(f"  4 UDP queries to 10.96.0.80:53 -> {spread(u)}; replies from {u[0]['from']}")
        print(f"  connect to shop/empty 10.96.0.81:80 -> "
              f"{spread(tcp(client, '10.96.0.81', 80, 1))}")

        step("Scaling shop/web to web-2 only: traffic follows")
        cur = api.get("endpointslices", "shop", "web-1")
        eps = k8s.endpointslice("shop", "web-1", "web", [(backends[2].ip, True)], EPS_PORTS)
        eps["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        t0 = time.monotonic()
        api.update(eps)
        wait_for(lambda: agent.lb_frontends().get("10.96.0.80:80/TCP") ==
                 [f"{backends[2].ip}:8080"], timeout=5, what="backends updated")
        print(f"  maps updated {1000 * (time.monotonic() - t0):.0f} ms after the write")
        print(f"  20 TCP connects -> {spread(tcp(client, '10.96.0.80', 80, 20))}")
        show("bpf lb list", agent.ctl("bpf", "lb", "list"))

        step("Stopping the agent: the datapath stays (as on an upgrade)")
        agent.stop()
        print(f"  agent stopped; 10 TCP connects -> "
              f"{spread(tcp(client, '10.96.0.80', 80, 10))}")
        show("cleanup", agent.ctl("cleanup"))
        print("\nDemo complete.")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up")
        return 130
    finally:
        if srv:
            srv.close()
        lab.close()
        print("cleaned up: namespaces, cgroups, bpffs pins, apiserver")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("demo: run as root (namespaces, cgroups, BPF)")
    sys.exit(main())
