"""A node simulator: the kubelet's pod networking for one lab node, against an apiserver.

    sim = NodeSim(api, node, conf_path).start()   # node: a netlab Node
    ...                                           # create Pods with spec.nodeName = node.name
    sim.wait_running("shop", "web-a")            # -> its netlab Pod, serving
    sim.close()                                   # DEL for every pod left, namespaces removed

It polls the Pods bound to its node (fieldSelector spec.nodeName) and, for each new one,
does what a kubelet and its runtime do for the pod's network, nothing more:
  - creates the pod's network namespace (a lab namespace, `<lab prefix>-<pod name>`),
  - reads the conflist the agent wrote (--write-cni-conf-when-ready PATH), takes its first
    plugin and adds cniVersion and name to it as libcni does, and runs `axon-cni` ADD in
    the node's namespace with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME=eth0,
    CNI_PATH and CNI_ARGS (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID,
    K8S_POD_UID); until the conflist exists or while ADD answers an error the pod waits
    and is tried again (the runtime's retry),
  - starts podtool's server in the pod (TCP 8080 and UDP 5353, replies naming the pod),
  - writes the Pod's status through the status subresource: hostIP, podIP, podIPs, phase
    Running, the Ready and ContainersReady conditions.
A Pod that is gone, or being deleted (deletionTimestamp: the real apiserver waits for the
kubelet), gets its server stopped, CNI DEL, its namespace removed, and, when it was only
being deleted, the final DELETE with gracePeriodSeconds 0 the kubelet sends.

Pod names are unique across namespaces within a lab (the namespace is named after the pod);
hostNetwork Pods are left alone.
errors lists what went wrong (an ADD refused, a status write failed), newest last, for a
test to print.
"""

import json
import os
import subprocess
import threading
import time
import uuid

from k8s import ApiError, _resource
from netlab import Pod, sh
from poll import wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.environ.get("OUT", os.path.join(REPO, ".output"))
if not os.path.isabs(OUT):
    OUT = os.path.join(REPO, OUT)
CNI = os.path.join(OUT, "axon-cni")
CNI_PATH = "/usr/lib/cni"
PODTOOL = os.path.join(REPO, "tests", "e2e", "podtool.py")
PY = "/usr/bin/python3"


class SimPod:
    """One pod the simulator runs: its netlab Pod (None until ADD succeeded), container id,
    server process."""

    def __init__(self, namespace, name, uid):
        self.namespace, self.name, self.uid = namespace, name, uid
        self.cid = uuid.uuid4().hex
        self.netns = None
        self.pod = None
        self.server = None


