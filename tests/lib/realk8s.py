"""A real Kubernetes apiserver for the end-to-end tests (the envtest pattern).

    from realk8s import RealApiServer
    with RealApiServer() as real:                  # etcd + kube-apiserver, Cilium's CRDs
        c = real.client()                         # admin (system:masters), HTTPS + token
        ns = real.create_namespace("shop")        # a fresh axon-shop-XXXXXX
        real.create_service_account(ns, "axon")
        token = real.token_for(ns, "axon")        # TokenRequest: the ServiceAccount's token
        real.write_kubeconfig(path, token=token)  # for the agent, as that ServiceAccount
        real.write_kubeconfig(path, cert=real.node_credentials(dir, "node-a"))  # a kubelet
        real.listen_in("axdp123456-node")         # also 127.0.0.1:PORT in that netns
        real.apply(objs)                          # create, or replace what exists (any kind)
        real.dry_run_apply(obj)                   # validated and admitted, nothing stored
        real.can_i("system:serviceaccount:NS:axon", "list", "secrets")
        with real.controller_manager():           # EndpointSlices derived from Pods
            ...

What it starts, all on 127.0.0.1 with free ports and one temporary directory (on /dev/shm
when there is one: etcd's fsyncs stay off the disk):
  - etcd (Debian's etcd-server, /usr/bin/etcd), a single member;
  - kube-apiserver with certificates it makes (tests/apiserver/gencerts.sh: a CA, a serving
    certificate for 127.0.0.1, localhost and the kubernetes Service's 10.96.0.1, an ECDSA
    service-account signing key; a client certificate of system:masters for its calls to
    kubelets, --kubelet-client-certificate, reaching them at their InternalIP), a static
    admin token (--token-auth-file, group system:masters), --authorization-mode=Node,RBAC,
    --service-cluster-ip-range 10.96.0.0/12 (the range the e2e tests' ClusterIPs are in),
    NodePorts 30000-32767 and --endpoint-reconciler-type=none (a loopback address is
    refused in Endpoints, so the `kubernetes` Service, 10.96.0.1:443, has no endpoints);
    ready at /readyz in about 5 s;
  - then the CRDs of helm/axon/crds/ (Cilium's CiliumEndpointSlice, CiliumIdentity,
    CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy), each waited on until Established.
  - On demand, controller_manager(controllers) runs kube-controller-manager until the block
    ends: a few controllers (e.g. "endpointslice,serviceaccount") act within a second, all
    of them take about 17 s (one waits 10 s). Not by default: its EndpointSlice controller
    owns every slice labelled endpointslice.kubernetes.io/managed-by=
    endpointslice-controller.k8s.io, which is what k8s.endpointslice() writes, and would
    empty the slices tests make by hand. One at a time.
  - node_credentials(dir, name) signs a client certificate CN=system:node:NAME,
    O=system:nodes with the cluster's CA: a kubelet's identity, which the Node authorizer
    knows (tests/lib/kubelet_node.py).
close() stops every process (SIGTERM, then SIGKILL), the forwarders, and removes the directory;
log_tail() shows each process's log (printed when starting fails, and by the e2e fixtures
when a test fails).

Binaries: kube-apiserver and kube-controller-manager from tests/lib/k8s_assets.py (the
assets directory, its cache, its checksum check); require() there skips a test when they
(or etcd, or openssl) are missing, or fails it under CI=true.

One apiserver serves a whole test session (tests/e2e/conftest.py: the session fixture
`real_apiserver`); each test borrows it through a Scope (real.scope()), which offers the same
interface and, on close(), deletes every object created through its clients (newest first),
the namespaces it made, and stops the forwarders it opened, so a fixed name (`default/web`) is
free again for the next test. The agent sees the `kubernetes` Service (10.96.0.1:443/TCP, no
endpoints) in every test: a real cluster always has it.

Standard library, PyYAML (the CRD manifests) and tests/lib/k8s.py.
"""

import contextlib
import ctypes
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import urllib.request
import uuid

