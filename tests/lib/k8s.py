"""A small Kubernetes client and test-apiserver manager for Axon's Python tests and demo.

    from k8s import ApiServer, service, endpointslice

    with ApiServer(fixtures=True) as api:             # HTTPS, token, generated CA
        c = api.client()
        c.create(service("shop", "web", [80], type="NodePort"))
        c.create(endpointslice("shop", "web-1", "web", [("10.244.0.5", True)], [80]))
        api.write_kubeconfig("/tmp/kubeconfig")       # for the agent
        api.client().fault(status=429, retry_after=1, count=2)
        api.restart(keep_state=True)                  # same port, same objects
        api.listen_in("axdp123456-node")              # also 127.0.0.1:PORT in that netns

ApiServer runs tests/apiserver/apiserver.py as a subprocess (plain HTTP with tls=False;
watch_list=False for a server that refuses streaming lists).
Client speaks the API with http.client + ssl; non-2xx answers raise ApiError carrying the
code and the Status. Builders (service, endpointslice, node, ciliumendpointslice, namespace,
networkpolicy, ciliumnetworkpolicy, ciliumclusterwidenetworkpolicy, ciliumidentity) make
realistic objects. Standard library only.
"""

import base64
import http.client
import json
import os
import pathlib
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
APISERVER_DIR = REPO_ROOT / "tests" / "apiserver"
APISERVER = APISERVER_DIR / "apiserver.py"
GENCERTS = APISERVER_DIR / "gencerts.sh"
# The recorded apiserver responses (tests/fixtures/k8s/README.md); AXON_FIXTURES overrides.
FIXTURES_DIR = pathlib.Path(os.environ.get("AXON_FIXTURES") or
                            REPO_ROOT / "tests" / "fixtures" / "k8s")
FIXTURE_LISTS = ("services-list.json", "endpointslices-list.json", "nodes-list.json",
                 "ciliumendpointslices-list.json")
# The network-policy kinds' recorded lists: loaded only where a test asks for them (load=).
POLICY_FIXTURE_LISTS = ("networkpolicies-list.json", "ciliumnetworkpolicies-list.json",
                        "ciliumclusterwidenetworkpolicies-list.json",
                        "ciliumidentities-list.json", "namespaces-list.json")
PYTHON = "/usr/bin/python3"

sys.path.insert(0, str(APISERVER_DIR))
import resources  # noqa: E402  (the server's resource table: one source of paths)


# What a client sends for a streaming list (KEP-3157), as client-go's reflector does;
# allowWatchBookmarks=true is what makes the server send the initial-events-end bookmark.
WATCH_LIST_QUERY = {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan",
                    "allowWatchBookmarks": "true"}
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def is_initial_events_end(event):
    """True for the BOOKMARK that closes a watch-list's initial events."""
    return event.get("type") == "BOOKMARK" and (
        event["object"]["metadata"].get("annotations") or {}).get(INITIAL_EVENTS_END) == "true"


class ApiError(Exception):
    """A non-2xx answer. status is the Status dict (or the text body), code the HTTP code."""

    def __init__(self, code, status, headers):
        msg = status.get("message") if isinstance(status, dict) else status
        super().__init__(f"HTTP {code}: {msg}")
        self.code = code
        self.status = status
        self.headers = headers

    @property
    def reason(self):
        return self.status.get("reason") if isinstance(self.status, dict) else None


class Response:
    def __init__(self, code, headers, body):
        self.code = code
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


# Kinds only a real apiserver serves (tests/lib/realk8s.py), so the client can build their
# paths; the test apiserver answers 404 for them as for any resource it does not have.
REAL_ONLY = tuple(resources.Resource(plural, kind, group, version, namespaced, builtin=True,
                                     has_generation=False, subresources=sub)
                  for plural, kind, group, version, namespaced, sub in (
    ("serviceaccounts", "ServiceAccount", "", "v1", True, ()),
    ("secrets", "Secret", "", "v1", True, ()),
    ("configmaps", "ConfigMap", "", "v1", True, ()),
    ("daemonsets", "DaemonSet", "apps", "v1", True, ("status",)),
    ("clusterroles", "ClusterRole", "rbac.authorization.k8s.io", "v1", False, ()),
    ("clusterrolebindings", "ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", False,
     ()),
    ("customresourcedefinitions", "CustomResourceDefinition", "apiextensions.k8s.io", "v1",
     False, ("status",)),
    ("subjectaccessreviews", "SubjectAccessReview", "authorization.k8s.io", "v1", False, ()),
))
_REAL_ONLY_BY_NAME = {n: r for r in REAL_ONLY for n in (r.plural, r.kind, r.kind.lower())}


