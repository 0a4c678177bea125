#!/usr/bin/python3
"""Servers and clients that run inside pod namespaces for the e2e tests.

  podtool.py serve NAME TCPPORT UDPPORT
      answers each TCP connection and UDP datagram with JSON
      {"pod": NAME, "local": "ip:port", "peer": "ip:port"}
  podtool.py tcp IP PORT [COUNT] [--timeout S] [--sport P]
      connects COUNT times; prints one JSON line each:
      {"ok": true, "reply": {...}, "peername": "ip:port", "sockname": "ip:port"} or
      {"ok": false, "errno": "ECONNREFUSED"} (a timeout is "errno": "ETIMEDOUT");
      --sport: every connection from source port P (bound with SO_REUSEADDR first)
  podtool.py udp IP PORT [COUNT] [--connected] [--timeout S]
      sends COUNT datagrams; prints the reply and the address it came from.
  podtool.py probe [--timeout S] PROTO:IP:PORT:SPORT[:SRCIP]...
      probes every target at once (tcp: connect and read the reply; udp: one datagram
      and its reply), each from its own source port SPORT (and address SRCIP, when
      given: a host with several addresses); prints one JSON line per target, in
      order: {"target": ..., "ok": bool, "pod": NAME or null}
Timeouts default to 3 s per connection or datagram.
"""

import errno
import json
import socket
import struct
import sys
import threading


IP_PKTINFO = 8          # <linux/in.h>; not exported by Python 3.11's socket module


def fmt(addr):
    return f"{addr[0]}:{addr[1]}"


def serve(name, tcp_port, udp_port):
    def tcp():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", tcp_port))
        s.listen(512)
        while True:
            c, peer = s.accept()
            try:
                c.sendall(json.dumps({"pod": name, "local": fmt(c.getsockname()),
                                      "peer": fmt(peer)}).encode() + b"\n")
            except OSError:
                pass
            c.close()

    def udp():
        # Answer from the address the datagram was sent to, as DNS servers do: bound to
        # 0.0.0.0, a plain sendto() would take the route's source address instead (the
        # world's 192.168.50.1 for a datagram to 203.0.113.1), which no NAT expects.
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        s.bind(("0.0.0.0", udp_port))
        while True:
            _, anc, _, peer = s.recvmsg(2048, socket.CMSG_SPACE(12))
            info = next(d for lvl, typ, d in anc if lvl == socket.IPPROTO_IP and
                        typ == IP_PKTINFO)
            local = socket.inet_ntoa(info[8:12])            # ipi_addr: the destination
            reply = json.dumps({"pod": name, "local": f"{local}:{udp_port}",
                                "peer": fmt(peer)}).encode()
            # struct in_pktinfo {int ifindex; in_addr spec_dst; in_addr addr}: the source.
            pktinfo = struct.pack("=i4s4s", 0, info[8:12], b"\0" * 4)
            s.sendmsg([reply], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0, peer)

    threading.Thread(target=udp, daemon=True).start()
    print("ready", flush=True)
    tcp()


def tcp_client(ip, port, count, timeout=3.0, sport=0):
    for _ in range(count):
        s = socket.socket()
        s.settimeout(timeout)
        try:
            if sport:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", sport))
            s.connect((ip, port))
            peer = fmt(s.getpeername())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            print(json.dumps({"ok": True, "reply": json.loads(data), "peername": peer,
                              "sockname": fmt(s.getsockname())}))
        except socket.timeout:
            print(json.dumps({"ok": False, "errno": "ETIMEDOUT"}))
        except OSError as e:
            print(json.dumps({"ok": False, "errno": errno.errorcode.get(e.errno, str(e))}))
        finally:
            s.close()
        sys.stdout.flush()


def udp_client(ip, port, count, connected, timeout=3.0):
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        try:
            if connected:
                s.connect((ip, port))
                s.send(b"hi")
                data = s.recv(4096)
                src = fmt(s.getpeername())
            else:
                s.sendto(b"hi", (ip, port))
                data, addr = s.recvfrom(4096)
                src = fmt(addr)
            print(json.dumps({"ok": True, "reply": json.loads(data), "from": src}))
        except socket.timeout:
            print(json.dumps({"ok": False, "errno": "ETIMEDOUT"}))
        except OSError as e:
            print(json.dumps({"ok": False, "errno": errno.errorcode.get(e.errno, str(e))}))
        finally:
            s.close()
        sys.stdout.flush()


def probe_one(target, timeout):
    proto, ip, port, sport, *src = target.split(":")
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(timeout)
    try:
        # A source port of its own: a port reused within a conntrack lifetime would
        # follow the old flow's entry (and its verdict) instead of asking the policy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((src[0] if src else "0.0.0.0", int(sport)))
        if proto == "tcp":
            s.connect((ip, int(port)))
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        else:
            s.sendto(b"hi", (ip, int(port)))
            data, _ = s.recvfrom(4096)
        return {"target": target, "ok": True, "pod": json.loads(data)["pod"]}
    except (OSError, ValueError):
        return {"target": target, "ok": False, "pod": None}
    finally:
        s.close()


def probe(targets, timeout):
    results = [None] * len(targets)

    def run(i):
        results[i] = probe_one(targets[i], timeout)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        print(json.dumps(r))


def main(argv):
    timeout = 3.0
    sport = 0
    if "--timeout" in argv:
        i = argv.index("--timeout")
        timeout = float(argv[i + 1])
        del argv[i:i + 2]
    if "--sport" in argv:
        i = argv.index("--sport")
        sport = int(argv[i + 1])
        del argv[i:i + 2]
    cmd = argv[1]
    if cmd == "probe":
        probe(argv[2:], timeout)
    elif cmd == "serve":
        serve(argv[2], int(argv[3]), int(argv[4]))
    elif cmd == "tcp":
        tcp_client(argv[2], int(argv[3]), int(argv[4]) if len(argv) > 4 else 1, timeout,
                   sport)
    elif cmd == "udp":
        udp_client(argv[2], int(argv[3]), int(argv[4]) if len(argv) > 4 and
                   argv[4] != "--connected" else 1, "--connected" in argv, timeout)
    else:
        sys.exit(f"podtool: unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
