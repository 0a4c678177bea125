"""LIST: selectors, resourceVersion semantics and limit/continue pagination.

Pagination follows the etcd3 storage of a 1.26 apiserver:
  - items are ordered by etcd key ("NS/NAME", or "NAME" for cluster-scoped resources);
  - a page of `limit` items carries metadata.continue, an opaque token that is unpadded
    URL-safe base64 of {"v":"meta.k8s.io/v1","rv":RV,"start":"NEXTKEY\\u0000"}, and
    remainingItemCount (omitted when a label or field selector is used);
  - every page of one list is served from the snapshot at the first page's revision; a token
    whose revision was compacted answers 410 Expired, with a fresh token (rv -1) in the
    Status's metadata.continue that lets the client go on inconsistently;
  - resourceVersion="0" is served "from the watch cache", which ignores limit entirely;
  - a resourceVersion newer than the store waits up to 3 s, then answers 504 "Too large
    resource version", as the watch cache does.
"""

import base64
import binascii
import json

import schema
from selection import Filter
from store import TooOld
from wire import bad_request, expired, too_large_rv

CONTINUE_VERSION = "meta.k8s.io/v1"
RV_TOO_LARGE_WAIT = 3.0

INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list.")


def encode_continue(rv, start):
    raw = json.dumps({"v": CONTINUE_VERSION, "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token):
    """(rv, start key) from a token; ValueError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        rv, start = data["rv"], data["start"]
    except (binascii.Error, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"continue key is not valid: {e}") from None
    if data.get("v") != CONTINUE_VERSION:
        raise ValueError(f"continue key is not valid: server does not recognize this "
                         f"encoded version {data.get('v')!r}")
    if not isinstance(rv, int) or not isinstance(start, str) or rv == 0 or rv < -1:
        raise ValueError("continue key is not valid: incorrect encoded start resourceVersion "
                         "(version meta.k8s.io/v1)")
    return rv, start


def parse_rv(text, what="resourceVersion"):
    try:
        rv = int(text)
        if rv < 0:
            raise ValueError
        return rv
    except ValueError:
        raise bad_request(f'{what}: Invalid value: "{text}": strconv.ParseUint: parsing '
                          f'"{text}": invalid syntax') from None


def make_filter(route, params):
    """The Filter of a list/watch/deletecollection request; 400 on a bad selector."""
    try:
        return Filter(route.namespace, params.get("labelSelector", ""),
                      params.get("fieldSelector", ""))
    except ValueError as e:
        raise bad_request(str(e)) from None


def _limit(params):
    text = params.get("limit", "")
    if not text:
        return 0
    try:
        return max(int(text), 0)
    except ValueError:
        raise bad_request(f'limit: Invalid value: "{text}": must be an integer') from None


def _snapshot_rv(store, params, token):
    """(revision to read at or None for the latest, start key, whether limit applies)."""
    rv_text = params.get("resourceVersion", "")
    if token:
        if rv_text not in ("", "0"):
            raise bad_request("specifying resource version is not allowed when using continue")
        try:
            rv, start = decode_continue(token)
        except ValueError as e:
            raise bad_request(f"invalid continue token: {e}") from None
        if rv == -1:
            return None, start, True
        if rv < store.compacted_rv or rv <= store.continue_floor:
            raise expired(INCONSISTENT_CONTINUE, encode_continue(-1, start))
        return rv, start, True
    if rv_text == "":
        return None, "", True
    rv = parse_rv(rv_text)
    if rv == 0:
        return None, "", False
    if params.get("resourceVersionMatch") == "Exact":
        if rv < store.compacted_rv:
            raise expired("The resourceVersion for the provided list is too old.")
        return rv, "", True
    if rv > store.rv and not store.wait_for_rv(rv, RV_TOO_LARGE_WAIT):
        raise too_large_rv(rv, store.rv)
    return None, "", True


class ListResult:
    """A list answer: its metadata and the [(key, object)] it holds, in order."""

    def __init__(self, resource, meta, entries):
        self.resource = resource
        self.meta = meta
        self.entries = entries

    def as_dict(self):
        res = self.resource
        items = [o if res.builtin else schema.with_type(res, o) for _, o in self.entries]
        return {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": self.meta,
                "items": items}


def list_objects(store, route, params):
    """A ListResult for a LIST request; raises the ApiError a real server would answer."""
    res = route.resource
    flt = make_filter(route, params)
    limit = _limit(params)
    at_rv, start, paged = _snapshot_rv(store, params, params.get("continue", ""))
    # Keys are "NS/NAME" (or "NAME"): one namespace is the range ["NS/", "NS0").
    prefix = f"{route.namespace}/" if route.namespace is not None else ""
    upper = f"{route.namespace}0" if route.namespace is not None else None
    items, last, used = [], None, 0
    with store.lock:            # objects are immutable: only the key walk needs the lock
        try:
            view = store.view(res.plural, at_rv)
        except TooOld:
            raise expired(INCONSISTENT_CONTINUE, encode_continue(-1, start)) from None
        rv = view.rv
        keys = view.keys_between(prefix + start, upper)
        for key in keys:
            if paged and limit and len(items) == limit:
                break
            used += 1
            obj = view.get(key)
            if flt.matches(obj):
                items.append((key, obj))
                last = key[len(prefix):]
    remaining = len(keys) - used

    meta = {"resourceVersion": str(rv)}
    if remaining > 0:
        meta["continue"] = encode_continue(rv, last + "\x00")
        if not flt.selective:
            meta["remainingItemCount"] = remaining
    elif not res.builtin:
        meta["continue"] = ""      # unstructured lists always carry the field
    return ListResult(res, meta, items)