import k8s
import k8s_assets
import netns as netns_sockets      # tests/apiserver/netns.py (k8s puts it on sys.path)
from k8s_assets import binary
from poll import wait_for

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_DIR = REPO_ROOT / "helm" / "axon" / "crds"
GENCERTS = REPO_ROOT / "tests" / "apiserver" / "gencerts.sh"
ETCD = k8s_assets.ETCD

SERVICE_CIDR = "10.96.0.0/12"
KUBERNETES_SERVICE_IP = "10.96.0.1"
CLUSTER_CIDR = "10.244.0.0/16"
NODE_PORT_RANGE = "30000-32767"
ISSUER = "https://kubernetes.default.svc.cluster.local"
PR_SET_PDEATHSIG = 1
# The controllers a test gets by default: all but two that misbehave without a kubelet
# (nodelifecycle marks every Node NotReady after ~50 s, which empties EndpointSlices) or
# exist only in OpenShift's fork (service-ca-cert-publisher).
DEFAULT_CONTROLLERS = "*,-nodelifecycle,-service-ca-cert-publisher"


def require(controller_manager=False, helm=False):
    """Skip the calling test when the binaries a RealApiServer needs are missing, or fail
    it under CI=true (k8s_assets.require)."""
    names = ["kube-apiserver"] + (["kube-controller-manager"] if controller_manager else []) \
        + (["helm"] if helm else [])
    k8s_assets.require(*names, etcd=True)


# Processes and ports ----------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    """preexec_fn: SIGKILL when the test process dies, so a killed run leaves no daemons."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Process:
    """One child process with its log file (appended to: a process started again keeps
    what the last one wrote); stop() is idempotent."""

    def __init__(self, name, argv, workdir, env=None):
        self.name = name
        self.log_path = pathlib.Path(workdir) / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(a) for a in argv], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=env,
                                         preexec_fn=die_with_parent)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def log_tail(self, lines=40):
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return f"--- {self.name}: (no log)"
        return f"--- {self.name} ({self.log_path}):\n" + "\n".join(text[-lines:])


# The TCP forwarder for agents in test nodes' network namespaces -----------------------------

class Forwarder:
    """Listens on host:port inside a network namespace and forwards each connection to
    target (host, port) in the namespace the test runs in: the apiserver listens on the
    machine's loopback only, the agent runs in a node's namespace with a kubeconfig that
    names 127.0.0.1:PORT. One thread accepts; two per connection copy bytes."""

    def __init__(self, netns, host, port, target):
        self.netns = netns
        self.target = target
        self.lock = threading.Lock()
        self.conns = set()
        self.closed = False
        self.sock = netns_sockets.socket_in(netns_sockets.netns_path(netns), host, port)
        threading.Thread(target=self._accept, daemon=True,
                         name=f"fwd-{os.path.basename(netns)}").start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return                  # shut down by close()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                conn.close()
                continue
            with self.lock:
                if self.closed:
                    conn.close()
                    upstream.close()
                    return
                self.conns |= {conn, upstream}
            threading.Thread(target=self._pair, args=(conn, upstream), daemon=True).start()

    def _pair(self, conn, upstream):
        back = threading.Thread(target=self._pump, args=(upstream, conn), daemon=True)
        back.start()
        self._pump(conn, upstream)
        back.join()
        with self.lock:
            self.conns -= {conn, upstream}
        conn.close()
        upstream.close()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            # One side reset or was shut down: end both, as a proxy in between would.
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self):
        with self.lock:
            self.closed = True
            conns, self.conns = list(self.conns), set()
        # shutdown() wakes the accept() and every recv(); the sockets hold the namespace.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


# The server -------------------------------------------------------------------------------

