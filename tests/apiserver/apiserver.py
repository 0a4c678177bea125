#!/usr/bin/python3
"""A stand-in kube-apiserver (1.34 behaviour, wire format as recorded from 1.26) for Axon's
tests, demo and benchmarks.

    /usr/bin/python3 tests/apiserver/apiserver.py --listen 127.0.0.1:0 \\
        [--tls-cert F --tls-key F] [--token TOKEN | --token-file F] [--port-file F] \\
        [--load FILE ...] [--history N] [--bookmark-interval S] [--without RESOURCE ...] \\
        [--initial-rv N] [--state FILE] [--strict] [--no-watch-list] [--quiet] \\
        [--netns NAME ...]

Serves Services, EndpointSlices, Nodes and CiliumEndpointSlices (list, watch, get, create,
update, patch, delete) plus the /_test/ admin API; see README.md beside this file.
Standard library only. Exits 0 on SIGTERM/SIGINT after ending open watches cleanly.
"""

import argparse
import gc
import os
import signal
import socket
import ssl
import sys
import threading
import time

import render
import resources
from app import App, Config
from handler import ApiHandler, Server
from netns import Listeners


def parse_args(argv):
    p = argparse.ArgumentParser(description="Test kube-apiserver for Axon.")
    p.add_argument("--listen", default="127.0.0.1:0",
                   help="HOST:PORT to bind (port 0 picks a free one); [v6addr]:PORT for IPv6")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", help="the certificate's private key (PEM)")
    tok = p.add_mutually_exclusive_group()
    tok.add_argument("--token", help="bearer token every request must carry")
    tok.add_argument("--token-file", help="read the bearer token from this file")
    p.add_argument("--port-file", help="write the bound port here once listening")
    p.add_argument("--load", action="append", default=[], metavar="FILE",
                   help="preload objects: a List, an array or one object (repeatable)")
    p.add_argument("--history", type=int, default=1000,
                   help="events kept for watch resumption (default 1000)")
    p.add_argument("--bookmark-interval", type=float, default=60.0,
                   help="seconds between watch BOOKMARKs (default 60)")
    p.add_argument("--watch-timeout", type=float, default=1800.0,
                   help="watch length when the client gives no timeoutSeconds (default 1800)")
    p.add_argument("--without", action="append", default=[], metavar="RESOURCE",
                   help="start with RESOURCE not installed (e.g. ciliumendpointslices)")
    p.add_argument("--initial-rv", type=int, default=1,
                   help="first resourceVersion; older ones are too old to watch from")
    p.add_argument("--state", metavar="FILE",
                   help="load objects (keeping resourceVersions) from FILE if it exists, "
                        "and save them there on shutdown: survives a restart")
    p.add_argument("--service-cidr", default="10.96.0.0/12")
    p.add_argument("--seed", type=int, help="seed ClusterIP/NodePort allocation")
    p.add_argument("--strict", action="store_true",
                   help="validate every write (default: only writes with ?strict=1)")
    p.add_argument("--no-watch-list", dest="watch_list", action="store_false",
                   help="act as a server with the WatchList feature gate off (1.33): "
                        "sendInitialEvents is refused with 422")
    p.add_argument("--quiet", action="store_true", help="no per-request log lines")
    p.add_argument("--netns", action="append", default=[], metavar="NAME",
                   help="also listen on the same address and port inside network namespace "
                        "NAME (ip netns name or path; repeatable; POST /_test/listen?netns= "
                        "adds one at run time)")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    for name in args.without:
        try:
            resources.lookup(name)
        except KeyError:
            p.error(f"--without: unknown resource {name}")
    return args


def _split_listen(text):
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return host, int(port), family


def _tls_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _write_atomically(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    token = args.token
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as f:
            token = f.read().strip()
    config = Config(token=token, bookmark_interval=args.bookmark_interval,
                    watch_timeout=args.watch_timeout, quiet=args.quiet, strict=args.strict,
                    watch_list=args.watch_list)
    app = App(config, history=args.history, initial_rv=args.initial_rv, without=args.without,
              service_cidr=args.service_cidr, seed=args.seed)
    # The store is a large, long-lived, acyclic heap: cyclic GC passes over it only cost
    # pauses (0.5 s at 100k objects). Load with GC off, then freeze what was loaded.
    gc.disable()
    try:
        if args.state and os.path.exists(args.state):
            app.restore_state(args.state)
        for path in args.load:
            app.load_file(path)
    except (OSError, ValueError) as e:
        print(f"apiserver: {e}", file=sys.stderr)
        return 1
    render.warm(app.store, resources.RESOURCES)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50000, 50, 1000)
    gc.enable()

    host, port, family = _split_listen(args.listen)
    ctx = _tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    handler = type("Handler", (ApiHandler,), {"app": app})
    try:
        server = Server((host, port), handler, ctx, family)
    except OSError as e:
        print(f"apiserver: cannot listen on {args.listen}: {e}", file=sys.stderr)
        return 1
    bound = server.server_address[1]
    listeners = Listeners(lambda sock: Server((host, bound), handler, ctx, family, sock=sock))
    app.listen_netns = lambda name, at=None: listeners.add(name, at or host, bound, family)
    try:
        for name in args.netns:
            listeners.add(name, host, bound, family)
    except OSError as e:
        print(f"apiserver: cannot listen in netns {name}: {e}", file=sys.stderr)
        return 1
    shown_host = f"[{host}]" if family == socket.AF_INET6 else host
    config.server_address = f"{shown_host}:{bound}"
    url = f"{'https' if ctx else 'http'}://{shown_host}:{bound}"

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # A short poll interval makes shutdown() (and so a test's restart) quick.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="serve", daemon=True)
    thread.start()
    if args.port_file:
        _write_atomically(args.port_file, f"{bound}\n")
    print(f"apiserver: serving {url} (resourceVersion {app.store.rv}, "
          f"{sum(len(o) for o in app.store.objects.values())} objects)", file=sys.stderr,
          flush=True)

    stop.wait()
    # End watches with their terminating chunk before the listener goes, as a real
    # apiserver's graceful termination does, and give the streams a moment to write it.
    app.shutdown_watches()
    deadline = time.monotonic() + 2
    while app.stats.open_watches() and time.monotonic() < deadline:
        time.sleep(0.02)
    listeners.close()
    server.shutdown()
    server.server_close()
    if args.state:
        app.save_state(args.state)
    print("apiserver: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
