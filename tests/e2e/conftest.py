"""Fixtures for end-to-end tests: lab nodes, the test apiserver, agents.

  lab         one node namespace, pods on 10.244.0.0/24 (socket-LB tests)
  lab1        node A (native device ext0 on the world network) and the world namespace
  lab2        nodes A and B on the world network
  agent       an Agent on `lab`'s node (not started)
  start_agent start_agent(node, *flags) starts an agent on a node of lab1/lab2 and returns
              it; every agent's log is printed if the test fails (cls=, and keywords
              for it: another harness.Agent, e.g. kubeconfig=...)
  apiserver   the test apiserver (tests/apiserver), fresh for each test; parametrized
              indirectly with "real", the session's real apiserver instead, through a
              realk8s.Scope that deletes what the test created:
                @pytest.mark.parametrize("apiserver", ["test", "real"], indirect=True)
  real_apiserver  one realk8s.RealApiServer (etcd + kube-apiserver) for the whole session,
              started by the first test that needs it; skipped when its binaries are
              missing, failed instead under CI=true (tests/lib/realk8s.py)
"""

import json
import os
import pathlib
import signal
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import k8s  # noqa: E402
import realk8s  # noqa: E402
from netlab import NetLab  # noqa: E402
from harness import Agent  # noqa: E402
from kpr_conformance import Summary  # noqa: E402

KPR_SUMMARY = Summary()


def pytest_configure(config):
    config.addinivalue_line("markers", "kpr(name): the test probes the Service conformance "
                            "behaviour `name` of tests/e2e/kpr_conformance.py")


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    lab = NetLab()
    try:
        yield lab
    finally:
        lab.close()


def _lab(**kw):
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    lab = NetLab(**kw)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def lab1():
    yield from _lab(tag="dp", nodes=["a"])


@pytest.fixture
def lab2():
    yield from _lab(tag="2n", nodes=["a", "b"])


@pytest.fixture
def start_agent(request, apiserver):
    agents = []

    def start(node, *flags, wait=True, cls=Agent, **kw):
        a = cls(node.lab, apiserver, extra=flags, node=node, **kw)
        agents.append(a)
        return a.start(wait=wait)

    try:
        yield start
    finally:
        failed = getattr(request.node, "rep_call_failed", False)
        for a in agents:
            if failed:
                print(f"--- agent on {a.node.name}:\n{a.log_tail(80)}")
            if a.alive():
                a.stop(signal.SIGKILL)


@pytest.fixture
def apiserver(request):
    if getattr(request, "param", "test") == "real":
        scope = request.getfixturevalue("real_apiserver").scope()
        try:
            yield scope
        finally:
            if getattr(request.node, "rep_call_failed", False):
                print(scope.log_tail())
            scope.close()
        return
    srv = k8s.ApiServer(tls=True, quiet=True).start()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope="session")
def real_apiserver():
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    realk8s.require()
    srv = realk8s.RealApiServer().start()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def api(apiserver):
    return apiserver.client()


@pytest.fixture
def agent(lab, apiserver, request):
    a = Agent(lab, apiserver)
    try:
        yield a
    finally:
        if request.node.rep_call_failed if hasattr(request.node, "rep_call_failed") else False:
            print(a.log_tail(80))
        if a.alive():
            a.stop(signal.SIGKILL)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call_failed = rep.failed
    KPR_SUMMARY.record(item, rep)


def pytest_collection_modifyitems(config, items):
    """AXON_KPR_CATALOGUE=FILE (with --collect-only): write each test's conformance
    behaviours and its skip/xfail marks to FILE, for test_kpr_catalogue.py."""
    path = os.environ.get("AXON_KPR_CATALOGUE")
    if not path:
        return
    tests = {}
    for item in items:
        tests[item.nodeid] = {
            "kpr": [m.args[0] for m in item.iter_markers("kpr") if m.args],
            "xfail": any(True for _ in item.iter_markers("xfail")),
            "skip": any(True for _ in item.iter_markers("skip")) or
            any(m.args and m.args[0] for m in item.iter_markers("skipif")),
        }
    with open(path, "w") as f:
        json.dump(tests, f)


def pytest_terminal_summary(terminalreporter):
    lines = KPR_SUMMARY.lines()
    if lines:
        terminalreporter.section("Service conformance (kube-proxy replacement)")
        for line in lines:
            terminalreporter.write_line(line)


