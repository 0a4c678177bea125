"""agentctl's operator commands against a running agent and the test apiserver.

service list, node list and config view are compared with the objects the test put
in the apiserver and the flags it gave; status's exit codes (0 healthy, 1 a module
not ok or Kubernetes disconnected, 2 the agent unreachable) and --brief lines are
checked on real agents where the state is easy to reach and on a stand-in agent
(harness.FakeAgent) for the rest; group words and bad usage print their usage or
one error line (JSON with -o json) and exit 2.
"""

import json
import re
import subprocess

import pytest

import k8s
from harness import AGENTCTL, AGENT, Agent, FakeAgent
from netlab import wait_for

WEB_VIP, NP_VIP, EXT_VIP, EXT_IP = "10.96.50.10", "10.96.50.11", "10.96.50.12", "203.0.113.50"
NODE_B = ("node-b", "192.168.50.11", "10.244.2.0/24")
NODE_C = ("node-c", "10.99.0.5", "10.244.3.0/24")    # no native device reaches it
DASH = " \u2014 "


def ctl(agent, *args):
    """agentctl in the agent's node: (exit code, stdout, stderr)."""
    r = agent.ctl(*args, check=False)
    return r.returncode, r.stdout, r.stderr


def run_ctl(*args):
    r = subprocess.run([str(AGENTCTL)] + list(args), capture_output=True, text=True,
                       timeout=10)
    return r.returncode, r.stdout, r.stderr


def terminating(ip, node):
    return {"addresses": [ip], "nodeName": node,
            "conditions": {"ready": False, "serving": True, "terminating": True}}


def publish_services(api, node):
    api.create(k8s.service("default", "web", [("http", 80, "TCP")], cluster_ip=WEB_VIP))
    api.create(k8s.endpointslice("default", "web-1", "web", [
        ("10.244.1.10", True, node), ("10.244.1.11", True, node),
        terminating("10.244.1.12", node)], [("http", 8080, "TCP")]))
    np = k8s.service("default", "np", [("http", 80, "TCP")], cluster_ip=NP_VIP,
                     type="NodePort")
    np["spec"]["ports"][0]["nodePort"] = 30080
    api.create(np)
    api.create(k8s.endpointslice("default", "np-1", "np", [("10.244.1.20", True, node)],
                                 [("http", 8080, "TCP")]))
    api.create(k8s.service("other", "ext", [("dns", 53, "UDP")], cluster_ip=EXT_VIP,
                           externalIPs=[EXT_IP]))


def start(lab1, apiserver, api, *flags, services=True):
    node = lab1.nodes[0]
    lab1.publish(api)
    for name, ip, cidr in (NODE_B, NODE_C):
        api.create(k8s.node(name, ip, cidr))
    if services:
        publish_services(api, node.name)
    return Agent(lab1, apiserver, extra=flags, node=node).start()


def wait_healthy(agent):
    return wait_for(lambda: ctl(agent, "status", "--brief")[0] == 0, 15,
                    what="status --brief exit 0")


# --- service list ------------------------------------------------------------------------

