"""The write and read verbs: create, get, update, patch, delete, as the real registry does them.

Each write runs under the store lock from its first check to its commit, so optimistic
concurrency (409 on a stale resourceVersion), name uniqueness and Service address
allocation behave as one etcd transaction. What the real server does and the agent relies
on, reproduced here:
  - metadata it owns: uid, creationTimestamp, resourceVersion, generation (bumped when
    anything outside metadata/status changes, for resources that have one), managedFields;
  - an update that changes nothing is a no-op: no new resourceVersion, no watch event;
  - DELETE answers the object as last stored, stamped with the deletion revision; an object
    with finalizers only gets a deletionTimestamp until an update clears them;
  - typed objects come back in Go field order with Go's zero values (schema.py).
Loose by default (anything with a name is stored), strict on request (validation.py).
"""

import copy
import random
import time
import uuid

import defaults
import patch as patching
import schema
import services
import validation
from store import ADDED, DELETED, MODIFIED, object_key
from wire import (already_exists, bad_request, conflict, details, invalid, not_found,
                  unsupported_media_type)

_NAME_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"   # apiserver's generateName alphabet


_clock = [0, ""]


def now():
    """The current time as metav1.Time renders it (whole seconds, UTC); cached per second."""
    t = int(time.time())
    if t != _clock[0]:
        _clock[:] = [t, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))]
    return _clock[1]


def _fields_v1(value):
    """An approximate FieldsV1 set for managedFields: dict keys as "f:" entries."""
    if not isinstance(value, dict):
        return {}
    return {f"f:{k}": _fields_v1(v) for k, v in value.items()}


def _managed_entry(manager, api_version, obj, subresource=None):
    fields = {k: v for k, v in obj.items() if k not in ("metadata", "kind", "apiVersion")}
    meta = obj.get("metadata") or {}
    owned_meta = {k: meta[k] for k in ("labels", "annotations") if k in meta}
    if owned_meta:
        fields = dict(fields, metadata=owned_meta)
    entry = {"manager": manager, "operation": "Update", "apiVersion": api_version,
             "time": now(), "fieldsType": "FieldsV1", "fieldsV1": _fields_v1(fields)}
    if subresource:
        entry["subresource"] = subresource
    return entry


def _spec_part(obj):
    """Everything generation tracks: the object minus metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _comparable(obj):
    """obj without the fields a no-op update may still differ in."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items()
            if k not in ("resourceVersion", "managedFields")}
    return dict(obj, metadata=meta)


