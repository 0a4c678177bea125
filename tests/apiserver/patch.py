"""PATCH bodies: JSON merge patch (RFC 7386) and JSON patch (RFC 6902).

Strategic merge patch (what kubectl sends for built-in types) is applied as a merge patch:
lists are replaced rather than merged by key. That is enough for kubectl's usual patches of
labels, annotations and scalar fields, and is documented as a limitation.
"""

import copy

MERGE = ("application/merge-patch+json", "application/strategic-merge-patch+json",
         "application/apply-patch+yaml")
JSON_PATCH = "application/json-patch+json"


def merge_patch(target, patch):
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _walk(doc, pointer):
    """(parent, last token) for an RFC 6901 pointer."""
    if not pointer.startswith("/"):
        raise ValueError(f"invalid JSON pointer {pointer!r}")
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]
    node = doc
    for t in tokens[:-1]:
        node = node[int(t)] if isinstance(node, list) else node[t]
    return node, tokens[-1]


def _get(doc, pointer):
    if pointer == "":
        return doc
    parent, last = _walk(doc, pointer)
    return parent[int(last)] if isinstance(parent, list) else parent[last]


def _add(doc, pointer, value):
    parent, last = _walk(doc, pointer)
    if isinstance(parent, list):
        parent.insert(len(parent) if last == "-" else int(last), value)
    else:
        parent[last] = value


def _remove(doc, pointer):
    parent, last = _walk(doc, pointer)
    return parent.pop(int(last) if isinstance(parent, list) else last)


def json_patch(target, ops):
    """RFC 6902. Raises ValueError (answered 422/400 by the caller) on a failing op."""
    doc = copy.deepcopy(target)
    if not isinstance(ops, list):
        raise ValueError("a JSON patch must be a list of operations")
    try:
        for op in ops:
            kind, path = op["op"], op.get("path", "")
            if kind == "add":
                _add(doc, path, copy.deepcopy(op["value"]))
            elif kind == "remove":
                _remove(doc, path)
            elif kind == "replace":
                _remove(doc, path)
                _add(doc, path, copy.deepcopy(op["value"]))
            elif kind == "move":
                _add(doc, path, _remove(doc, op["from"]))
            elif kind == "copy":
                _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
            elif kind == "test":
                if _get(doc, path) != op["value"]:
                    raise ValueError(f"testing value {path} failed")
            else:
                raise ValueError(f"Unexpected kind: {kind}")
    except (KeyError, IndexError, TypeError) as e:
        raise ValueError(f"the JSON patch could not be applied: {e!r}") from None
    return doc
