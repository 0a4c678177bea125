"""WATCH: a chunked HTTP/1.1 stream of JSON events, one per line, each flushed on its own.

Semantics reproduced from a 1.26 apiserver (see shared/fixtures/k8s/services-watch.*):
  - resourceVersion=N: every event after N, then live ones; "" or "0": a synthetic ADDED for
    each current object, then live ones. A compacted N: HTTP 200, then a single ERROR event
    carrying the 410 Expired Status, then the end of the stream.
  - Events carry full objects with kind and apiVersion. With a label/field selector, an
    object that stops matching is sent as DELETED (its previous state at the new revision)
    and one that starts matching as ADDED, as the watch cache does.
  - allowWatchBookmarks=true: a BOOKMARK every bookmark interval and one right before the
    stream ends; its object is the type's zero object holding only the resourceVersion. A
    bookmark's revision promises that every earlier event was already sent.
  - timeoutSeconds is honoured exactly; the stream then ends cleanly (terminating chunk).
A watcher can also be ended by a fault: "drop" cuts the connection mid-stream without the
terminating chunk (what a crashing apiserver or a load balancer reset looks like), "end"
finishes it cleanly early.
"""

import select
import socket
import ssl
import time

import render
import schema
from listing import make_filter, parse_rv
from store import ADDED, DELETED, MODIFIED, TooOld
from wire import bad_request, encode, too_old_watch_status

POLL = 0.25   # how often an idle stream checks whether its client went away


def _chunk(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


def _key_str(key):
    """"ns/name" (or "name") of a store key, for the sent-events log."""
    return "/".join(k for k in key if k) if isinstance(key, tuple) else str(key)


def _event_line(etype, object_json):
    return b'{"type":"' + etype.encode() + b'","object":' + object_json + b"}\n"


class Stream:
    """One watch response being written; run() returns when it is over."""

    def __init__(self, handler, app, route, params):
        self.h = handler
        self.app = app
        self.res = route.resource
        self.filter = make_filter(route, params)
        self.bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
        timeout = params.get("timeoutSeconds", "")
        try:
            self.timeout = float(timeout) if timeout else app.config.watch_timeout
        except ValueError:
            raise bad_request(f'timeoutSeconds: Invalid value: "{timeout}"') from None
        rv = params.get("resourceVersion", "")
        if rv in ("", "0"):
            self.from_rv = None
        else:
            self.from_rv = parse_rv(rv)
        self.sent_rv = 0

    def _object_json(self, key, obj):
        return render.typed_json(self.app.store, self.res, key, obj)

    def _event_bytes(self, ev):
        """The line to send for ev after filtering, or None when this watcher skips it."""
        new_ok = ev.type != DELETED and self.filter.matches(ev.obj)
        old_ok = ev.prev is not None and self.filter.matches(ev.prev)
        if ev.type == ADDED:
            etype = ADDED if new_ok else None
        elif ev.type == DELETED:
            etype = DELETED if old_ok else None
        elif new_ok:
            etype = MODIFIED if old_ok else ADDED
        else:
            etype = DELETED if old_ok else None
        if etype is None:
            return None
        if ev.type == MODIFIED and etype == DELETED:
            # The object left the selection: its previous state, at the new revision.
            prev = dict(ev.prev, metadata=dict(ev.prev["metadata"],
                                               resourceVersion=str(ev.rv)))
            return _event_line(etype, self._object_json(ev.key, prev))
        if ev.wire is None:
            ev.wire = self._object_json(ev.key, ev.obj)   # shared by every watcher; race is benign
        return _event_line(etype, ev.wire)

    def _write(self, data):
        self.h.wfile.write(_chunk(data))

    def _send_bookmark(self, watcher):
        """Send a bookmark if nothing is queued: then the store's revision is all delivered."""
        store = self.app.store
        with store.lock:
            with watcher.cond:
                if watcher.queue:
                    return False
                rv = max(store.rv, self.sent_rv)
        if rv < watcher.start_rv:
            return False
        obj = schema.bookmark(self.res, rv)
        self._write(_event_line("BOOKMARK", encode(obj, sort_keys=not self.res.builtin)
                                .rstrip(b"\n")))
        return True

    def _client_gone(self):
        """True once the client closed its end: an idle stream would not notice otherwise."""
        conn = self.h.connection
        try:
            readable, _, _ = select.select([conn], [], [], 0)
            if not readable:
                return False
            if not isinstance(conn, ssl.SSLSocket):
                return conn.recv(1, socket.MSG_PEEK) == b""
            # TLS cannot peek; a watching client sends nothing, so whatever arrives is
            # its close_notify or EOF. A partial record must not block the stream.
            conn.settimeout(0.05)
            try:
                return conn.recv(1) == b""
            except (TimeoutError, ssl.SSLWantReadError):
                return False
            finally:
                conn.settimeout(None)
        except (OSError, ValueError):
            return True

    def run(self):
        store = self.app.store
        try:
            watcher = store.watch(self.res.plural, self.from_rv, self.h.connection)
        except TooOld as e:
            status = too_old_watch_status(self.from_rv, e.compacted_rv)
            try:
                self.h.start_chunked(200)
                self._write(_event_line("ERROR", encode(status).rstrip(b"\n")))
                self.h.end_chunked()
            except OSError:
                self.h.close_connection = True
            return
        self.app.stats.watch_opened(self.res.plural)
        try:
            self.h.start_chunked(200)
            self._loop(watcher)
        except OSError:            # the client went away (broken pipe, reset, ...)
            self.h.close_connection = True
        finally:
            store.unwatch(watcher)
            self.app.stats.watch_closed(self.res.plural)

    def _loop(self, watcher):
        now = time.monotonic()
        deadline = now + self.timeout
        interval = self.app.config.bookmark_interval
        next_bookmark = now + interval
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            wait = min(deadline - now, POLL)
            if self.bookmarks:
                wait = max(0.0, min(wait, next_bookmark - now))
            events, closing = watcher.take(wait)
            for ev in events:
                line = self._event_bytes(ev)
                if line is not None:
                    self._write(line)
                    self.app.stats.event_sent(self.res.plural, ev.type, _key_str(ev.key),
                                              ev.rv)
                self.sent_rv = max(self.sent_rv, ev.rv)
            if closing == "drop":
                self._cut()
                return
            if closing:
                break
            if self.bookmarks and time.monotonic() >= next_bookmark:
                if self._send_bookmark(watcher):
                    next_bookmark = time.monotonic() + interval
            elif not events and self._client_gone():
                self.h.close_connection = True
                return
        if self.bookmarks:
            self._send_bookmark(watcher)
        self.h.end_chunked()

    def _cut(self):
        """End abruptly: no terminating chunk, the TCP connection just goes away."""
        self.h.close_connection = True
        try:
            self.h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