def test_service_list(lab1, apiserver, api):
    agent = start(lab1, apiserver, api)
    rows = wait_for(lambda: (lambda r: r if len(r) == 5 and all(x["realized"] for x in r)
                             else None)(agent.ctl_json("service", "list")),
                    10, what="5 frontends realized")
    by_fe = {r["frontend"]: r for r in rows}
    assert [r["service"] for r in rows] == ["default/np", "default/np", "default/web",
                                            "other/ext", "other/ext"]
    web = by_fe[f"{WEB_VIP}:80/TCP"]
    assert (web["namespace"], web["name"], web["type"]) == ("default", "web", "ClusterIP")
    assert (web["address"], web["port"], web["protocol"]) == (WEB_VIP, 80, "TCP")
    assert web["backends"] == [
        {"address": "10.244.1.10", "port": 8080, "state": "active"},
        {"address": "10.244.1.11", "port": 8080, "state": "active"},
        {"address": "10.244.1.12", "port": 8080, "state": "terminating"}]
    assert by_fe[f"{NP_VIP}:80/TCP"]["type"] == "ClusterIP"
    np = by_fe[f"{lab1.nodes[0].ip}:30080/TCP"]
    assert np["type"] == "NodePort"
    assert np["backends"] == [{"address": "10.244.1.20", "port": 8080, "state": "active"}]
    assert by_fe[f"{EXT_IP}:53/UDP"]["type"] == "ExternalIP"
    assert by_fe[f"{EXT_IP}:53/UDP"]["backends"] == []
    assert by_fe[f"{EXT_VIP}:53/UDP"]["type"] == "ClusterIP"

    # The same as the maps say: every frontend of service list is in bpf lb list.
    assert set(agent.lb_frontends()) == set(by_fe)

    rc, out, _ = ctl(agent, "service", "list")
    assert rc == 0
    lines = out.splitlines()
    assert re.split(r"\s{3,}", lines[0]) == ["SERVICE", "TYPE", "FRONTEND", "BACKENDS",
                                             "REALIZED", "SERVED"]
    assert re.split(r"\s{3,}", next(x for x in lines if WEB_VIP in x)) == [
        "default/web", "ClusterIP", f"{WEB_VIP}:80/TCP",
        "10.244.1.10:8080 (active), 10.244.1.11:8080 (active), 10.244.1.12:8080 (terminating)",
        "yes", "yes"]
    assert re.split(r"\s{3,}", next(x for x in lines if EXT_IP in x)) == [
        "other/ext", "ExternalIP", f"{EXT_IP}:53/UDP", "(none)", "yes", "yes"]


def test_service_not_realized_and_status_exit_1(lab1, apiserver, api):
    """A services map too small for a service (16 entries, 21 needed): service list
    says not realized, status exits 1 and --brief names the service and the fix; once
    it fits, realized and exit 0."""
    node = lab1.nodes[0].name
    api.create(k8s.service("default", "big", [("http", 80, "TCP")], cluster_ip=WEB_VIP))
    api.create(k8s.endpointslice("default", "big-1", "big", [
        (f"10.244.1.{10 + i}", True, node) for i in range(20)], [("http", 8080, "TCP")]))
    agent = start(lab1, apiserver, api, "--bpf-lb-service-map-max=16", services=False)

    def brief():
        rc, out, _ = ctl(agent, "status", "--brief")
        return (rc, out) if out.startswith("lb-reconciler") else None
    rc, out = wait_for(brief, 10, what="lb-reconciler in status --brief")
    assert rc == 1
    assert out.startswith("lb-reconciler: 1 service(s) not realized (default/big: frontend "
                          f"{WEB_VIP}:80/TCP: ")
    assert "map full" in out
    assert out.endswith(DASH + "raise --bpf-lb-map-max (or the map's own flag), then "
                        "'agentctl cleanup' and restart: a pinned map keeps its size\n")
    assert len(out.splitlines()) == 1
    assert ctl(agent, "status")[0] == 1
    assert ctl(agent, "-o", "json", "status")[0] == 1
    assert [r["realized"] for r in agent.ctl_json("service", "list")] == [False]

    api.apply(k8s.endpointslice("default", "big-1", "big", [
        (f"10.244.1.{10 + i}", True, node) for i in range(10)], [("http", 8080, "TCP")]))
    wait_for(lambda: agent.ctl_json("service", "list")[0]["realized"], 30,
             what="big realized")
    wait_healthy(agent)
    assert ctl(agent, "status", "--brief")[1] == "OK\n"


# --- node list ---------------------------------------------------------------------------

