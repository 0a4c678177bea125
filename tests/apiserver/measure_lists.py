#!/usr/bin/python3
"""What serving the initial state costs the test apiserver: paginated LISTs against watch-lists.

    /usr/bin/python3 tests/apiserver/measure_lists.py [--rounds N] [--plain]

Loads the data set of tests/bench/bench_sync.py (SERVICES Services, one EndpointSlice of
ENDPOINTS endpoints each, CES_ENDPOINTS endpoints in CiliumEndpointSlices of 100, 8 Nodes;
same environment variables and defaults) into a TLS test apiserver, then per round fetches
all four resources by LIST (limit=500, with and without gzip, as the agent accepts it) and by
watch-list (the four streams read to their initial-events-end bookmark), and prints the
apiserver's CPU time (/proc/PID/stat) and the wall time of each. The client only frames the
HTTP and picks the continue token out of each page (objects counted by their uid), so the
wall time is mostly the server's and the transfer's.
"""

import argparse
import gzip
import json
import os
import pathlib
import re
import socket
import ssl
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
import k8s  # noqa: E402

SERVICES = int(os.environ.get("SERVICES", "10000"))
ENDPOINTS = int(os.environ.get("ENDPOINTS", "10"))
CES_ENDPOINTS = int(os.environ.get("CES_ENDPOINTS", "50000"))
NS = "bench"
RESOURCES = ("services", "endpointslices", "nodes", "ciliumendpointslices")
# List metadata comes first for built-ins and last for CRDs (sorted keys).
CONTINUE = re.compile(rb'"continue":"([^"]*)"')


def _ip(base, n):
    return ".".join(str((base + n) >> s & 255) for s in (24, 16, 8, 0))


def objects():
    """The objects bench_sync.py loads (without its lab's own few)."""
    backends, pods = 10 << 24 | 128 << 16, 10 << 24 | 160 << 16
    items = [k8s.node(f"remote-{n}", f"192.168.60.{10 + n}", f"10.250.{n}.0/24")
             for n in range(8)]
    for i in range(SERVICES):
        vip = "10.%d.%d.%d" % (96 + (i >> 16), (i >> 8) & 255, i & 255)
        items.append(k8s.service(NS, f"svc{i}", [("http", 80, "TCP")], cluster_ip=vip))
        eps = [(_ip(backends, i * ENDPOINTS + j), True) for j in range(ENDPOINTS)]
        items.append(k8s.endpointslice(NS, f"svc{i}-1", f"svc{i}", eps,
                                       [("http", 8080, "TCP")]))
    for c in range(0, CES_ENDPOINTS, 100):
        eps = [(f"pod-{k}", _ip(pods, k), 1000 + k % 50, f"192.168.60.{10 + k % 8}")
               for k in range(c, min(c + 100, CES_ENDPOINTS))]
        items.append(k8s.ciliumendpointslice(f"ces-{c // 100}", NS, eps))
    return items


def cpu_seconds(pid):
    f = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


class Conn:
    """One keep-alive HTTP/1.1 connection, framing only."""

    def __init__(self, api):
        sock = socket.create_connection(("127.0.0.1", api.port))
        if api.tls:
            sock = ssl.create_default_context(cafile=api.ca).wrap_socket(
                sock, server_hostname="127.0.0.1")
        self.sock, self.buf, self.token = sock, bytearray(), api.token

    def send(self, path, gzip_ok=False):
        head = f"GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: measure-lists\r\n"
        if self.token:
            head += f"Authorization: Bearer {self.token}\r\n"
        if gzip_ok:
            head += "Accept-Encoding: gzip\r\n"
        self.sock.sendall((head + "\r\n").encode())

    def _until(self, marker):
        while (i := self.buf.find(marker)) < 0:
            data = self.sock.recv(1 << 20)
            if not data:
                raise EOFError("connection closed")
            self.buf += data
        out = bytes(self.buf[:i])
        del self.buf[:i + len(marker)]
        return out

    def _exact(self, n):
        while len(self.buf) < n:
            self.buf += self.sock.recv(1 << 20)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def headers(self):
        lines = self._until(b"\r\n\r\n").decode().split("\r\n")
        return int(lines[0].split()[1]), {k.lower(): v.strip() for k, v in
                                          (line.split(":", 1) for line in lines[1:])}

    def chunk(self):
        data = self._exact(int(self._until(b"\r\n"), 16))
        self._exact(2)
        return data

    def body(self, headers):
        if headers.get("transfer-encoding") == "chunked":
            parts = []
            while chunk := self.chunk():
                parts.append(chunk)
            data = b"".join(parts)
        else:
            data = self._exact(int(headers["content-length"]))
        return gzip.decompress(data) if headers.get("content-encoding") == "gzip" else data

    def close(self):
        self.sock.close()


def paged_lists(api, gzip_ok):
    conn, n, size = Conn(api), 0, 0
    for plural in RESOURCES:
        path, token = k8s.resources.lookup(plural).path(), None
        while True:
            conn.send(path + "?limit=500" + (f"&continue={token}" if token else ""), gzip_ok)
            code, headers = conn.headers()
            data = conn.body(headers)
            assert code == 200, data[:300]
            n, size = n + data.count(b'"uid":'), size + len(data)
            m = CONTINUE.search(data[:512]) or CONTINUE.search(data[-512:])
            token = m.group(1).decode() if m else ""
            if not token:
                break
    conn.close()
    return n, size


def watch_lists(api):
    conns, n, size = [], 0, 0
    query = "&".join(f"{k}={v}" for k, v in k8s.WATCH_LIST_QUERY.items())
    for plural in RESOURCES:
        conn = Conn(api)
        conn.send(f"{k8s.resources.lookup(plural).path()}?watch=1&{query}&timeoutSeconds=60")
        conns.append(conn)
    for conn in conns:
        assert conn.headers()[0] == 200
        while True:
            chunk = conn.chunk()
            size += len(chunk)
            if chunk.startswith(b'{"type":"BOOKMARK"') and b'"k8s.io/initial-events-end"' in chunk:
                break
            n += 1
        conn.close()
    return n, size


def measure(api, name, fetch):
    pid = api.proc.pid
    cpu, start = cpu_seconds(pid), time.monotonic()
    n, size = fetch()
    wall = time.monotonic() - start
    time.sleep(0.2)                  # the server's last writes are accounted
    print(f"{name:20} {n:6} objects {size / 1e6:6.1f} MB   apiserver CPU "
          f"{cpu_seconds(pid) - cpu:5.2f} s   wall {wall:5.2f} s", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--plain", action="store_true", help="HTTP instead of HTTPS")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "objects.json"
        path.write_text(json.dumps({"items": objects()}))
        with k8s.ApiServer(tls=not args.plain, quiet=True, load=[path]) as api:
            for _ in range(args.rounds):
                measure(api, "LIST limit=500", lambda: paged_lists(api, False))
                measure(api, "LIST limit=500 gzip", lambda: paged_lists(api, True))
                measure(api, "watch-list", lambda: watch_lists(api))
    return 0


if __name__ == "__main__":
    sys.exit(main())