class NodeSim:
    def __init__(self, api, node, conf_path, interval=0.2):
        self.api, self.node, self.conf_path = api, node, conf_path
        self.lab = node.lab
        self.interval = interval
        self.pods = {}                  # (namespace, name) -> SimPod
        self.errors = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    # -- the loop --

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"nodesim-{self.node.name}")
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception as e:      # the apiserver restarting, a lab torn down
                self._error(f"sync: {e}")
            self._stop.wait(self.interval)

    def _error(self, msg):
        with self._lock:
            self.errors.append(msg)
            del self.errors[:-50]

    def sync(self):
        """One pass: pods bound here started, pods gone or deleting torn down."""
        items = self.api.list("pods", fieldSelector=f"spec.nodeName={self.node.name}")["items"]
        live = {}
        for p in items:
            meta = p["metadata"]
            if p["spec"].get("hostNetwork"):
                continue
            live[(meta["namespace"], meta["name"])] = p
        for key in [k for k in self.pods if k not in live]:
            self._teardown(self.pods[key])
        for key, p in live.items():
            meta = p["metadata"]
            sp = self.pods.get(key)
            if sp and sp.uid != meta["uid"]:        # the same name, a new Pod
                self._teardown(sp)
                sp = None
            if meta.get("deletionTimestamp"):
                if sp:
                    self._teardown(sp)
                self._finish_delete(meta)
                continue
            if sp is None:
                sp = self.pods[key] = SimPod(key[0], key[1], meta["uid"])
            if sp.pod is None:
                self._setup(sp)

    # -- a pod's network --

    def network_config(self):
        """What the runtime gives the first plugin of the conflist; None before it exists."""
        try:
            with open(self.conf_path) as f:
                conflist = json.load(f)
        except (OSError, ValueError):
            return None
        conf = dict(conflist["plugins"][0])
        conf["cniVersion"] = conflist["cniVersion"]
        conf["name"] = conflist["name"]
        return conf

    def cni(self, sp, command):
        """(exit status, parsed stdout or None) of axon-cni for sp."""
        conf = self.network_config()
        if conf is None:
            return None, {"msg": f"no network config at {self.conf_path}"}
        env = {"PATH": os.environ["PATH"], "CNI_COMMAND": command,
               "CNI_CONTAINERID": sp.cid, "CNI_IFNAME": "eth0", "CNI_PATH": CNI_PATH,
               "CNI_NETNS": f"/var/run/netns/{sp.netns}",
               "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE={sp.namespace};"
                           f"K8S_POD_NAME={sp.name};K8S_POD_INFRA_CONTAINER_ID={sp.cid};"
                           f"K8S_POD_UID={sp.uid}"}
        r = subprocess.run(["nsenter", f"--net=/var/run/netns/{self.node.netns}", CNI],
                           input=json.dumps(conf), env=env, capture_output=True, text=True,
                           timeout=60)
        try:
            out = json.loads(r.stdout) if r.stdout.strip() else None
        except ValueError:
            out = {"msg": r.stdout}
        return r.returncode, out

    def _setup(self, sp):
        if self.network_config() is None:
            return                      # the node's network is not ready: retried later
        if sp.netns is None:
            sp.netns = f"{self.lab.prefix}-{sp.name}"
            self.lab._add_netns(sp.netns)
            sh("nsenter", f"--net=/var/run/netns/{sp.netns}", "ip", "link", "set", "lo", "up")
        rc, res = self.cni(sp, "ADD")
        if rc != 0:
            self._error(f"ADD {sp.namespace}/{sp.name}: {rc} {res}")
            return
        ip = res["ips"][0]["address"].split("/")[0]
        host_if = res["interfaces"][0]["name"]
        pod = Pod(self.lab, self.node, sp.name, ip, host_if, 0)
        sp.server = pod.spawn([PY, PODTOOL, "serve", sp.name, "8080", "5353"],
                              in_cgroup=False, stdout=subprocess.PIPE)
        line = sp.server.stdout.readline().decode().strip()
        if line != "ready":
            self._error(f"server in {sp.name} did not start")
        sp.pod = pod
        self.node.pods[sp.name] = pod
        self.lab.pods[sp.name] = pod
        self._write_status(sp, ip)

    def _write_status(self, sp, ip):
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        conds = [{"type": t, "status": "True", "lastProbeTime": None,
                  "lastTransitionTime": now}
                 for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
        status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                  "conditions": conds, "startTime": now}
        if self.node.ip:
            status["hostIP"] = self.node.ip
        try:
            self.api.patch("pods", sp.namespace, sp.name, {"status": status},
                           subresource="status")
        except ApiError as e:
            self._error(f"status {sp.namespace}/{sp.name}: {e}")

    def _teardown(self, sp):
        if sp.server and sp.server.poll() is None:
            sp.server.kill()
            sp.server.wait(timeout=5)
        if sp.netns:
            rc, out = self.cni(sp, "DEL")
            if rc != 0:
                self._error(f"DEL {sp.namespace}/{sp.name}: {rc} {out}")
            sh("ip", "netns", "del", sp.netns, check=False)
        self.pods.pop((sp.namespace, sp.name), None)
        self.node.pods.pop(sp.name, None)
        self.lab.pods.pop(sp.name, None)

    def _finish_delete(self, meta):
        """The kubelet's last word on a deleting pod: delete it now."""
        path = _resource("pods").path(meta["namespace"], meta["name"])
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                "preconditions": {"uid": meta["uid"]}}
        try:
            self.api.request("DELETE", path, body)
        except ApiError as e:
            if e.code not in (404, 409):
                self._error(f"delete {meta['namespace']}/{meta['name']}: {e}")

    # -- for tests --

    def wait_running(self, namespace, name, timeout=30):
        """The netlab Pod of namespace/name once it is wired and serving."""
        def ready():
            sp = self.pods.get((namespace, name))
            return sp.pod if sp and sp.pod else None
        try:
            return wait_for(ready, timeout, what=f"pod {namespace}/{name} running on "
                            f"{self.node.name}")
        except AssertionError as e:
            raise AssertionError(f"{e}; the simulator's last errors: {self.errors[-3:]}") \
                from None

    def close(self):
        """Stop polling; DEL every pod still here and remove its namespace."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        for sp in list(self.pods.values()):
            self._teardown(sp)
