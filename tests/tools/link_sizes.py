#!/usr/bin/python3
"""A link's GSO/GRO/TSO limits over raw rtnetlink, in the namespace it runs in.

iproute2 6.1 (Debian 12) neither prints nor sets gso_ipv4_max_size and
gro_ipv4_max_size (kernel 6.3+), so the tests and the benchmark read and set them
with this, independently of the agent's own netlink code:

  link_sizes.py show DEV...          one JSON object: {DEV: {gso_max_size, gro_max_size,
                                     gso_ipv4_max_size, gro_ipv4_max_size, tso_max_size}}
                                     (a size the kernel does not report is null)
  link_sizes.py set DEV SIZE         IPv4 GSO and GRO maximum of DEV to SIZE

Exit status 1 with the kernel's error on stderr when a request fails.
"""

import errno
import json
import os
import socket
import struct
import sys

RTM_NEWLINK, RTM_GETLINK = 16, 18
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
# linux/if_link.h (kernel 6.3); Debian 12's headers predate the IPv4 ones.
IFLA = {"gso_max_size": 41, "gro_max_size": 58, "tso_max_size": 59,
        "gso_ipv4_max_size": 63, "gro_ipv4_max_size": 64}


def request(msg_type, flags, ifindex, attrs=()):
    """Send one ifinfomsg request; returns the reply's attributes {type: bytes} (or {}
    for an ACK). Raises OSError with the kernel's errno."""
    body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, ifindex, 0, 0)
    for typ, value in attrs:
        attr = struct.pack("=HH", 4 + len(value), typ) + value
        body += attr + b"\0" * (-len(attr) % 4)
    msg = struct.pack("=IHHII", 16 + len(body), msg_type, NLM_F_REQUEST | flags, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        s.bind((0, 0))
        s.send(msg)
        data = s.recv(65536)
    length, typ = struct.unpack_from("=IH", data)
    if typ == NLMSG_ERROR:
        err = -struct.unpack_from("=i", data, 16)[0]
        if err:
            raise OSError(err, os.strerror(err))
        return {}
    attrs, off = {}, 32
    while off + 4 <= length:
        alen, atype = struct.unpack_from("=HH", data, off)
        if alen < 4:
            break
        attrs[atype & 0x3FFF] = data[off + 4:off + alen]
        off += (alen + 3) & ~3
    return attrs


def show(dev):
    attrs = request(RTM_GETLINK, 0, socket.if_nametoindex(dev))
    return {name: struct.unpack("=I", attrs[t])[0] if t in attrs else None
            for name, t in IFLA.items()}


def set_ipv4(dev, size):
    value = struct.pack("=I", size)
    request(RTM_NEWLINK, NLM_F_ACK, socket.if_nametoindex(dev),
            [(IFLA["gso_ipv4_max_size"], value), (IFLA["gro_ipv4_max_size"], value)])


def main(argv):
    try:
        if len(argv) >= 2 and argv[0] == "show":
            print(json.dumps({dev: show(dev) for dev in argv[1:]}))
            return 0
        if len(argv) == 3 and argv[0] == "set":
            set_ipv4(argv[1], int(argv[2]))
            return 0
    except OSError as e:
        print(f"link_sizes: {e.strerror or e} ({errno.errorcode.get(e.errno, e.errno)})",
              file=sys.stderr)
        return 1
    print(__doc__.strip().splitlines()[0] + "\nusage: link_sizes.py show DEV... | set DEV SIZE",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
