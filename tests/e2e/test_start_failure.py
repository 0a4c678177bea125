"""A start that fails leaves the node as it found it.

Each bad input (a missing or malformed kubeconfig, an apiserver URL libcurl cannot
parse, a bad flag, a --devices name that does not exist, a --cgroup-root that is not a
readable cgroup v2 directory) must fail the agent before it pins or attaches anything:
the exit code is non-zero, one log line names the problem, and the node's bpffs
directory, the cgroup's attachments (`bpftool cgroup show`), the tc attachments on the
node's devices (tcx by tests/tools/tc_query, legacy by `tc filter show`, in its
namespace) and the socket path are exactly as before. A failure after pinning began
(here: the API socket cannot be created) removes everything the start created on a
node that had no datapath, and removes nothing on a node whose previous agent left its
datapath pinned and serving.
"""

import json
import os
import pathlib
import re
import subprocess

import pytest

from harness import OUT, Agent, wait_attached

TC_QUERY = OUT / "tests" / "tools" / "tc_query"


def _tree(path):
    """Every path under path, relative to it (None: path does not exist)."""
    if not os.path.exists(path):
        return None
    out = []
    for root, dirs, files in os.walk(path):
        rel = os.path.relpath(root, path)
        out += [os.path.join(rel, n) for n in dirs + files]
    return sorted(out)


def _json(argv):
    r = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip() or "[]")


def tc_state(node):
    """tcx programs (tests/tools/tc_query) and legacy tc filters on every device of
    the node's namespace."""
    ns = ["nsenter", f"--net=/var/run/netns/{node.netns}"]
    tcx = _json(ns + [str(TC_QUERY)])
    legacy = {}
    for link in _json(ns + ["ip", "-j", "link", "show"]):
        for d in ("ingress", "egress"):
            out = node.exec("tc", "filter", "show", "dev", link["ifname"], d).stdout
            if out.strip():
                legacy[f"{link['ifname']}/{d}"] = out
    return {"tcx": tcx, "legacy": legacy}


def snapshot(node):
    """What a start may change on node."""
    return {
        "bpffs": _tree(node.bpf_root),
        "cgroup": _json(["bpftool", "-j", "cgroup", "show", node.cgroup_root]),
        "tc": tc_state(node),
        "socket": os.path.exists(node.socket),
        "state": _tree(node.state_dir),
    }


def names_only(snap):
    """snap without program ids: a restart replaces the programs of its links in place."""
    out = dict(snap)
    out["cgroup"] = sorted((p["attach_type"], p["name"]) for p in snap["cgroup"])
    out["tc"] = {
        "tcx": sorted((a["dev"], a["dir"], a["name"]) for a in snap["tc"]["tcx"]),
        "legacy": {k: re.sub(r"\bid \d+", "id N", v) for k, v in snap["tc"]["legacy"].items()},
    }
    return out


def fail_start(lab, apiserver, node, *flags):
    """Start an agent with flags that must make it fail; returns (exit code, new log
    lines)."""
    agent = Agent(lab, apiserver, extra=flags, node=node)
    before = agent.log_path.read_text() if agent.log_path.exists() else ""
    agent.start(wait=False)
    try:
        rc = agent.proc.wait(20)
    finally:
        if agent.alive():
            agent.stop()
    lines = agent.log_path.read_text()[len(before):].splitlines()
    return rc, lines


def error_lines(lines):
    """The lines saying what went wrong: the parser's ("axon-agent: ...") or the
    logger's level=error."""
    return [line for line in lines if line.startswith("axon-agent:") or "level=error" in line]


def bad_inputs(node, tmp):
    """(flags, text the one error line must contain) for every input refused before the
    first pin."""
    garbage = tmp / "garbage.kubeconfig"
    garbage.write_text("clusters: [this is not\n  a kubeconfig\n")
    not_a_dir = tmp / "file"
    not_a_dir.write_text("")
    return [
        (["--kubeconfig", str(tmp / "missing.kubeconfig")],
         "missing.kubeconfig: No such file or directory"),
        (["--kubeconfig", str(garbage)], "no apiserver configuration"),
        (["--k8s-api-server-urls", "https://127.0.0.1:6443,https://[::1"],
         "--k8s-api-server-urls: 'https://[::1' is not a valid URL"),
        (["--k8s-api-server-urls", "https://127.0.0.1:99999"],
         "--k8s-api-server-urls: 'https://127.0.0.1:99999' is not a valid URL"),
        (["--node-port-range", "40000-30000"], "--node-port-range: '40000-30000'"),
        (["--no-such-flag"], "--no-such-flag: unknown option"),
        (["--devices", "nosuchdev0"], "--devices: 'nosuchdev0': no such device"),
        (["--devices", f"{node.native},nosuchdev1"], "--devices: 'nosuchdev1': no such device"),
        (["--cgroup-root", str(tmp / "missing-cgroup")],
         "--cgroup-root: " + str(tmp / "missing-cgroup") + ": No such file or directory"),
        (["--cgroup-root", str(not_a_dir)],
         "--cgroup-root: " + str(not_a_dir) + ": Not a directory"),
        (["--cgroup-root", str(tmp)], "--cgroup-root: " + str(tmp) + " is "),
    ]


