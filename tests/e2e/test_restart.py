"""Restart under load: the agent is killed with SIGKILL and started again five times
while clients keep connecting; nothing they do may notice.

Node A (netlab lab1: native device ext0, pods on 10.244.1.0/24) runs the agent with
the socket LB on its pods' cgroups and the tc datapath on every pod's host-side
device. tests/e2e/loadgen.py runs in client pods for the whole test:

  short, in the cgroup       new connections to two ClusterIPs (socket LB) and a pod IP
  short, outside the cgroup  new connections to a ClusterIP (tc LB, random), another
                             (tc LB, Maglev) and pod IPs (tc), each from its own pod
  long, in the cgroup        established connections echoing data every 20 ms through
                             a ClusterIP (socket LB) and a pod IP
  long, outside the cgroup   the same through the ClusterIP by the tc LB (conntrack,
                             rev-NAT)

While the agent is down the cluster changes: a Service is added and the previous
one deleted, a Service's endpoints are scaled, a pod is created and the previous
one deleted (CiliumEndpointSlice and veth), a remote Node is added and the previous
one deleted. After
every start the agent must sync and converge: the LB maps equal exactly what the
apiserver holds (no stale or duplicate entry), as do the endpoint map, the ipcache
and Axon's routes; rev-NAT ids of the services that stayed are unchanged; the
long-lived flows' conntrack entries are the same entries, still counting; every
pinned link is the same link running a new program.

At the end every client counts zero failed connections, zero resets or stalls and
zero TCP retransmissions (a retransmission is a packet the datapath lost).
"""

import json
import pathlib
import signal
import subprocess
import threading
import time

import k8s
from harness import PY, ct_entries, serve, tcp, wait_attached
from netlab import wait_for

LOADGEN = str(pathlib.Path(__file__).resolve().parent / "loadgen.py")
RESTARTS = 5
WEB_VIP = "10.96.40.10"             # stable: short and long clients, both LBs
SCALED_VIP = "10.96.40.11"          # its endpoints change while the agent is down
MAGLEV_VIP = "10.96.40.12"          # stable, Maglev: its table must survive
CHURN_VIP = "10.96.41.{}"           # one added, the previous deleted, per restart
RTPROT_AXON = "196"
HTTP, ECHO = 8080, 9000             # podtool's server, loadgen's echo server
DOWN_S = 1.0                        # the agent stays dead this long, clients running
UP_S = 1.5                          # and runs this long after converging


class Cluster:
    """What the test asked the apiserver for, and what the node's maps must say."""

    def __init__(self, api, node):
        self.api, self.node = api, node
        self.services = {}          # name -> (vip, {port: target port}, [backend pods])
        self.remotes = {}           # Node name -> (ip, pod CIDR)
        self.pods = {}              # pods with a CiliumEndpointSlice
        self.maglev = set()         # Services with a Maglev table

    def service(self, name, vip, ports, backends, maglev=False):
        """Create or replace Service `name` with one EndpointSlice over backends."""
        svc_ports = [(f"p{p}", p, "TCP", t) for p, t in ports.items()]
        eps_ports = [(f"p{p}", t, "TCP") for p, t in ports.items()]
        svc = k8s.service("default", name, svc_ports, cluster_ip=vip)
        if maglev:
            svc["metadata"]["annotations"] = {"service.cilium.io/lb-algorithm": "maglev"}
            self.maglev.add(name)
        self.api.apply(svc)
        self.api.apply(k8s.endpointslice("default", f"{name}-1", name,
                                         [(b.ip, True, self.node.name) for b in backends],
                                         eps_ports))
        self.services[name] = (vip, dict(ports), list(backends))

    def delete_service(self, name):
        self.api.delete("endpointslices", "default", f"{name}-1")
        self.api.delete("services", "default", name)
        del self.services[name]

    def add_pod(self, pod):
        self.api.apply(k8s.ciliumendpointslice(
            f"ces-{pod.name}", "default", [(pod.name, pod.ip, pod.identity, self.node.ip)]))
        self.pods[pod.name] = pod

    def remove_pod(self, pod):
        self.api.delete("ciliumendpointslices", None, f"ces-{pod.name}")
        del self.pods[pod.name]

    def add_remote(self, name, ip, cidr):
        self.api.apply(k8s.node(name, ip, cidr))
        self.remotes[name] = (ip, cidr)

    def delete_remote(self, name):
        self.api.delete("nodes", None, name)
        del self.remotes[name]

    # -- expectations --

    def lb(self):
        """{"vip:port/TCP": sorted "ip:port" backends}, as Agent.lb_frontends() reads it."""
        return {f"{vip}:{port}/TCP": sorted(f"{b.ip}:{target}" for b in backends)
                for vip, ports, backends in self.services.values()
                for port, target in ports.items()}

    def lb_counts(self):
        """Entries each LB map must hold: a slot 0 plus one slot per backend per
        frontend, one backend per distinct address, one rev-NAT per frontend."""
        lb = self.lb()
        return {"lb4_services": sum(1 + len(b) for b in lb.values()),
                "lb4_backends": len({b for bs in lb.values() for b in bs}),
                "lb4_reverse_nat": len(lb),
                "lb4_maglev": sum(len(self.services[n][1]) for n in self.maglev)}

    def routes(self):
        return {cidr: ip for ip, cidr in self.remotes.values()}


