"""Fixtures for end-to-end tests: a lab node, the test apiserver, the agent."""

import os
import pathlib
import signal
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import k8s  # noqa: E402
from netlab import NetLab  # noqa: E402
from harness import Agent  # noqa: E402


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    lab = NetLab()
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def apiserver():
    srv = k8s.ApiServer(tls=True, quiet=True).start()
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


