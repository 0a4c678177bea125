"""Fault injection and request statistics, driven by the /_test/ admin API.

A fault rule makes the next `count` matching API requests misbehave the way an overloaded or
broken apiserver does:
    {"status": 429, "retry_after": 2, "count": 3, "path_prefix": "/api/v1/services"}
    {"status": 500, "verb": "watch"}
    {"delay_ms": 500, "count": 10}
    {"reset": true, "resource": "endpointslices"}       close the connection, no answer
    {"status": 500, "user_agent": "axon-agent"}        only the agent's requests
    {"reset": true, "after_events": 500, "verb": "watchlist"}   cut a stream mid-way
    {"status": 410, "after_events": 0, "verb": "watch"}         ERROR event, then the end
Fields: status (HTTP code; answered with the real server's Status body, or text with
"plain": true as priority-and-fairness does for 429), retry_after (seconds, sets
Retry-After), message, delay_ms (before answering; with no status the request then proceeds
normally), reset, after_events (watches only: the stream is served, and after that many
events, initial ones and bookmarks included, either cut without its terminating chunk
(reset) or sent an ERROR event carrying the status and ended cleanly, as a real server
reports a failure mid-stream), and matchers path_prefix, verb (get, list, watch, watchlist,
create, update, patch, delete, deletecollection; a watch-list request, a watch with
sendInitialEvents=true, matches both "watch" and "watchlist"), resource (plural), user_agent
(a prefix of the User-Agent header, so a test's own requests can pass while the agent's
fail). count defaults to 1; -1 means until cleared.
Rules are tried in the order they were added; the first that matches a request applies.

Stats count every API request by resource and verb (a watch-list request as "watchlist") and
track open watches, so tests can assert that the agent neither hammers the server nor leaks
watches.
"""

import collections
import threading
import time

_RULE_FIELDS = {"status", "retry_after", "count", "path_prefix", "verb", "resource", "delay_ms",
                "reset", "plain", "message", "user_agent", "after_events"}
SENT_MAX = 100000   # watch events remembered for /_test/sent
VERBS = ("get", "list", "watch", "watchlist", "create", "update", "patch", "delete",
         "deletecollection")
WATCH_VERBS = ("watch", "watchlist")


class Rule:
    def __init__(self, spec):
        unknown = set(spec) - _RULE_FIELDS
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        self.status = spec.get("status")
        self.retry_after = spec.get("retry_after")
        self.count = int(spec.get("count", 1))
        self.path_prefix = spec.get("path_prefix", "")
        self.verb = spec.get("verb")
        self.resource = spec.get("resource")
        self.delay_ms = int(spec.get("delay_ms", 0))
        self.reset = bool(spec.get("reset", False))
        self.plain = bool(spec.get("plain", False))
        self.message = spec.get("message")
        self.user_agent = spec.get("user_agent")
        self.after_events = spec.get("after_events")
        if self.after_events is not None:
            if not isinstance(self.after_events, int) or isinstance(self.after_events, bool) \
                    or self.after_events < 0:
                raise ValueError("after_events must be a count (0 or more)")
            if self.status is None and not spec.get("reset"):
                raise ValueError("after_events needs status or reset")
        if self.user_agent is not None and not isinstance(self.user_agent, str):
            raise ValueError("user_agent must be a string")
        if self.status is not None and not (isinstance(self.status, int)
                                            and 400 <= self.status <= 599):
            raise ValueError("status must be an HTTP error code (400-599)")
        if self.verb is not None and self.verb not in VERBS:
            raise ValueError(f"verb must be one of {', '.join(VERBS)}")
        if self.status is None and not self.delay_ms and not self.reset:
            raise ValueError("a fault needs status, delay_ms or reset")

    def matches(self, path, verb, resource, user_agent=""):
        if self.after_events is not None and verb not in WATCH_VERBS:
            return False                  # a mid-stream fault waits for a stream
        return (path.startswith(self.path_prefix)
                and (self.verb in (None, verb) or (self.verb, verb) == ("watch", "watchlist"))
                and self.resource in (None, resource)
                and (self.user_agent is None or (user_agent or "").startswith(self.user_agent)))

    def describe(self):
        d = {k: v for k, v in vars(self).items() if v not in (None, "", False, 0)}
        d["count"] = self.count
        if self.after_events is not None:
            d["after_events"] = self.after_events
        return d


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []

    def add(self, spec):
        rule = Rule(spec)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        with self.lock:
            self.rules.clear()

    def pending(self):
        with self.lock:
            return [r.describe() for r in self.rules]

    def take(self, path, verb, resource, user_agent=""):
        """The rule that applies to this request (consuming one of its count), or None."""
        with self.lock:
            for rule in self.rules:
                if rule.matches(path, verb, resource, user_agent):
                    if rule.count > 0:
                        rule.count -= 1
                        if rule.count == 0:
                            self.rules.remove(rule)
                    return rule
        return None


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        # Open watches are live state, not history: reset() leaves them alone.
        self.watches_open = collections.Counter()
        self.reset()

    def reset(self):
        with self.lock:
            self.requests = collections.defaultdict(collections.Counter)
            self.codes = collections.Counter()
            self.watches_started = collections.Counter()
            self.total = 0
            # Wall-clock time (time.time()) of the first request of each verb, and of
            # the latest events written to watch streams: benchmarks time the client
            # against them (SENT_MAX kept, oldest dropped).
            self.first = {}
            self.sent = collections.deque()   # (resource, time, [(type, key, rv)]) batches
            self.sent_count = 0

    def request(self, resource, verb):
        with self.lock:
            self.first.setdefault(verb, time.time())
            self.total += 1
            self.requests[resource or "nonresource"][verb] += 1

    def answered(self, code):
        with self.lock:
            self.codes[str(code)] += 1

    def events_sent(self, resource, events):
        """events: [(type, key, rv)] just written to a stream, all stamped with now."""
        t = time.time()
        with self.lock:
            self.sent.append((resource, t, events))
            self.sent_count += len(events)
            while self.sent_count - len(self.sent[0][2]) >= SENT_MAX:
                self.sent_count -= len(self.sent.popleft()[2])

    def sent_events(self):
        """The latest SENT_MAX events written, oldest first."""
        with self.lock:
            batches = list(self.sent)
        out = [{"resource": resource, "type": etype, "key": key, "rv": rv, "time": t}
               for resource, t, events in batches for etype, key, rv in events]
        return out[-SENT_MAX:]

    def watch_opened(self, resource):
        with self.lock:
            self.watches_open[resource] += 1
            self.watches_started[resource] += 1

    def watch_closed(self, resource):
        with self.lock:
            self.watches_open[resource] -= 1

    def open_watches(self):
        with self.lock:
            return sum(self.watches_open.values())

    def snapshot(self):
        with self.lock:
            return {
                "total": self.total,
                "requests": {r: dict(v) for r, v in sorted(self.requests.items())},
                "codes": dict(sorted(self.codes.items())),
                "first_request": dict(sorted(self.first.items())),
                "watches": {"open": {r: n for r, n in sorted(self.watches_open.items()) if n},
                            "started": dict(sorted(self.watches_started.items()))},
            }
