"""The object store: one etcd-like revision counter, current objects, event history, watchers.

Model (what an agent observes of etcd behind a 1.26 apiserver):
  - `rv` is one counter shared by every resource; every committed write bumps it and stamps
    the new value into the object's metadata.resourceVersion (a string on the wire).
  - `history` keeps the last N events (all resources). `compacted_rv` is the oldest revision
    that can still be resumed from: a watch from RV >= compacted_rv gets every event after RV;
    an older RV is "too old" (410). Dropping an event with revision X moves compacted_rv to X.
  - A list at an older revision (the snapshot a continue token promises) is rebuilt by
    rolling the current objects back through the history, so it works as long as the
    revision is not compacted: exactly the real server's limit on continue tokens.
  - Objects are never mutated once stored; writers replace them. Snapshots and queued watch
    events can therefore share them without copying.

One re-entrant lock guards everything; registry.py holds it across a whole write (checks,
allocation and commit) so concurrent writers see a serial order, as etcd transactions do.
"""

import bisect
import collections
import heapq
import threading

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
# Not a change: queued after a watch-list's initial events, it marks where the
# initial-events-end bookmark goes (its rv is the revision of the initial state).
INITIAL_END = "INITIAL_END"

# Events one watcher may have queued before it is treated as too slow and closed, like the
# watch cache terminating a watcher whose buffer is full.
WATCHER_QUEUE_LIMIT = 200000


class TooOld(Exception):
    def __init__(self, compacted_rv):
        super().__init__(compacted_rv)
        self.compacted_rv = compacted_rv


class Event:
    """A committed change. prev is the object before it (None for ADDED)."""
    __slots__ = ("rv", "type", "plural", "key", "obj", "prev", "wire")

    def __init__(self, rv, type_, plural, key, obj, prev):
        self.rv, self.type, self.plural, self.key = rv, type_, plural, key
        self.obj, self.prev = obj, prev
        self.wire = None  # serialised object, filled lazily by the first watcher sending it


class Watcher:
    """One open watch: a queue the store fills at commit time and the stream thread drains."""

    def __init__(self, plural, start_rv, conn=None):
        self.plural = plural
        self.start_rv = start_rv   # only events after this revision are delivered
        self.conn = conn           # the client socket, so a fault can cut it
        self.cond = threading.Condition()
        self.queue = collections.deque()
        self.closing = None        # why the stream must end: "drop", "end", "overflow"

    def push(self, event):
        # A watch from a revision the store has not reached yet (a client that talked to a
        # newer apiserver) silently skips events up to it, as the watch cache does.
        if event.rv <= self.start_rv:
            return
        with self.cond:
            if self.closing:
                return
            if len(self.queue) >= WATCHER_QUEUE_LIMIT:
                self.closing = "overflow"
            else:
                self.queue.append(event)
            self.cond.notify()

    def close(self, how):
        with self.cond:
            self.closing = self.closing or how
            self.cond.notify()

    def take(self, timeout):
        """Wait up to timeout for events or a close; return (events, closing)."""
        with self.cond:
            if not self.queue and not self.closing:
                self.cond.wait(timeout)
            events = list(self.queue)
            self.queue.clear()
            return events, self.closing


class View:
    """One resource as of one revision, for reading under the store lock.

    The current objects and their sorted keys, plus an overlay that undoes the changes made
    after the revision (key -> object as it was, or None if it did not exist yet).
    """

    def __init__(self, rv, objects, keys, overlay):
        self.rv = rv
        self._objects = objects
        self._keys = keys
        self._overlay = overlay

    def get(self, key):
        return self._overlay[key] if key in self._overlay else self._objects.get(key)

    def keys_between(self, lo, hi=None):
        """The keys in [lo, hi) that exist at this revision, sorted (hi None: no bound)."""
        i = bisect.bisect_left(self._keys, lo)
        j = len(self._keys) if hi is None else bisect.bisect_left(self._keys, hi)
        base = self._keys[i:j]
        if not self._overlay:
            return base
        gone = {k for k, v in self._overlay.items() if v is None}
        back = sorted(k for k, v in self._overlay.items()
                      if v is not None and k not in self._objects
                      and lo <= k and (hi is None or k < hi))
        return list(heapq.merge((k for k in base if k not in gone), back))


def object_key(resource, obj):
    """The etcd key below the resource prefix: "NS/NAME" or "NAME"; it orders lists."""
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if resource.namespaced else meta["name"]