class RealApiServer:
    """etcd + kube-apiserver (+ kube-controller-manager on demand), see the module docstring."""

    def __init__(self, workdir=None):
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self._own_workdir = workdir is None
        self.workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="axon-realk8s-",
                                                                dir=shm))
        self.token = secrets.token_hex(16)
        self.ca = str(self.workdir / "ca.crt")
        self.port = None
        self.procs = {}
        self.forwarders = []
        self.version = None
        self._discovery = {}        # apiVersion: {kind: (path prefix, API resource)}

    # -- lifecycle --

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def start(self):
        try:
            self._certs()
            self._start_etcd()
            self._start_apiserver()
            self.install_crds()
        except BaseException:
            self.close()
            raise
        return self

    def _certs(self):
        w = self.workdir
        subprocess.run([str(GENCERTS), str(w), KUBERNETES_SERVICE_IP, "kubernetes",
                        "kubernetes.default", "kubernetes.default.svc",
                        "kubernetes.default.svc.cluster.local"], check=True)
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", str(w / "sa.key")],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", str(w / "sa.key"), "-pubout", "-out",
                        str(w / "sa.pub")], check=True, capture_output=True)
        # What the apiserver shows a kubelet for logs, exec and the node proxy.
        self.sign_client_cert(w / "kubelet-client", "kube-apiserver-kubelet-client",
                              "system:masters")
        # token,user,uid,"groups": the admin every fixture's client speaks as.
        (w / "tokens.csv").write_text(f'{self.token},axon-test-admin,axon-test-admin,'
                                      f'"system:masters"\n')
        os.chmod(w / "tokens.csv", 0o600)

    def _start_etcd(self):
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        p = self.procs["etcd"] = Process("etcd", [
            ETCD, "--name", "axon-test", "--data-dir", str(self.workdir / "etcd"),
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"axon-test=http://127.0.0.1:{peer}",
            "--log-level", "warn"], self.workdir)

        def healthy():
            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=1) as r:
                return json.loads(r.read()).get("health") == "true"
        wait_for(healthy, 20, what="etcd /health", proc=p)

    def _start_apiserver(self):
        w = self.workdir
        self.port = free_port()
        p = self.procs["kube-apiserver"] = Process("kube-apiserver", [
            str(binary("kube-apiserver")),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1", f"--secure-port={self.port}",
            "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
            f"--tls-cert-file={w / 'server.crt'}", f"--tls-private-key-file={w / 'server.key'}",
            f"--client-ca-file={w / 'ca.crt'}", f"--token-auth-file={w / 'tokens.csv'}",
            "--authorization-mode=Node,RBAC", "--allow-privileged=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--service-node-port-range={NODE_PORT_RANGE}",
            f"--service-account-issuer={ISSUER}", f"--api-audiences={ISSUER}",
            f"--service-account-key-file={w / 'sa.pub'}",
            f"--service-account-signing-key-file={w / 'sa.key'}",
            f"--kubelet-client-certificate={w / 'kubelet-client.crt'}",
            f"--kubelet-client-key={w / 'kubelet-client.key'}",
            # A node's address is that of its veth (tests/lib/kubelet_node.py).
            "--kubelet-preferred-address-types=InternalIP",
            f"--cert-dir={w / 'apiserver-certs'}", "--profiling=false"], w)
        c = self.client(timeout=5)

        def ready():
            return c.request("GET", "/readyz", check=False).code == 200
        wait_for(ready, 60, what="kube-apiserver /readyz", proc=p)
        # The bootstrap controller makes `default` and the kubernetes Service just after
        # /readyz: wait, so every test starts from the same cluster.
        wait_for(lambda: c.get("services", "default", "kubernetes"), 30,
                 what="the kubernetes Service", proc=p)
        self.version = c.request("GET", "/version").json()["gitVersion"]

    def sign_client_cert(self, stem, cn, org=None):
        """STEM.key and STEM.crt: an ECDSA client certificate for CN (and O) signed by the
        cluster's CA, which the apiserver's --client-ca-file trusts. Returns (crt, key)."""
        stem = pathlib.Path(stem)
        crt, key, csr = (stem.with_suffix(s) for s in (".crt", ".key", ".csr"))
        subj = f"/CN={cn}" + (f"/O={org}" if org else "")
        ext = stem.with_suffix(".ext")
        ext.write_text("basicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage=clientAuth\n")
        for argv in (["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-out", key],
                     ["req", "-new", "-key", key, "-subj", subj, "-out", csr],
                     ["x509", "-req", "-in", csr, "-CA", self.workdir / "ca.crt", "-CAkey",
                      self.workdir / "ca.key", "-CAcreateserial", "-days", "2", "-out", crt,
                      "-extfile", ext]):
            subprocess.run(["openssl", *map(str, argv)], check=True, capture_output=True)
        csr.unlink()
        ext.unlink()
        os.chmod(key, 0o600)
        return str(crt), str(key)

    def node_credentials(self, directory, node):
        """(crt, key) in directory: the identity of the kubelet of Node `node`
        (system:node:NODE in group system:nodes), as kubeadm gives a kubelet; the Node
        authorizer grants it what a node may do, and only for its own Node and pods."""
        return self.sign_client_cert(pathlib.Path(directory) / "kubelet", f"system:node:{node}",
                                     "system:nodes")

    def install_crds(self, directory=CRD_DIR, client=None):
        """Create every CRD of the manifests in directory (through client: a Scope's, to
        have them deleted with it); wait until each is Established."""
        import yaml
        c = client or self.client()
        names = []
        for f in sorted(pathlib.Path(directory).glob("*.yaml")):
            for doc in yaml.safe_load_all(f.read_text()):
                if doc:
                    c.apply(doc)
                    names.append(doc["metadata"]["name"])

        def established(name):
            crd = c.get("customresourcedefinitions", None, name)
            conds = {x["type"]: x["status"] for x in crd.get("status", {}).get("conditions", [])}
            return conds.get("Established") == "True"
        for name in names:
            wait_for(lambda: established(name), 30, what=f"CRD {name} Established",
                     proc=self.procs["kube-apiserver"])
        return names

    @contextlib.contextmanager
    def controller_manager(self, controllers=DEFAULT_CONTROLLERS):
        """kube-controller-manager for the block (EndpointSlices derived from Pods, the
        namespace, serviceaccount and garbage-collector controllers, ...)."""
        w = self.workdir
        running = self.procs.get("kube-controller-manager")
        if running is not None and running.alive():
            raise RuntimeError("a kube-controller-manager runs already (one at a time: they "
                               "would fight over the same objects)")
        kubeconfig = self.write_kubeconfig(w / "controller-manager.kubeconfig")
        port = free_port()
        plugins = w / "flexvolume"
        plugins.mkdir(exist_ok=True)
        p = self.procs["kube-controller-manager"] = Process("kube-controller-manager", [
            str(binary("kube-controller-manager")),
            f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}", "--authentication-skip-lookup=true",
            "--bind-address=127.0.0.1", f"--secure-port={port}",
            f"--cert-dir={w / 'controller-manager-certs'}",
            f"--root-ca-file={w / 'ca.crt'}",
            f"--service-account-private-key-file={w / 'sa.key'}",
            "--use-service-account-credentials=false", "--leader-elect=false",
            "--allocate-node-cidrs=true", f"--cluster-cidr={CLUSTER_CIDR}",
            "--node-cidr-mask-size=24", f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--flex-volume-plugin-dir={plugins}", f"--controllers={controllers}"], w)
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE      # its self-signed serving certificate

        def healthy():
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", timeout=1,
                                        context=insecure) as r:
                return r.status == 200
        try:
            wait_for(healthy, 60, what="kube-controller-manager /healthz", proc=p)
            yield p
        finally:
            p.stop()

    def close(self):
        for f in self.forwarders:
            f.close()
        self.forwarders = []
        # The apiserver before etcd, so it does not spend its shutdown retrying etcd.
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            if name in self.procs:
                self.procs[name].stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def log_tail(self, lines=40, since=None):
        """The last lines of every process's log (since: {name: byte offset} from
        log_offsets(), to show only what was written after it)."""
        out = []
        for name, p in self.procs.items():
            if since is None:
                out.append(p.log_tail(lines))
                continue
            try:
                with open(p.log_path, "rb") as f:
                    f.seek(since.get(name, 0))
                    text = f.read().decode(errors="replace").splitlines()
            except OSError:
                continue
            out.append(f"--- {name} ({p.log_path}):\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    def log_offsets(self):
        return {name: p.log_path.stat().st_size for name, p in self.procs.items()
                if p.log_path.exists()}

    # -- the interface of k8s.ApiServer --

    def client(self, token=None, **kw):
        """A k8s.Client; the admin's unless token (e.g. from token_for) is given."""
        return k8s.Client(self.url, token or self.token, self.ca, **kw)

    def write_kubeconfig(self, path, token=None, embed_ca=False, cert=None):
        """A kubeconfig for this server: the admin's token, another token, or cert (a
        (crt, key) pair, e.g. from node_credentials) instead of a token."""
        return k8s.write_kubeconfig(path, self.url, None if cert else token or self.token,
                                    self.ca, embed_ca, client_cert=cert)

    def listen_in(self, netns):
        """Serve at self.url inside network namespace netns too (a forwarder); returns it.
        Close it (or the Scope that opened it) before the namespace goes: its sockets
        would keep the namespace alive."""
        f = Forwarder(netns, "127.0.0.1", self.port, ("127.0.0.1", self.port))
        self.forwarders.append(f)
        return f

    def stop_listening(self, forwarder):
        forwarder.close()
        if forwarder in self.forwarders:
            self.forwarders.remove(forwarder)

    # -- what only a real apiserver does --

    def create_namespace(self, prefix="axon", client=None):
        """A new namespace named prefix-XXXXXX; returns its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        (client or self.client()).create({"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": name}})
        return name

    def create_service_account(self, namespace, name, client=None):
        """A ServiceAccount (the controller manager makes `default` ones, nothing else)."""
        return (client or self.client()).create({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace}})

    def token_for(self, namespace, serviceaccount, seconds=3600):
        """A token of the ServiceAccount, from the TokenRequest API (kubectl create token)."""
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{serviceaccount}/token"
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds}}
        return self.client().request("POST", path, body).json()["status"]["token"]

    def path(self, obj, with_name=True):
        """The REST path of obj, of any kind the apiserver serves (from its discovery
        document, fetched once per group version; again for a kind not seen yet, e.g. a
        CRD installed since)."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        kinds = self._discovery.get(api_version, {})
        if kind not in kinds:
            prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            doc = self.client().request("GET", prefix).json()
            kinds = self._discovery[api_version] = {
                r["kind"]: (prefix, r) for r in doc["resources"] if "/" not in r["name"]}
        prefix, r = kinds[kind]
        meta = obj["metadata"]
        if r["namespaced"]:
            prefix += f"/namespaces/{meta.get('namespace') or 'default'}"
        return f"{prefix}/{r['name']}" + (f"/{meta['name']}" if with_name else "")

    def _apply(self, obj, client, dry_run):
        params = {"fieldManager": "axon-tests", "force": "true"}
        if dry_run:
            params["dryRun"] = "All"
        return (client or self.client()).request(
            "PATCH", self.path(obj), obj, params,
            content_type="application/apply-patch+yaml").json()

    def apply(self, objs, client=None):
        """Server-side apply of each object (kubectl apply --server-side): created, or
        updated to what it says; returns them as stored."""
        return [self._apply(o, client, False) for o in objs]

    def dry_run_apply(self, obj, client=None):
        """Server-side apply with dryRun=All (kubectl apply --server-side --dry-run=server):
        the object as the apiserver would store it after defaulting, validation and
        admission; nothing is stored. Raises k8s.ApiError (e.g. 422 Invalid)."""
        return self._apply(obj, client, True)

    def can_i(self, user, verb, resource, group="", namespace=None, groups=None):
        """SubjectAccessReview: (allowed, reason) for user doing verb on resource."""
        attrs = {"verb": verb, "resource": resource, "group": group}
        if namespace:
            attrs["namespace"] = namespace
        spec = {"user": user, "resourceAttributes": attrs}
        if groups is None and user.startswith("system:serviceaccount:"):
            ns = user.split(":")[2]
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}",
                      "system:authenticated"]
        if groups:
            spec["groups"] = groups
        st = self.client().create({"apiVersion": "authorization.k8s.io/v1",
                                   "kind": "SubjectAccessReview", "spec": spec})["status"]
        return st.get("allowed", False), st.get("reason", "")

    def scope(self):
        return Scope(self)