class Registry:
    def __init__(self, store, allocator, strict=False):
        self.store = store
        self.alloc = allocator
        self.strict = strict

    # Helpers -------------------------------------------------------------------------------

    def _decode(self, res, body):
        """The request body as an object of res, without kind/apiVersion; 400 if it is not.

        body is consumed: callers pass freshly decoded JSON nobody else holds, and the
        stored object is built from it without a copy (loading 100k objects stays fast).
        """
        if not isinstance(body, dict):
            raise bad_request("Object 'Kind' is missing in the request body: "
                              "expected a JSON object")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if api_version and api_version != res.api_version:
            raise bad_request(f"the API version in the data ({api_version}) does not match the "
                              f"expected API version ({res.api_version})")
        if kind and kind != res.kind:
            raise bad_request(f'{kind} in version "{res.version}" cannot be handled as a '
                              f"{res.kind}: the kind in the data does not match the URL")
        obj = schema.strip_type(body)
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}
        return obj

    def _scope(self, res, obj, namespace):
        meta = obj["metadata"]
        if not res.namespaced:
            meta.pop("namespace", None)
            return
        if namespace is None:
            raise bad_request("the server could not find the requested resource: namespaced "
                              "objects are created under /namespaces/NS/")
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")
        meta["namespace"] = namespace

    def _check(self, res, obj, strict):
        if strict or self.strict:
            errs = validation.validate(res, obj, self.alloc)
            if errs:
                raise invalid(res.kind, res.group, obj["metadata"].get("name", ""), errs)

    def _admit(self, res, obj, old):
        """Per-type defaulting and allocation; returns the callable that makes it permanent."""
        if res.kind == "Service":
            return services.prepare(self.alloc, obj, old)
        if res.kind == "EndpointSlice":
            for p in obj.get("ports") or []:
                if isinstance(p, dict):      # SetDefaults_EndpointPort
                    p.setdefault("name", "")
                    p.setdefault("protocol", "TCP")
        elif res.kind == "NetworkPolicy":
            defaults.network_policy(obj)
        elif res.kind == "Namespace":
            defaults.namespace(obj, old)
        return lambda: None

    def _release(self, res, obj):
        if res.kind == "Service":
            services.release(self.alloc, obj)

    def _finish(self, res, obj):
        """The stored form: Go field order and zero values, placeholder for the revision."""
        obj["metadata"].setdefault("resourceVersion", "")
        return schema.normalize(res, obj)

    def typed(self, res, obj):
        return schema.with_type(res, obj)

    # Verbs ---------------------------------------------------------------------------------

    def create(self, res, namespace, body, manager="unknown", strict=False, loading=False):
        obj = self._decode(res, body)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                random.choice(_NAME_SUFFIX_CHARS) for _ in range(5))
        if not meta.get("name"):
            raise invalid(res.kind, res.group, "", [("metadata.name", "FieldValueRequired",
                                                     "Required value: name or generateName "
                                                     "is required")])
        if loading:
            namespace = meta.get("namespace") if res.namespaced else None
            if res.namespaced and not namespace:
                namespace = meta["namespace"] = "default"
        elif meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        self._scope(res, obj, namespace)
        self._check(res, obj, strict)
        key = object_key(res, obj)
        with self.store.lock:
            if self.store.get(res.plural, key) is not None:
                raise already_exists(res.plural, res.group, meta["name"])
            keep = loading
            meta["uid"] = meta.get("uid") if keep and meta.get("uid") else str(uuid.uuid4())
            meta["creationTimestamp"] = (meta.get("creationTimestamp") if keep
                                         and meta.get("creationTimestamp") else now())
            meta["resourceVersion"] = ""
            if res.has_generation:
                meta["generation"] = meta.get("generation", 1) if keep else 1
            else:
                meta.pop("generation", None)
            if not meta.get("managedFields") or not keep:
                meta["managedFields"] = [_managed_entry(manager, res.api_version, obj)]
            settle = self._admit(res, obj, None)
            obj = self._finish(res, obj)
            stored = self.store.commit(res.plural, ADDED, key, obj)
            settle()
            return self.typed(res, stored)

    def get(self, res, namespace, name):
        key = f"{namespace}/{name}" if res.namespaced else name
        obj = self.store.get(res.plural, key)
        if obj is None:
            raise not_found(res.plural, res.group, name)
        return self.typed(res, obj)

    def update(self, res, namespace, name, body, subresource=None, manager="unknown",
               strict=False):
        obj = self._decode(res, body)
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the "
                              f"name on the URL ({name})")
        meta["name"] = name
        self._scope(res, obj, namespace)
        key = object_key(res, obj)
        with self.store.lock:
            old = self.store.get(res.plural, key)
            if old is None:
                raise not_found(res.plural, res.group, name)
            rv = meta.get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise conflict(res.plural, res.group, name)
            if subresource == "status":
                # /status writes only status; everything else keeps the stored value.
                obj = dict(copy.deepcopy(old), status=obj.get("status"))
                if obj["status"] is None:
                    del obj["status"]
            elif "status" in res.subresources:
                # With a status subresource, the main resource ignores status changes.
                obj.pop("status", None)
                if "status" in old:
                    obj["status"] = copy.deepcopy(old["status"])
            self._check(res, obj, strict)
            return self._store_update(res, key, obj, old, manager, subresource)

    def _store_update(self, res, key, obj, old, manager, subresource=None):
        meta, old_meta = obj["metadata"], old["metadata"]
        for f in ("uid", "creationTimestamp", "deletionTimestamp",
                  "deletionGracePeriodSeconds"):
            if f in old_meta:
                meta[f] = old_meta[f]
            else:
                meta.pop(f, None)
        meta.setdefault("managedFields", old_meta.get("managedFields", []))
        if res.has_generation:
            changed = _spec_part(obj) != _spec_part(old)
            meta["generation"] = old_meta.get("generation", 1) + (1 if changed else 0)
        settle = self._admit(res, obj, old)
        obj = self._finish(res, obj)
        if _comparable(obj) == _comparable(old):
            return self.typed(res, old)          # a no-op update: nothing is written
        entries = [e for e in meta["managedFields"] if e.get("manager") != manager]
        obj["metadata"]["managedFields"] = entries + [
            _managed_entry(manager, res.api_version, obj, subresource)]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            # The last finalizer is gone: the update completes the pending delete.
            gone = self.store.commit(res.plural, DELETED, key, obj, old)
            self._release(res, old)
            return self.typed(res, gone)
        stored = self.store.commit(res.plural, MODIFIED, key, obj, old)
        settle()
        return self.typed(res, stored)

    def patch(self, res, namespace, name, body, content_type, subresource=None,
              manager="unknown", strict=False):
        ctype = (content_type or "").split(";")[0].strip()
        if ctype not in patching.MERGE and ctype != patching.JSON_PATCH:
            raise unsupported_media_type(ctype)
        key = f"{namespace}/{name}" if res.namespaced else name
        with self.store.lock:
            old = self.store.get(res.plural, key)
            if old is None:
                if ctype == "application/apply-patch+yaml":   # server-side apply creates
                    return self.create(res, namespace, body, manager, strict)
                raise not_found(res.plural, res.group, name)
            current = self.typed(res, old)
            try:
                if ctype == patching.JSON_PATCH:
                    patched = patching.json_patch(current, body)
                else:
                    patched = patching.merge_patch(current, body)
            except ValueError as e:
                raise invalid(res.kind, res.group, name, [("", "FieldValueInvalid", str(e))])
            if not isinstance(patched, dict):
                raise bad_request("the patch did not produce an object")
            # A resourceVersion inside the patch is a precondition, as for an update.
            return self.update(res, namespace, name, patched, subresource, manager, strict)

    def delete(self, res, namespace, name, options=None):
        """The DELETE answer: the object, or a Success Status (see Resource.returns_deleted)."""
        key = f"{namespace}/{name}" if res.namespaced else name
        obj, deleted = self._delete(res, key, name, options)
        if not deleted or res.returns_deleted:
            return self.typed(res, obj)
        meta = obj["metadata"]
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": details(meta.get("name"), res.group, res.plural, uid=meta.get("uid"))}

    def _delete(self, res, key, name, options=None):
        """(object as last stored, whether it is gone rather than pending on finalizers)."""
        options = options if isinstance(options, dict) else {}
        with self.store.lock:
            old = self.store.get(res.plural, key)
            if old is None:
                raise not_found(res.plural, res.group, name)
            pre = options.get("preconditions") or {}
            if pre.get("resourceVersion") and \
                    pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(res.plural, res.group, name)
            if pre.get("uid") and pre["uid"] != old["metadata"].get("uid"):
                raise conflict(res.plural, res.group, name)
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    return old, False
                obj = copy.deepcopy(old)
                obj["metadata"]["deletionTimestamp"] = now()
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
                obj = schema.normalize(res, obj)
                return self.store.commit(res.plural, MODIFIED, key, obj, old), False
            gone = self.store.commit(res.plural, DELETED, key, old, old)
            self._release(res, old)
            return gone, True

    def delete_collection(self, res, flt):
        """DELETE on a collection: every object the filter selects; answers their List."""
        with self.store.lock:
            view = self.store.view(res.plural)
            chosen = [(k, view.get(k)) for k in view.keys_between("")]
            gone = [self._delete(res, key, obj["metadata"]["name"])[0]
                    for key, obj in chosen if flt.matches(obj)]
            items = gone if res.builtin else [self.typed(res, o) for o in gone]
            return {"kind": res.list_kind, "apiVersion": res.api_version,
                    "metadata": {"resourceVersion": str(self.store.rv)}, "items": items}
