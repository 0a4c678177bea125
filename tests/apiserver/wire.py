"""Bytes on the wire: JSON the way kube-apiserver writes it, and its Status errors.

kube-apiserver serialises with Go's encoding/json rules, which differ from Python's defaults in
ways a strict client can notice:
  - compact output ends with "\\n" (json.Encoder.Encode); pretty output (?pretty=true, or a
    User-Agent starting with curl or Wget) is indented by two spaces and has no trailing newline;
  - non-ASCII is written raw as UTF-8, but <, >, & and U+2028/U+2029 are escaped as \\u003c etc.;
  - built-in types keep Go struct field order; custom resources (unstructured maps) come out
    with keys sorted.
Every error the server returns is a metav1.Status built here, so message formats live in one
place and match the recorded fixtures in tests/fixtures/k8s/.
"""

import json

_GO_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
               ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def encode(obj, pretty=False, sort_keys=False):
    """Serialise obj like k8s.io/apimachinery's JSON serializer."""
    if pretty:
        text = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=sort_keys)
    else:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
                          sort_keys=sort_keys) + "\n"
    # These characters can only occur inside JSON strings, so a textual replace is safe.
    for raw, esc in _GO_ESCAPES:
        if raw in text:
            text = text.replace(raw, esc)
    return text.encode("utf-8")


class ApiError(Exception):
    """An error answered as a Status object, or (plain set) as a text/plain body."""

    def __init__(self, status, headers=None, plain=None, code=None):
        super().__init__(status["message"] if status else plain)
        self.status = status
        self.code = status["code"] if status else (code or 404)
        self.headers = headers or {}
        self.plain = plain


def status(code, reason, message, details=None, metadata=None):
    """A Failure Status, fields in metav1.Status order (details omitted when empty)."""
    st = {"kind": "Status", "apiVersion": "v1", "metadata": metadata or {},
          "status": "Failure", "message": message, "reason": reason}
    if details:
        st["details"] = details
    st["code"] = code
    return st


def details(name=None, group=None, kind=None, causes=None, retry_after=None, uid=None):
    """metav1.StatusDetails, in its field order: name, group, kind, uid, causes, retry."""
    d = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    if uid:
        d["uid"] = uid
    if causes:
        d["causes"] = causes
    if retry_after is not None:
        d["retryAfterSeconds"] = retry_after
    return d


def qualified(resource, group):
    """schema.GroupResource.String(): "services", "endpointslices.discovery.k8s.io"."""
    return f"{resource}.{group}" if group else resource


def page_not_found():
    """Go's http.NotFound: the answer for an unknown path, e.g. a CRD not installed."""
    return ApiError(None, plain="404 page not found\n")


def not_found(resource, group, name):
    return ApiError(status(404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
                           details(name, group, resource)))


def already_exists(resource, group, name):
    return ApiError(status(409, "AlreadyExists",
                           f'{qualified(resource, group)} "{name}" already exists',
                           details(name, group, resource)))


def conflict(resource, group, name):
    return ApiError(status(409, "Conflict",
                           f"Operation cannot be fulfilled on {qualified(resource, group)} "
                           f'"{name}": the object has been modified; please apply your '
                           f"changes to the latest version and try again",
                           details(name, group, resource)))


def invalid(kind, group, name, causes):
    """422 Invalid. causes: [(field, reason, message)] as field.ErrorList renders them."""
    errs = [f"{field}: {msg}" for field, _, msg in causes]
    joined = errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"
    gk = f"{kind}.{group}" if group else kind
    return ApiError(status(422, "Invalid", f'{gk} "{name}" is invalid: {joined}',
                           details(name, group, kind,
                                   [{"reason": r, "message": m, "field": f}
                                    for f, r, m in causes])))


def bad_request(message):
    return ApiError(status(400, "BadRequest", message))


def unauthorized():
    return ApiError(status(401, "Unauthorized", "Unauthorized"))


def forbidden(user, verb, resource, group, namespace=None, name=None):
    """Worded like the RBAC authorizer's denial (tests/fixtures/k8s/error-403.json)."""
    who = f'User "{user}" cannot {verb} resource "{resource}" in API group "{group or ""}"'
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    subject = qualified(resource, group) + (f' "{name}"' if name else "")
    return ApiError(status(403, "Forbidden", f"{subject} is forbidden: {who}{where}",
                           details(name, group, resource)))


def method_not_allowed():
    return ApiError(status(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource"))


def unsupported_media_type(content_type):
    return ApiError(status(415, "UnsupportedMediaType",
                           f'the body of the request was in an unknown format - accepted media '
                           f'types include: application/json-patch+json, '
                           f'application/merge-patch+json, application/strategic-merge-patch+json'
                           f' (got "{content_type}")'))


def expired(message, continue_token=None):
    meta = {"continue": continue_token} if continue_token else None
    return ApiError(status(410, "Expired", message, metadata=meta))


def too_old_watch_status(rv, compacted_rv):
    """The Status inside the ERROR event of a watch from a compacted resourceVersion."""
    return status(410, "Expired", f"too old resource version: {rv} ({compacted_rv})")


def too_large_rv(rv, current):
    return ApiError(status(504, "Timeout",
                           f"Timeout: Too large resource version: {rv}, current: {current}",
                           details(causes=[{"reason": "ResourceVersionTooLarge",
                                            "message": "Too large resource version"}],
                                   retry_after=1)))


def too_many_requests(retry_after, plain=False):
    """429 with Retry-After. plain=True is priority-and-fairness's text/plain rejection."""
    headers = {"Retry-After": str(retry_after)}
    msg = "Too many requests, please try again later."
    if plain:
        return ApiError(None, headers=headers, plain=msg + "\n", code=429)
    return ApiError(status(429, "TooManyRequests", msg, details(retry_after=retry_after)),
                    headers=headers)


_FAULT_REASONS = {
    400: ("BadRequest", "bad request"),
    403: ("Forbidden", "forbidden"),
    404: ("NotFound", "the server could not find the requested resource"),
    409: ("Conflict", "conflict"),
    410: ("Expired", "resource expired"),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted, but may "
                     "still be processing the request"),
}


def from_code(code, message=None, retry_after=None, plain=False):
    """A Status for an injected fault of any HTTP code, worded like the real server's."""
    if code == 429:
        return too_many_requests(retry_after if retry_after is not None else 1, plain)
    reason, default = _FAULT_REASONS.get(
        code, ("InternalError" if code >= 500 else "BadRequest", f"injected fault {code}"))
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    if plain:
        return ApiError(None, headers=headers, plain=(message or default) + "\n", code=code)
    return ApiError(status(code, reason, message or default, details(retry_after=retry_after)),
                    headers=headers)
