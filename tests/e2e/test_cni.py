"""axon-cni run the way a runtime runs it: CNI_* in the environment, the network config on
stdin, in node A's namespace (lab1: pod CIDR 10.244.1.0/24, native device ext0), against
that node's agent. Pods are fresh network namespaces the plugin wires up; traffic between
them goes through Axon's datapath (the endpoints map, from_container / to_container).
"""

import json
import os
import re
import signal
import subprocess
import threading

import pytest

import k8s
from harness import OUT, serve, tcp, udp
from netlab import GATEWAY_IP, Pod, sh, wait_for

CNI = OUT / "axon-cni"
CNI_BIN = "/usr/lib/cni"


def conf(agent, version="1.0.0", **extra):
    c = {"cniVersion": version, "name": "axon", "type": "axon-cni",
         "agent-socket": agent.socket}
    c.update(extra)
    return c


def run_plugin(node, plugin, command, config, cid="", netns="", ifname="eth0", args="",
               stdin=None):
    """(exit status, parsed stdout or None) of one plugin invocation in node's namespace."""
    env = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_PATH": CNI_BIN}
    for k, v in (("CNI_CONTAINERID", cid), ("CNI_NETNS", netns), ("CNI_IFNAME", ifname),
                 ("CNI_ARGS", args)):
        if v:
            env[k] = v
    r = subprocess.run(["nsenter", f"--net=/var/run/netns/{node.netns}", str(plugin)],
                       input=stdin if stdin is not None else json.dumps(config), env=env,
                       capture_output=True, text=True, timeout=60)
    out = json.loads(r.stdout) if r.stdout.strip() else None
    return r.returncode, out


def cni(node, command, config, **kw):
    return run_plugin(node, CNI, command, config, **kw)


def new_netns(lab, name):
    ns = f"{lab.prefix}-{name}"
    lab._add_netns(ns)
    return ns, f"/var/run/netns/{ns}"


