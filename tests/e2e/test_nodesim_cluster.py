"""A three-node cluster run from Pod objects: the apiserver, one agent per node writing its
conflist, and a node simulator per node (tests/lib/nodesim.py) in the kubelet's place:
it wires each Pod bound to its node through axon-cni ADD, starts a server in it and writes
the Pod's status. What the agents publish (identities, CiliumEndpointSlices), where the
addresses come from, pod to pod across nodes, a ClusterIP Service, and a deletion are
checked on what the apiserver holds, what the agents report and real TCP.
"""

import ipaddress
import os

import pytest

import k8s
import realk8s
from harness import tcp
from netlab import NetLab, sh, wait_for
from nodesim import NodeSim

VIP = "10.96.20.20"
LABELS = {"app": "web"}


@pytest.fixture
def lab3():
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    lab = NetLab(tag="sim", nodes=["a", "b", "c"])
    try:
        yield lab
    finally:
        lab.close()


def published(api, node):
    """{pod: (identity, ip, node ip)} over node's CiliumEndpointSlices."""
    out = {}
    for s in api.list("ciliumendpointslices")["items"]:
        if s["metadata"]["name"].startswith(f"axon-{node.name}-"):
            for e in s["endpoints"]:
                out[e["name"]] = (e["id"], e["networking"]["addressing"][0]["ipv4"],
                                  e["networking"]["node"])
    return out


def identity_of(api, ns, labels):
    want = {f"k8s:{k}": v for k, v in labels.items()}
    for name, o in ((o["metadata"]["name"], o) for o in api.list("ciliumidentities")["items"]):
        got = o["security-labels"]
        if all(got.get(k) == v for k, v in want.items()) and \
                got.get("k8s:io.kubernetes.pod.namespace") == ns:
            return int(name)
    return None


def allocations(agent):
    return {a["ip"]: a["pod"] for a in agent.status()["ipam"]["allocations"]}


@pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
def test_pods_on_three_simulated_nodes(lab3, apiserver, api, start_agent):
    lab = lab3
    lab.publish(api)                    # Nodes with InternalIP and a /24 pod CIDR each
    if hasattr(apiserver, "create_namespace"):
        # The real one: a namespace of the test's own, and the `default` ServiceAccount
        # the controller manager would make (admission wants it for every Pod).
        realk8s.require(controller_manager=True)
        ns = apiserver.create_namespace("sim")
        apiserver.create_service_account(ns, "default")
    else:
        ns = "sim"
        api.create(k8s.namespace(ns))
    agents, sims = {}, {}
    try:
        for node in lab.nodes:
            conf = os.path.join(node.run_dir, "net.d", "05-axon.conflist")
            agents[node.short] = start_agent(node, "--auto-direct-node-routes=true",
                                             "--write-cni-conf-when-ready", conf)
            sims[node.short] = NodeSim(api, node, conf).start()
        names = {}
        for node in lab.nodes:
            for i in (1, 2):
                name = f"{node.short}{i}"
                api.create(k8s.pod(ns, name, node.name, labels=LABELS, phase="Pending"))
                names[name] = node
        pods = {name: sims[node.short].wait_running(ns, name) for name, node in names.items()}
        _check_cluster(lab, apiserver, api, agents, sims, pods, names, ns)
        # The Pods go while their nodes still run: on the real apiserver a Pod bound to a
        # node is only gone once its kubelet (here the simulator) confirms.
        for p in api.list("pods", ns)["items"]:
            api.delete("pods", ns, p["metadata"]["name"])
        wait_for(lambda: not api.list("pods", ns)["items"], timeout=30, what="pods deleted")
        wait_for(lambda: not any(sim.pods for sim in sims.values()), timeout=15,
                 what="every pod torn down by its simulator")
        # Every address back in its pool but the router's.
        assert {n.short: allocations(agents[n.short]) for n in lab.nodes} == \
            {n.short: {n.router_ip: ""} for n in lab.nodes}
        # And every slice deleted by its agent, now empty (the real apiserver outlives the
        # test: a slice left behind would be a stranger's endpoint to the next test).
        wait_for(lambda: not any(published(api, n) or any(
            s["metadata"]["name"].startswith(f"axon-{n.name}-")
            for s in api.list("ciliumendpointslices")["items"]) for n in lab.nodes),
            timeout=15, what="every node's slices deleted")
    finally:
        errors = {s: sim.errors[-5:] for s, sim in sims.items()}
        for sim in sims.values():
            sim.close()
    print(f"node simulator errors (retries included): {errors}")


