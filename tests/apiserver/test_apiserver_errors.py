"""Authentication, TLS and the error bodies the agent must tell apart."""

import json
import socket
import ssl

import pytest

import k8s
from apiserver_testutil import fixture_bytes

CURL = "curl/7.88.1"       # the fixtures were recorded with curl: pretty-printed bodies


# Every Cilium CRD missing, as on a cluster where the chart's crds/ were not applied.
CILIUM_CRDS = [r.plural for r in k8s.resources.RESOURCES if r.group == "cilium.io"]


@pytest.fixture(scope="module")
def tls_api():
    with k8s.ApiServer(tls=True, fixtures=True, without=CILIUM_CRDS) as server:
        yield server


@pytest.mark.parametrize("token", [None, "wrong"])
def test_401_without_or_with_a_bad_token(tls_api, token):
    c = k8s.Client(tls_api.url, token, tls_api.ca, user_agent=CURL)
    resp = c.request("GET", "/api/v1/services", check=False)
    assert resp.code == 401
    assert resp.body == fixture_bytes("error-401.json")
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["cache-control"] == "no-cache, private"


def test_version_and_health_need_no_token(tls_api):
    c = k8s.Client(tls_api.url, None, tls_api.ca)
    v = c.request("GET", "/version").json()
    # WatchList on by default: a 1.34 server (see test_apiserver_watchlist.py for 1.33).
    assert (v["major"], v["minor"]) == ("1", "34")
    assert v["gitVersion"].startswith("v1.34.") and v["gitVersion"].endswith("-axon-test")
    assert c.request("GET", "/healthz").body == b"ok"


def test_tls_verifies_against_the_generated_ca(tls_api):
    ctx = ssl.create_default_context(cafile=tls_api.ca)
    with socket.create_connection(("127.0.0.1", tls_api.port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            tls.sendall(b"GET /api/v1/nodes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                        + tls_api.token.encode() + b"\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    ctx = ssl.create_default_context()          # the system CAs do not know ours
    with socket.create_connection(("127.0.0.1", tls_api.port), timeout=5) as sock:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(sock, server_hostname="127.0.0.1")


def test_uninstalled_crd_is_a_plain_text_404_until_installed(tls_api):
    c = tls_api.client(user_agent=CURL)
    for path in ("/apis/cilium.io/v2alpha1/ciliumendpointslices",
                 "/apis/cilium.io/v2alpha1/ciliumendpointslices/x",
                 "/apis/cilium.io/v2alpha1/ciliumendpointslices?watch=1"):
        resp = c.request("GET", path, check=False)
        assert resp.code == 404
        assert resp.body == fixture_bytes("error-404.json")
        assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    groups = c.request("GET", "/apis").json()["groups"]
    assert "cilium.io" not in [g["name"] for g in groups]

    c.install("ciliumendpointslices")
    assert c.list("ciliumendpointslices")["items"], "loaded objects appear once installed"
    groups = c.request("GET", "/apis").json()["groups"]
    assert "cilium.io" in [g["name"] for g in groups]

    c.uninstall("ciliumendpointslices")
    assert c.request("GET", "/apis/cilium.io/v2alpha1/ciliumendpointslices",
                     check=False).code == 404


def test_missing_object_is_a_404_status(tls_api):
    c = tls_api.client(user_agent=CURL)
    resp = c.request("GET", "/api/v1/namespaces/shop/services/nosuch", check=False)
    assert resp.code == 404 and resp.body == fixture_bytes("error-404-object.json")
    st = tls_api.client().request("GET", "/apis/discovery.k8s.io/v1/namespaces/shop/"
                                  "endpointslices/nosuch", check=False).json()
    assert st["message"] == 'endpointslices.discovery.k8s.io "nosuch" not found'
    assert st["details"] == {"name": "nosuch", "group": "discovery.k8s.io",
                             "kind": "endpointslices"}


@pytest.mark.parametrize("path", ["/api/v1/services/web",            # needs a namespace
                                  "/api/v1/namespaces/shop/nodes",    # cluster-scoped
                                  "/api/v1/configmaps", "/apis/apps/v1/deployments", "/nope"])
def test_unrouted_paths_are_plain_404(tls_api, path):
    resp = tls_api.client().request("GET", path, check=False)
    assert resp.code == 404 and resp.body == b"404 page not found\n"


def test_discovery(tls_api):
    c = tls_api.client()
    assert c.request("GET", "/api").json()["versions"] == ["v1"]
    core = c.request("GET", "/api/v1").json()
    assert {r["name"] for r in core["resources"]} >= {"services", "nodes", "services/status"}
    disc = c.request("GET", "/apis/discovery.k8s.io/v1").json()
    assert disc["resources"][0]["kind"] == "EndpointSlice"


def test_large_responses_are_chunked_and_small_ones_are_not(tls_api):
    c = tls_api.client()
    big = c.request("GET", "/api/v1/services")
    small = c.request("GET", "/api/v1/nodes?limit=1&fieldSelector=metadata.name=none")
    assert big.headers.get("transfer-encoding") == "chunked"
    assert "content-length" in small.headers
    assert json.loads(big.body)["kind"] == "ServiceList"
