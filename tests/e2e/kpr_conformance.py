"""The Service conformance catalogue: every kube-proxy behaviour Axon must show, by name.

A test that probes one of these behaviours with real traffic carries the marker
`@pytest.mark.kpr("<name>")` (one marker per behaviour; a test may carry several).
At the end of a run, the e2e session prints one line per behaviour with the outcome of
its tests (pass, FAIL, xfail, skipped, not run) and how many ran against the real
kube-apiserver, and test_kpr_catalogue.py fails when
a behaviour has no test, or when one of its tests is skipped or expected to fail.
"""

import collections

BEHAVIOURS = {
    # Endpoints follow pods
    "endpoints-follow-pods": "no, one, two, then one endpoint, within a second",
    "multi-port-named": "multi-port Service with named target ports",
    "ports-added-removed": "Service ports added and removed live",
    "tcp-and-udp-same-port": "same port on TCP and UDP, one removed, the other untouched",
    "service-recreated": "Service deleted and recreated serves again",
    "same-selector-services": "several Services over the same pods",
    "slices-split": "EndpointSlices split across several slices",
    # Hairpin and source IP
    "hairpin-socket-lb": "a pod reaches itself through its ClusterIP (socket LB)",
    "hairpin-tc-lb": "a pod reaches itself through its ClusterIP (tc LB)",
    "source-ip-same-node": "backend sees the client's address, client on the same node",
    "source-ip-other-node": "backend sees the client's address, client on another node",
    # Rejects
    "reject-socket-lb": "no endpoints: connect() refused by the socket LB",
    "reject-tc-lb": "no endpoints: TCP RST / ICMP unreachable from the tc LB",
    "reject-nodeport": "no endpoints: NodePort from outside rejected, counted",
    # Session affinity
    "affinity-clusterip": "ClientIP affinity on a ClusterIP, switched on and off live",
    "affinity-socket-lb-netns": "socket LB affinity keyed by the client's network namespace",
    "affinity-nodeport": "ClientIP affinity on a NodePort from outside",
    "affinity-timeout": "a different backend once the affinity timeout expires",
    # Labels
    "service-proxy-name": "service-proxy-name label hands the Service to another proxy, live",
    "headless-label": "headless label on an EndpointSlice, live",
    # Traffic policies and terminating endpoints
    "etp-local": "externalTrafficPolicy Local: only local endpoints, client source kept",
    "etp-cluster": "externalTrafficPolicy Cluster: any endpoint, SNAT to the node",
    "itp-local": "internalTrafficPolicy Local: client on the backend's node succeeds, "
                 "on another node fails",
    "host-network-clients-backends": "traffic policies with hostNetwork clients and backends",
    "terminating-fallback": "serving-terminating endpoints used only when no ready one is "
                            "left (Cluster and Local)",
    "health-check-node-port": "healthCheckNodePort: 200 with a local ready endpoint, 503 "
                              "with terminating ones only",
    "kpr-healthz": "kube-proxy-compatible healthz",
    "source-ranges": "loadBalancerSourceRanges drop clients outside the ranges",
    # Frontends and types
    "external-ips": "ExternalIPs reachable though on no node",
    "type-changes": "ClusterIP, NodePort, LoadBalancer, ExternalName changes take effect live",
    "nodeport-released": "NodePort released on delete",
    "publish-not-ready": "publishNotReadyAddresses serves not-ready endpoints",
    "host-port": "HostPort in BPF, on the node's addresses and 127.0.0.1",
    # Stale sockets and flows
    "socket-destroy-tcp": "connected TCP sockets to a deleted backend are terminated",
    "socket-destroy-udp": "connected UDP sockets to a deleted backend are terminated",
    "udp-conntrack-flushed": "fixed-port UDP client reaches the new backend within seconds",
    "invalid-tcp-dropped": "invalid-state TCP dropped, not forwarded to a wrong backend",
    # Topology
    "prefer-close": "trafficDistribution PreferClose honours zone hints; a zone without "
                    "endpoints is still served",
    # Status and CLI
    "status-kpr-details": "status --verbose shows the KubeProxyReplacement details",
    "service-list-not-served": "service list marks the Services Axon does not serve, and why",
}


class Summary:
    """Outcomes per behaviour, gathered from test reports."""

    ORDER = {"FAIL": 0, "skipped": 1, "xfail": 2, "pass": 3}

    def __init__(self):
        self.by_behaviour = collections.defaultdict(list)

    def record(self, item, report):
        names = [m.args[0] for m in item.iter_markers("kpr") if m.args]
        if not names:
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if hasattr(report, "wasxfail"):
                outcome = "xfail"
            elif report.skipped:
                outcome = "skipped"
            elif report.failed:
                outcome = "FAIL"
            else:
                outcome = "pass"
            for name in names:
                self.by_behaviour[name].append((item.nodeid, outcome))

    def lines(self):
        if not self.by_behaviour:
            return []
        out = []
        for name in BEHAVIOURS:
            runs = self.by_behaviour.get(name, [])
            if not runs:
                out.append(f"  not run  {name}")
                continue
            worst = min((o for _, o in runs), key=lambda o: self.ORDER[o])
            real = sum("[real" in nodeid or "-real" in nodeid for nodeid, _ in runs)
            where = f", {real} against the real kube-apiserver" if real else ""
            out.append(f"  {worst:<8} {name} ({len(runs)} test{'s' * (len(runs) != 1)}{where})")
        unknown = sorted(set(self.by_behaviour) - set(BEHAVIOURS))
        out += [f"  unknown  {name} (not in the catalogue)" for name in unknown]
        return out
