"""labelSelector and fieldSelector: parsing and matching, with the real semantics.

Label selectors follow k8s.io/apimachinery/pkg/labels: comma-separated requirements, all of
which must hold: `k=v`, `k==v`, `k!=v` (also true when k is absent), `k`, `!k`,
`k in (a,b)`, `k notin (a,b)` (true when k is absent), `k>N`, `k<N`. Field selectors support
metadata.name and metadata.namespace with =, == and != — what every resource offers.
Malformed selectors raise ValueError; the caller answers 400 like the real server.
"""

import re

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|<|>|[^\s!=(),<>]+)")


def _tokens(text):
    pos, out = 0, []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        out.append(m.group(1))
        pos = m.end()
        if text[pos:].strip() == "":
            break
    return out


def _check_key(key):
    if not _KEY.match(key) or len(key.split("/")[-1]) > 63:
        raise ValueError(f'unable to parse requirement: invalid label key "{key}"')
    return key


def _check_value(value):
    if not _VALUE.match(value) or len(value) > 63:
        raise ValueError(f'unable to parse requirement: invalid label value: "{value}"')
    return value


class LabelSelector:
    """A parsed label selector; an empty one matches everything."""

    def __init__(self, text=""):
        self.text = text or ""
        self.reqs = self._parse(_tokens(self.text)) if self.text.strip() else []

    def __bool__(self):
        return bool(self.reqs)

    @staticmethod
    def _parse(toks):
        reqs, i = [], 0

        def expect(cond, what):
            if not cond:
                found = toks[i] if i < len(toks) else "end of string"
                raise ValueError(f"found '{found}', expected: {what}")

        while True:
            expect(i < len(toks), "!, identifier, or 'end of string'")
            if toks[i] == "!":
                i += 1
                expect(i < len(toks), "identifier after '!'")
                reqs.append(("!", _check_key(toks[i]), None))
                i += 1
            else:
                key = _check_key(toks[i])
                i += 1
                if i == len(toks) or toks[i] == ",":
                    reqs.append(("exists", key, None))
                elif toks[i] in ("=", "==", "!="):
                    op = "!=" if toks[i] == "!=" else "="
                    i += 1
                    value = ""
                    if i < len(toks) and toks[i] not in (",",):
                        value = toks[i]
                        i += 1
                    reqs.append((op, key, _check_value(value)))
                elif toks[i] in ("in", "notin"):
                    op = toks[i]
                    i += 1
                    expect(i < len(toks) and toks[i] == "(", "'(' after set operator")
                    i += 1
                    values = set()
                    while i < len(toks) and toks[i] != ")":
                        if toks[i] != ",":
                            values.add(_check_value(toks[i]))
                        i += 1
                    expect(i < len(toks), "')'")
                    i += 1
                    reqs.append((op, key, values))
                elif toks[i] in ("<", ">"):
                    op = toks[i]
                    i += 1
                    expect(i < len(toks) and re.fullmatch(r"-?\d+", toks[i]), "an integer")
                    reqs.append((op, key, int(toks[i])))
                    i += 1
                else:
                    expect(False, "'=', '!=', 'in', 'notin', ',' or 'end of string'")
            if i == len(toks):
                return reqs
            expect(toks[i] == ",", "',' or 'end of string'")
            i += 1

    def matches(self, labels):
        labels = labels if isinstance(labels, dict) else {}
        for op, key, arg in self.reqs:
            present = key in labels
            value = labels.get(key)
            if op == "exists" and not present:
                return False
            if op == "!" and present:
                return False
            if op == "=" and value != arg:
                return False
            if op == "!=" and present and value == arg:
                return False
            if op == "in" and (not present or value not in arg):
                return False
            if op == "notin" and present and value in arg:
                return False
            if op in ("<", ">"):
                try:
                    n = int(value)
                except (TypeError, ValueError):
                    return False
                if (op == "<" and not n < arg) or (op == ">" and not n > arg):
                    return False
        return True


# Every kind's metadata fields, and the Pod's spec.nodeName (what a node agent and the kubelet
# select their own Pods by). The real server takes each kind's own list; a Pod field asked of
# another kind simply matches nothing here.
_FIELDS = ("metadata.name", "metadata.namespace", "spec.nodeName")


class FieldSelector:
    """A parsed field selector over metadata.name / metadata.namespace / spec.nodeName."""

    def __init__(self, text=""):
        self.text = text or ""
        self.reqs = []
        for term in filter(None, (t.strip() for t in self.text.split(","))):
            m = re.fullmatch(r"([^=!]+?)\s*(==|=|!=)\s*(.*)", term)
            if not m:
                raise ValueError(f"invalid selector: '{self.text}'; can't understand '{term}'")
            field, op, value = m.groups()
            if field not in _FIELDS:
                raise ValueError(f"field label not supported: {field}")
            self.reqs.append((field, op != "!=", value))

    def __bool__(self):
        return bool(self.reqs)

    def matches(self, obj):
        for field, equal, value in self.reqs:
            top, key = field.split(".", 1)
            part = obj.get(top) if isinstance(obj, dict) else None
            actual = (part.get(key) if isinstance(part, dict) else None) or ""
            if (actual == value) != equal:
                return False
        return True


class Filter:
    """Everything that decides whether a stored object is visible to a list or a watch."""

    def __init__(self, namespace=None, label_selector="", field_selector=""):
        try:
            self.labels = LabelSelector(label_selector)
            self.fields = FieldSelector(field_selector)
        except ValueError as e:
            raise ValueError(str(e)) from None
        self.namespace = namespace
        # Nothing to check: every stored object matches (lets streams skip the calls).
        self.everything = namespace is None and not self.labels and not self.fields

    @property
    def selective(self):
        """True when labels/fields select: the real server then omits remainingItemCount."""
        return bool(self.labels) or bool(self.fields)

    def matches(self, obj):
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return self.labels.matches(meta.get("labels")) and self.fields.matches(obj)
