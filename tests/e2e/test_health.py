"""Health that tells the truth: --agent-health-port and --agent-not-ready-taint-key.

The agent runs in its node's network namespace, so its 127.0.0.1:9879 is the node's
own (a host-network pod's, in a cluster): the probes here are curl in that namespace,
and two nodes' agents both use the default port without meeting.

  /healthz   503 naming the watch a fault holds back, 200 "ok" once it syncs and the
             datapath is programmed; axon_agent_ready follows it
  taint      removed from the Node only once ready, every effect of the key, the other
             taints kept; a Node without it gets no write; a write racing the agent's
             patch makes it read the Node again and retry
  /livez     503 after the event loop has been stuck for 30 s (blocked writing its log
             to a pipe nobody reads), while the endpoint still answers from its thread;
             200 again once the loop moves
  start      a health port in use fails the start before anything is attached
"""

import fcntl
import os
import pathlib
import subprocess
import threading
import time

import k8s
from harness import Agent
from netlab import wait_for

PORT = 9879
KEY = "node.axon.io/agent-not-ready"
F_SETPIPE_SZ = 1031


def get(node, path, port=PORT):
    """(HTTP status, body) of GET http://127.0.0.1:port/path in the node's namespace;
    status 0 when nothing answers."""
    r = node.exec("curl", "-s", "--max-time", "5", "-w", "\n%{http_code}",
                  f"http://127.0.0.1:{port}{path}", check=False)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


def taints(api, name):
    return api.get("nodes", None, name)["spec"].get("taints", [])


def node_requests(api):
    return api.stats()["requests"].get("nodes", {})


def tainted_node(lab_node, extra=()):
    n = lab_node.k8s_node()
    n["spec"]["taints"] = [{"key": KEY, "effect": "NoSchedule"},
                           {"key": "example.com/keep", "value": "x", "effect": "NoSchedule"},
                           {"key": KEY, "effect": "NoExecute"}] + list(extra)
    return n


def metric(node, name):
    code, text = get(node, "/metrics", port=9962)
    assert code == 200
    for line in text.splitlines():
        if line.startswith(name):
            return line
    return None


def test_healthz_waits_for_sync_and_taint_goes_once_ready(lab1, api, start_agent):
    a = lab1.node("a")
    lab1.publish(api)
    api.apply(tainted_node(a))
    # The CiliumEndpointSlice watch fails until the fault is cleared.
    api.fault(status=500, resource="ciliumendpointslices", count=-1, user_agent="axon-agent")
    agent = start_agent(a, "--k8s-backoff-max=1s", "--prometheus-serve-addr=127.0.0.1:9962",
                        wait=False)

    def others_synced():
        st = agent.status()
        return all(w["synced"] for w in st["kubernetes"]["watches"]
                   if w["name"] != "ciliumendpointslices")
    wait_for(others_synced, timeout=15, what="every other watch synced")
    time.sleep(1.5)                 # a few more turns of the loop, still held
    assert get(a, "/healthz") == (503, "waiting for initial sync: ciliumendpointslices")
    assert get(a, "/livez") == (200, "ok")
    assert get(a, "/nothing")[0] == 404
    st = agent.status()
    assert st["health"] == {"port": PORT, "ready": False,
                            "reason": "waiting for initial sync: ciliumendpointslices"}
    assert st["taint"]["state"] == "waiting"
    assert [t["key"] for t in taints(api, a.name)].count(KEY) == 2
    assert "patch" not in node_requests(api)
    assert metric(a, "axon_agent_ready ") == "axon_agent_ready 0"
    build = metric(a, "axon_build_info{")
    assert build.startswith('axon_build_info{version="') and build.endswith("} 1")
    assert f'version="{st["version"]}",commit="{st["commit"]}"' in build

    api.clear_faults()
    wait_for(lambda: get(a, "/healthz") == (200, "ok"), timeout=15, what="/healthz 200")
    wait_for(lambda: agent.status()["taint"]["state"] == "removed", timeout=10,
             what="taint removed")
    assert taints(api, a.name) == [{"key": "example.com/keep", "value": "x",
                                    "effect": "NoSchedule"}]
    st = agent.status()
    assert st["health"] == {"port": PORT, "ready": True, "reason": "ok"}
    assert st["taint"] == {"key": KEY, "state": "removed", "removed": 2, "reads": 1,
                           "patches": 1, "conflicts": 0, "error": ""}
    assert node_requests(api).get("patch") == 1
    assert metric(a, "axon_agent_ready ") == "axon_agent_ready 1"
    assert "agent ready: not-ready taint removed" in agent.log_tail(200)


def test_node_without_the_taint_gets_no_write(lab2, api, start_agent):
    """Also: two nodes, two agents, each on 127.0.0.1:9879 of its own namespace."""
    lab2.publish(api)
    api.reset_stats()
    agents = [start_agent(lab2.node(n)) for n in ("a", "b")]
    for agent in agents:
        node = agent.node
        wait_for(lambda: get(node, "/healthz") == (200, "ok"), timeout=15,
                 what=f"/healthz 200 on {node.name}")
        wait_for(lambda: agent.status()["taint"]["state"] == "absent", timeout=10,
                 what=f"taint absent on {node.name}")
    reqs = node_requests(api)
    assert "patch" not in reqs and "update" not in reqs
    assert reqs["get"] == 2                     # one read per agent
    for agent in agents:
        assert agent.status()["taint"]["patches"] == 0
        assert "no not-ready taint on the Node" in agent.log_tail(200)


