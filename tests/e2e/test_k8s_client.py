"""The agent's Kubernetes client (agent/k8s) against the test apiserver, through k8s_dump.

k8s_dump prints one line per informer callback (UPSERT/DELETE/SYNCED) and, on SIGUSR1, a
STATUS line per informer; these tests drive the apiserver (objects, faults, watch cuts) and
read what the client made of it. No root needed.
"""

import os
import pathlib
import signal
import subprocess
import threading
import time

import pytest

import k8s
from poll import wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]
OUT = pathlib.Path(os.environ.get("OUT", REPO / ".output"))
if not OUT.is_absolute():
    OUT = REPO / OUT
K8S_DUMP = OUT / "tests" / "tools" / "k8s_dump"

SERVICES = "/api/v1/services"
SLICES = "/apis/discovery.k8s.io/v1/endpointslices"
NODES = "/api/v1/nodes"
CES = "/apis/cilium.io/v2alpha1/ciliumendpointslices"

pytestmark = pytest.mark.skipif(not K8S_DUMP.exists(), reason=f"{K8S_DUMP} not built")


class Dump:
    """k8s_dump as a subprocess; its stdout lines collected as they come."""

    def __init__(self, tmp_path, args, paths):
        self.log_path = tmp_path / f"k8s_dump-{time.monotonic_ns()}.log"
        self.paths = list(paths)
        self.lines = []
        self.cond = threading.Condition()
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(K8S_DUMP), "--parse", "--backoff-base", "100", "--backoff-max", "1000"]
            + list(args) + list(paths),
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True)
        log.close()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait(self, pred, timeout=10, what="a line"):
        """Wait until pred(lines) is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = pred(self.lines)
                if got:
                    return got
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise AssertionError(f"timed out waiting for {what}; output:\n"
                                         + "\n".join(self.lines[-40:]) + "\nlog:\n"
                                         + self.log_tail())
                self.cond.wait(min(left, 0.2))

    def wait_line(self, line, count=1, timeout=10):
        return self.wait(lambda ls: ls.count(line) >= count, timeout, repr(line))

    def count(self, line):
        with self.cond:
            return self.lines.count(line)

    def mark(self):
        with self.cond:
            return len(self.lines)

    def since(self, mark):
        with self.cond:
            return list(self.lines[mark:])

    def status(self):
        """{informer: {field: value}} and the CLIENT fields, via SIGUSR1."""
        m = self.mark()
        self.proc.send_signal(signal.SIGUSR1)
        self.wait(lambda ls: any(x.startswith("CLIENT ") for x in ls[m:]), what="status")
        n = len(self.paths)
        lines = self.wait(lambda ls: [x for x in ls[m:] if x.startswith("STATUS ")][:n]
                          if sum(x.startswith("STATUS ") for x in ls[m:]) >= n else None,
                          what="status lines")
        client = next(x for x in self.since(m) if x.startswith("CLIENT "))
        return {ln.split()[1]: _fields(ln) for ln in lines}, _fields(client)

    def log_tail(self, n=30):
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        return self.proc.returncode


def _fields(line):
    """key=value pairs of a STATUS/CLIENT line (last_error="..." may hold spaces)."""
    out = {}
    head, _, err = line.partition(' last_error="')
    for tok in head.split()[1:]:
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    if err:
        out["last_error"] = err[:-1]
    return out



@pytest.fixture
def dumps(tmp_path):
    started = []

    def start(args, paths):
        d = Dump(tmp_path, args, paths)
        started.append(d)
        return d
    yield start
    for d in started:
        d.stop()


@pytest.fixture
def tls_api():
    """HTTPS with a bearer token, the recorded fixtures loaded, 1 s bookmarks."""
    with k8s.ApiServer(tls=True, fixtures=True, bookmark_interval=1, quiet=True) as srv:
        yield srv


@pytest.fixture
def plain_api():
    with k8s.ApiServer(tls=False, fixtures=True, bookmark_interval=1, quiet=True) as srv:
        yield srv


def plain_args(api):
    return ["--server", api.url, "--token", api.token]


def expected_keys(api, what):
    items, _ = api.client().list_all(what)
    return {(f"{i['metadata']['namespace']}/" if i["metadata"].get("namespace") else "")
            + i["metadata"]["name"] for i in items}


def lists_of(stats, resource):
    """LIST requests of a resource: pages and watch-lists."""
    reqs = stats["requests"].get(resource, {})
    return reqs.get("list", 0) + reqs.get("watchlist", 0)


def upserted(lines):
    return {ln.split()[1] for ln in lines if ln.startswith("UPSERT ")}


def test_tls_kubeconfig_lists_watches_and_parses_everything(tls_api, dumps, tmp_path):
    kc = tls_api.write_kubeconfig(tmp_path / "kubeconfig")
    d = dumps(["--kubeconfig", kc], [SERVICES, SLICES, NODES, CES])
    for name in ("services", "endpointslices", "nodes", "ciliumendpointslices"):
        d.wait_line(f"SYNCED {name}")
    want = set()
    for what in ("services", "endpointslices", "nodes", "ciliumendpointslices"):
        want |= expected_keys(tls_api, what)
    assert upserted(d.lines) == want
    assert not [ln for ln in d.lines if ln.startswith("INVALID")]
    assert "UPSERT shop/web rv=" in "\n".join(d.lines)

    st, client = d.status()
    assert client["connected"] == "1"
    assert client["server"] == tls_api.url
    assert client["version"].startswith("v1.")
    assert all(s["state"] == "watching" and s["synced"] == "1" and s["errors"] == "0"
               for s in st.values()), st
    assert st["services"]["objects"] == "9"

    # Changes arrive through the watch.
    c = tls_api.client()
    c.create(k8s.service("e2e", "new", [8080]))
    line = d.wait(lambda ls: next((x for x in ls if x.startswith("UPSERT e2e/new ")), None))
    c.patch("services", "e2e", "new", {"metadata": {"labels": {"x": "y"}}})
    d.wait(lambda ls: sum(x.startswith("UPSERT e2e/new ") for x in ls) >= 2, what="modify")
    c.delete("services", "e2e", "new")
    d.wait_line("DELETE e2e/new")
    assert line != [x for x in d.lines if x.startswith("UPSERT e2e/new ")][-1], "rv advanced"
    st, _ = d.status()
    assert st["services"]["lists"] == "1"
    assert int(st["services"]["events"]) >= 3


def test_plain_http_embedded_ca_style_kubeconfig_and_json(plain_api, dumps, tmp_path):
    # A JSON kubeconfig (JSON is YAML too) for a plain-HTTP server.
    kc = tmp_path / "kc.json"
    kc.write_text('{"apiVersion":"v1","kind":"Config","current-context":"x",'
                  '"clusters":[{"name":"c","cluster":{"server":"%s"}}],'
                  '"contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],'
                  '"users":[{"name":"u","user":{"tokenFile":"tok"}}]}' % plain_api.url)
    (tmp_path / "tok").write_text(plain_api.token + "\n")
    d = dumps(["--kubeconfig", str(kc), "--exit-after-sync"], [NODES])
    d.wait_line("SYNCED nodes")
    assert d.proc.wait(10) == 0
    assert upserted(d.lines) == {"node-a", "node-b"}


def test_embedded_ca_data(tls_api, dumps, tmp_path):
    kc = k8s.write_kubeconfig(tmp_path / "kubeconfig", tls_api.url, token=tls_api.token,
                              ca=tls_api.ca, embed_ca=True)
    d = dumps(["--kubeconfig", kc], [NODES])
    d.wait_line("SYNCED nodes")


def test_tls_verification_is_enforced(tls_api, dumps, tmp_path):
    # Without the CA the server cannot be verified: never synced, the reason kept.
    d = dumps(["--server", tls_api.url, "--token", tls_api.token], [NODES])
    time.sleep(1)
    st, client = d.status()
    assert st["nodes"]["synced"] == "0"
    assert st["nodes"]["state"] in ("backoff", "listing")
    assert "certificate" in st["nodes"]["last_error"].lower() or \
        "SSL" in st["nodes"]["last_error"], st
    assert client["connected"] == "0"
    assert "UPSERT" not in "\n".join(d.lines)


def test_pagination_and_expired_continue_token(plain_api, dumps):
    c = plain_api.client()
    # Every LIST page takes a while, so the token can expire between pages.
    c.fault(delay_ms=300, verb="list", resource="services", count=-1)
    d = dumps(plain_args(plain_api) + ["--limit", "2", "--no-watch-list"], [SERVICES])
    d.wait(lambda ls: len(upserted(ls)) >= 2, what="first page")
    c.expire_continue()
    # The first 410 relists at once; the test server refuses every token at or below
    # the revision it expired, so the relist's tokens expire too, and the second 410
    # backs off instead of looping.
    wait_for(lambda: "HTTP 410" in d.status()[0]["services"]["last_error"], timeout=15,
             what="second 410 backed off")
    # A write moves the revision on, as compaction implies: now the LIST completes.
    c.create(k8s.service("e2e", "paged", [80]))
    d.wait_line("SYNCED services", timeout=20)
    c.clear_faults()
    assert upserted(d.lines) == expected_keys(plain_api, "services")
    assert not [ln for ln in d.lines if ln.startswith("DELETE")]
    assert d.count("SYNCED services") == 1
    lists = c.stats()["requests"]["services"]["list"]
    assert lists > 10 // 2 + 1, "relisted from scratch after the 410"
    assert "k8s list continue expired" in d.log_tail(100)
    # The second pass delivered nothing twice: unchanged objects are skipped.
    assert len([ln for ln in d.lines if ln.startswith("UPSERT")]) == 10


def test_label_selector(plain_api, dumps):
    c = plain_api.client()
    d = dumps(plain_args(plain_api) + ["--selector", "app=web"], [SERVICES])
    d.wait_line("SYNCED services")
    assert upserted(d.lines) == {"shop/web"}
    c.create(k8s.service("e2e", "other", [80], labels={"app": "other"}))
    c.create(k8s.service("e2e", "web2", [80], labels={"app": "web"}))
    d.wait(lambda ls: any(x.startswith("UPSERT e2e/web2 ") for x in ls))
    assert "e2e/other" not in upserted(d.lines)


def test_watch_resumes_from_last_rv_without_relist(plain_api, dumps):
    c = plain_api.client()
    d = dumps(plain_args(plain_api), [SERVICES])
    d.wait_line("SYNCED services")
    # SYNCED is printed when the LIST is complete; the WATCH request follows it.
    wait_for(lambda: c.stats()["watches"]["started"].get("services"), what="first watch")
    stats = c.stats()
    lists, watches = lists_of(stats, "services"), stats["watches"]["started"]["services"]

    c.end_watches()                     # the server's timeoutSeconds, as it were
    wait_for(lambda: c.stats()["watches"]["started"]["services"] > watches, what="re-watch")
    c.create(k8s.service("e2e", "after-end", [80]))
    d.wait(lambda ls: any(x.startswith("UPSERT e2e/after-end ") for x in ls))

    watches = c.stats()["watches"]["started"]["services"]
    c.drop_watches()                    # connection cut mid-stream
    c.create(k8s.service("e2e", "during-drop", [80]))
    d.wait(lambda ls: any(x.startswith("UPSERT e2e/during-drop ") for x in ls))
    assert c.stats()["watches"]["started"]["services"] > watches
    assert lists_of(c.stats(), "services") == lists, "no relist"
    assert d.count("SYNCED services") == 1
    # Bookmarks (every second here) keep the resourceVersion moving.
    st, _ = d.status()
    assert int(st["services"]["rv"]) >= int(c.stats()["resourceVersion"]) - 1
    assert st["services"]["errors"] == "0"


def test_410_relists_and_delivers_what_changed_while_away(plain_api, dumps):
    c = plain_api.client()
    d = dumps(plain_args(plain_api), [SERVICES])
    d.wait_line("SYNCED services")
    # Keep the client from watching while the world moves on.
    c.fault(status=500, verb="watch", count=-1)
    c.drop_watches()
    c.delete("services", "shop", "lb")
    c.create(k8s.service("e2e", "while-away", [80]))
    time.sleep(0.5)
    assert "DELETE shop/lb" not in d.lines
    c.compact()                         # the client's resourceVersion is now too old
    c.clear_faults()
    d.wait_line("SYNCED services", count=2, timeout=15)
    after = d.lines[d.lines.index("SYNCED services") + 1:]
    assert "DELETE shop/lb" in after
    assert any(x.startswith("UPSERT e2e/while-away ") for x in after)
    # Unchanged objects are not delivered again.
    assert not any(x.startswith("UPSERT shop/web ") for x in after)
    st, _ = d.status()
    assert st["services"]["lists"] == "2"
    assert st["services"]["state"] == "watching"
    assert st["services"]["objects"] == "9"


def test_crd_not_installed_backs_off_then_syncs(tmp_path, dumps):
    with k8s.ApiServer(tls=False, fixtures=True, without=["ciliumendpointslices"],
                       quiet=True) as api:
        d = dumps(plain_args(api), [SERVICES, CES])
        d.wait_line("SYNCED services")
        time.sleep(0.5)
        st, _ = d.status()
        assert st["ciliumendpointslices"]["last_error"] == "resource not installed (404)"
        assert st["ciliumendpointslices"]["state"] in ("backoff", "listing")
        assert st["ciliumendpointslices"]["synced"] == "0"
        assert st["services"]["state"] == "watching"
        api.client().install("ciliumendpointslices")
        d.wait_line("SYNCED ciliumendpointslices", timeout=10)
        st, _ = d.status()
        assert st["ciliumendpointslices"]["last_error"] == ""


def test_unauthorized_then_token_file_rotation(plain_api, dumps, tmp_path):
    tok = tmp_path / "token"
    tok.write_text("wrong-token\n")
    d = dumps(["--server", plain_api.url, "--token-file", str(tok)], [NODES])
    time.sleep(0.8)
    st, _ = d.status()
    assert st["nodes"]["synced"] == "0"
    assert st["nodes"]["last_error"].startswith("HTTP 401"), st
    assert "Unauthorized" in st["nodes"]["last_error"]
    # The token file is rewritten (as kubelet rotates projected tokens): picked up.
    tmp = tmp_path / "token.new"
    tmp.write_text(plain_api.token + "\n")
    os.replace(tmp, tok)
    d.wait_line("SYNCED nodes", timeout=10)
    assert "k8s token reloaded" in d.log_tail(100)


@pytest.mark.parametrize("verb,args", [("watchlist", []), ("list", ["--no-watch-list"])])
def test_retry_after_is_honoured(plain_api, dumps, verb, args):
    c = plain_api.client()
    c.fault(status=429, retry_after=2, verb=verb, resource="nodes")
    t0 = time.monotonic()
    d = dumps(plain_args(plain_api) + args, [NODES])
    d.wait_line("SYNCED nodes", timeout=10)
    assert time.monotonic() - t0 >= 1.9
    # A 429 is no refusal: the watch-list is asked again, not replaced by pages.
    reqs = c.stats()["requests"]["nodes"]
    assert reqs[verb] == 2
    assert verb == "list" or "list" not in reqs


def test_watch_list_is_one_request_that_goes_on_as_the_watch(plain_api, dumps):
    c = plain_api.client()
    d = dumps(plain_args(plain_api) + ["--limit", "2"], [SERVICES, NODES])
    d.wait_line("SYNCED services")
    d.wait_line("SYNCED nodes")
    c.create(k8s.service("e2e", "streamed", [80]))
    d.wait(lambda ls: any(x.startswith("UPSERT e2e/streamed ") for x in ls))
    # Ten Services at a limit of 2 would be five pages: one request each, and the
    # change came on the same stream (the test's own create aside).
    stats = c.stats()["requests"]
    assert stats["services"] == {"watchlist": 1, "create": 1}
    assert stats["nodes"] == {"watchlist": 1}
    assert upserted(d.lines) == expected_keys(plain_api, "services") | \
        expected_keys(plain_api, "nodes")
    st, _ = d.status()
    assert st["services"]["list_mode"] == "watch-list"
    assert st["services"]["errors"] == "0"


def test_watch_list_refused_by_a_server_without_it_lists_by_pages(dumps):
    with k8s.ApiServer(tls=False, fixtures=True, quiet=True, watch_list=False) as api:
        c = api.client()
        d = dumps(plain_args(api) + ["--limit", "2"], [SERVICES])
        d.wait_line("SYNCED services")
        stats = c.stats()
        assert upserted(d.lines) == expected_keys(api, "services")
        assert stats["requests"]["services"]["watchlist"] == 1
        assert stats["requests"]["services"]["list"] == 5
        assert stats["codes"].get("422") == 1
        st, _ = d.status()
        assert st["services"]["list_mode"] == "paginated"
        assert "sendInitialEvents is forbidden for watch unless the WatchList feature gate " \
            "is enabled" in d.log_tail(50)


def test_watch_list_cut_before_its_end_keeps_what_came_and_lists_by_pages(plain_api, dumps):
    c = plain_api.client()
    c.fault(reset=True, after_events=3, verb="watchlist", resource="services")
    d = dumps(plain_args(plain_api) + ["--backoff-base", "50"], [SERVICES])
    d.wait_line("SYNCED services", timeout=10)
    # Nothing deleted on the strength of an incomplete list; synced once, by pages.
    assert not [ln for ln in d.lines if ln.startswith("DELETE")]
    assert d.count("SYNCED services") == 1
    assert upserted(d.lines) == expected_keys(plain_api, "services")
    stats = c.stats()["requests"]["services"]
    assert stats["watchlist"] == 1 and stats["list"] >= 1
    st, _ = d.status()
    assert st["services"]["list_mode"] == "paginated"
    assert st["services"]["errors"] == "1"


def test_rate_limit_covers_watch_restarts(plain_api, dumps):
    c = plain_api.client()
    d = dumps(plain_args(plain_api) + ["--qps", "5", "--burst", "2", "--backoff-base", "1",
                                       "--backoff-max", "1"], [NODES])
    d.wait_line("SYNCED nodes")
    c.fault(status=500, verb="watch", count=-1)
    c.drop_watches()
    c.reset_stats()
    time.sleep(2.0)
    n = c.stats()["requests"].get("nodes", {}).get("watch", 0)
    c.clear_faults()
    # Backoff of at most 1 ms: only the token bucket holds the retries back.
    assert 6 <= n <= 13, f"{n} watch attempts in 2 s at 5 QPS, burst 2"


def test_next_server_when_the_first_is_unreachable(plain_api, dumps):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}"    # bound, not listening: refused
    try:
        d = dumps(["--server", dead, "--server", plain_api.url, "--token", plain_api.token],
                  [NODES, SERVICES])
        d.wait_line("SYNCED nodes")
        d.wait_line("SYNCED services")
        _, client = d.status()
        assert client["server"] == plain_api.url
        assert client["connected"] == "1"
    finally:
        s.close()


def test_apiserver_restart_resumes(tmp_path, dumps):
    api = k8s.ApiServer(tls=False, fixtures=True, bookmark_interval=1, quiet=True).start()
    try:
        d = dumps(plain_args(api), [SERVICES])
        d.wait_line("SYNCED services")
        api.restart(keep_state=True, down_seconds=0.5)   # same port, objects kept
        c = api.client()
        c.create(k8s.service("e2e", "after-restart", [80]))
        d.wait(lambda ls: any(x.startswith("UPSERT e2e/after-restart ") for x in ls),
               timeout=15)
        assert not [ln for ln in d.lines if ln.startswith("DELETE")]
    finally:
        api.close()


NGHTTPD = "/usr/sbin/nghttpd"


@pytest.mark.skipif(not os.path.exists(NGHTTPD), reason="nghttpd (nghttp2-server) not installed")
def test_http2_multiplexes_every_informer_on_one_connection(tmp_path, dumps):
    """The test apiserver speaks HTTP/1.1 only; nghttpd serves recorded LISTs over h2."""
    import json
    import re
    import socket
    root = tmp_path / "root"
    for src, path in (("services-list.json", "api/v1/services"),
                      ("nodes-list.json", "api/v1/nodes"),
                      ("endpointslices-list.json", "apis/discovery.k8s.io/v1/endpointslices")):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(json.dumps(json.loads((k8s.FIXTURES_DIR / src).read_text())))
    (root / "version").write_text('{"gitVersion":"v1.26.0-h2"}')
    subprocess.run([str(k8s.GENCERTS), str(tmp_path / "pki")], check=True)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = open(tmp_path / "nghttpd.log", "w")
    srv = subprocess.Popen([NGHTTPD, "-v", "-d", str(root), str(port),
                            str(tmp_path / "pki" / "server.key"),
                            str(tmp_path / "pki" / "server.crt")], stdout=log, stderr=log)
    log.close()
    try:
        url = f"https://127.0.0.1:{port}"
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, what="nghttpd")
        d = dumps(["--server", url, "--ca", str(tmp_path / "pki" / "ca.crt")],
                  [SERVICES, NODES, SLICES])
        for name in ("services", "nodes", "endpointslices"):
            d.wait_line(f"SYNCED {name}")
        _, client = d.status()
        assert client["version"] == "v1.26.0-h2"
        d.stop()
    finally:
        srv.terminate()
        srv.wait(5)
    text = (tmp_path / "nghttpd.log").read_text()
    paths = re.findall(r"\[id=(\d+)\].*recv \(stream_id=(\d+)\) :path: (\S+)", text)
    assert {p for _, _, p in paths} >= {"/version", "/api/v1/services?limit=500",
                                        "/api/v1/nodes?limit=500"}
    # One TCP connection (the readiness probe aside) carried them all, as separate streams.
    assert len({conn for conn, _, _ in paths}) == 1, paths
    assert len({stream for _, stream, _ in paths}) == len(paths) >= 4
