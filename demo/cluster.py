"""The demo's second part: a cluster of three Axon nodes on one machine, run from Pod objects.

Three nodes out of network namespaces, one agent each, one test apiserver. Each agent writes
its CNI conflist once ready; a node simulator per node (tests/lib/nodesim.py) plays the
kubelet: for every Pod bound to its node it calls axon-cni ADD, starts a server in the pod
and writes the Pod's status. The agents give the pods their addresses, allocate their
identities and publish them in CiliumEndpointSlices, and every agent routes the others'
pods from those slices. A Service with a selector is then reached across nodes by its
ClusterIP and from the world by NodePort.
"""

import os
import time

import k8s
from harness import Agent, tcp, wait_attached
from netlab import WORLD_IP, NetLab, wait_for
from nodesim import NodeSim

NS = "shop"
LABELS = {"app": "web"}
# A Deployment's pods carry their ReplicaSet's hash; Cilium's label filter leaves it out of
# the identity, so all replicas share one.
POD_LABELS = {**LABELS, "pod-template-hash": "5d8f7c9b4"}
VIP, NODE_PORT = "10.96.30.30", 30090


def run(step, show, spread):
    lab = NetLab("democ", nodes=["a", "b", "c"])
    srv, sims, agents = None, [], {}
    try:
        step("A cluster of three nodes: one agent each, pods created as Pod objects")
        srv = k8s.ApiServer(tls=True, quiet=True).start()
        api = srv.client()
        lab.publish(api)
        api.create(k8s.namespace(NS))
        for node in lab.nodes:
            conf = os.path.join(node.run_dir, "net.d", "05-axon.conflist")
            agents[node.short] = Agent(lab, srv, node=node, extra=(
                "--auto-direct-node-routes=true", "--write-cni-conf-when-ready", conf)).start()
            wait_attached(agents[node.short], node.native)
            sims.append(NodeSim(api, node, conf).start())
            print(f"  node {node.name}: {node.ip}, pod CIDR {node.pod_cidr}; the agent wrote "
                  f"{os.path.basename(conf)} once ready")
        names = {}
        t0 = time.monotonic()
        for node, sim in zip(lab.nodes, sims):
            for i in range(2):
                name = f"web-5d8f7c9b4-{node.short}{i}"
                api.create(k8s.pod(NS, name, node.name, labels=POD_LABELS, phase="Pending"))
                names[name] = (node, sim)
        pods = {name: sim.wait_running(NS, name) for name, (node, sim) in names.items()}
        print(f"  6 Pods running {time.monotonic() - t0:.1f} s after their creation; each got "
              "its address from its node's agent (axon-cni ADD):")
        for name, pod in pods.items():
            print(f"    {name:20} {names[name][0].name:8} {pod.ip}")

        step("Endpoints, identities and the CiliumEndpointSlices the agents publish")
        node_b = lab.node("b")
        for node in lab.nodes:
            line = next(ln for ln in agents[node.short].ctl("status", check=False)
                        .stdout.splitlines() if ln.startswith("IPAM:"))
            print(f"  {node.name}: {line}")
        wait_for(lambda: sum(len(s["endpoints"]) for s in
                             api.list("ciliumendpointslices")["items"]) == len(pods),
                 timeout=15, what="every pod published")
        # Node b's agent reads its own slice back: its pods leave the init identity.
        wait_for(lambda: all(e["identity"] != 5 for e in agents["b"].ctl_json("endpoint", "list")),
                 timeout=15, what="node b's endpoints with their identities")
        show("endpoint list   (on node b)", agents["b"].ctl("endpoint", "list"))
        for s in api.list("ciliumendpointslices")["items"]:
            print(f"  CiliumEndpointSlice {s['metadata']['name']}: "
                  f"{', '.join(e['name'] + '=' + str(e['id']) for e in s['endpoints'])}")
        ids = [o["metadata"]["name"] for o in api.list("ciliumidentities")["items"]]
        print(f"  CiliumIdentities: {', '.join(ids)} (the replicas share one: "
              "pod-template-hash is not an identity label)")

        step("Pod to pod across nodes, routed from the published slices")
        src, dst = pods["web-5d8f7c9b4-a0"], pods["web-5d8f7c9b4-c1"]
        r = wait_for(lambda: (lambda r: r if r[0]["ok"] else None)(tcp(src, dst.ip, 8080)),
                     timeout=15, what="a0 -> c1")
        print(f"  {src.ip} (node a) -> {dst.ip}:8080 (node c): answered by "
              f"{r[0]['reply']['pod']}, which saw {r[0]['reply']['peer']} (no SNAT)")

        step("A Service with a selector, reached across nodes")
        api.create(k8s.service(NS, "web", [dict(name="http", port=80, targetPort=8080,
                                               protocol="TCP", nodePort=NODE_PORT)],
                               cluster_ip=VIP, type="NodePort", selector=LABELS))
        # The test apiserver runs no controllers: the EndpointSlice is written from the
        # Pods' status, as the endpointslice controller would.
        ready = [(api.get("pods", NS, n)["status"]["podIP"], True, names[n][0].name)
                 for n in pods]
        api.create(k8s.endpointslice(NS, "web-1", "web", ready, [("http", 8080, "TCP")]))
        want = sorted(f"{ip}:8080" for ip, _, _ in ready)
        for node in lab.nodes:
            wait_for(lambda: agents[node.short].lb_frontends().get(f"{VIP}:80/TCP") == want,
                     timeout=15, what=f"{node.name}'s backends")
        for node in lab.nodes:
            client = pods[f"web-5d8f7c9b4-{node.short}0"]
            print(f"  from a pod on {node.name}: 12 connects to {VIP}:80 -> "
                  f"{spread(tcp(client, VIP, 80, 12))}")
        print(f"  from the world ({WORLD_IP}) to node b {node_b.ip}:{NODE_PORT}: 12 connects -> "
              f"{spread(tcp(lab.world, node_b.ip, NODE_PORT, 12))}")

        step("A pod deleted: its node's agent unpublishes it and frees its address")
        gone = pods["web-5d8f7c9b4-b1"]
        api.delete("pods", NS, "web-5d8f7c9b4-b1")
        wait_for(lambda: gone.ip not in {a["ip"] for a in
                                         agents["b"].status()["ipam"]["allocations"]},
                 timeout=15, what="the address freed")
        def listed():
            return [e["name"] for s in api.list("ciliumendpointslices")["items"]
                    if s["metadata"]["name"].startswith(f"axon-{node_b.name}-")
                    for e in s["endpoints"]]
        wait_for(lambda: "web-5d8f7c9b4-b1" not in listed(), timeout=15, what="unpublished")
        print(f"  {gone.ip} freed on node b; node b's slice now lists: {', '.join(listed())}")
    finally:
        for sim in sims:
            sim.close()
        for agent in agents.values():
            if agent.alive():
                agent.stop()
        if srv:
            srv.close()
        lab.close()