def lb_inconsistent(agent):
    """What in the LB maps a packet could trip over, or None: a frontend whose count
    is not its slots, a slot naming a missing backend or another rev-NAT id, a
    rev-NAT id shared or not mapping back to its frontend."""
    revnat = {r["id"]: f"{r['address']}:{r['port']}"
              for r in agent.ctl_json("bpf", "lb", "list", "--revnat")}
    ids = set()
    for fe in agent.ctl_json("bpf", "lb", "list"):
        backends, rid = fe.get("backends", []), fe.get("rev_nat_id")
        if fe.get("count") != len(backends) or [b["slot"] for b in backends] != list(
                range(1, len(backends) + 1)):
            return f"{fe['frontend']}: count {fe.get('count')}, slots {backends}"
        if any(b["state"] == "missing" or b["rev_nat_id"] != rid for b in backends):
            return f"{fe['frontend']}: slots {backends}"
        if rid in ids or revnat.get(rid) != f"{fe['address']}:{fe['port']}":
            return f"{fe['frontend']}: rev-NAT {rid} -> {revnat.get(rid)}"
        ids.add(rid)
    return None


def converged(agent, cluster):
    """None when the node holds exactly what the cluster asks for, else what differs."""
    lb, want = agent.lb_frontends(), cluster.lb()
    if lb != want:
        return f"lb: {lb} != {want}"
    bad = lb_inconsistent(agent)
    if bad:
        return bad
    maps = {m["name"]: m.get("entries") for m in agent.ctl_json("map", "list")}
    counts = {k: maps[k] for k in cluster.lb_counts()}
    if counts != cluster.lb_counts():
        return f"LB map entries {counts} != {cluster.lb_counts()}"
    eps = sorted(e["address"] for e in agent.ctl_json("bpf", "endpoint", "list"))
    if eps != sorted(p.ip for p in cluster.pods.values()):
        return f"endpoints {eps}"
    ipcache = {e["prefix"] for e in agent.ctl_json("bpf", "ipcache", "list")}
    want_ipcache = ({f"{p.ip}/32" for p in cluster.pods.values()} |
                    set(cluster.routes()))
    if not want_ipcache <= ipcache or ipcache - want_ipcache - {cluster.node.pod_cidr}:
        return f"ipcache {sorted(ipcache)} != {sorted(want_ipcache)}"
    routes = {r["dst"]: r["gateway"]
              for r in cluster.node.routes("proto", RTPROT_AXON)}
    if routes != cluster.routes():
        return f"routes {routes} != {cluster.routes()}"
    return None


