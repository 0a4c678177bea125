"""A misbehaving apiserver, and the agent's maps afterwards.

One agent (node A of a one-node lab, its real datapath) and one test apiserver for the
whole module; the tests run in file order, each one a fault an apiserver client must survive. After
each, the LB maps (`agentctl bpf lb list -o json`) and the ipcache (`agentctl bpf ipcache
list -o json`) must equal exactly what the apiserver's objects call for
(cluster_state.py computes it from Services, EndpointSlices, Nodes and
CiliumEndpointSlices), and the agent must still be running. The last test repeats the
faults and checks the agent's RSS stays flat.

The module runs twice: with the LIST as pages (--k8s-watch-list=false, with
--k8s-list-limit=2 so that every LIST of Services and EndpointSlices takes several pages)
and as watch-list streams (the default); the faults aimed at LISTs aim at the agent's
"list" or "watchlist" requests accordingly. --k8s-backoff-base=100ms
--k8s-backoff-max=2s make the recoveries take seconds, not minutes. The
CiliumEndpointSlice CRD is not installed at first.
"""

import os
import re
import time
from datetime import datetime
import json

import pytest

import k8s
from cluster_state import actual_frontends, actual_ipcache, expected_frontends, \
    expected_ipcache
from harness import Agent
from netlab import NetLab, wait_for

SELF = "node-a"                        # netlab's node A: 192.168.50.10, 10.244.1.0/24
OTHER_IP, OTHER_CIDR = "192.168.50.77", "10.244.7.0/24"
SVC_PORTS = [("http", 80, "TCP"), ("dns", 53, "UDP")]
EPS_PORTS = [("http", 8080, "TCP"), ("dns", 5353, "UDP")]
AGENT_FLAGS = ["--k8s-list-limit=2", "--k8s-backoff-base=100ms", "--k8s-backoff-max=2s"]


LIST_MODES = {
    # mode: (agent flags, the apiserver's verb for the agent's LISTs)
    "paginated": (["--k8s-watch-list=false"], "list"),
    "watch-list": ([], "watchlist"),
}