def test_node_list_routes(lab1, apiserver, api):
    agent = start(lab1, apiserver, api, "--auto-direct-node-routes")
    a = lab1.nodes[0]

    def nodes():
        n = {x["name"]: x for x in agent.ctl_json("node", "list")}
        return n if n.get("node-b", {}).get("route_installed") and \
            n.get("node-c", {}).get("routes", [{}])[0].get("state") == "failed" else None
    n = wait_for(nodes, 10, what="node-b's route installed, node-c's failed")
    assert list(n) == ["node-a", "node-b", "node-c"]
    assert n["node-a"]["self"] is True and n["node-a"]["internal_ip"] == a.ip
    assert n["node-a"]["pod_cidrs"] == [a.pod_cidr]
    assert n["node-a"]["routes"] == [{"pod_cidr": a.pod_cidr, "state": "self"}]
    assert n["node-b"]["internal_ip"] == NODE_B[1] and n["node-b"]["pod_cidrs"] == [NODE_B[2]]
    assert n["node-b"]["routes"] == [{"pod_cidr": NODE_B[2], "state": "installed"}]
    assert n["node-c"]["route_installed"] is False
    assert f"route {NODE_C[2]} via {NODE_C[1]} (node node-c): " in \
        n["node-c"]["routes"][0]["error"]
    # What the list says installed is in the kernel, Axon's (proto 196).
    routes = a.exec("ip", "route", "show", "proto", "196").stdout
    assert f"{NODE_B[2]} via {NODE_B[1]} dev {a.native}" in routes
    assert NODE_C[2] not in routes

    rc, out, _ = ctl(agent, "node", "list")
    assert rc == 0
    rows = [re.split(r"\s{3,}", x) for x in out.splitlines()]
    assert rows[0] == ["NAME", "INTERNAL-IP", "POD-CIDRS", "ROUTE"]
    assert rows[1] == ["node-a", a.ip, a.pod_cidr, "self"]
    assert rows[2] == ["node-b", NODE_B[1], NODE_B[2], "installed"]
    assert rows[3][:3] == ["node-c", NODE_C[1], NODE_C[2]]
    assert rows[3][3].startswith(f"{NODE_C[2]} failed: route {NODE_C[2]} via {NODE_C[1]}")


def test_node_list_routes_off(lab1, apiserver, api):
    agent = start(lab1, apiserver, api, services=False)
    n = wait_for(lambda: (lambda v: v if len(v) == 3 else None)(
        agent.ctl_json("node", "list")), 10, what="3 nodes")
    assert [(x["name"], [r["state"] for r in x["routes"]]) for x in n] == [
        ("node-a", ["self"]), ("node-b", ["off"]), ("node-c", ["off"])]


# --- config view -------------------------------------------------------------------------

def agent_flags():
    """Every flag axon-agent --help names."""
    out = subprocess.run([str(AGENT), "--help"], capture_output=True, text=True).stdout
    return set(re.findall(r"--([a-z0-9][a-z0-9-]+)", out)) - {"help", "version"}


def test_config_view_sources(lab1, apiserver, api, tmp_path):
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "reconcile-interval").write_text("90s\n")
    (cfg / "bpf-lb-algorithm").write_text("maglev\n")
    (cfg / "enable-bpf-masquerade").write_text("true\n")
    agent = start(lab1, apiserver, api, "--config-dir", str(cfg),
                  "--bpf-lb-algorithm=random", services=False)
    rows = agent.ctl_json("config", "view")
    names = [r["name"] for r in rows]
    assert names == sorted(names) and len(names) == len(set(names))
    # The options table, all of it: every flag of --help is there.
    assert agent_flags() <= set(names), agent_flags() - set(names)
    view = {r["name"]: (r["value"], r["source"]) for r in rows}
    node = lab1.nodes[0]
    assert view["reconcile-interval"] == ("1m30s", "config-dir")
    assert view["enable-bpf-masquerade"] == ("true", "config-dir")
    assert view["bpf-lb-algorithm"] == ("random", "flag")      # the command line wins
    assert view["config-dir"] == (str(cfg), "flag")
    assert view["node-name"] == (node.name, "flag")
    assert view["kubeconfig"] == (agent.kubeconfig, "flag")
    assert view["bpf-root"] == (node.bpf_root, "flag")
    assert view["k8s-client-qps"] == ("10", "default")
    assert view["enable-tcx"] == ("true", "default")
    assert view["bpf-ct-timeout-regular-tcp"] == ("8000s", "default")
    assert view["ipv4-native-routing-cidr"] == ("", "default")
    # The agent really runs with them.
    st = agent.status()
    assert st["datapath"]["config"]["enable_bpf_masquerade"] is True

    rc, out, _ = ctl(agent, "config", "view")
    assert rc == 0
    rows = [re.split(r"\s{3,}", x) for x in out.splitlines()]
    assert rows[0] == ["NAME", "VALUE", "SOURCE"]
    assert [r[0] for r in rows[1:]] == names
    assert ["reconcile-interval", "1m30s", "config-dir"] in rows
    assert ["ipv4-native-routing-cidr", '""', "default"] in rows