def links(agent):
    """{pin name: (link id, program id)} of every link pinned under the agent's root:
    the socket LB's cgroup links and the tcx links on devices."""
    out = {}
    root = pathlib.Path(agent.bpf_root) / "links"
    for pin in root.iterdir():
        info = json.loads(subprocess.run(["bpftool", "-j", "link", "show", "pinned", str(pin)],
                                         capture_output=True, text=True, check=True).stdout)
        out[pin.name] = (info["id"], info["prog_id"])
    return out


def healthy(agent):
    mods = {m["name"]: m["health"] for m in agent.status()["modules"]}
    return mods if any(h != "ok" for h in mods.values()) else None


def revnat_ids(agent):
    return {f"{r['address']}:{r['port']}": r["id"]
            for r in agent.ctl_json("bpf", "lb", "list", "--revnat")}


class Load:
    """A loadgen.py client in a pod; its progress is read as it goes."""

    def __init__(self, pod, mode, arg, targets, in_cgroup):
        self.name = f"{mode} from {pod.name}{'' if in_cgroup else ' (no cgroup)'}"
        self.targets = list(targets)
        self.proc = pod.spawn([PY, LOADGEN, mode, str(arg), *targets], in_cgroup=in_cgroup,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.last = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.last = json.loads(line)

    def progress(self):
        return wait_for(lambda: self.last, 10, what=f"{self.name} running")

    def finish(self):
        self.proc.stdin.close()
        self.proc.wait(30)
        self.reader.join(10)
        assert self.last and self.last["final"], f"{self.name}: no final report"
        return self.last


def flows(agent, conns):
    """The conntrack entries of the long-lived connections, by key, with their
    packet counts: {(map, direction, src, sport, dst, dport): packets}."""
    out = {}
    for c in conns:
        ip, port = c["local"].rsplit(":", 1)
        for e in (ct_entries(agent, protocol="TCP", source=ip, source_port=int(port)) +
                  ct_entries(agent, protocol="TCP", destination=ip,
                             destination_port=int(port))):
            key = (e["map"], e["direction"], e["source"], e["source_port"],
                   e["destination"], e["destination_port"])
            out[key] = e["rx_packets"] + e["tx_packets"]
    return out


def move_on(cluster, backends, i):
    """The cluster's changes while the agent is down, the i-th time: Service churn-i
    added and churn-(i-1) deleted, "scaled" given other endpoints, Node remote-i
    added and remote-(i-1) deleted, pod p-i created and p-(i-1) deleted (its
    CiliumEndpointSlice and its veth). Returns (the new pod, the deleted one)."""
    b1, b2, b3, b4 = backends
    node = cluster.node
    cluster.service(f"churn-{i}", CHURN_VIP.format(i), {80: HTTP}, backends[i % 4:][:2])
    if i > 1:
        cluster.delete_service(f"churn-{i - 1}")
    cluster.service("scaled", SCALED_VIP, {80: HTTP}, [[b1, b2, b3], [b2], [b1, b4]][i % 3])
    cluster.add_remote(f"remote-{i}", f"192.168.50.{100 + i}", f"10.245.{i}.0/24")
    cluster.delete_remote(f"remote-{i - 1}")
    pod = node.add_pod(f"p{i}")
    cluster.add_pod(pod)
    gone = node.pods.get(f"p{i - 1}")
    if gone:
        cluster.remove_pod(gone)
        node.exec("ip", "link", "del", gone.host_if)
    return pod, gone


def test_restart_under_load(lab1, api, start_agent):
    a = lab1.node("a")
    backends = [a.add_pod(f"b{i}") for i in range(1, 5)]
    b1, b2, b3, b4 = backends
    c1, c2, c3, c4 = (a.add_pod(f"c{i}") for i in range(1, 5))
    for b in backends:
        serve(b, tcp_port=HTTP)
        echo = b.spawn([PY, LOADGEN, "echo", str(ECHO)], in_cgroup=False,
                       stdout=subprocess.PIPE)
        assert echo.stdout.readline().decode().strip() == "ready"

    cluster = Cluster(api, a)
    api.apply(a.k8s_node())
    for p in list(a.pods.values()):
        cluster.add_pod(p)
    cluster.service("web", WEB_VIP, {80: HTTP, ECHO: ECHO}, [b1, b2, b3])
    cluster.service("scaled", SCALED_VIP, {80: HTTP}, [b1])
    cluster.service("maglev", MAGLEV_VIP, {80: HTTP}, [b1, b2, b3], maglev=True)
    cluster.add_remote("remote-0", "192.168.50.100", "10.245.0.0/24")
    flags = ("--auto-direct-node-routes=true",)
    agent = start_agent(a, *flags)
    wait_attached(agent, a.native, *[p.host_if for p in a.pods.values()])
    wait_for(lambda: converged(agent, cluster) is None, 20,
             what="first convergence")

    loads = [
        Load(c1, "short", 60, [f"{WEB_VIP}:80", f"{SCALED_VIP}:80", f"{b4.ip}:{HTTP}"],
             in_cgroup=True),
        # Outside the cgroup, the ClusterIP and pod IPs from different pods: the tc
        # LB does not pick source ports, so one client mixing both collides with
        # the backend's TIME_WAIT of its own earlier tuple now and then (one SYN
        # retransmitted, with or without restarts; README, "Load balancing in tc").
        Load(c2, "short", 40, [f"{WEB_VIP}:80"], in_cgroup=False),
        Load(c3, "short", 40, [f"{b2.ip}:{HTTP}", f"{b3.ip}:{HTTP}"], in_cgroup=False),
        Load(c4, "short", 40, [f"{MAGLEV_VIP}:80"], in_cgroup=False),
    ]
    long_sock = Load(c1, "long", 20, [f"{WEB_VIP}:{ECHO}", f"{WEB_VIP}:{ECHO}",
                                      f"{b4.ip}:{ECHO}"], in_cgroup=True)
    long_tc = Load(c2, "long", 20, [f"{WEB_VIP}:{ECHO}", f"{WEB_VIP}:{ECHO}"],
                   in_cgroup=False)
    loads += [long_sock, long_tc]
    wait_for(lambda: all(len(l.progress()["conns"]) == len(l.targets) and
                         all(c["rounds"] > 5 for c in l.progress()["conns"])
                         for l in (long_sock, long_tc)), 10, what="long connections up")
    long_conns = long_sock.progress()["conns"] + long_tc.progress()["conns"]
    # Both LBs keep the ClusterIP as the peer the client sees.
    assert all(c["peer"] == c["target"] for c in long_conns), long_conns
    ct_before = wait_for(lambda: (lambda f: f if len(f) >= len(long_conns) else None)(
        flows(agent, long_conns)), 10, what="conntrack entries of the long flows")
    revnat_before = revnat_ids(agent)
    links_before = links(agent)
    time.sleep(UP_S)

    events = []
    for i in range(1, RESTARTS + 1):
        before = [l.progress()["ok"] + sum(c["rounds"] for c in l.progress()["conns"])
                  for l in loads]
        events.append(("kill", round(time.monotonic(), 3)))
        assert agent.stop(signal.SIGKILL) == -signal.SIGKILL
        pod, gone = move_on(cluster, backends, i)
        if gone:
            del links_before[f"tc-{gone.host_if}-ingress"]
            del links_before[f"tc-{gone.host_if}-egress"]
        time.sleep(DOWN_S)

        events.append(("start", round(time.monotonic(), 3)))
        agent.start()
        events.append(("synced", round(time.monotonic(), 3)))
        wait_attached(agent, pod.host_if, timeout=20)
        wait_for(lambda: converged(agent, cluster) is None, 20,
                 what=f"convergence after start {i}")
        assert "datapath in sync with the cluster" in agent.log_tail(50)
        assert healthy(agent) is None, healthy(agent)
        # Every link is the one pinned before, updated in place to a new program.
        links_now = links(agent)
        if gone:
            assert not any(gone.host_if in pin for pin in links_now), links_now
        for pin, (link_id, prog_id) in links_before.items():
            assert links_now[pin][0] == link_id, (pin, links_now[pin], link_id)
            assert links_now[pin][1] != prog_id, (pin, "program not replaced")
        links_before = links_now
        # Entries still wanted were left alone: the same rev-NAT ids ...
        revnat = revnat_ids(agent)
        assert {k: revnat[k] for k in revnat_before} == revnat_before, (revnat, revnat_before)
        # ... and the long flows' conntrack entries, still counting.
        ct_now = flows(agent, long_conns)
        assert set(ct_before) <= set(ct_now), (ct_before, ct_now)
        assert all(ct_now[k] > ct_before[k] for k in ct_before), (ct_before, ct_now)
        ct_before = {k: ct_now[k] for k in ct_before}
        time.sleep(UP_S)
        # Every client made progress through the kill, the downtime and the start.
        after = [l.progress()["ok"] + sum(c["rounds"] for c in l.progress()["conns"])
                 for l in loads]
        assert all(x > y for x, y in zip(after, before)), (before, after)
        assert agent.alive(), agent.log_tail()

    reports = {l.name: l.finish() for l in loads}
    summary = {n: {k: r[k] for k in ("ok", "failed", "retrans", "errors", "failed_at",
                                   "retrans_at")}
               for n, r in reports.items()}
    # Shown when an assertion below fails: when each failure or retransmission
    # happened, against when the agent was killed, started and synced.
    print(json.dumps({"clients": summary, "agent": events}, indent=1))
    for name, r in reports.items():
        assert r["failed"] == 0 and not r["errors"], (name, r["errors"], r["conns"])
        assert r["retrans"] == 0, (name, "TCP retransmissions", r["retrans"])
    # Enough traffic to mean something: each short client ~60/s for the whole test.
    assert all(reports[l.name]["ok"] >= 300 for l in loads[:4]), summary
    for l in (long_sock, long_tc):
        assert all(c["error"] is None and c["rounds"] >= 300 for c in reports[l.name]["conns"])


def test_restart_with_a_map_of_another_layout(lab1, api, start_agent):
    """An upgrade that changed lb4_reverse_nat's layout: the new agent recreates that
    map (and says so) and refills it from the cluster; replies through the tc LB are
    reverse-translated again."""
    a = lab1.node("a")
    b1, client = a.add_pod("b1"), a.add_pod("client")
    serve(b1, tcp_port=HTTP)
    cluster = Cluster(api, a)
    api.apply(a.k8s_node())
    for p in (b1, client):
        cluster.add_pod(p)
    cluster.service("web", WEB_VIP, {80: HTTP}, [b1])
    agent = start_agent(a)
    wait_attached(agent, a.native, b1.host_if, client.host_if)
    wait_for(lambda: converged(agent, cluster) is None, 20, what="first convergence")
    agent.stop(signal.SIGKILL)

    # What an older Axon would have pinned: rev-NAT values 4 bytes longer.
    pin = pathlib.Path(agent.bpf_root) / "maps" / "lb4_reverse_nat"
    old = json.loads(subprocess.run(["bpftool", "-j", "map", "show", "pinned", str(pin)],
                                    capture_output=True, text=True, check=True).stdout)
    pin.unlink()
    subprocess.run(["bpftool", "map", "create", str(pin), "type", "hash", "key",
                    str(old["bytes_key"]), "value", str(old["bytes_value"] + 4), "entries",
                    str(old["max_entries"]), "name", "lb4_reverse_nat"], check=True)

    agent.start()
    wait_for(lambda: converged(agent, cluster) is None, 20, what="convergence")
    log = agent.log_tail(200)
    assert "pinned map has another layout: recreated" in log and "map=lb4_reverse_nat" in log
    new = json.loads(subprocess.run(["bpftool", "-j", "map", "show", "pinned", str(pin)],
                                    capture_output=True, text=True, check=True).stdout)
    assert new["bytes_value"] == old["bytes_value"] and new["id"] != old["id"]
    # Through the tc LB (outside the cgroup) the reply needs the rev-NAT entry.
    results = tcp(client, WEB_VIP, 80, 5, in_cgroup=False)
    assert all(r["ok"] and r["peername"] == f"{WEB_VIP}:80" for r in results), results
