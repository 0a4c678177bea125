#!/usr/bin/python3
"""Pod churn on one node: apiserver writes per pod change, and time to publish.

One node namespace with a native device (netlab), the test apiserver, the node's agent.
PODS pods (default 100) bound to the node, in one namespace, labels from LABELS sets
(default 5, so identities are shared as Deployments share them), are created first; then
for DURATION seconds (default 20) the bench makes RATE pod changes per second (default 40),
alternating: create a new pod with its address (what the kubelet's status write after CNI
ADD makes visible), delete the oldest. Measured:

  writes/change   the agent's create/patch/update/delete requests on
                  ciliumendpointslices and ciliumidentities during the churn (the test
                  apiserver's /_test/stats; the bench itself writes only Pods), divided by
                  the pod changes made
  publish time    for each created pod, from the bench sending its create to the pod's
                  entry appearing in a CiliumEndpointSlice event on a watch the bench holds
                  (what another node's agent sees): p50, p99, max

The agent runs with its defaults (QPS 10, burst 20) unless AGENT_FLAGS says otherwise.

Usage: bench_churn.py          (as root, from the repository, after make)
"""

import os
import pathlib
import statistics
import sys
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "tests" / "lib"))

import k8s  # noqa: E402
from harness import Agent  # noqa: E402
from netlab import NetLab, wait_for  # noqa: E402

PODS = int(os.environ.get("PODS", "100"))
LABELS = int(os.environ.get("LABELS", "5"))
DURATION = float(os.environ.get("DURATION", "20"))
RATE = float(os.environ.get("RATE", "40"))
AGENT_FLAGS = os.environ.get("AGENT_FLAGS", "").split()
NS = "churn"
WRITES = ("create", "update", "patch", "delete")


def pct(v, p):
    s = sorted(v)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def pod_ip(i):
    return f"10.{200 + (i >> 16) % 50}.{(i >> 8) & 255}.{i & 255 or 1}"


class SeenWatch(threading.Thread):
    """Records the monotonic time each pod name first appears in a CES event."""

    def __init__(self, api):
        super().__init__(daemon=True)
        rv = api.list("ciliumendpointslices")["metadata"]["resourceVersion"]
        self.watch = api.watch("ciliumendpointslices", resource_version=rv)
        self.seen = {}

    def run(self):
        try:
            for ev in self.watch:
                now = time.monotonic()
                for e in (ev.get("object") or {}).get("endpoints") or []:
                    self.seen.setdefault(e["name"], now)
        except (OSError, ValueError):
            pass


def agent_writes(api):
    reqs = api.stats()["requests"]
    return sum(n for r in ("ciliumendpointslices", "ciliumidentities")
               for v, n in reqs.get(r, {}).items() if v in WRITES)


def main():
    lab = NetLab("bchurn", nodes=["a"])
    try:
        node = lab.node("a")
        srv = k8s.ApiServer(tls=True, quiet=True).start()
        try:
            api = srv.client(timeout=30)
            api.apply(node.k8s_node())
            api.create(k8s.namespace(NS))
            agent = Agent(lab, srv, extra=AGENT_FLAGS, node=node).start()
            live = []
            for i in range(PODS):
                api.create(k8s.pod(NS, f"p{i}", node.name, ip=pod_ip(i),
                                   labels={"app": f"a{i % LABELS}"}))
                live.append(i)
            wait_for(lambda: sum(len(s["endpoints"]) for s in
                                 api.list("ciliumendpointslices")["items"]) == PODS, 30,
                     what="the initial pods published")
            time.sleep(1)
            watcher = SeenWatch(api)
            watcher.start()
            api.reset_stats()
            sent, changes, n = {}, 0, PODS
            t0 = time.monotonic()
            while time.monotonic() - t0 < DURATION:
                due = t0 + changes / RATE
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())
                if changes % 2 == 0:
                    sent[f"p{n}"] = time.monotonic()
                    api.create(k8s.pod(NS, f"p{n}", node.name, ip=pod_ip(n),
                                       labels={"app": f"a{n % LABELS}"}))
                    live.append(n)
                    n += 1
                else:
                    api.delete("pods", NS, f"p{live.pop(0)}")
                changes += 1
            elapsed = time.monotonic() - t0
            wait_for(lambda: all(p in watcher.seen for p in sent), 30,
                     what="every created pod published")
            time.sleep(1)      # the last deletions' writes
            writes = agent_writes(api)
            lat = [watcher.seen[p] - t for p, t in sent.items()]
            eps = sorted(e["name"] for s in api.list("ciliumendpointslices")["items"]
                         for e in s["endpoints"])
            assert eps == sorted(f"p{i}" for i in live), "slices differ from the pods"
            agent.stop()
            agent.ctl("cleanup")
        finally:
            srv.close()
    finally:
        lab.close()

    print(f"pod churn on one node: {PODS} pods, {LABELS} label sets, {changes} changes in "
          f"{elapsed:.1f} s ({changes / elapsed:.1f}/s, creates and deletes alternating); "
          f"agent flags: {' '.join(AGENT_FLAGS) or '(defaults: QPS 10, burst 20)'}")
    print(f"  agent writes (CES + identities)   {writes}  = {writes / changes:.3f} per pod change")
    print(f"  create -> visible in a CES watch  p50 {statistics.median(lat) * 1000:.0f} ms  "
          f"p99 {pct(lat, 99) * 1000:.0f} ms  max {max(lat) * 1000:.0f} ms  "
          f"({len(lat)} pods)")


if __name__ == "__main__":
    main()
