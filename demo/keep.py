"""A demo node left running (make demo DEMO_KEEP=1), and stopping it (make demo-stop).

The demo records what it leaves behind in STATE_DIR/state.json: its processes (by pid
and start time, so a pid the kernel has since given to someone else is never signalled),
its network namespaces, its node's cgroup, bpffs and run directories, and the test
apiserver's work directory. stop() undoes exactly that list and nothing else, then
checks that none of it is left. STATE_DIR also holds two wrappers, `agentctl` (the CLI
with the node's flags, inside its network namespace) and `in-client` (a command inside
the client pod: its network namespace and its cgroup).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types

STATE_DIR = "/run/axon-demo"
STATE_FILE = os.path.join(STATE_DIR, "state.json")


def kept():
    """True when a kept demo is recorded (one at a time: the wrappers have fixed paths)."""
    return os.path.exists(STATE_FILE)


def _start_time(pid):
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return int(stat[stat.rindex(")") + 2:].split()[19])


def _process(pid):
    return {"pid": pid, "start": _start_time(pid)}


def _write_script(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)


def save(lab, node, client, srv, agentctl):
    """Record what the demo leaves running and write the wrappers. Returns their paths."""
    os.makedirs(STATE_DIR, exist_ok=True)
    procs = [_process(p.pid) for p in lab.procs if p.poll() is None]
    procs.append(_process(srv.proc.pid))
    state = {
        "processes": [p for p in procs if p["start"] is not None],
        "netns": list(lab._netns),
        "nodes": [{"cgroup_root": n.cgroup_root, "bpf_root": n.bpf_root, "run_dir": n.run_dir}
                  for n in lab.nodes],
        "dirs": [str(srv.workdir)],
    }
    ctl = os.path.join(STATE_DIR, "agentctl")
    _write_script(ctl, "#!/bin/sh\n"
                  "# agentctl against the kept demo node: in its network namespace, with its\n"
                  "# bpffs root, socket and state directory. Stop the demo: make demo-stop.\n"
                  f"exec nsenter --net=/var/run/netns/{node.netns} {agentctl} "
                  f"--bpf-root {node.bpf_root} --socket {node.socket} "
                  f"--state-dir {node.state_dir} \"$@\"\n")
    in_client = os.path.join(STATE_DIR, "in-client")
    _write_script(in_client, "#!/bin/sh\n"
                  "# Runs a command in the kept demo's client pod: its network namespace and its\n"
                  "# cgroup, where the socket LB translates ClusterIPs.\n"
                  f"echo $$ > {client.cgroup}/cgroup.procs && "
                  f"exec nsenter --net=/var/run/netns/{client.netns} \"$@\"\n")
    tmp = STATE_FILE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, STATE_FILE)
    return ctl, in_client


def _signal(proc, sig):
    """Signal a recorded process (its whole group when it leads one), if it is still the
    process that was recorded. Returns whether it was."""
    pid = proc["pid"]
    if _start_time(pid) != proc["start"]:
        return False
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _leftovers(state):
    ns = set(subprocess.run(["ip", "netns", "list"], capture_output=True,
                            text=True).stdout.split())
    left = [f"netns {n}" for n in state["netns"] if n in ns]
    for node in state["nodes"]:
        left += [p for p in node.values() if os.path.exists(p)]
    left += [d for d in state["dirs"] if os.path.exists(d)]
    left += [f"pid {p['pid']}" for p in state["processes"] if _start_time(p["pid"]) == p["start"]]
    return left


def stop():
    """Stop the kept demo and remove everything it recorded. Returns an exit status."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                    "tests", "e2e"))
    from netlab import NetLab  # noqa: E402  (the lab's own teardown of a node's directories)

    try:
        with open(STATE_FILE) as f:
            state = json.load(f)
    except FileNotFoundError:
        print(f"demo-stop: no kept demo ({STATE_FILE} does not exist); nothing to stop")
        return 0
    # The agent first (SIGTERM: it exits leaving its pins, removed below), then the rest.
    live = [p for p in state["processes"] if _signal(p, signal.SIGTERM)]
    deadline = time.monotonic() + 5
    while live and time.monotonic() < deadline:
        live = [p for p in live if _start_time(p["pid"]) == p["start"]]
        time.sleep(0.05)
    for p in live:
        _signal(p, signal.SIGKILL)
    time.sleep(0.1 if live else 0)
    for node in state["nodes"]:
        NetLab._remove_node_dirs(types.SimpleNamespace(**node))
    for ns in reversed(state["netns"]):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    for d in state["dirs"]:
        shutil.rmtree(d, ignore_errors=True)
    left = _leftovers(state)
    if left:
        print("demo-stop: could not remove: " + ", ".join(left), file=sys.stderr)
        return 1
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    print(f"demo stopped: {len(state['processes'])} processes, {len(state['netns'])} network "
          "namespaces, the node's cgroup, bpffs pins and run directory, the apiserver's files")
    return 0