@pytest.fixture
def scratch(lab1):
    """A directory of the test's own in the node's run dir (not on cgroup v2)."""
    d = pathlib.Path(lab1.nodes[0].run_dir) / "scratch"
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_bad_input_fails_before_anything_is_pinned(lab1, apiserver, scratch):
    node = lab1.nodes[0]
    before = snapshot(node)
    assert before["bpffs"] is None and before["cgroup"] == [] and before["socket"] is False
    assert before["tc"] == {"tcx": [], "legacy": {}}
    for flags, text in bad_inputs(node, scratch):
        rc, lines = fail_start(lab1, apiserver, node, *flags)
        assert rc != 0, f"{flags}: exit code 0"
        errors = error_lines(lines)
        assert len(errors) == 1, f"{flags}: want one error line, got:\n" + "\n".join(lines)
        assert text in errors[0], f"{flags}: {errors[0]!r} does not name {text!r}"
        assert snapshot(node) == before, f"{flags}: the node changed"


def test_failure_after_pinning_undone_on_fresh_node(lab1, apiserver, scratch):
    """The API socket's directory is a file: the agent has pinned its maps and attached
    the socket hooks by then, and must take all of it away again."""
    node = lab1.nodes[0]
    blocker = scratch / "blocker"
    blocker.write_text("")
    before = snapshot(node)
    rc, lines = fail_start(lab1, apiserver, node, "--socket", str(blocker / "agent.sock"))
    assert rc != 0
    errors = error_lines(lines)
    assert len(errors) == 1 and "cannot open API socket" in errors[0], "\n".join(lines)
    assert "Not a directory" in errors[0]
    # It did get as far as pinning: the undo says what it removed.
    undo = [line for line in lines if "removed what it created" in line]
    assert undo and "maps=0 " not in undo[0] and "links=0 " not in undo[0], "\n".join(lines)
    assert snapshot(node) == before


@pytest.mark.parametrize("mode", ["tcx", "legacy"])
def test_restart_failure_keeps_running_datapath(lab1, apiserver, api, scratch, mode):
    """A node whose agent stopped (SIGTERM: the datapath stays pinned and attached): a
    bad input changes nothing at all; a failure after pinning removes nothing, neither
    pins nor the recorded legacy filters."""
    node = lab1.nodes[0]
    lab1.publish(api)
    tc_flags = ["--enable-tcx=false"] if mode == "legacy" else []
    good = Agent(lab1, apiserver, extra=tc_flags, node=node).start()
    wait_attached(good, node.native)
    assert good.stop() == 0
    pinned = snapshot(node)
    names = names_only(pinned)
    assert pinned["bpffs"] and pinned["cgroup"]
    if mode == "tcx":
        assert (node.native, "ingress", "from_netdev") in names["tc"]["tcx"], names["tc"]
        assert f"links/tc-{node.native}-ingress" in pinned["bpffs"]
    else:
        assert "from_netdev" in pinned["tc"]["legacy"][f"{node.native}/ingress"]
        assert pinned["state"], "the legacy filters are recorded in --state-dir"

    rc, lines = fail_start(lab1, apiserver, node, *tc_flags, "--kubeconfig",
                           str(scratch / "missing"))
    assert rc != 0 and len(error_lines(lines)) == 1
    assert snapshot(node) == pinned

    blocker = scratch / "blocker"
    blocker.write_text("")
    rc, lines = fail_start(lab1, apiserver, node, *tc_flags, "--socket",
                           str(blocker / "agent.sock"))
    assert rc != 0
    assert any("datapath pinned before it is left in place" in line for line in lines), \
        "\n".join(lines)
    assert names_only(snapshot(node)) == names

    # And the next good start adopts it as any restart does.
    again = Agent(lab1, apiserver, extra=tc_flags, node=node).start()
    wait_attached(again, node.native)
    assert again.stop() == 0


def test_in_cluster_urls_flag_without_service_host(lab1, apiserver, scratch):
    """--k8s-api-server-urls without --kubeconfig and without KUBERNETES_SERVICE_HOST
    takes only the credentials from the service account: the error (here: no account
    files outside a pod) says so, and nothing is pinned."""
    node = lab1.nodes[0]
    before = snapshot(node)
    agent = Agent(lab1, apiserver, node=node)
    argv = agent.argv()
    i = argv.index("--kubeconfig")
    del argv[i:i + 2]
    argv += ["--k8s-api-server-urls", apiserver.url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    r = subprocess.run(["nsenter", f"--net=/var/run/netns/{node.netns}"] + argv, env=env,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    errors = error_lines(r.stderr.splitlines())
    assert len(errors) == 1, r.stderr
    assert "service account: /var/run/secrets/kubernetes.io/serviceaccount/token" in errors[0]
    assert "KUBERNETES_SERVICE_HOST" not in errors[0]
    assert snapshot(node) == before