def add_pod(lab, node, agent, name, **kw):
    """A pod through CNI ADD: its namespace, then the plugin. Returns (Pod, result)."""
    ns, path = new_netns(lab, name)
    rc, res = cni(node, "ADD", conf(agent), cid=f"c-{name}", netns=path,
                  args=f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={name}", **kw)
    assert rc == 0, res
    ip = res["ips"][0]["address"].split("/")[0]
    pod = Pod(lab, node, name, ip, res["interfaces"][0]["name"], 0)
    lab.pods[name] = pod
    return pod, res


def endpoints(agent):
    return {e["address"]: e for e in agent.ctl_json("bpf", "endpoint", "list")}


def ipam(agent):
    return agent.status()["ipam"]


@pytest.fixture
def node_agent(lab1, api, start_agent):
    """Node A's agent, ready to add pods (CNI STATUS answers 0)."""
    node = lab1.node("a")
    lab1.publish(api)
    agent = start_agent(node)
    wait_for(lambda: cni(node, "STATUS", conf(agent, "1.1.0"))[0] == 0, timeout=20,
             what="CNI STATUS ok")
    return lab1, node, agent


def test_add_wires_pods_that_talk_through_axon_and_del_removes_everything(node_agent):
    lab, node, agent = node_agent
    pa, res = add_pod(lab, node, agent, "pa")
    pb, _ = add_pod(lab, node, agent, "pb")
    # The result: the host device, the pod's interface in its sandbox, a /32 via the gateway.
    assert res["cniVersion"] == "1.0.0"
    host, pod_if = res["interfaces"]
    assert host["name"].startswith("lxc") and "sandbox" not in host
    assert pod_if == {"name": "eth0", "mac": pod_if["mac"],
                      "sandbox": f"/var/run/netns/{pa.netns}"}
    assert res["ips"] == [{"address": f"{pa.ip}/32", "gateway": GATEWAY_IP, "interface": 1}]
    assert res["routes"] == [{"dst": "0.0.0.0/0", "gw": GATEWAY_IP}]
    # The router address .1 is never a pod's; the pods take the next ones.
    assert {pa.ip, pb.ip} == {"10.244.1.2", "10.244.1.3"}
    # What the datapath expects: the pod's /32 and default route, the node's /32 route,
    # and the MTU of the native device.
    assert pa.exec("ip", "-j", "addr", "show", "eth0").stdout.count(f'"{pa.ip}"') == 1
    assert pa.exec("ip", "route", "show", "default").stdout.split()[:3] == \
        ["default", "via", GATEWAY_IP]
    assert node.routes(f"{pa.ip}/32")[0]["dev"] == pa.host_if
    mtu = json.loads(node.exec("ip", "-j", "link", "show", "ext0").stdout)[0]["mtu"]
    assert json.loads(pa.exec("ip", "-j", "link", "show", "eth0").stdout)[0]["mtu"] == mtu
    # The endpoints map entry was written before ADD returned (no wait here).
    eps = endpoints(agent)
    assert eps[pa.ip]["device"] == pa.host_if and eps[pa.ip]["mac"] == pod_if["mac"]

    # Pod to pod: delivered by from_container (redirect_peer), TCP and UDP, each way.
    serve(pa), serve(pb)
    for src, dst in ((pa, pb), (pb, pa)):
        results = tcp(src, dst.ip, 8080, 5) + udp(src, dst.ip, 5353, 3)
        assert all(r["ok"] and r["reply"]["pod"] == dst.name and
                   r["reply"]["peer"].startswith(src.ip + ":") for r in results), results
    st = ipam(agent)
    assert (st["pool"], st["allocated"], st["capacity"]) == ("10.244.1.0/24", 3, 254)
    assert {a["ip"]: a["pod"] for a in st["allocations"]} == {
        "10.244.1.1": "", pa.ip: "default/pa", pb.ip: "default/pb"}

    rc, out = cni(node, "DEL", conf(agent), cid="c-pa", netns=f"/var/run/netns/{pa.netns}")
    assert (rc, out) == (0, None)
    assert pa.host_if not in node.links()
    assert node.routes(f"{pa.ip}/32") == []
    assert pa.ip not in endpoints(agent)
    assert ipam(agent)["allocated"] == 2
    # DEL is idempotent: an unknown container is a success, without a netns too.
    assert cni(node, "DEL", conf(agent), cid="c-pa") == (0, None)
    assert cni(node, "DEL", conf(agent), cid="never-added") == (0, None)


def test_error_paths_answer_the_spec_codes(node_agent):
    lab, node, agent = node_agent
    _, path = new_netns(lab, "perr")
    add = dict(cid="c-err", netns=path)
    # Not JSON (the plugin still finds the socket it names first).
    bad = f'{{"agent-socket": "{agent.socket}", "cniVersion": "1.0.0", "name": }}'
    rc, out = cni(node, "ADD", None, stdin=bad, **add)
    assert (rc, out["code"]) == (1, 6)
    rc, out = cni(node, "ADD", conf(agent, "0.3.1"), **add)
    assert (rc, out["code"], out["msg"]) == (1, 1, "incompatible CNI version")
    rc, out = cni(node, "ADD", conf(agent, ipam={"type": "host-local"}), **add)
    assert (rc, out["code"]) == (1, 2)
    assert cni(node, "ADD", conf(agent, type="bridge"), **add)[1]["code"] == 7
    assert cni(node, "ADD", conf(agent), cid="c-err")[1]["code"] == 4      # no CNI_NETNS
    rc, out = cni(node, "ADD", conf(agent), cid="c-err", netns=path + "-missing")
    assert (rc, out["code"], out["details"]) == (1, 4, path + "-missing")
    assert cni(node, "ADD", conf(agent), cid="bad/id", netns=path)[1]["code"] == 4
    assert cni(node, "CHECK", conf(agent), cid="c-unknown", netns=path)[1]["code"] == 3
    assert cni(node, "FROB", conf(agent))[1]["code"] == 4
    # An agent that does not answer: try again later (ADD), not available (STATUS).
    down = conf(agent, **{"agent-socket": agent.socket + ".none"})
    rc, out = cni(node, "ADD", down, **add)
    assert (rc, out["code"], out["msg"]) == (1, 11, "axon-agent unreachable")
    assert cni(node, "STATUS", down)[1]["code"] == 50
    # Nothing was left behind by the failures.
    assert ipam(agent)["allocated"] == 1
    assert [name for name in node.links() if name.startswith("lxc")] == []


def agent_on_a_29(api, node, start_agent):
    """node's agent, ready for pods, its Node's pod CIDR a /29 (5 pod addresses)."""
    n = node.k8s_node()
    n["spec"] = {"podCIDR": "10.244.1.0/29", "podCIDRs": ["10.244.1.0/29"]}
    api.apply(n)
    agent = start_agent(node)
    wait_for(lambda: cni(node, "STATUS", conf(agent))[0] == 0, timeout=20, what="ready")
    return agent


def test_ipam_exhaustion_names_the_range(lab1, api, start_agent):
    node = lab1.node("a")
    agent = agent_on_a_29(api, node, start_agent)
    # /29: 6 host addresses, .1 the router's: 5 pods.
    ips = [add_pod(lab1, node, agent, f"p{i}")[0].ip for i in range(5)]
    assert sorted(ips) == [f"10.244.1.{i}" for i in range(2, 7)]
    _, path = new_netns(lab1, "p5")
    rc, out = cni(node, "ADD", conf(agent), cid="c-p5", netns=path)
    assert (rc, out["code"], out["msg"]) == (
        1, 100, "no IP addresses available in range 10.244.1.0/29 (6 allocated)")
    st = agent.ctl("status").stdout
    assert re.search(r"^IPAM: +6/6 allocated from 10\.244\.1\.0/29$", st, re.M), st
    # A released address is taken again.
    assert cni(node, "DEL", conf(agent), cid="c-p0")[0] == 0
    rc, out = cni(node, "ADD", conf(agent), cid="c-p5", netns=path)
    assert rc == 0 and out["ips"][0]["address"] == f"{ips[0]}/32"


def test_check_finds_a_removed_route(node_agent):
    lab, node, agent = node_agent
    pod, res = add_pod(lab, node, agent, "pc")
    cfg = conf(agent, prevResult=res)
    netns = f"/var/run/netns/{pod.netns}"
    assert cni(node, "CHECK", cfg, cid="c-pc", netns=netns) == (0, None)
    # A cached result that is not what ADD gave.
    wrong = json.loads(json.dumps(res))
    wrong["ips"][0]["address"] = "10.244.1.200/32"
    rc, out = cni(node, "CHECK", conf(agent, prevResult=wrong), cid="c-pc", netns=netns)
    assert (rc, out["code"], out["details"]) == (1, 102, f"{pod.ip}/32")
    node.exec("ip", "route", "del", f"{pod.ip}/32")
    rc, out = cni(node, "CHECK", cfg, cid="c-pc", netns=netns)
    assert (rc, out["code"]) == (1, 102)
    assert out["details"] == f"the node has no route {pod.ip}/32 dev {pod.host_if}"


def test_twenty_concurrent_adds_get_distinct_addresses(node_agent):
    lab, node, agent = node_agent
    paths = [new_netns(lab, f"q{i}")[1] for i in range(20)]
    results = [None] * 20

    def add(i):
        results[i] = cni(node, "ADD", conf(agent), cid=f"c-q{i}", netns=paths[i])

    threads = [threading.Thread(target=add, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(rc == 0 for rc, _ in results), results
    ips = {out["ips"][0]["address"] for _, out in results}
    assert len(ips) == 20
    assert len(endpoints(agent)) == 20
    assert ipam(agent)["allocated"] == 21
    # Each ADD logged with its time and where it went (docs/cni.md, Performance): the
    # steps, none of them overlapping, within the total.
    logged = [dict(re.findall(r'(\w+)=(\S+)', line))
              for line in agent.log_path.read_text().splitlines()
              if 'msg="CNI endpoint added"' in line]
    assert len(logged) == 20
    for kv in logged:
        veth = sum(int(kv[f"{s}_us"]) for s in ("sockets", "create", "host", "pod", "route"))
        assert 0 < veth <= int(kv["veth_us"]), kv
        steps = sum(int(kv[f"{s}_us"]) for s in ("ipam", "veth", "record", "devices", "sync"))
        assert 0 < steps <= float(kv["ms"]) * 1000 + 100, kv


def burst(lab, node, agent, names, bad=()):
    """Concurrent ADDs for names (those in bad get a regular file as CNI_NETNS: the plugin
    accepts it, opening it as a namespace fails). {name: (rc, out)}."""
    paths = {}
    for name in names:
        if name in bad:
            paths[name] = f"/tmp/{lab.prefix}-{name}.notns"
            open(paths[name], "w").close()
        else:
            paths[name] = new_netns(lab, name)[1]
    results = {}

    def add(name):
        results[name] = cni(node, "ADD", conf(agent), cid=f"c-{name}", netns=paths[name],
                            args=f"K8S_POD_NAMESPACE=default;K8S_POD_NAME={name}")

    threads = [threading.Thread(target=add, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in bad:
        os.unlink(paths[name])
    return results


def pods_of(lab, node, results):
    pods = []
    for name, (rc, out) in sorted(results.items()):
        if rc == 0:
            pod = Pod(lab, node, name, out["ips"][0]["address"].split("/")[0],
                      out["interfaces"][0]["name"], 0)
            lab.pods[name] = pod
            pods.append(pod)
    return pods


def assert_reachable(pods):
    for p in pods:
        serve(p)
    for src, dst in zip(pods, pods[1:] + pods[:1]):
        r = tcp(src, dst.ip, 8080, 2)
        assert all(x["ok"] and x["reply"]["pod"] == dst.name for x in r), (src.name, r)


def test_a_failed_add_in_a_burst_fails_alone(node_agent):
    lab, node, agent = node_agent
    names = [f"b{i}" for i in range(8)]
    results = burst(lab, node, agent, names, bad={"b3"})
    rc, out = results.pop("b3")
    assert rc == 1 and out["code"] == 101, out
    assert all(rc == 0 for rc, _ in results.values()), results
    pods = pods_of(lab, node, results)
    assert len({p.ip for p in pods}) == 7
    # Each registered before its ADD returned, and nothing left of the failed one.
    assert set(endpoints(agent)) == {p.ip for p in pods}
    assert ipam(agent)["allocated"] == 8
    assert {a["pod"] for a in ipam(agent)["allocations"]} == {""} | {f"default/{n}" for n in
                                                                     results}
    assert sorted(n for n in node.links() if n.startswith("lxc")) == sorted(
        p.host_if for p in pods)
    assert_reachable(pods)


def test_an_exhausted_pool_fails_only_the_add_without_an_address(lab1, api, start_agent):
    node = lab1.node("a")
    agent = agent_on_a_29(api, node, start_agent)
    # /29: 5 pod addresses for 6 pods at once.
    results = burst(lab1, node, agent, [f"x{i}" for i in range(6)])
    failed = {k: out for k, (rc, out) in results.items() if rc != 0}
    assert len(failed) == 1, results
    (out,) = failed.values()
    assert (out["code"], out["msg"]) == (
        100, "no IP addresses available in range 10.244.1.0/29 (6 allocated)")
    pods = pods_of(lab1, node, results)
    assert sorted(p.ip for p in pods) == [f"10.244.1.{i}" for i in range(2, 7)]
    assert set(endpoints(agent)) == {p.ip for p in pods}
    assert_reachable(pods)


def test_agent_restart_between_add_and_del(node_agent):
    lab, node, agent = node_agent
    pod, _ = add_pod(lab, node, agent, "pr")
    assert agent.stop() == 0
    _, path = new_netns(lab, "pr2")
    rc, out = cni(node, "ADD", conf(agent), cid="c-pr2", netns=path)
    assert (rc, out["code"]) == (1, 11)
    # The datapath kept the pod while the agent was away.
    assert pod.ip in endpoints(agent)
    agent.start()
    wait_for(lambda: cni(node, "STATUS", conf(agent))[0] == 0, timeout=20, what="ready")
    assert ipam(agent)["allocated"] == 2
    assert cni(node, "DEL", conf(agent), cid="c-pr", netns=f"/var/run/netns/{pod.netns}") \
        == (0, None)
    assert pod.host_if not in node.links()
    assert node.routes(f"{pod.ip}/32") == []
    assert pod.ip not in endpoints(agent)
    assert ipam(agent)["allocated"] == 1


def test_gc_releases_attachments_the_runtime_does_not_list(node_agent):
    lab, node, agent = node_agent
    keep, _ = add_pod(lab, node, agent, "gk")
    gone, _ = add_pod(lab, node, agent, "gg")
    cfg = conf(agent, "1.1.0", **{"cni.dev/valid-attachments": [
        {"containerID": "c-gk", "ifname": "eth0"}]})
    assert cni(node, "GC", cfg) == (0, None)
    eps = endpoints(agent)
    assert keep.ip in eps and gone.ip not in eps
    assert gone.host_if not in node.links()
    assert [a["pod"] for a in ipam(agent)["allocations"]] == ["", "default/gk"]


@pytest.mark.skipif(not os.path.exists(f"{CNI_BIN}/portmap"),
                    reason="containernetworking-plugins not installed")
def test_chained_portmap_and_bandwidth_get_the_result(node_agent):
    lab, node, agent = node_agent
    pod, res = add_pod(lab, node, agent, "pm")
    netns = f"/var/run/netns/{pod.netns}"
    env = dict(cid="c-pm", netns=netns)
    pm = {"cniVersion": "1.0.0", "name": "axon", "type": "portmap",
          "capabilities": {"portMappings": True}, "prevResult": res,
          "runtimeConfig": {"portMappings": [
              {"hostPort": 18080, "containerPort": 8080, "protocol": "tcp"}]}}
    rc, out = run_plugin(node, f"{CNI_BIN}/portmap", "ADD", pm, **env)
    assert rc == 0, out
    assert out["ips"] == res["ips"] and out["interfaces"] == res["interfaces"]
    bw = {"cniVersion": "1.0.0", "name": "axon", "type": "bandwidth",
          "capabilities": {"bandwidth": True}, "prevResult": out,
          "runtimeConfig": {"bandwidth": {"ingressRate": 8000000, "ingressBurst": 1000000,
                                          "egressRate": 8000000, "egressBurst": 1000000}}}
    rc, out2 = run_plugin(node, f"{CNI_BIN}/bandwidth", "ADD", bw, **env)
    assert rc == 0, out2
    assert out2["ips"] == res["ips"]
    # bandwidth found the host device in the result and shaped it.
    assert "tbf" in node.exec("tc", "qdisc", "show", "dev", pod.host_if).stdout
    # The host port reaches the pod from the node itself (portmap's DNAT in the node's
    # OUTPUT chain; the reply goes back through the stack, which reverses it). From
    # outside, from_container would route the pod's reply past the node's conntrack.
    serve(pod)
    r = tcp(node, node.ip, 18080, 1)
    assert r[0]["ok"] and r[0]["reply"]["pod"] == "pm", r
    # DEL in reverse order, each with the result.
    for plugin, cfg in (("bandwidth", bw), ("portmap", pm)):
        assert run_plugin(node, f"{CNI_BIN}/{plugin}", "DEL", cfg, **env)[0] == 0
    assert cni(node, "DEL", conf(agent, prevResult=res), **env) == (0, None)
    assert pod.ip not in endpoints(agent)


def test_conflist_written_once_ready_and_kept_on_exit(lab1, api, start_agent):
    node = lab1.node("a")
    path = os.path.join(node.run_dir, "net.d", "05-axon.conflist")
    # No Node yet: not ready, nothing written.
    agent = start_agent(node, "--write-cni-conf-when-ready", path, wait=False)
    agent.wait_synced()
    assert not os.path.exists(path)
    # Ready, but the Node has no pod CIDR: no address to give, nothing written.
    bare = node.k8s_node()
    bare["spec"] = {}
    api.apply(bare)
    wait_for(lambda: agent.status()["health"]["ready"], timeout=20, what="agent ready")
    assert cni(node, "STATUS", conf(agent, "1.1.0"))[1]["code"] == 50
    assert not os.path.exists(path)
    lab1.publish(api)
    wait_for(lambda: os.path.exists(path), timeout=20, what="conflist written")
    doc = json.load(open(path))
    assert doc == {"cniVersion": "1.0.0", "name": "axon",
                   "plugins": [{"type": "axon-cni", "agent-socket": agent.socket}]}
    assert agent.stop(signal.SIGTERM) == 0
    assert json.load(open(path)) == doc
    assert [f for f in os.listdir(os.path.dirname(path))] == ["05-axon.conflist"]


def test_big_tcp_sizes_are_set_before_add_returns(lab1, api, start_agent):
    from test_big_tcp import BIG, sizes
    node = lab1.node("a")
    lab1.publish(api)
    agent = start_agent(node, "--enable-ipv4-big-tcp")
    wait_for(lambda: cni(node, "STATUS", conf(agent))[0] == 0, timeout=20, what="ready")
    pod, _ = add_pod(lab1, node, agent, "pbig")
    # No wait: both ends of the new veth carry the size when ADD has returned.
    assert sizes(node, pod.host_if) == (BIG, BIG)
    assert sizes(pod, "eth0") == (BIG, BIG)


def test_repeated_add_rebuilds_with_the_same_address(node_agent):
    lab, node, agent = node_agent
    pod, res = add_pod(lab, node, agent, "pre")
    before = endpoints(agent)[pod.ip]
    rc, again = cni(node, "ADD", conf(agent), cid="c-pre", netns=f"/var/run/netns/{pod.netns}",
                    args="K8S_POD_NAMESPACE=default;K8S_POD_NAME=pre")
    assert rc == 0, again
    assert again["ips"] == res["ips"] and again["interfaces"][0]["name"] == pod.host_if
    after = endpoints(agent)[pod.ip]
    # A new veth pair: the entry follows it, and the old one is gone.
    assert after["ifindex"] != before["ifindex"] and after["device"] == pod.host_if
    assert [n for n in node.links() if n.startswith("lxc")] == [pod.host_if]
    assert ipam(agent)["allocated"] == 2
    serve(pod)
    other, _ = add_pod(lab, node, agent, "pre2")
    assert all(r["ok"] for r in tcp(other, pod.ip, 8080, 3))


def test_pod_whose_namespace_or_pod_is_gone_is_released(node_agent, api):
    """A runtime that removed a sandbox without DEL: the agent's periodic check (every
    60 s) finds the namespace gone and releases the address and the record. A pod whose
    Pod object is not on this node at two checks in a row (deleted without a DEL) is
    released at the second; one whose Pod is there is kept."""
    lab, node, agent = node_agent
    pod, _ = add_pod(lab, node, agent, "gone")
    keep, _ = add_pod(lab, node, agent, "stay")
    orphan, _ = add_pod(lab, node, agent, "orphan")
    api.create(k8s.pod("default", "stay", node.name, ip=keep.ip))
    api.create(k8s.pod("default", "gone", node.name, ip=pod.ip))
    sh("ip", "netns", "del", pod.netns)
    lab._netns.remove(pod.netns)
    # The veth went with the namespace: the map entry goes at once, the address at the check.
    wait_for(lambda: pod.ip not in endpoints(agent), timeout=10, what="entry removed")
    st = wait_for(lambda: (s := ipam(agent))["leaks_released"] == 1 and s, timeout=75,
                  interval=1, what="the leak check")
    assert [a["pod"] for a in st["allocations"]] == ["", "default/stay", "default/orphan"]
    assert st["endpoints"] == 2 and keep.ip in endpoints(agent)
    assert cni(node, "DEL", conf(agent), cid="c-gone") == (0, None)
    # The orphan's Pod was missing at the first check; at the next one it is released.
    st = wait_for(lambda: (s := ipam(agent))["leaks_released"] == 2 and s, timeout=75,
                  interval=1, what="the second leak check")
    assert [a["pod"] for a in st["allocations"]] == ["", "default/stay"]
    assert st["endpoints"] == 1 and keep.ip in endpoints(agent)
    assert orphan.ip not in endpoints(agent)
    assert "CNI endpoint's Pod is no longer on this node" in agent.log_path.read_text()