def _resource(what):
    """A Resource from an object, a kind, a plural or a short name."""
    if isinstance(what, resources.Resource):
        return what
    if isinstance(what, dict):
        what = what["kind"]
        if what in resources.BY_KIND:
            return resources.BY_KIND[what]
    try:
        return resources.lookup(what)
    except KeyError:
        if what in _REAL_ONLY_BY_NAME:
            return _REAL_ONLY_BY_NAME[what]
        raise


# Client -----------------------------------------------------------------------------------

class Client:
    def __init__(self, url, token=None, ca=None, timeout=15, user_agent="axon-tests/1.0"):
        u = urllib.parse.urlsplit(url)
        self.url = url
        self.tls = u.scheme == "https"
        self.host = u.hostname
        self.port = u.port or (443 if self.tls else 80)
        self.token = token
        self.timeout = timeout
        self.user_agent = user_agent
        self.ssl_context = None
        if self.tls:
            self.ssl_context = ssl.create_default_context(cafile=ca)

    def connection(self, timeout=None):
        """A new http.client connection to the server (caller closes it)."""
        t = self.timeout if timeout is None else timeout
        if self.tls:
            return http.client.HTTPSConnection(self.host, self.port, timeout=t,
                                               context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=t)

    def headers(self, extra=None):
        h = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(extra or {})
        return h

    def request(self, method, path, body=None, params=None, headers=None,
                content_type="application/json", check=True):
        """Send one request; returns a Response, or raises ApiError on non-2xx if check."""
        if params:
            path += "?" + urllib.parse.urlencode({k: v for k, v in params.items()
                                                  if v is not None})
        data = None
        extra = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            extra["Content-Type"] = content_type
        conn = self.connection()
        try:
            conn.request(method, path, body=data, headers=self.headers(extra))
            resp = conn.getresponse()
            raw = resp.read()
            out = Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw)
        finally:
            conn.close()
        if check and not 200 <= out.code < 300:
            try:
                status = out.json()
            except ValueError:
                status = raw.decode(errors="replace")
            raise ApiError(out.code, status, out.headers)
        return out

    # Objects ---------------------------------------------------------------------------------

    def create(self, obj, strict=False):
        res = _resource(obj)
        ns = (obj.get("metadata") or {}).get("namespace") or "default"
        return self.request("POST", res.path(ns), obj,
                            {"strict": "1"} if strict else None).json()

    def get(self, what, namespace, name):
        """get("services", "shop", "web"); namespace is ignored for cluster-scoped kinds."""
        return self.request("GET", _resource(what).path(namespace, name)).json()

    def update(self, obj, strict=False, subresource=None):
        res = _resource(obj)
        meta = obj["metadata"]
        return self.request("PUT", res.path(meta.get("namespace"), meta["name"], subresource),
                            obj, {"strict": "1"} if strict else None).json()

    def update_status(self, obj):
        return self.update(obj, subresource="status")

    def patch(self, what, namespace, name, patch, patch_type="merge", subresource=None):
        ctype = {"merge": "application/merge-patch+json",
                 "strategic": "application/strategic-merge-patch+json",
                 "json": "application/json-patch+json"}[patch_type]
        return self.request("PATCH", _resource(what).path(namespace, name, subresource), patch,
                            content_type=ctype).json()

    def delete(self, what, namespace, name):
        return self.request("DELETE", _resource(what).path(namespace, name)).json()

    def apply(self, obj):
        """Create obj, or replace the stored one at its current resourceVersion (a real
        apiserver refuses to update a custom resource without one, and answers the create
        of an existing Service that names its ClusterIP with 422, not 409)."""
        meta = obj["metadata"]
        try:
            cur = self.get(obj, meta.get("namespace") or "default", meta["name"])
        except ApiError as e:
            if e.code != 404:
                raise
            return self.create(obj)
        body = json.loads(json.dumps(obj))
        body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        return self.update(body)

    def list(self, what, namespace=None, **params):
        """One LIST request; params are query parameters (labelSelector, limit, ...)."""
        return self.request("GET", _resource(what).path(namespace), params=params).json()

    def list_all(self, what, namespace=None, limit=500, **params):
        """Every item, following continue tokens; returns (items, list resourceVersion)."""
        items, token = [], None
        while True:
            page = self.list(what, namespace, limit=limit, **({"continue": token} if token
                                                               else {}), **params)
            items += page["items"]
            token = page["metadata"].get("continue")
            if not token:
                return items, page["metadata"]["resourceVersion"]

    def watch(self, what, namespace=None, resource_version=None, timeout_seconds=None,
              bookmarks=False, **params):
        """A Watch: iterate for events (dicts), close() when done."""
        q = dict(params, watch="1")
        if resource_version is not None:
            q["resourceVersion"] = resource_version
        if timeout_seconds is not None:
            q["timeoutSeconds"] = timeout_seconds
        if bookmarks:
            q["allowWatchBookmarks"] = "true"
        path = _resource(what).path(namespace) + "?" + urllib.parse.urlencode(q)
        return Watch(self, path)

    def watch_list(self, what, namespace=None, resource_version=None, timeout_seconds=None,
                   **params):
        """A streaming list (WATCH_LIST_QUERY): the current state as ADDED events, then the
        BOOKMARK annotated k8s.io/initial-events-end, then live events. A Watch."""
        q = dict(WATCH_LIST_QUERY, **params)
        return self.watch(what, namespace, resource_version, timeout_seconds, **q)

    # Admin API (tests/apiserver/admin.py) -------------------------------------------------------

    def stats(self):
        return self.request("GET", "/_test/stats").json()

    def reset_stats(self):
        return self.request("DELETE", "/_test/stats").json()

    def compact(self):
        return self.request("POST", "/_test/compact").json()

    def fault(self, **spec):
        """Add a fault rule or one-shot action, e.g. fault(status=429, retry_after=1)."""
        return self.request("POST", "/_test/faults", spec).json()

    def clear_faults(self):
        return self.request("DELETE", "/_test/faults").json()

    def drop_watches(self, resource=None):
        return self.fault(drop_watches=True, **({"resource": resource} if resource else {}))

    def end_watches(self, resource=None):
        return self.fault(end_watches=True, **({"resource": resource} if resource else {}))

    def expire_continue(self):
        return self.fault(expire_continue=True)

    def install(self, resource):
        return self.request("POST", "/_test/install", params={"resource": resource}).json()

    def uninstall(self, resource):
        return self.request("POST", "/_test/uninstall", params={"resource": resource}).json()

    def dump(self):
        return self.request("GET", "/_test/dump").json()