# --- status: exit codes, version, --brief --------------------------------------------------

def test_status_healthy_then_unreachable(lab1, apiserver, api):
    agent = start(lab1, apiserver, api, services=False)
    wait_healthy(agent)
    version = run_ctl("--version")[1].split()     # agentctl X (commit Y)
    rc, out, _ = ctl(agent, "status")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"Agent:            axon-agent {version[1]} {version[2]} "
                               f"{version[3]}, started ")
    assert lines[1] == "Health:           OK"
    assert ctl(agent, "status", "--brief") == (0, "OK\n", "")
    rc, out, _ = ctl(agent, "-o", "json", "status", "--brief")
    assert rc == 0 and json.loads(out) == {"healthy": True, "summary": "OK",
                                           "version": version[1]}
    rc, out, _ = ctl(agent, "status", "-o", "json")
    assert rc == 0 and json.loads(out)["healthy"] is True

    agent.stop()
    msg = f"Agent unreachable at {agent.socket}: is axon-agent running?"
    assert ctl(agent, "status") == (2, "", f"agentctl: {msg}\n")
    assert ctl(agent, "status", "--brief") == (2, msg + "\n", "")
    assert ctl(agent, "-o", "json", "status") == (2, json.dumps({"error": msg},
                                                                separators=(",", ":")) + "\n",
                                                  "")
    for cmd in (("service", "list"), ("node", "list"), ("config", "view")):
        assert ctl(agent, *cmd) == (2, "", f"agentctl: {msg}\n"), cmd


def test_status_crd_missing_exit_1(lab1):
    """No CiliumEndpointSlice CRD: k8s-watch waits, and says what to install."""
    srv = k8s.ApiServer(tls=True, quiet=True, without=["ciliumendpointslices"]).start()
    try:
        api = srv.client()
        api.create(lab1.nodes[0].k8s_node())
        agent = Agent(lab1, srv, node=lab1.nodes[0]).start(wait=False)

        # Until the CiliumEndpointSlice list has answered 404, the watch is
        # only "waiting for sync" (with the other watches still listing).
        def brief():
            rc, out, err = ctl(agent, "status", "--brief")
            return (rc, out) if "not installed" in out else None
        rc, out = wait_for(brief, 15, what="the missing CRD in status --brief")
        assert (rc, out) == (1, "k8s-watch: waiting for sync (ciliumendpointslices: resource "
                                "not installed)" + DASH + "install the CiliumEndpointSlice "
                                "CRD\n")
        rc, out, _ = ctl(agent, "status")
        assert rc == 1
        assert out.splitlines()[1] == "Health:           k8s-watch: waiting for sync " \
            "(ciliumendpointslices: resource not installed)" + DASH + "install the " \
            "CiliumEndpointSlice CRD"
        rc, out, _ = ctl(agent, "-o", "json", "status", "--brief")
        assert rc == 1 and json.loads(out)["healthy"] is False
        agent.stop()
    finally:
        srv.close()


