"""Helpers for the test apiserver's own tests (a module, not conftest.py, so that test
files can import it by a name no other test directory uses)."""

import json
import socket

import k8s


def fixture_json(name):
    return json.loads((k8s.FIXTURES_DIR / name).read_text())


def fixture_bytes(name):
    return (k8s.FIXTURES_DIR / name).read_bytes()


class RawHttp:
    """HTTP/1.1 over a bare socket, so tests can see framing that http.client hides."""

    def __init__(self, api, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", api.port), timeout=timeout)
        self.token = api.token
        self.buf = b""

    def send(self, method, path, user_agent="raw-test", token=True):
        auth = f"Authorization: Bearer {self.token}\r\n" if token and self.token else ""
        self.sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: test\r\nUser-Agent: {user_agent}"
                          f"\r\n{auth}\r\n".encode())

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def read_until(self, marker):
        while marker not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(marker, 1)
        return head

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def headers(self):
        """(status code, {lower-case name: value}) of the next response."""
        lines = self.read_until(b"\r\n\r\n").decode().split("\r\n")
        code = int(lines[0].split()[1])
        return code, {k.lower(): v.strip() for k, v in
                      (line.split(":", 1) for line in lines[1:])}

    def chunk(self):
        """The next chunk's payload; b"" for the terminating chunk (trailer line consumed)."""
        size = int(self.read_until(b"\r\n"), 16)
        data = self.read_exact(size)
        assert self.read_exact(2) == b"\r\n", "chunk not terminated by CRLF"
        return data

    def body(self, headers):
        if headers.get("transfer-encoding") == "chunked":
            out = b""
            while True:
                c = self.chunk()
                if not c:
                    return out
                out += c
        return self.read_exact(int(headers.get("content-length", 0)))

    def close(self):
        self.sock.close()