class Watch:
    """An open watch stream; iterating yields decoded events until the server ends it."""

    def __init__(self, client, path):
        self.conn = client.connection(timeout=None)
        self.conn.request("GET", path, headers=client.headers())
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            body = self.resp.read()
            self.close()
            try:
                status = json.loads(body)
            except ValueError:
                status = body.decode(errors="replace")
            raise ApiError(self.resp.status, status, dict(self.resp.getheaders()))

    def next(self, timeout=None):
        """The next event, None at the end of the stream; socket.timeout after timeout s."""
        self.conn.sock.settimeout(timeout)
        line = self.resp.readline()
        return json.loads(line) if line.strip() else None

    def __iter__(self):
        while True:
            ev = self.next()
            if ev is None:
                return
            yield ev

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# Object builders --------------------------------------------------------------------------

def _ports(ports, service_port):
    out = []
    for p in ports or []:
        if isinstance(p, dict):
            out.append(dict(p))
            continue
        if isinstance(p, int):
            p = (None, p, "TCP")
        elif len(p) == 2:                     # (port, protocol)
            p = (None, p[0], p[1])
        name, port, proto = p[0], p[1], p[2]
        entry = {"name": name or f"{proto.lower()}-{port}"} if len(ports) > 1 or name else {}
        entry.update({"protocol": proto, "port": port})
        if service_port and len(p) > 3:
            entry["targetPort"] = p[3]
        out.append(entry)
    return out


