"""Listening sockets inside other network namespaces, served by the same server.

An agent that runs inside a test node's network namespace reaches the apiserver at
127.0.0.1:PORT there: the server opens one more listening socket in that namespace, on
the address and port it already serves, and answers it with the same handler, store and
TLS context. A socket stays in the namespace it was created in, so only creating it needs
the namespace: the calling thread enters it (setns(2) moves one thread, not the process),
creates, binds and listens, and returns at once. Python 3.11 has no os.setns, hence ctypes.

    Listeners(make_server)          make_server(sock) -> a socketserver serving sock
    listeners.add("/var/run/netns/x", "127.0.0.1", 6443)   idempotent per namespace
    listeners.close()
"""

import ctypes
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def netns_path(name):
    """A namespace given by name (ip netns add) or by path."""
    return name if "/" in name else f"/var/run/netns/{name}"


def socket_in(path, host, port, family=socket.AF_INET, backlog=256):
    """A listening TCP socket bound to host:port inside the network namespace at path."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        _setns(target)
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, port))
                s.listen(backlog)
            except OSError:
                s.close()
                raise
        finally:
            # Back home before anything else runs on this thread; failing that, the
            # thread would serve from the wrong namespace: stop rather than go on.
            try:
                _setns(own)
            except OSError:
                os._exit(70)
        return s
    finally:
        os.close(target)
        os.close(own)


class Listeners:
    """Extra listening sockets in other namespaces, each served on a thread of its own."""

    def __init__(self, make_server):
        self.make_server = make_server
        self.lock = threading.Lock()
        self.servers = {}             # netns path -> server

    def add(self, name, host, port, family=socket.AF_INET):
        """Listen on host:port in the namespace; idempotent per (namespace, host)."""
        path = netns_path(name)
        with self.lock:
            if (path, host) in self.servers:
                return False
            sock = socket_in(path, host, port, family)
            server = self.make_server(sock)
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                             name=f"serve-{os.path.basename(path)}", daemon=True).start()
            self.servers[(path, host)] = server
            return True

    def names(self):
        with self.lock:
            return sorted({path for path, _ in self.servers})

    def close(self):
        with self.lock:
            servers, self.servers = list(self.servers.values()), {}
        for s in servers:
            s.shutdown()
            s.server_close()