class Store:
    def __init__(self, plurals, history=1000, initial_rv=1):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.rv = initial_rv
        # Nothing before the start is known: a fresh apiserver (or one restarted after
        # losing etcd) cannot resume a watch from an older revision.
        self.compacted_rv = initial_rv
        # Continue tokens issued at or below this revision are refused (fault injection).
        self.continue_floor = 0
        self.history_limit = history
        self.history = collections.deque()
        self.objects = {p: {} for p in plurals}
        self.keys = {p: [] for p in plurals}     # sorted keys of objects: ordered lists
        # Serialised objects (render.py), dropped here whenever their object is replaced.
        self.encoded = {p: {} for p in plurals}
        self.watchers = {p: set() for p in plurals}

    # Reads -----------------------------------------------------------------------------

    def get(self, plural, key):
        with self.lock:
            return self.objects[plural].get(key)

    def view(self, plural, at_rv=None):
        """A View now, or as of revision at_rv; use it while holding the lock. Raises TooOld.

        Events are undone newest first, so the oldest change to a key decides its overlay.
        """
        with self.lock:
            if at_rv is None or at_rv >= self.rv:
                return View(self.rv, self.objects[plural], self.keys[plural], {})
            if at_rv < self.compacted_rv:
                raise TooOld(self.compacted_rv)
            overlay = {}
            for ev in reversed(self.history):
                if ev.rv <= at_rv:
                    break
                if ev.plural == plural:
                    overlay[ev.key] = None if ev.type == ADDED else ev.prev
            return View(at_rv, self.objects[plural], self.keys[plural], overlay)

    def wait_for_rv(self, rv, timeout):
        """Block until the store has reached revision rv; False on timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: self.rv >= rv, timeout)

    # Writes (callers hold self.lock across check-and-commit) ------------------------------

    def commit(self, plural, type_, key, obj, prev=None):
        """Record a change. obj is a fresh dict the store now owns; returns it stamped.

        For DELETED, obj is the deleted object: the store stamps a copy with the deletion
        revision, as etcd returns it to watchers and to the DELETE caller.
        """
        with self.lock:
            self.rv += 1
            if type_ == DELETED:
                obj = dict(obj, metadata=dict(obj["metadata"]))
            obj["metadata"]["resourceVersion"] = str(self.rv)
            objects, keys = self.objects[plural], self.keys[plural]
            self.encoded[plural].pop(key, None)
            if type_ == DELETED:
                del objects[key]
                del keys[bisect.bisect_left(keys, key)]
            else:
                if key not in objects:
                    bisect.insort(keys, key)
                objects[key] = obj
            ev = Event(self.rv, type_, plural, key, obj, prev)
            self._remember(ev)
            for w in self.watchers[plural]:
                w.push(ev)
            self.changed.notify_all()
            return obj

    def _remember(self, ev):
        self.history.append(ev)
        while len(self.history) > self.history_limit:
            self.compacted_rv = self.history.popleft().rv

    def restore(self, plural, key, obj):
        """Put back an object saved with its resourceVersion (a restart): no event."""
        with self.lock:
            if key not in self.objects[plural]:
                bisect.insort(self.keys[plural], key)
            self.objects[plural][key] = obj

    def restore_revision(self, rv):
        """After restore(): continue from the saved revision with no history before it,
        like the watch cache of an apiserver just started on top of an existing etcd."""
        with self.lock:
            self.rv = max(self.rv, rv)
            self.compacted_rv = self.rv
            self.history.clear()

    def compact(self):
        """Forget all history: every revision before the current one becomes too old."""
        with self.lock:
            self.history.clear()
            self.compacted_rv = self.rv

    def expire_continue_tokens(self):
        with self.lock:
            self.continue_floor = self.rv

    def drop_resource(self, plural):
        """Forget every object of a resource (its CRD was removed); ends its watches."""
        with self.lock:
            self.objects[plural].clear()
            self.keys[plural].clear()
            self.encoded[plural].clear()
            self.history = collections.deque(e for e in self.history if e.plural != plural)
            for w in list(self.watchers[plural]):
                w.close("end")

    # Watches -----------------------------------------------------------------------------

    def watch(self, plural, from_rv, conn=None, initial_end=False):
        """Register a watcher and queue its backlog atomically (no gap, no duplicate).

        from_rv None: synthetic ADDED for every current object, then (initial_end) an
        INITIAL_END marker at the current revision, then live events.
        Otherwise: every retained event after from_rv, then live. Raises TooOld.
        """
        with self.lock:
            if from_rv is None:
                w = Watcher(plural, self.rv, conn)
                objects = self.objects[plural]
                w.queue.extend(Event(int(objects[key]["metadata"]["resourceVersion"]), ADDED,
                                     plural, key, objects[key], None)
                               for key in self.keys[plural])
                if initial_end:
                    w.queue.append(Event(self.rv, INITIAL_END, plural, None, None, None))
            else:
                if from_rv < self.compacted_rv:
                    raise TooOld(self.compacted_rv)
                w = Watcher(plural, from_rv, conn)
                w.queue.extend(e for e in self.history if e.rv > from_rv and e.plural == plural)
            self.watchers[plural].add(w)
            return w

    def unwatch(self, w):
        with self.lock:
            self.watchers[w.plural].discard(w)

    def all_watchers(self):
        with self.lock:
            return [w for ws in self.watchers.values() for w in ws]