def test_taint_key_off_reads_nothing(lab1, api, start_agent):
    a = lab1.node("a")
    lab1.publish(api)
    api.apply(tainted_node(a))
    api.reset_stats()
    agent = start_agent(a, "--agent-not-ready-taint-key=")
    wait_for(lambda: get(a, "/healthz") == (200, "ok"), timeout=15, what="/healthz 200")
    time.sleep(1)
    assert agent.status()["taint"]["state"] == "off"
    assert "get" not in node_requests(api)
    assert [t["key"] for t in taints(api, a.name)].count(KEY) == 2


def test_concurrent_node_update_makes_the_patch_retry(lab1, api, start_agent):
    a = lab1.node("a")
    lab1.publish(api)
    api.apply(tainted_node(a))
    # The agent's first patch is held 2 s at the server, after it was counted: the
    # test's own update of the Node lands in between and the patch's test fails.
    api.fault(delay_ms=2000, verb="patch", resource="nodes", user_agent="axon-agent")
    agent = start_agent(a)
    wait_for(lambda: node_requests(api).get("patch") == 1, timeout=15,
             what="the agent's first patch at the server")
    n = api.get("nodes", None, a.name)
    n["metadata"]["labels"]["example.com/touched"] = "yes"
    api.update(n)
    wait_for(lambda: agent.status()["taint"]["state"] == "removed", timeout=15,
             what="taint removed after the conflict")
    st = agent.status()["taint"]
    assert st["conflicts"] == 1 and st["reads"] == 2 and st["patches"] == 2
    n = api.get("nodes", None, a.name)
    assert n["metadata"]["labels"]["example.com/touched"] == "yes"
    assert n["spec"]["taints"] == [{"key": "example.com/keep", "value": "x",
                                    "effect": "NoSchedule"}]
    assert api.stats()["codes"].get("422") == 1
    assert "node changed while removing the not-ready taint" in agent.log_tail(200)


def test_health_port_in_use_fails_the_start_before_attaching(lab1, api, start_agent):
    a = lab1.node("a")
    lab1.publish(api)
    holder = a.spawn(["/usr/bin/python3", "-c",
                      "import socket, time; s = socket.socket(); "
                      f"s.bind(('127.0.0.1', {PORT})); s.listen(); print('ready', flush=True); "
                      "time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().decode().strip() == "ready"
        agent = start_agent(a, wait=False)
        assert agent.proc.wait(15) == 1
    finally:
        holder.kill()
        holder.wait()
    log = agent.log_tail(50)
    assert (f'msg="cannot serve health checks" addr=127.0.0.1:{PORT} '
            'error="Address already in use"') in log
    assert "program attached" not in log
    links = pathlib.Path(agent.bpf_root) / "links"
    assert not links.exists() or not os.listdir(links)


def test_livez_turns_503_when_the_event_loop_is_stuck(lab1, apiserver, api):
    """The loop blocks in write(2) on a full log pipe: a real way for an agent to hang
    (a log collector that stopped reading). The endpoint's thread keeps answering."""
    a = lab1.node("a")
    lab1.publish(api)
    agent = Agent(lab1, apiserver, node=a)
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen(["nsenter", f"--net=/var/run/netns/{a.netns}"] + agent.argv(),
                            stdout=w, stderr=w, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    os.close(w)
    lab1.procs.append(proc)             # killed by the lab's cleanup
    reading = threading.Event()
    reading.set()
    log = []

    def drain():
        with os.fdopen(r, "rb") as f:
            while True:
                reading.wait()
                line = f.readline()
                if not line:
                    return
                log.append(line.decode(errors="replace"))
    threading.Thread(target=drain, daemon=True).start()
    wait_for(lambda: get(a, "/healthz") == (200, "ok"), timeout=15, what="/healthz 200")

    reading.clear()
    time.sleep(0.5)
    # Each malformed EndpointSlice is one warning line: a few dozen fill the pipe.
    for i in range(60):
        api.create(k8s.endpointslice("default", f"bad-{i}", "web",
                                     [("300.1.2.3", True)], [("http", 80, "TCP")]))
    stuck_at = time.monotonic()
    wait_for(lambda: get(a, "/livez")[0] == 503, timeout=45, interval=1,
             what="/livez 503 on a stuck loop")
    assert time.monotonic() - stuck_at > 29
    code, body = get(a, "/livez")
    assert code == 503 and body.startswith("event loop stalled: no turn for 3")
    assert get(a, "/healthz")[0] == 503
    assert proc.poll() is None

    reading.set()
    wait_for(lambda: get(a, "/livez") == (200, "ok"), timeout=10, what="/livez 200 again")
    wait_for(lambda: get(a, "/healthz") == (200, "ok"), timeout=10, what="/healthz 200 again")
    assert any("skipping malformed object" in line for line in log)