class Cluster:
    def __init__(self, lab, srv, agent, mode):
        self.lab, self.srv, self.agent = lab, srv, agent
        self.api = srv.client()
        self.serial = 0
        self.mode = mode
        self.list_verb = LIST_MODES[mode][1]

    # -- objects ---------------------------------------------------------------------------

    def service(self, name, n_backends, vip=None):
        self.api.create(k8s.service("default", name, SVC_PORTS, cluster_ip=vip))
        self.slice(name, n_backends)

    def slice(self, name, n_backends, ready=True):
        """Create or replace <name>-1 with n_backends fresh addresses."""
        self.serial += 1
        base = 10 + (self.serial % 200)
        eps = k8s.endpointslice("default", f"{name}-1", name,
                                [(f"10.244.{base}.{i + 1}", ready) for i in range(n_backends)],
                                EPS_PORTS)
        try:
            cur = self.api.get("endpointslices", "default", f"{name}-1")
        except k8s.ApiError:
            self.api.create(eps)
            return
        eps["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        self.api.update(eps)

    def vip(self, name):
        return self.api.get("services", "default", name)["spec"]["clusterIP"]

    def delete_service(self, name):
        self.api.delete("services", "default", name)
        self.api.delete("endpointslices", "default", f"{name}-1")

    # -- what the agent did ----------------------------------------------------------------

    def converged(self, timeout=10, what="maps equal the cluster"):
        """Wait until both maps equal what the apiserver holds (no fault pending)."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.agent.alive(), f"agent died:\n{self.agent.log_tail()}"
            want = (expected_frontends(self.api), expected_ipcache(self.api, SELF))
            have = (actual_frontends(self.agent), actual_ipcache(self.agent))
            if want == have:
                return want
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: timed out after {timeout}s\n"
                                     f"want {json.dumps(want, indent=1)}\n"
                                     f"have {json.dumps(have, indent=1)}")
            time.sleep(0.1)

    def watch(self, name):
        return next(w for w in self.agent.status()["kubernetes"]["watches"]
                    if w["name"] == name)

    def rss_kib(self):
        with open(f"/proc/{self.agent.proc.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))

    def log_since(self, mark):
        with open(self.agent.log_path) as f:
            f.seek(mark)
            return f.read()

    def log_mark(self):
        return os.path.getsize(self.agent.log_path)


@pytest.fixture(scope="module", params=list(LIST_MODES))
def cluster(request):
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    mode = request.param
    lab = NetLab(tag="flt", nodes=["a"])
    srv = None
    agent = None
    try:
        srv = k8s.ApiServer(tls=True, quiet=True, without=["ciliumendpointslices"],
                            bookmark_interval=1).start()
        node = lab.node("a")
        c = Cluster(lab, srv, None, mode)
        c.api.create(node.k8s_node())
        c.api.create(k8s.node("node-x", OTHER_IP, OTHER_CIDR))
        for i in range(5):
            c.service(f"svc{i}", 2)
        agent = Agent(lab, srv, extra=AGENT_FLAGS + LIST_MODES[mode][0], node=node)
        c.agent = agent
        agent.start(wait=False)
        # Every watch but the missing CRD's.
        wait_for(lambda: agent.alive() and all(
            w["synced"] for w in agent.status()["kubernetes"]["watches"]
            if w["name"] != "ciliumendpointslices"), timeout=15, what="agent synced")
        yield c
    finally:
        if agent is not None:
            print(agent.log_tail(60))     # shown by pytest only when a test failed
            agent.stop()
        if srv is not None:
            srv.close()
        lab.close()


def test_initial_sync_and_crd_is_reported_missing(cluster):
    c = cluster
    c.converged()
    stats = c.api.stats()
    if c.mode == "paginated":
        # 5 Services at 2 a page: 3 pages; slices likewise.
        assert stats["requests"]["services"]["list"] >= 3
    else:
        # One request each, which goes on as the watch.
        for r in ("services", "endpointslices", "nodes"):
            # (The test's own creates and LISTs count too.)
            assert stats["requests"][r]["watchlist"] == 1, r
            assert "watch" not in stats["requests"][r], r
        assert c.watch("services")["list_mode"] == "watch-list"
    ces = c.watch("ciliumendpointslices")
    assert ces["not_installed"] is True
    assert c.watch("services")["synced"] is True


def test_crd_that_appears_later(cluster):
    c = cluster
    c.api.install("ciliumendpointslices")
    c.srv.without = []               # and it stays installed across restarts below
    c.api.create(k8s.ciliumendpointslice("ces-1", "default", [
        ("p1", "10.244.7.11", 1001, OTHER_IP), ("p2", "10.244.7.12", 1002, OTHER_IP),
        ("p3", "10.244.1.21", 1003, "192.168.50.10")]))
    want = c.converged(timeout=10, what="ipcache from the late CRD")
    assert want[1]["10.244.7.11/32"] == (1001, OTHER_IP, 0)
    assert want[1]["10.244.1.21/32"] == (1003, "192.168.50.10", 1)
    assert c.watch("ciliumendpointslices")["not_installed"] is False


def test_dropped_watch_connections_mid_stream(cluster):
    c = cluster
    before = c.api.stats()["watches"]["started"]
    c.slice("svc0", 3)
    c.api.drop_watches()
    # Changes while the watches are being re-established.
    c.slice("svc1", 1)
    c.service("svc5", 2)
    c.converged()
    # Every watch comes back; nine of them share the client's QPS budget, so the last
    # may start a moment after the LB has converged.
    for r in ("services", "endpointslices", "nodes", "ciliumendpointslices"):
        wait_for(lambda: c.api.stats()["watches"]["started"].get(r, 0) > before.get(r, 0),
                 timeout=5, what=f"{r} watched again")
    watches = len(c.agent.status()["kubernetes"]["watches"])
    wait_for(lambda: sum(c.api.stats()["watches"]["open"].values()) == watches, timeout=5,
             what="one watch per resource again")


def agent_fault(c, **spec):
    """A fault rule for the agent's requests only (its User-Agent), so the test's own
    LISTs of the expected state never meet it."""
    return c.api.fault(user_agent="axon-agent", **spec)


def _disconnect(c):
    """Make every LIST and WATCH fail (connection reset) and cut the open watches."""
    agent_fault(c, reset=True, verb="watch", count=-1)
    agent_fault(c, reset=True, verb="list", count=-1)
    c.api.drop_watches()


def _stale_resume(c, resource, change):
    """Cut the resource's watch (None: all four) and hold its resumption for 1 s on the
    server while something changes and history is compacted: the resumed watch gets a
    410 and the agent LISTs. No rule is cleared, so rules the caller added for that LIST
    are met by it."""
    only = {"resource": resource} if resource else {}
    agent_fault(c, delay_ms=1000, verb="watch", count=1 if resource else 4, **only)
    c.api.drop_watches(resource)
    change()
    c.api.compact()


def test_objects_deleted_while_disconnected(cluster):
    c = cluster
    gone = c.vip("svc5")
    _disconnect(c)
    c.delete_service("svc5")
    c.slice("svc2", 4)
    c.api.delete("ciliumendpointslices", "", "ces-1")
    time.sleep(0.5)
    c.api.clear_faults()
    # Resumed from history: the DELETED events are delivered.
    want = c.converged()
    assert "10.244.7.11/32" not in want[1]
    assert not any(f.startswith(f"{gone}:") for f in want[0])
    assert len(want[0][f"{c.vip('svc2')}:80/TCP"]) == 4


def test_410_on_resume_relists_and_removes_what_vanished(cluster):
    c = cluster
    lists = {r: c.watch(r)["lists"] for r in ("services", "endpointslices")}
    gone = c.vip("svc4")
    _disconnect(c)
    c.delete_service("svc4")
    c.service("svc6", 1)
    c.api.create(k8s.ciliumendpointslice("ces-2", "default", [
        ("p4", "10.244.7.14", 1004, OTHER_IP)]))
    c.api.compact()                  # the agent's resourceVersion is now too old
    c.api.clear_faults()
    want = c.converged()
    assert not any(f.startswith(f"{gone}:") for f in want[0])
    assert want[1]["10.244.7.14/32"] == (1004, OTHER_IP, 0)
    for r, n in lists.items():
        assert c.watch(r)["lists"] > n, f"{r} did not relist"


def test_429_with_retry_after_is_waited_out(cluster):
    c = cluster
    c.api.reset_stats()
    agent_fault(c, status=429, retry_after=2, verb=c.list_verb, resource="services")
    _stale_resume(c, "services",
                  lambda: c.api.create(k8s.service("default", "svc8", SVC_PORTS)))
    t429 = wait_for(lambda: c.api.stats()["codes"].get("429") and time.monotonic(),
                    timeout=5, interval=0.02, what="the 429")
    # Nothing asked again before Retry-After ran out (checked at 1.8 s: polling delay
    # only makes this window shorter than the real one).
    time.sleep(max(0.0, t429 + 1.8 - time.monotonic()))
    assert c.api.stats()["requests"]["services"][c.list_verb] == 1
    c.converged()
    # The agent's own account: the retry was scheduled at least 2 s out, and the
    # services LIST synced at least 2 s after the 429 was logged.
    log = c.agent.log_path.read_text()
    fail = re.findall(r'time=(\S+) level=warning msg="k8s request failed" informer=services '
                      r'request=list error="HTTP 429[^"]*" retry_in_ms=(\d+)', log)[-1]
    assert int(fail[1]) >= 2000
    synced = re.findall(r'time=(\S+) level=info msg="k8s list synced" informer=services ',
                        log)[-1]

    def t(s):
        return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    assert (t(synced) - t(fail[0])).total_seconds() >= 2.0


def test_500s_back_off_then_recover(cluster):
    c = cluster

    def served():
        return c.api.stats()["faults"] == []

    # Watches that fail: resumed after a backoff.
    agent_fault(c, status=500, verb="watch", count=4)
    c.api.drop_watches()
    c.slice("svc1", 3)
    wait_for(served, timeout=10, what="every watch 500 served")
    c.converged()
    # LISTs that fail after a 410: the relist is retried until it succeeds.
    agent_fault(c, status=500, verb=c.list_verb, count=4)
    _stale_resume(c, None, lambda: c.slice("svc1", 2))
    wait_for(served, timeout=10, what="every list 500 served")
    c.converged()


def test_slow_responses(cluster):
    c = cluster
    agent_fault(c, delay_ms=700, count=8)
    c.api.drop_watches()
    c.slice("svc2", 1)
    c.service("svc7", 2)
    c.converged(timeout=15)


def test_continue_token_expires_mid_list(cluster):
    c = cluster
    if c.mode != "paginated":
        pytest.skip("continue tokens are pages'")
    # Slow pages, so that the LIST is still going when its token is refused.
    c.api.reset_stats()
    agent_fault(c, delay_ms=400, verb="list", resource="services", count=-1)
    _stale_resume(c, "services", lambda: c.slice("svc0", 3))
    wait_for(lambda: c.api.stats()["requests"].get("services", {}).get("list", 0) >= 2,
             timeout=5, interval=0.02, what="the second page requested")
    c.api.expire_continue()
    c.delete_service("svc6")
    wait_for(lambda: c.api.stats()["codes"].get("410"), timeout=5, what="a 410 on continue")
    c.api.clear_faults()
    c.converged()
    assert 'msg="k8s list continue expired" informer=services' in c.agent.log_path.read_text()


def test_watch_list_cut_midway_falls_back_to_pages(cluster):
    c = cluster
    if c.mode != "watch-list":
        pytest.skip("a watch-list fault")
    c.api.clear_faults()              # what earlier tests left unspent would match first
    c.api.reset_stats()
    # The relist's stream is cut after two objects, before its end bookmark.
    agent_fault(c, reset=True, after_events=2, verb="watchlist", resource="endpointslices")
    _stale_resume(c, "endpointslices", lambda: c.slice("svc0", 2))
    # What arrived before the cut is applied at once; the list is then completed by pages.
    wait_for(lambda: c.watch("endpointslices")["list_mode"] == "paginated", timeout=10,
             what="the relist completed by pages")
    c.converged()
    assert c.api.stats()["requests"]["endpointslices"]["watchlist"] == 1
    assert "watch-list ended before its initial-events-end bookmark" in \
        c.agent.log_path.read_text()


def test_apiserver_restart_loses_history(cluster, tmp_path):
    c = cluster
    gone = c.vip("svc7")
    dump = c.api.dump()
    # While it is down, svc7 goes; the new apiserver counts from a new base.
    dump["items"] = [o for o in dump["items"] if o["metadata"].get("name") not in
                     ("svc7", "svc7-1")]
    state = tmp_path / "objects.json"
    state.write_text(json.dumps(dump))
    c.srv.restart(keep_state=False, load=[str(state)], initial_rv=1000000, down_seconds=0.5)
    c.api = c.srv.client()
    want = c.converged(timeout=10)
    assert not any(f.startswith(f"{gone}:") for f in want[0])
    rv = int(c.watch("services")["resource_version"])
    assert rv >= 1000000, rv


def test_apiserver_restored_from_an_older_backup(cluster, tmp_path):
    c = cluster
    backup = c.api.dump()
    c.service("after-backup", 1)       # only in the cluster the backup does not know
    late = c.vip("after-backup")
    c.converged()
    agent_rv = int(c.watch("services")["resource_version"])
    state = tmp_path / "backup.json"
    state.write_text(json.dumps(backup))
    # etcd restored from the backup: revisions start far below what the agent has seen,
    # so its watches ask for a revision the server has not reached (504 "Too large
    # resource version" after 3 s); resuming would wait forever, a relist recovers.
    c.srv.restart(keep_state=False, load=[str(state)], initial_rv=1000, down_seconds=0.5)
    c.api = c.srv.client()
    assert int(c.api.stats()["resourceVersion"]) < agent_rv
    want = c.converged(timeout=20, what="maps equal the restored cluster")
    assert not any(f.startswith(f"{late}:") for f in want[0])
    assert int(c.watch("services")["resource_version"]) < agent_rv
    assert "k8s watch resourceVersion ahead of the apiserver, relisting" in \
        c.agent.log_path.read_text()


def test_repeated_faults_keep_the_agent_alive_and_its_memory_flat(cluster):
    c = cluster

    def fault(i):
        kind = i % 4
        if kind == 2:
            agent_fault(c, status=500, verb=c.list_verb, count=2)
        if kind == 3:
            agent_fault(c, delay_ms=200, count=4)
        if kind in (1, 2):
            _stale_resume(c, None, lambda: c.slice("svc3", 1 + i % 3))
        else:
            c.api.drop_watches()

    def cycle(i):
        fault(i)
        c.slice(f"svc{i % 4}", 1 + i % 5)
        if i % 3 == 0:
            c.service(f"churn{i}", 2)
        if i % 3 == 2:
            c.delete_service(f"churn{i - 2}")
        c.converged(timeout=15, what=f"cycle {i}")

    for i in range(8):                 # warm up: tables and buffers at their working size
        cycle(i)
    rss0 = c.rss_kib()
    for i in range(8, 40):
        cycle(i)
    rss1 = c.rss_kib()
    # Loose: 32 more fault cycles may not cost 2 MiB. A leak of one watch buffer or one
    # LIST body per cycle (>= 64 KiB each) would.
    assert rss1 - rss0 < 2048, f"RSS {rss0} KiB -> {rss1} KiB over 32 fault cycles"
    print(f"RSS after warm-up {rss0} KiB, after 32 more fault cycles {rss1} KiB")
