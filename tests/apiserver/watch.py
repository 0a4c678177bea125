"""WATCH: a chunked HTTP/1.1 stream of JSON events, one per line and one HTTP chunk each.

Semantics reproduced from the watch cache of a 1.34 apiserver (the plain watch as recorded from
1.26 in tests/fixtures/k8s/services-watch.*; the options are checked in listoptions.py):
  - resourceVersion=N: every event after N, then live ones; "" or "0": a synthetic ADDED for
    each current object, then live ones. A compacted N: HTTP 200, then a single ERROR event
    carrying the 410 Expired Status, then the end of the stream. An N beyond the current
    revision (a server restored from an older backup) waits up to 3 s for the store to get
    there, then gets the 504 "Too large resource version" ERROR event, as below.
  - Streaming list (watch-list: sendInitialEvents=true, resourceVersionMatch=NotOlderThan):
    a synthetic ADDED for every current object that matches, then, with allowWatchBookmarks=
    true, a BOOKMARK at the revision of that state annotated k8s.io/initial-events-end: "true",
    then the events after that revision, as any watch. resourceVersion "" (a consistent read),
    "0" (any state) and N up to the current revision all serve the current state; a larger N
    waits up to 3 s for the store to get there, then, like the cacher's errWatcher, answers
    HTTP 200 and one ERROR event with the 504 "Too large resource version" Status.
    sendInitialEvents=false: no initial state, events after N, or after now for "" and "0".
    With the feature gate on, a watch from "" or "0" without these options is defaulted to a
    watch-list, so it too gets the initial-events-end bookmark when it allows bookmarks.
  - Events carry full objects with kind and apiVersion. With a label/field selector, an
    object that stops matching is sent as DELETED (its previous state at the new revision)
    and one that starts matching as ADDED, as the watch cache does.
  - allowWatchBookmarks=true: a BOOKMARK every bookmark interval and one right before the
    stream ends; its object is the type's zero object holding only the resourceVersion. A
    bookmark's revision promises that every earlier event was already sent.
  - timeoutSeconds is honoured exactly; the stream then ends cleanly (terminating chunk).
Writing: the real handler writes each event with its own Write call (one chunk each) and
flushes when no more events are queued. So does this one, except that the chunks of a batch
go to the socket joined, about 64 KiB at a time: a watch-list of 20k objects is a few hundred
writes (TLS records), not 20k.
A watcher can also be ended by a fault: "drop" cuts the connection mid-stream without the
terminating chunk (what a crashing apiserver or a load balancer reset looks like), "end"
finishes it cleanly early; a fault rule with after_events (faults.py) does either after that
many events, in the middle of the initial ones if it says so.
"""

import select
import socket
import ssl
import time

import render
import schema
from listing import RV_TOO_LARGE_WAIT, make_filter, parse_rv
from store import ADDED, DELETED, INITIAL_END, MODIFIED, TooOld
from wire import ApiError, bad_request, encode, from_code, too_large_rv, too_old_watch_status

POLL = 0.25              # how often an idle stream checks whether its client went away
FLUSH_BYTES = 64 * 1024  # queued chunks are written once they add up to this much


def _key_str(key):
    """"ns/name" (or "name") of a store key, for the sent-events log."""
    return key if isinstance(key, str) else "/".join(k for k in key if k)


