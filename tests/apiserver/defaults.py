"""Defaulting the real apiserver applies to the network-policy kinds, so a client sees what a
cluster stores (recorded in tests/fixtures/k8s/networkpolicies-list.json, namespaces-list.json).

  NetworkPolicy  SetDefaults_NetworkPolicySpec: policyTypes, when absent, is [Ingress], plus
                 Egress when the policy has egress rules; SetDefaults_NetworkPolicyPort: a
                 port's protocol is TCP.
  Namespace      the kubernetes.io/metadata.name label (always the name, whatever was sent),
                 spec.finalizers ["kubernetes"], status.phase Active.

Malformed values are left alone: by default the stand-in stores what it is given, so tests can
hand the agent what a buggy client writes (validation.py checks only on request).
"""

NAME_LABEL = "kubernetes.io/metadata.name"


def network_policy(obj):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for direction in ("ingress", "egress"):
        rules = spec.get(direction)
        for rule in rules if isinstance(rules, list) else []:
            ports = rule.get("ports") if isinstance(rule, dict) else None
            for port in ports if isinstance(ports, list) else []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
    if not spec.get("policyTypes"):
        egress = spec.get("egress")
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if egress else [])


def namespace(obj, old):
    meta = obj["metadata"]
    labels = meta.get("labels")
    if not isinstance(labels, dict):
        labels = meta["labels"] = {}
    labels[NAME_LABEL] = meta.get("name")
    # A Go map: written with its keys sorted.
    meta["labels"] = dict(sorted(labels.items()))
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    spec.setdefault("finalizers", ["kubernetes"])
    if old is None:
        obj["status"] = {"phase": "Active"}
