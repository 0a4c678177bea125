"""tests/lib/k8s.py: process management (restart, shutdown), kubeconfig, builders, kubectl."""

import shutil
import subprocess
import time

import pytest

import k8s


def test_restart_keeping_state_keeps_objects_and_revisions_but_not_history(ns):
    with k8s.ApiServer(tls=False, quiet=True) as api:
        c = api.client()
        c.create(k8s.service(ns, "a", [80]))
        old_rv = c.list("services")["metadata"]["resourceVersion"]
        b = c.create(k8s.service(ns, "b", [80], type="NodePort"))
        port = api.port
        api.restart(keep_state=True)
        assert api.port == port, "same URL after a restart"
        c = api.client()
        lst = c.list("services")
        assert lst["metadata"]["resourceVersion"] == b["metadata"]["resourceVersion"]
        assert c.get("services", ns, "b") == b
        with pytest.raises(k8s.ApiError):      # allocations survived the restart
            c.create(k8s.service(ns, "c", [80], cluster_ip=b["spec"]["clusterIP"]))
        with c.watch("services", resource_version=old_rv, timeout_seconds=1) as w:
            assert w.next(timeout=5)["object"]["code"] == 410
        with c.watch("services", resource_version=lst["metadata"]["resourceVersion"],
                     timeout_seconds=1) as w:
            assert list(w) == []


@pytest.mark.parametrize("initial_rv", [5000, 2])
def test_restart_dropping_state_at_another_revision(initial_rv):
    with k8s.ApiServer(tls=False, fixtures=True, initial_rv=100, quiet=True) as api:
        c = api.client()
        c.create(k8s.service("extra", "gone-after-restart", [80]))
        api.restart(keep_state=False, initial_rv=initial_rv)
        c = api.client()
        lst = c.list("services")
        assert len(lst["items"]) == 9, "only the load files again"
        assert int(lst["metadata"]["resourceVersion"]) == initial_rv + 16
        api.restart(keep_state=False, load=[])
        assert api.client().list("services")["items"] == []


def test_sigterm_ends_open_watches_cleanly(ns):
    api = k8s.ApiServer(tls=False, quiet=True).start()
    try:
        w = api.client().watch("services", ns, timeout_seconds=60)
        start = time.monotonic()
        api.stop()
        assert list(w) == [], "the stream ends with its terminating chunk, no error"
        assert time.monotonic() - start < 3
    finally:
        api.close()


def test_kubeconfig_points_at_the_server(tmp_path):
    with k8s.ApiServer(tls=True, quiet=True) as api:
        path = api.write_kubeconfig(tmp_path / "kubeconfig")
        text = open(path).read()
        assert f"server: {api.url}\n" in text
        assert f"certificate-authority: {api.ca}\n" in text
        assert f"token: {api.token}\n" in text
        embedded = api.write_kubeconfig(tmp_path / "kc2", embed_ca=True)
        assert "certificate-authority-data: " in open(embedded).read()


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl not installed")
def test_kubectl_can_use_it(tmp_path):
    with k8s.ApiServer(tls=True, fixtures=True, quiet=True) as api:
        kc = api.write_kubeconfig(tmp_path / "kubeconfig")
        out = subprocess.run(["kubectl", "--kubeconfig", kc, "get", "services", "-n", "shop",
                              "-o", "name"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "service/web" in out.stdout.split()
        manifest = tmp_path / "svc.json"
        manifest.write_text('{"apiVersion":"v1","kind":"Service","metadata":{"name":"k",'
                            '"namespace":"shop"},"spec":{"ports":[{"port":80}]}}')
        out = subprocess.run(["kubectl", "--kubeconfig", kc, "apply", "--validate=false",
                              "-f", str(manifest)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert api.client().get("services", "shop", "k")["spec"]["clusterIP"]


def test_builders_make_objects_the_server_accepts_strictly(api):
    c = api.client()
    c.create(k8s.service("t-build", "web", [("http", 80, "TCP", 8080), ("dns", 53, "UDP")],
                         type="LoadBalancer"), strict=True)
    eps = c.create(k8s.endpointslice("t-build", "web-x", "web",
                                     [("10.244.0.5", True, "node-a", "zone-1"),
                                      ("10.244.1.6", False)],
                                     [("http", 8080, "TCP"), ("dns", 53, "UDP")]), strict=True)
    assert eps["endpoints"][1]["conditions"] == {"ready": False, "serving": False,
                                                 "terminating": False}
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
    c.create(k8s.node("node-x", "192.0.2.9", "10.244.7.0/24"), strict=True)
    c.delete("nodes", None, "node-x")