def _check_cluster(lab, apiserver, api, agents, sims, pods, names, ns):
    # Each Pod's status holds the address its node's IPAM gave, from that node's pod CIDR.
    for name, node in names.items():
        obj = api.get("pods", ns, name)
        st = obj["status"]
        ip = pods[name].ip
        assert (st["phase"], st["podIP"], st["podIPs"], st["hostIP"]) == \
            ("Running", ip, [{"ip": ip}], node.ip)
        assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "True"
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(node.pod_cidr)
        assert ip != node.router_ip
        assert allocations(agents[node.short])[ip] == f"{ns}/{name}"
    assert len({p.ip for p in pods.values()}) == len(pods)

    # One identity for all six (same labels), each pod published by its own node's agent.
    ident = wait_for(lambda: identity_of(api, ns, LABELS), timeout=15,
                     what="the pods' identity")
    assert ident >= 256
    for node in lab.nodes:
        want = {n: (ident, pods[n].ip, node.ip) for n, nd in names.items() if nd is node}
        wait_for(lambda: published(api, node) == want, timeout=15,
                 what=f"{node.name}'s CiliumEndpointSlice listing its pods")

    # Pod to pod across nodes: real TCP, the server is the pod asked for, no SNAT.
    for src_name, src in pods.items():
        for dst_name, dst in pods.items():
            if names[dst_name] is names[src_name]:
                continue
            r = wait_for(lambda: (lambda r: r if r and r[0]["ok"] else None)(
                tcp(src, dst.ip, 8080)), timeout=15, what=f"{src_name} -> {dst_name}")[0]
            assert r["reply"]["pod"] == dst_name, r
            assert r["reply"]["peer"].startswith(src.ip + ":"), r

    # A ClusterIP Service over all six, reached from a pod on every node. Its EndpointSlice:
    # on the real apiserver kube-controller-manager derives it from the Pods (their status
    # as the simulators wrote it); the test apiserver has no controllers, the test writes it.
    api.create(k8s.service(ns, "web", [("http", 80, "TCP", 8080)], cluster_ip=VIP,
                           selector=LABELS))
    want = sorted(f"{p.ip}:8080" for p in pods.values())
    if hasattr(apiserver, "controller_manager"):
        with apiserver.controller_manager("endpointslice"):
            wait_for(lambda: sorted(
                f"{a}:{s['ports'][0]['port']}"
                for s in api.list("endpointslices", ns,
                                  labelSelector="kubernetes.io/service-name=web")["items"]
                for e in s.get("endpoints") or [] if e["conditions"].get("ready")
                for a in e["addresses"]) == want, timeout=20,
                what="the controller's EndpointSlice listing the six pods ready")
    else:
        api.create(k8s.endpointslice(ns, "web-1", "web",
                                     [(p.ip, True, names[n].name) for n, p in pods.items()],
                                     [("http", 8080, "TCP")]))
    for node in lab.nodes:
        wait_for(lambda: agents[node.short].lb_frontends().get(f"{VIP}:80/TCP") == want,
                 timeout=15, what=f"{node.name}'s backends for {VIP}:80")
    reached = set()
    for node in lab.nodes:
        client = pods[f"{node.short}1"]
        wait_for(lambda: tcp(client, VIP, 80)[0]["ok"], timeout=15,
                 what=f"{VIP}:80 from {node.name}")
        results = tcp(client, VIP, 80, 12)
        assert all(r["ok"] and r["peername"] == f"{VIP}:80" for r in results), results
        got = {r["reply"]["pod"] for r in results}
        assert got <= set(pods), got
        reached |= got
    # Backends on more than one node served (12 connections from each of 3 clients).
    assert len({names[n].short for n in reached}) >= 2, reached

    # Deletion: the simulator runs DEL; the agent unpublishes the pod and frees its address.
    node_a, agent_a = lab.node("a"), agents["a"]
    gone = pods["a1"]
    api.delete("pods", ns, "a1")
    wait_for(lambda: "a1" not in published(api, node_a), timeout=15, what="a1 unpublished")
    wait_for(lambda: gone.ip not in allocations(agent_a), timeout=15, what="a1's address freed")
    wait_for(lambda: (ns, "a1") not in sims["a"].pods, timeout=15, what="a1 torn down")
    assert published(api, node_a) == {"a2": (ident, pods["a2"].ip, node_a.ip)}
    assert gone.host_if not in node_a.links()
    assert gone.netns not in sh("ip", "netns", "list").stdout.split()
    with pytest.raises(k8s.ApiError) as e:
        api.get("pods", ns, "a1")
    assert e.value.code == 404
    # The rest still answer.
    assert tcp(pods["b1"], pods["a2"].ip, 8080)[0]["ok"]
