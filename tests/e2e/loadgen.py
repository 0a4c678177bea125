#!/usr/bin/python3
"""Traffic that must not notice an agent restart, for the e2e restart test.

  loadgen.py echo PORT
      TCP echo server (one thread per connection); prints "ready".
  loadgen.py short RATE TARGET...
      RATE new connections per second, round robin over TARGET (ip:port) each
      answered by podtool's server (one JSON line, then close). A connection
      fails on any error, a timeout (5 s), or a reply that is not one JSON line.
  loadgen.py long INTERVAL_MS TARGET...
      one connection per TARGET to an echo server, kept open; every INTERVAL_MS
      each sends a numbered 64-byte message and waits for exactly it back. An
      error (ECONNRESET, EPIPE, EOF), wrong bytes or no echo within 5 s (a stall)
      ends that connection and is recorded.

Clients run until their stdin closes, printing a JSON progress line every 0.2 s
and a last line with "final": true:
  {"ok": N, "failed": N, "retrans": N, "errors": {"ip:port errno": N, ...},
   "failed_at": [t, ...], "retrans_at": [[t, target, local, n], ...],
   "conns": [...]}   (long: per connection target, local, peer, rounds, error,
                      max_rtt_ms, retrans, retrans_at)
"retrans" sums TCP_INFO tcpi_total_retrans over the client sockets: every
retransmission is a packet the network lost, so it counts drops that TCP
recovered from and no error would show. Times are CLOCK_MONOTONIC seconds (the
test's time.monotonic()), so they line up with what the test did when.
"""

import errno
import json
import socket
import struct
import sys
import threading
import time

TIMEOUT = 5.0
TCPI_TOTAL_RETRANS = 100        # offset of tcpi_total_retrans in struct tcp_info


def fmt(addr):
    return f"{addr[0]}:{addr[1]}"


def parse(target):
    ip, port = target.rsplit(":", 1)
    return ip, int(port)


def retransmits(s):
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, TCPI_TOTAL_RETRANS)[0] if len(info) >= 104 else 0


def error_name(e):
    if isinstance(e, socket.timeout):
        return "ETIMEDOUT"
    if isinstance(e, OSError) and e.errno:
        return errno.errorcode.get(e.errno, str(e.errno))
    return str(e)


# -- server --

def echo(port):
    def serve(c):
        with c:
            try:
                while True:
                    data = c.recv(65536)
                    if not data:
                        return
                    c.sendall(data)
            except OSError:
                return

    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(128)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


# -- clients --

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = self.failed = self.retrans = 0
        self.errors = {}
        self.failed_at = []     # CLOCK_MONOTONIC of each failure's start
        self.retrans_at = []    # short: (start, target, local, retransmissions)
        self.conns = []

    def fail(self, target, what, t0):
        with self.lock:
            self.failed += 1
            self.failed_at.append(round(t0, 3))
            key = f"{target} {what}"
            self.errors[key] = self.errors.get(key, 0) + 1

    def doc(self, final=False):
        with self.lock:
            return {"ok": self.ok, "failed": self.failed, "retrans": self.retrans,
                    "errors": dict(self.errors),
                    "failed_at": list(self.failed_at),
                    "retrans_at": list(self.retrans_at), "conns": [dict(c) for c in self.conns],
                    "final": final}


def short_one(stats, target):
    s = socket.socket()
    s.settimeout(TIMEOUT)
    t0 = time.monotonic()
    try:
        s.connect(parse(target))
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        json.loads(data)
        if not data.endswith(b"\n"):
            raise ValueError("reply cut short")
        r = retransmits(s)
        with stats.lock:
            stats.ok += 1
            stats.retrans += r
            if r:
                stats.retrans_at.append((round(t0, 3), target, fmt(s.getsockname()), r))
    except (OSError, ValueError) as e:
        stats.fail(target, error_name(e), t0)
    finally:
        s.close()


def short(stats, stop, rate, targets):
    period = 1.0 / rate
    next_t = time.monotonic()
    i = 0
    while not stop.is_set():
        short_one(stats, targets[i % len(targets)])
        i += 1
        next_t += period
        delay = next_t - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_t = time.monotonic()   # behind (a slow connection): no burst to catch up


def long_one(stats, stop, interval, target):
    conn = {"target": target, "local": None, "peer": None, "rounds": 0, "error": None,
            "max_rtt_ms": 0.0, "retrans": 0, "retrans_at": []}
    with stats.lock:
        stats.conns.append(conn)
    s = socket.socket()
    s.settimeout(TIMEOUT)
    try:
        s.connect(parse(target))
        conn["local"], conn["peer"] = fmt(s.getsockname()), fmt(s.getpeername())
        n = 0
        while not stop.is_set():
            msg = f"{target} {n}".encode().ljust(64, b".")
            t0 = time.monotonic()
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = s.recv(len(msg) - len(got))
                if not chunk:
                    raise OSError("EOF")     # the server closed: it saw an error
                got += chunk
            if got != msg:
                raise ValueError(f"echo mismatch at round {n}")
            rtt = (time.monotonic() - t0) * 1000
            r = retransmits(s)
            with stats.lock:
                conn["rounds"] += 1
                conn["max_rtt_ms"] = max(conn["max_rtt_ms"], round(rtt, 1))
                if r != conn["retrans"]:
                    # When: CLOCK_MONOTONIC, as the test's own clock reads it.
                    conn["retrans_at"].append(round(time.monotonic(), 3))
                    conn["retrans"] = r
            n += 1
            stop.wait(interval)
        with stats.lock:
            stats.ok += 1
            stats.retrans += retransmits(s)
    except socket.timeout:
        conn["error"] = "stall"
        stats.fail(target, "stall", time.monotonic() - TIMEOUT)
    except (OSError, ValueError) as e:
        conn["error"] = error_name(e)
        stats.fail(target, conn["error"], time.monotonic())
    finally:
        s.close()


def main(argv):
    cmd = argv[1]
    if cmd == "echo":
        echo(int(argv[2]))
        return
    stats, stop = Stats(), threading.Event()
    targets = argv[3:]
    if cmd == "short":
        threads = [threading.Thread(target=short, args=(stats, stop, float(argv[2]), targets))]
    elif cmd == "long":
        threads = [threading.Thread(target=long_one,
                                    args=(stats, stop, int(argv[2]) / 1000, t))
                   for t in targets]
    else:
        sys.exit(f"loadgen: unknown command {cmd}")
    for t in threads:
        t.start()
    # Stop when stdin closes; report progress meanwhile.
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not stop.wait(0.2):
        print(json.dumps(stats.doc()), flush=True)
    for t in threads:
        t.join()
    print(json.dumps(stats.doc(final=True)), flush=True)


if __name__ == "__main__":
    main(sys.argv)