def fake_status(**over):
    doc = {"version": "9.9.9", "commit": "abc1234", "started": "2025-01-01T00:00:00Z",
           "kubernetes": {"connected": True, "server": "https://10.0.0.1:6443", "version": "",
                          "last_event": None, "watches": [
                              {"name": "services", "path": "/api/v1/services", "synced": True,
                               "state": "watching", "last_error": "", "not_installed": False},
                              {"name": "nodes", "path": "/api/v1/nodes", "synced": True,
                               "state": "watching", "last_error": "", "not_installed": False}]},
           "load_balancing": {}, "maps": [], "attach": [], "unrealized": [],
           "modules": [{"name": "k8s-watch", "health": "ok", "message": "all watches synced"},
                       {"name": "datapath", "health": "ok", "message": "ready"}],
           "datapath": {"attach_error": "", "native_devices_error": ""},
           "skipped_objects_total": 0, "skipped_objects": []}
    doc.update(over)
    return doc


def brief_of(tmp_path, doc):
    sock = str(tmp_path / "fake.sock")
    fake = FakeAgent(sock, doc)
    try:
        rc, out, err = run_ctl("--socket", sock, "status", "--brief")
        assert err == ""
        rc_full, out_full, _ = run_ctl("--socket", sock, "status")
        assert rc_full == rc and out_full.splitlines()[1] == f"Health:           {out.strip()}"
        assert out_full.splitlines()[0] == ("Agent:            axon-agent 9.9.9 (commit "
                                            "abc1234), started 2025-01-01T00:00:00Z")
        return rc, out
    finally:
        fake.close()


def test_status_brief_lines(tmp_path):
    assert brief_of(tmp_path, fake_status()) == (0, "OK\n")
    k = fake_status()["kubernetes"]
    k["connected"] = False
    k["watches"][1].update(synced=False, last_error="connect: Connection refused")
    assert brief_of(tmp_path, fake_status(kubernetes=k)) == (
        1, "kubernetes: disconnected from https://10.0.0.1:6443 (connect: Connection refused)"
           + DASH + "check that the apiserver is reachable from the node and the agent's "
           "credentials (--kubeconfig, --k8s-api-server-urls)\n")
    k = fake_status()["kubernetes"]
    k["watches"][0].update(synced=False, state="backoff",
                           last_error="HTTP 403: services is forbidden")
    mods = [{"name": "k8s-watch", "health": "degraded", "message": "waiting for sync"}]
    assert brief_of(tmp_path, fake_status(kubernetes=k, modules=mods)) == (
        1, "k8s-watch: waiting for sync (services: HTTP 403: services is forbidden)" + DASH +
           "grant the agent's ServiceAccount list and watch on services (its ClusterRole)\n")
    mods = [{"name": "k8s-watch", "health": "ok", "message": ""},
            {"name": "datapath", "health": "waiting", "message": "waiting for Node node-z"}]
    assert brief_of(tmp_path, fake_status(modules=mods)) == (
        1, "datapath: waiting for Node node-z" + DASH + "check that --node-name (or "
           "NODE_NAME) names this node's Node object\n")
    mods = [{"name": "routes-reconciler", "health": "degraded",
             "message": "1 node route(s) not realized"}]
    assert brief_of(tmp_path, fake_status(modules=mods)) == (
        1, "routes-reconciler: 1 node route(s) not realized" + DASH + "see 'agentctl node "
           "list'; each node's address must be reachable through a native device "
           "(--devices)\n")
    mods = [{"name": "something-new", "health": "degraded", "message": "it broke"}]
    assert brief_of(tmp_path, fake_status(modules=mods)) == (
        1, "something-new: degraded: it broke" + DASH + "see 'agentctl status'\n")


# --- usage and errors --------------------------------------------------------------------

