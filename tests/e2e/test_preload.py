"""The tc programs are loaded at the agent's start, before the Node object is known.

The programs carry the node's address as a constant (NodePort, SNAT). The agent loads
them at start with its native device's address, so the verifier's work is done before
the first LIST, not inside the initial sync; the Node object's InternalIP decides
afterwards, and only a different address loads them again.
"""

import os

import pytest

import k8s
from harness import Agent
from netlab import NetLab, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="end-to-end tests need root")

OTHER_IP = "192.168.50.40"


def datapath(agent):
    return agent.status()["datapath"]


def test_programs_load_before_the_node_and_reload_only_for_another_address():
    lab = NetLab("pre", nodes=["a"])
    srv = None
    agent = None
    try:
        srv = k8s.ApiServer(tls=True, quiet=True).start()
        api = srv.client()
        a = lab.node("a")
        agent = Agent(lab, srv, node=a).start(wait=False)
        # No Node object in the cluster: loaded with ext0's address, not attached.
        dp = wait_for(lambda: (d := datapath(agent))["tc_loaded"] and d, timeout=15,
                      what="programs loaded")
        assert dp["loads"] == 1
        assert dp["programs_node_ip"] == a.ip
        assert dp["attachments"] == []
        assert "waiting for" in dp["state"]
        with open(agent.log_path) as f:
            assert "tc programs loaded before the Node is known device=ext0 " \
                   f"node_ip={a.ip}" in f.read().replace('"', "").replace("msg=", "")

        # The Node, with the same address: attached, nothing loaded again.
        api.create(a.k8s_node())
        wait_for(lambda: {(x["device"], x["program"]) for x in datapath(agent)["attachments"]}
                 >= {("ext0", "from_netdev"), ("ext0", "to_netdev")}, timeout=15,
                 what="ext0 attached")
        dp = datapath(agent)
        assert dp["loads"] == 1, "the same address must not reload the programs"
        assert dp["programs_node_ip"] == a.ip

        # The Node moves to another address: loaded once more, with that one.
        a.exec("ip", "addr", "add", f"{OTHER_IP}/24", "dev", "ext0")
        node = api.get("nodes", None, a.name)
        node["status"]["addresses"] = k8s.node(a.name, OTHER_IP, a.pod_cidr)["status"]["addresses"]
        api.update_status(node)           # addresses are status: the kubelet's write
        dp = wait_for(lambda: (d := datapath(agent))["programs_node_ip"] == OTHER_IP and d,
                      timeout=15, what="reloaded for the new address")
        assert dp["loads"] == 2
        assert agent.alive()
    finally:
        if agent is not None:
            agent.stop()
        if srv is not None:
            srv.close()
        lab.close()