def service(namespace, name, ports, cluster_ip=None, type="ClusterIP", selector=None,
            labels=None, **spec):
    """A Service. ports: ints, (port, proto), (name, port, proto[, targetPort]) or dicts.
    Extra keyword arguments go into spec (externalTrafficPolicy="Local", ...)."""
    s = {"ports": _ports(ports, True), "selector": selector or {"app": name}, "type": type}
    if cluster_ip is not None:
        s["clusterIP"] = cluster_ip
    s.update(spec)
    meta = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": s}


def endpointslice(namespace, name, service_name, endpoints, ports, address_type="IPv4",
                  labels=None):
    """An EndpointSlice as the endpointslice controller writes it.
    endpoints: (ip, ready), (ip, ready, node), (ip, ready, node, zone),
    (ip, ready, node, zone, hint_zones) or dicts; hint_zones: the zone names of
    hints.forZones (the controller's topology hints);
    ports: ints, (port, proto), (name, port, proto) or dicts (names must match the Service)."""
    eps = []
    for e in endpoints:
        if isinstance(e, dict):
            eps.append(dict(e))
            continue
        ip, ready = e[0], e[1]
        ep = {"addresses": [ip], "conditions": {"ready": ready, "serving": ready,
                                                "terminating": False}}
        if len(e) > 2 and e[2]:
            ep["nodeName"] = e[2]
        if len(e) > 3 and e[3]:
            ep["zone"] = e[3]
        if len(e) > 4 and e[4]:
            ep["hints"] = {"forZones": [{"name": z} for z in e[4]]}
        eps.append(ep)
    lbl = {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
           "kubernetes.io/service-name": service_name}
    lbl.update(labels or {})
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": namespace, "labels": lbl},
            "addressType": address_type, "endpoints": eps, "ports": _ports(ports, False)}


def node(name, internal_ip, pod_cidr=None, labels=None):
    n = {"apiVersion": "v1", "kind": "Node",
         "metadata": {"name": name, "labels": dict({"kubernetes.io/hostname": name},
                                                   **(labels or {}))},
         "spec": {}, "status": {"addresses": [{"type": "InternalIP", "address": internal_ip},
                                              {"type": "Hostname", "address": name}]}}
    if pod_cidr:
        n["spec"] = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
    return n


def ciliumendpointslice(name, namespace, endpoints):
    """A CiliumEndpointSlice. endpoints: (pod, ip, identity, node_ip) or dicts."""
    eps = []
    for e in endpoints:
        if isinstance(e, dict):
            eps.append(dict(e))
            continue
        pod, ip, identity, node_ip = e
        eps.append({"id": identity, "name": pod,
                    "networking": {"addressing": [{"ipv4": ip}], "node": node_ip}})
    return {"apiVersion": "cilium.io/v2alpha1", "kind": "CiliumEndpointSlice",
            "metadata": {"name": name}, "namespace": namespace, "endpoints": eps}


def pod(namespace, name, node_name, ip=None, labels=None, service_account=None, ports=None,
        host_network=False, phase="Running", host_ports=None):
    """A Pod bound to node_name, as the kubelet leaves it once CNI ADD gave it ip (None: not
    yet). ports: (name, port[, protocol]) of one container. host_ports: (containerPort,
    hostPort[, protocol[, hostIP]]) of that container, unnamed."""
    spec = {"containers": [{"name": "main", "image": "pause"}], "nodeName": node_name}
    if ports:
        spec["containers"][0]["ports"] = [
            {"name": p[0], "containerPort": p[1], "protocol": p[2] if len(p) > 2 else "TCP"}
            for p in ports]
    for hp in host_ports or ():
        port = {"containerPort": hp[0], "hostPort": hp[1],
                "protocol": hp[2] if len(hp) > 2 else "TCP"}
        if len(hp) > 3:
            port["hostIP"] = hp[3]
        spec["containers"][0].setdefault("ports", []).append(port)
    if service_account:
        spec["serviceAccountName"] = service_account
    if host_network:
        spec["hostNetwork"] = True
    status = {"phase": phase}
    if ip:
        status.update(podIP=ip, podIPs=[{"ip": ip}])
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
            "spec": spec, "status": status}


def namespace(name, labels=None):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, **({"labels": dict(labels)} if labels else {})}}


