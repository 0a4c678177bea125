"""--k8s-prefer-service-address: the agent moves to the default/kubernetes Service's
ClusterIP once the Service watch shows it, and back to its configured URL when that
address stops answering.

The test apiserver's certificate also names the ClusterIP, and the server listens on
it inside node A's namespace (the address on the node's lo), as the in-cluster Service
would answer through kube-proxy or Axon's socket LB on a real node. The agent's own
connections (`ss` in the node) and its status say which address it uses.
"""

import os

import pytest

import k8s
from harness import Agent
from netlab import NetLab, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="end-to-end tests need root")

VIP = "10.96.0.1"


def kube_status(agent):
    return agent.status()["kubernetes"]


def agent_conns(node, ip, port):
    """Established TCP connections in the node to ip:port."""
    return node.exec("ss", "-Htn", "state", "established", "dst", f"{ip}:{port}").stdout.strip()


def test_prefers_the_kubernetes_service_then_falls_back_to_the_configured_url():
    lab = NetLab("psa", nodes=["a"])
    srv = None
    agent = None
    try:
        srv = k8s.ApiServer(tls=True, quiet=True, cert_names=[VIP]).start()
        api = srv.client()
        a = lab.node("a")
        lab.publish(api)
        api.create(k8s.service("default", "kubernetes", [("https", srv.port, "TCP")],
                               cluster_ip=VIP))
        agent = Agent(lab, srv, node=a, extra=["--k8s-prefer-service-address"])
        a.exec("ip", "addr", "add", f"{VIP}/32", "dev", "lo")
        srv.listen_in(a.netns, host=VIP)
        agent.start()

        # The Service's address, with the configured URL's scheme and the port named https.
        via_vip = f"https://{VIP}:{srv.port}"
        wait_for(lambda: (st := kube_status(agent))["server"] == via_vip and st["connected"],
                 timeout=15, what="the agent on the Service address")
        assert via_vip in kube_status(agent)["servers"]
        assert srv.url in kube_status(agent)["servers"]
        # Transfers in flight finish where they are: cut the watches, they resume there.
        srv.client().drop_watches()
        wait_for(lambda: agent_conns(a, VIP, srv.port), timeout=10,
                 what="the agent's connection to the ClusterIP")
        api.create(k8s.service("default", "seen-via-vip", [("http", 80, "TCP")],
                               cluster_ip="10.96.7.7"))
        wait_for(lambda: "10.96.7.7:80/TCP" in agent.lb_frontends(), timeout=10,
                 what="a change delivered over the Service address")

        # The ClusterIP stops answering: the configured URL takes over, changes still come.
        # New connections to it are refused (a reset, in the node's own netfilter), the
        # open ones are cut by the server.
        a.exec("iptables", "-A", "OUTPUT", "-p", "tcp", "-d", VIP, "--syn", "-j", "REJECT",
               "--reject-with", "tcp-reset")
        srv.client().drop_watches()
        wait_for(lambda: (st := kube_status(agent))["server"] == srv.url and st["connected"],
                 timeout=20, what="back on the configured URL")
        api.create(k8s.service("default", "seen-after", [("http", 80, "TCP")],
                               cluster_ip="10.96.7.8"))
        wait_for(lambda: "10.96.7.8:80/TCP" in agent.lb_frontends(), timeout=10,
                 what="a change delivered over the configured URL")
        wait_for(lambda: not agent_conns(a, VIP, srv.port), timeout=5,
                 what="no connection left to the ClusterIP")
        assert agent.alive()
    finally:
        if agent is not None:
            agent.stop()
        if srv is not None:
            srv.close()
        lab.close()