# One test's share of the server -----------------------------------------------------------

class TrackingClient(k8s.Client):
    """A Client that records what it creates, so its Scope can delete it afterwards."""

    def __init__(self, scope, *a, **kw):
        super().__init__(*a, **kw)
        self.scope = scope

    def create(self, obj, strict=False):
        out = super().create(obj, strict)
        # Reviews and token requests are answers, not objects: nothing is stored.
        if out.get("metadata", {}).get("name") and out.get("kind") != "TokenRequest":
            self.scope.track(out)
        return out


class Scope:
    """A RealApiServer as one test sees it: the interface of k8s.ApiServer (url, token,
    ca, client(), write_kubeconfig(), listen_in()) plus the real server's own, and close()
    that deletes what the test created and stops its forwarders."""

    def __init__(self, server):
        self.server = server
        self.created = []           # (path, kind, name), oldest first
        self.forwarders = []
        self.log_start = server.log_offsets()

    url = property(lambda self: self.server.url)
    token = property(lambda self: self.server.token)
    ca = property(lambda self: self.server.ca)
    version = property(lambda self: self.server.version)

    def client(self, token=None, **kw):
        return TrackingClient(self, self.server.url, token or self.server.token,
                              self.server.ca, **kw)

    def write_kubeconfig(self, path, token=None, embed_ca=False, cert=None):
        return self.server.write_kubeconfig(path, token, embed_ca, cert)

    def node_credentials(self, directory, node):
        return self.server.node_credentials(directory, node)

    def listen_in(self, netns):
        f = self.server.listen_in(netns)
        self.forwarders.append(f)
        return f

    def create_namespace(self, prefix="axon"):
        return self.server.create_namespace(prefix, self.client())

    def create_service_account(self, namespace, name):
        return self.server.create_service_account(namespace, name, self.client())

    def token_for(self, namespace, serviceaccount, seconds=3600):
        return self.server.token_for(namespace, serviceaccount, seconds)

    def track(self, obj):
        """Delete obj (as stored: apiVersion, kind, metadata) on close()."""
        self.created.append((self.server.path(obj), obj["kind"], obj["metadata"]["name"]))

    def apply(self, objs):
        out = self.server.apply(objs)
        for o in out:
            self.track(o)
        return out

    def dry_run_apply(self, obj):
        return self.server.dry_run_apply(obj)

    def path(self, obj, with_name=True):
        return self.server.path(obj, with_name)

    def can_i(self, *a, **kw):
        return self.server.can_i(*a, **kw)

    def controller_manager(self, *a, **kw):
        return self.server.controller_manager(*a, **kw)

    def log_tail(self, lines=60):
        """What the server's processes logged during this test."""
        return self.server.log_tail(lines, since=self.log_start)

    def close(self):
        for f in self.forwarders:
            self.server.stop_listening(f)
        self.forwarders = []
        c = self.server.client()
        errors = []
        for path, kind, name in reversed(self.created):
            try:
                if kind == "Namespace":
                    self._empty(c, name)
                # No grace: with no kubelet a Pod would wait for one forever.
                c.request("DELETE", path, params={"gracePeriodSeconds": 0})
            except k8s.ApiError as e:
                if e.code not in (404, 409):      # gone, or a namespace already terminating
                    errors.append(f"{path}: {e}")
        self.created = []
        if errors:
            raise RuntimeError("cleanup left objects behind: " + "; ".join(errors))

    @staticmethod
    def _empty(c, namespace):
        """Delete what controllers made in a namespace of the test's (EndpointSlices for
        its Services): without the namespace controller, deleting the namespace would
        leave them in place, for the next test's agent to see."""
        for plural in ("endpointslices", "pods"):
            c.request("DELETE", k8s._resource(plural).path(namespace),
                      params={"gracePeriodSeconds": 0})
