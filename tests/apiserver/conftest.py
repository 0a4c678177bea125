"""Shared pytest fixtures: a test apiserver subprocess and helpers to talk to it raw.

Most tests share one plain-HTTP server per module (fixtures loaded, the network-policy ones
too, 1 s bookmarks) and
create objects in their own namespace, so they neither see nor disturb each other.
"""

import itertools
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
sys.path.insert(0, str(HERE))

import k8s  # noqa: E402
from apiserver_testutil import RawHttp  # noqa: E402

_ns_counter = itertools.count()


@pytest.fixture(scope="module")
def api():
    with k8s.ApiServer(tls=False, fixtures=True, bookmark_interval=1, history=200,
                       load=[k8s.FIXTURES_DIR / f for f in k8s.POLICY_FIXTURE_LISTS]) as server:
        yield server


@pytest.fixture
def client(api):
    return api.client()


@pytest.fixture
def ns():
    """A namespace no other test uses."""
    return f"t{next(_ns_counter)}"


@pytest.fixture
def raw(api):
    conns = []

    def open_raw(server=None, timeout=5):
        c = RawHttp(server or api, timeout)
        conns.append(c)
        return c
    yield open_raw
    for c in conns:
        c.close()