def networkpolicy(namespace, name, pod_selector=None, ingress=None, egress=None,
                  policy_types=None):
    """A NetworkPolicy; pod_selector is matchLabels ({} or None: every pod), ingress and
    egress lists of rules as the API writes them (None: the field is absent)."""
    spec = {"podSelector": {"matchLabels": dict(pod_selector)} if pod_selector else {}}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    if policy_types is not None:
        spec["policyTypes"] = list(policy_types)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def ciliumnetworkpolicy(namespace, name, spec=None, specs=None):
    """A CiliumNetworkPolicy with one rule (spec) or several (specs), as Cilium writes them."""
    obj = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
           "metadata": {"name": name, "namespace": namespace}}
    if spec is not None:
        obj["spec"] = spec
    if specs is not None:
        obj["specs"] = specs
    return obj


def ciliumclusterwidenetworkpolicy(name, spec=None, specs=None):
    obj = ciliumnetworkpolicy(None, name, spec, specs)
    obj["kind"] = "CiliumClusterwideNetworkPolicy"
    del obj["metadata"]["namespace"]
    return obj


def ciliumidentity(number, namespace, labels, serviceaccount="default", cluster="default",
                   namespace_labels=None):
    """A CiliumIdentity as Cilium's operator writes one for a pod's labels: security-labels
    with the k8s: source, the namespace, its labels, the service account and the cluster;
    metadata.labels the same without the source (what kubectl's columns show)."""
    sec = {f"k8s:{k}": v for k, v in labels.items()}
    sec["k8s:io.kubernetes.pod.namespace"] = namespace
    sec["k8s:io.cilium.k8s.policy.serviceaccount"] = serviceaccount
    sec["k8s:io.cilium.k8s.policy.cluster"] = cluster
    for k, v in dict({"kubernetes.io/metadata.name": namespace},
                     **(namespace_labels or {})).items():
        sec[f"k8s:io.cilium.k8s.namespace.labels.{k}"] = v
    meta_labels = dict(labels, **{"io.kubernetes.pod.namespace": namespace,
                                  "io.cilium.k8s.policy.serviceaccount": serviceaccount,
                                  "io.cilium.k8s.policy.cluster": cluster})
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumIdentity",
            "metadata": {"name": str(number), "labels": dict(sorted(meta_labels.items()))},
            "security-labels": dict(sorted(sec.items()))}


# Kubeconfig -------------------------------------------------------------------------------

def write_kubeconfig(path, url, token=None, ca=None, embed_ca=False, name="axon-test",
                     client_cert=None):
    """A kubeconfig (block-style YAML, as kubectl writes it) for the agent or kubectl;
    the user has token, or client_cert ((certificate file, key file)), or nothing."""
    lines = ["apiVersion: v1", "kind: Config", "clusters:", "- cluster:"]
    if ca and embed_ca:
        data = base64.b64encode(pathlib.Path(ca).read_bytes()).decode()
        lines.append(f"    certificate-authority-data: {data}")
    elif ca:
        lines.append(f"    certificate-authority: {ca}")
    lines += [f"    server: {url}", f"  name: {name}", "contexts:", "- context:",
              f"    cluster: {name}", f"    user: {name}", f"  name: {name}",
              f"current-context: {name}", "preferences: {}", "users:", f"- name: {name}"]
    if token:
        lines += ["  user:", f"    token: {token}"]
    elif client_cert:
        lines += ["  user:", f"    client-certificate: {client_cert[0]}",
                  f"    client-key: {client_cert[1]}"]
    else:
        lines += ["  user: {}"]
    pathlib.Path(path).write_text("\n".join(lines) + "\n")
    return str(path)


# The server process -----------------------------------------------------------------------