@pytest.mark.parametrize("group,commands", [
    (["bpf"], ["bpf lb list", "bpf lb affinity list", "bpf ct list", "bpf ct flush", "bpf nat list", "bpf nat flush",
               "bpf ipcache list", "bpf endpoint list", "bpf metrics list", "bpf policy get"]),
    (["bpf", "policy"], ["bpf policy get"]),
    (["bpf", "lb"], ["bpf lb list", "bpf lb affinity list"]),
    (["bpf", "lb", "affinity"], ["bpf lb affinity list"]),
    (["bpf", "ct"], ["bpf ct list", "bpf ct flush"]),
    (["service"], ["service list"]),
    (["node"], ["node list"]),
    (["config"], ["config view"]),
])
def test_group_word_prints_its_usage(group, commands):
    rc, out, err = run_ctl(*group)
    assert (rc, out) == (2, "")
    lines = err.splitlines()
    assert lines[0] == f"Usage: agentctl {' '.join(group)} COMMAND"
    listed = [re.split(r"\s{2,}", x.strip())[0] for x in lines[3:]]
    assert [re.split(r" [\[<]", x)[0] for x in listed] == commands
    for json_args in (["-o", "json"] + group, group + ["-o", "json"]):
        rc, out, err = run_ctl(*json_args)
        assert (rc, err) == (2, ""), json_args
        assert json.loads(out) == {"error": f"'{' '.join(group)}' needs a command: "
                                            f"{', '.join(commands)}"}


@pytest.mark.parametrize("args,msg", [
    (["bpf", "bogus"], "unknown command 'bpf bogus': 'bpf' takes lb, ct, nat, ipcache, "
                       "endpoint, metrics, policy"),
    (["bpf", "lb", "bogus"], "unknown command 'bpf lb bogus': 'bpf lb' takes list, affinity"),
    (["bpf", "ct", "lst"], "unknown command 'bpf ct lst': 'bpf ct' takes list, flush"),
    (["service", "show"], "unknown command 'service show': 'service' takes list"),
    (["nothing"], "unknown command 'nothing'; run 'agentctl --help' for the list"),
    (["--bogus", "status"], "unknown option '--bogus'; run 'agentctl --help'"),
    (["-x", "status"], "unknown option '-x'; run 'agentctl --help'"),
    (["--bogus=1", "status"], "unknown option '--bogus=1'; run 'agentctl --help'"),
    (["-o", "yaml", "status"], "-o takes json or table, not 'yaml'"),
    (["status", "-o", "yaml"], "-o takes json or table, not 'yaml'"),
    (["--socket"], "option '--socket' needs a value"),
    (["status", "--bogus"], "status: unknown argument '--bogus'; run 'agentctl --help'"),
    (["status", "--brief", "--verbose"], "status: --verbose and --brief exclude each other"),
    (["service", "list", "extra"], "service list: unknown argument 'extra'; run 'agentctl "
                                   "--help'"),
])
def test_usage_errors_are_one_line(args, msg):
    rc, out, err = run_ctl(*args)
    assert (rc, out, err) == (2, "", f"agentctl: {msg}\n")
    # JSON mode, wherever -o json is (also after the bad option): one JSON line on stdout.
    if "yaml" in args:
        return
    # (After a lone --socket, "-o" would be its value.)
    for json_args in (["-o", "json"] + args, args + ["-o", "json"])[:1 if args == ["--socket"]
                                                                     else 2]:
        rc, out, err = run_ctl(*json_args)
        assert (rc, err) == (2, ""), json_args
        assert out.count("\n") == 1 and json.loads(out) == {"error": msg}, (json_args, out)


def test_help_documents_exit_codes():
    rc, out, _ = run_ctl("--help")
    assert rc == 0
    assert "Exit status:\n  0  success; for status: every module ok and Kubernetes connected\n" \
           in out
    assert "  1  an error; for status: a module not ok, or Kubernetes disconnected\n" in out
    assert "  2  the agent cannot be reached" in out
    for cmd in ("service list", "node list", "config view", "status [--verbose|--brief]"):
        assert f"\n  {cmd} " in out, cmd
