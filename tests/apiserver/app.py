"""The server's state in one place: configuration, store, registry, installed resources,
faults and statistics, plus loading objects from files and saving/restoring a state file.

A state file (--state) plays etcd's data directory across a restart: written on graceful
shutdown, read at start-up with every object's resourceVersion kept. The watch history is
not in it, like the watch cache of a restarted apiserver: a client can resume from the
revision it last saw only if nothing happened since, older revisions are too old (410).
"""

import dataclasses
import json
import os

import resources
import schema
import services
from faults import Faults, Stats
from registry import Registry
from store import Store, object_key
from wire import ApiError


@dataclasses.dataclass
class Config:
    token: str = None            # bearer token required on every request; None: no auth
    user: str = "system:serviceaccount:kube-system:axon"   # named in 403 messages
    bookmark_interval: float = 60.0
    watch_timeout: float = 1800.0  # a watch without timeoutSeconds (the real minimum)
    quiet: bool = False
    strict: bool = False
    server_address: str = ""
    # The WatchList feature gate (streaming lists, sendInitialEvents): on, as in 1.34+;
    # off answers every sendInitialEvents with 422 and /version says 1.33.
    watch_list: bool = True


class App:
    def __init__(self, config, history=1000, initial_rv=1, without=(), service_cidr=None,
                 seed=None):
        self.config = config
        self.store = Store([r.plural for r in resources.RESOURCES], history, initial_rv)
        self.alloc = services.Allocator(service_cidr or "10.96.0.0/12", seed=seed)
        self.registry = Registry(self.store, self.alloc, config.strict)
        self.installed = {r.plural for r in resources.RESOURCES} - set(without)
        self.faults = Faults()
        self.stats = Stats()
        # Set by apiserver.py: listen in another network namespace (POST /_test/listen).
        self.listen_netns = None

    # Installed resources (CRDs coming and going) -----------------------------------------

    # `installed` is replaced, never mutated: request threads read it without a lock.

    def install(self, plural):
        self.installed = self.installed | {resources.lookup(plural).plural}

    def uninstall(self, plural):
        """Remove a resource as deleting its CRD does: objects gone, watches ended."""
        res = resources.lookup(plural)
        self.installed = self.installed - {res.plural}
        with self.store.lock:
            for obj in self.store.objects[res.plural].values():
                if res.kind == "Service":
                    services.release(self.alloc, obj)
            self.store.drop_resource(res.plural)

    # Loading ------------------------------------------------------------------------------

    def load_file(self, path):
        """Create every object in a JSON file; returns how many. Raises ValueError."""
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        objs = list(_objects_in(data))
        for obj in objs:
            res = _resource_of(obj)
            try:
                self.registry.create(res, None, obj, manager="loader", loading=True)
            except ApiError as e:
                raise ValueError(f"{path}: {res.kind} {obj.get('metadata', {}).get('name')}: "
                                 f"{e}") from None
        return len(objs)

    def dump(self):
        """Every stored object, typed, with the store revision: the state file's content."""
        with self.store.lock:
            items = [schema.with_type(r, o) for r in resources.RESOURCES
                     for _, o in sorted(self.store.objects[r.plural].items())]
            return {"kind": "List", "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(self.store.rv)}, "items": items}

    def save_state(self, path):
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.dump(), f)
        os.replace(tmp, path)

    def restore_state(self, path):
        """Reload a state file verbatim (revisions kept); the history starts empty."""
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        rv = int(data.get("metadata", {}).get("resourceVersion", self.store.rv))
        with self.store.lock:
            for obj in data.get("items", []):
                res = _resource_of(obj)
                stored = schema.normalize(res, schema.strip_type(obj))
                self.store.restore(res.plural, object_key(res, stored), stored)
                if res.kind == "Service":
                    ips, ports = services.held(stored)
                    self.alloc.ips |= ips
                    self.alloc.ports |= ports
            self.store.restore_revision(rv)

    def shutdown_watches(self):
        for w in self.store.all_watchers():
            w.close("end")


def _objects_in(data):
    """Objects from a List, a bare array or a single object, with kind/apiVersion set."""
    if isinstance(data, list):
        yield from data
        return
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object or array")
    if "items" not in data:
        yield data
        return
    item_kind = data.get("kind", "")
    item_kind = item_kind[:-4] if item_kind.endswith("List") and item_kind != "List" else None
    for item in data["items"] or []:
        if item_kind and "kind" not in item:
            item = dict({"kind": item_kind, "apiVersion": data.get("apiVersion")}, **item)
        yield item


def _resource_of(obj):
    if not isinstance(obj, dict) or "kind" not in obj:
        raise ValueError("an object without kind")
    try:
        res = resources.BY_KIND[obj["kind"]]
    except KeyError:
        raise ValueError(f"unsupported kind {obj['kind']}") from None
    if obj.get("apiVersion") not in (None, res.api_version):
        raise ValueError(f"{obj['kind']}: unsupported apiVersion {obj['apiVersion']}")
    return res