class ApiServer:
    """The test apiserver as a subprocess. Files (certs, token, log, state) live in workdir."""

    def __init__(self, tls=True, token="auto", load=(), fixtures=False, history=None,
                 bookmark_interval=None, without=(), initial_rv=None, extra_args=(),
                 quiet=False, workdir=None, host="127.0.0.1", port=0, netns=(),
                 watch_list=True, cert_names=()):
        """watch_list=False: a server with the WatchList feature gate off (1.33), which
        answers every sendInitialEvents with 422 Invalid."""
        self.tls = tls
        self.watch_list = watch_list
        self.token = secrets.token_hex(16) if token == "auto" else token
        self.load = [str(p) for p in load] + (
            [str(FIXTURES_DIR / f) for f in FIXTURE_LISTS] if fixtures else [])
        self.history = history
        self.bookmark_interval = bookmark_interval
        self.without = list(without)
        self.initial_rv = initial_rv
        self.extra_args = list(extra_args)
        self.quiet = quiet
        self.host = host
        self.port = port
        # Network namespaces the server also listens in (same address and port), so an
        # agent inside a test node's namespace reaches it at the same URL.
        self.netns = list(netns)
        self._own_workdir = workdir is None
        self.workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="axon-apiserver-"))
        self.proc = None
        self.ca = None
        self.state_file = self.workdir / "state.json"
        self.log_path = self.workdir / "apiserver.log"
        if tls:
            self.ca = str(self.workdir / "ca.crt")
            if not (self.workdir / "server.crt").exists():
                # cert_names: more names or IPs the certificate covers (a ClusterIP).
                subprocess.run([str(GENCERTS), str(self.workdir)] + list(cert_names),
                               check=True)

    @property
    def url(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def _command(self, load, initial_rv):
        cmd = [PYTHON, str(APISERVER), "--listen", f"{self.host}:{self.port}",
               "--port-file", str(self.workdir / "port"), "--state", str(self.state_file)]
        if self.tls:
            cmd += ["--tls-cert", str(self.workdir / "server.crt"),
                    "--tls-key", str(self.workdir / "server.key")]
        if self.token:
            token_file = self.workdir / "token"
            token_file.write_text(self.token + "\n")
            cmd += ["--token-file", str(token_file)]
        for f in load:
            cmd += ["--load", f]
        for r in self.without:
            cmd += ["--without", r]
        if self.history is not None:
            cmd += ["--history", str(self.history)]
        if self.bookmark_interval is not None:
            cmd += ["--bookmark-interval", str(self.bookmark_interval)]
        if initial_rv is not None:
            cmd += ["--initial-rv", str(initial_rv)]
        if self.quiet:
            cmd.append("--quiet")
        if not self.watch_list:
            cmd.append("--no-watch-list")
        for ns in self.netns:
            # A lab torn down before a restart takes its namespaces with it.
            if os.path.exists(ns if "/" in ns else f"/var/run/netns/{ns}"):
                cmd += ["--netns", ns]
        return cmd + self.extra_args

    def start(self, load=None, initial_rv=None):
        """Start the server and wait until it listens; returns self."""
        port_file = self.workdir / "port"
        port_file.unlink(missing_ok=True)
        cmd = self._command(self.load if load is None else load,
                            self.initial_rv if initial_rv is None else initial_rv)
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 120     # 100k preloaded objects take a while
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"test apiserver did not start: {self.log_tail()}")
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        return self

    def stop(self, timeout=5):
        """SIGTERM (watches end cleanly, state is saved), SIGKILL if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self):
        """Die abruptly (SIGKILL): connections reset, no state saved."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self, keep_state=True, initial_rv=None, load=None, down_seconds=0):
        """Restart on the same port.

        keep_state: objects and their resourceVersions survive (etcd kept), the watch history
        does not (410 for older revisions). Otherwise a fresh store: the load files are
        applied again (or `load`, e.g. [] for an empty cluster), starting at initial_rv.
        """
        self.stop()
        if not keep_state:
            self.state_file.unlink(missing_ok=True)
        if down_seconds:
            time.sleep(down_seconds)
        return self.start(load=([] if keep_state else load), initial_rv=initial_rv)

    def listen_in(self, netns, host=None):
        """Also serve at self.url inside network namespace netns (a name under
        /var/run/netns or a path), now and after every restart. Idempotent. With host
        (an address the namespace has), serve there too, on the same port, until the
        server restarts."""
        if host is None and netns not in self.netns:
            self.netns.append(netns)
        if self.proc is not None:
            self.client().request("POST", "/_test/listen",
                                  params={"netns": netns, **({"host": host} if host else {})})
        return self

    def client(self, **kw):
        return Client(self.url, self.token, self.ca, **kw)

    def write_kubeconfig(self, path=None, embed_ca=False):
        return write_kubeconfig(path or self.workdir / "kubeconfig", self.url, self.token,
                                self.ca, embed_ca)

    def log_tail(self, lines=30):
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def close(self):
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