class Stream:
    """One watch response being written; run() returns when it is over."""

    def __init__(self, handler, app, route, params, opts, fault=None):
        self.h = handler
        self.app = app
        self.res = route.resource
        self.filter = make_filter(route, params)
        self.bookmarks = opts.allow_watch_bookmarks
        timeout = params.get("timeoutSeconds", "")
        try:
            self.timeout = float(timeout) if timeout else app.config.watch_timeout
        except ValueError:
            raise bad_request(f'timeoutSeconds: Invalid value: "{timeout}"') from None
        rv = opts.resource_version
        given = rv not in ("", "0")
        self.from_rv = None        # None: start with the current state; N: after revision N
        self.from_now = False      # no initial state: after the current revision
        self.wait_rv = 0           # a revision the store must reach before the initial state
        self.initial_end = False   # queue the initial-events-end bookmark
        if opts.send_initial_events:
            self.wait_rv = parse_rv(rv) if given else 0
            self.initial_end = opts.watch_list
        elif opts.send_initial_events is False and not given:
            self.from_now = True
        elif given:
            self.from_rv = parse_rv(rv)
            # A revision the store has not reached (a client that watched a server
            # since restored from an older etcd backup): the cacher waits, then fails.
            self.wait_rv = self.from_rv
        self.sent_rv = 0
        self.fault = fault
        self.events_left = fault.after_events if fault is not None else None
        self.out = []              # chunks queued for the socket
        self.out_bytes = 0
        self.out_logged = []       # (type, key, rv) of the events in self.out
        # An event is its head, the object's list-form JSON after its "{" (built-ins: the
        # head carries kind and apiVersion) or all of it (CRDs), and "}\n".
        self.builtin = self.res.builtin
        type_head = render.type_head(self.res) if self.builtin else b""
        self.heads = {t: b'{"type":"%s","object":%s' % (t.encode(), type_head)
                      for t in (ADDED, MODIFIED, DELETED)}

    # Output -------------------------------------------------------------------------------

    def _add(self, line):
        """Queue one event line as one HTTP chunk."""
        self.out.append(b"%x\r\n%s\r\n" % (len(line), line))
        self.out_bytes += len(line)
        if self.events_left is not None:
            self.events_left -= 1

    def _add_object(self, etype, key, rv, data):
        """Queue an event of a stored object's list-form JSON (data) as one HTTP chunk."""
        head = self.heads[etype]
        body = memoryview(data)[1:] if self.builtin else data
        out = self.out
        out.append(b"%x\r\n" % (len(head) + len(body) + 2))
        out.append(head)
        out.append(body)
        out.append(b"}\n\r\n")
        self.out_bytes += len(body)
        self.out_logged.append((etype, key, rv))
        if self.events_left is not None:
            self.events_left -= 1

    def _flush(self):
        if not self.out:
            return
        data = b"".join(self.out)
        self.out.clear()
        self.out_bytes = 0
        self.h.wfile.write(data)
        if self.out_logged:
            self.app.stats.events_sent(self.res.plural, self.out_logged)
            self.out_logged = []

    def _add_status(self, etype, obj):
        self._add(b'{"type":"%s","object":%s}\n' % (
            etype.encode(), encode(obj, sort_keys=not self.builtin).rstrip(b"\n")))

    # Events -------------------------------------------------------------------------------

    def _add_event(self, ev):
        """Queue ev as this watcher sees it (filtered); False when it skips it."""
        store = self.app.store
        if self.filter.everything:     # the common case, kept short: 20k events per list
            if ev.wire is None:        # shared by every watcher; the race is benign
                ev.wire = render.item_json(store, self.res, ev.key, ev.obj)
            self._add_object(ev.type, _key_str(ev.key), ev.rv, ev.wire)
            return True
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
            return False
        if ev.type == MODIFIED and etype == DELETED:
            # The object left the selection: its previous state, at the new revision.
            prev = dict(ev.prev, metadata=dict(ev.prev["metadata"],
                                               resourceVersion=str(ev.rv)))
            data = render.item_json(store, self.res, ev.key, prev)
        else:
            if ev.wire is None:
                ev.wire = render.item_json(store, self.res, ev.key, ev.obj)
            data = ev.wire
        self._add_object(etype, _key_str(ev.key), ev.rv, data)
        return True

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
        self._add_status("BOOKMARK", schema.bookmark(self.res, rv))
        return True

    # Faults and the end --------------------------------------------------------------------

    def _fault_fired(self):
        """After queueing an event: fire the after_events fault if due (True: stream over)."""
        if self.events_left is None or self.events_left > 0:
            return False
        self._fire_fault()
        return True

    def _fire_fault(self):
        """The after_events fault: cut the stream, or an ERROR event and a clean end."""
        self._flush()
        if self.fault.reset:
            self._cut()
            return
        err = from_code(self.fault.status, self.fault.message, self.fault.retry_after)
        self.events_left = None
        self._add_status("ERROR", err.status)
        self._flush()
        self.h.end_chunked()

    def _only_error(self, status):
        """HTTP 200, one ERROR event, the end: how a watch that cannot start is answered."""
        try:
            self.h.start_chunked(200)
            self._add_status("ERROR", status)
            self._flush()
            self.h.end_chunked()
        except OSError:
            self.h.close_connection = True

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

    def _cut(self):
        """End abruptly: no terminating chunk, the TCP connection just goes away."""
        self.h.close_connection = True
        try:
            self.h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # The stream ---------------------------------------------------------------------------

    def _open(self, store):
        """Register the watcher; raises TooOld, or ApiError for a too large revision."""
        if self.wait_rv > store.rv and not store.wait_for_rv(self.wait_rv, RV_TOO_LARGE_WAIT):
            raise too_large_rv(self.wait_rv, store.rv)
        if self.from_now:
            with store.lock:
                return store.watch(self.res.plural, store.rv, self.h.connection)
        return store.watch(self.res.plural, self.from_rv, self.h.connection,
                           initial_end=self.initial_end)

    def run(self):
        store = self.app.store
        try:
            watcher = self._open(store)
        except TooOld as e:
            self._only_error(too_old_watch_status(self.from_rv, e.compacted_rv))
            return
        except ApiError as e:
            self._only_error(e.status)
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

    def _write_batch(self, watcher, events):
        """Queue and write a batch of events; False when the stream was ended meanwhile."""
        for ev in events:
            self.sent_rv = max(self.sent_rv, ev.rv)
            if ev.type == INITIAL_END:
                self._add_status("BOOKMARK", schema.bookmark(self.res, ev.rv,
                                                             initial_events_end=True))
            elif not self._add_event(ev):
                continue
            if self._fault_fired():
                return False
            if self.out_bytes >= FLUSH_BYTES:
                self._flush()
                if watcher.closing == "drop":   # cut even in the middle of a long batch
                    self._cut()
                    return False
        self._flush()
        return True

    def _loop(self, watcher):
        if self._fault_fired():      # after_events 0: before the first event
            return
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
            if not self._write_batch(watcher, events):
                return
            if closing == "drop":
                self._cut()
                return
            if closing:
                break
            if self.bookmarks and time.monotonic() >= next_bookmark:
                if self._send_bookmark(watcher):
                    next_bookmark = time.monotonic() + interval
                    if self._fault_fired():
                        return
                    self._flush()
            elif not events and self._client_gone():
                self.h.close_connection = True
                return
        if self.bookmarks and self._send_bookmark(watcher) and self._fault_fired():
            return
        self._flush()
        self.h.end_chunked()
