#!/usr/bin/env bash
# make bench: side-by-side benchmarks (see each script's header).
#
#   BENCHES="connect datapath packet sync policy cni churn" (default all)   which ones run, in this order
#   packet: ns/packet of the tc paths, new and established flows, policy off and on
#   connect takes the service counts as arguments; ROUNDS=5 for both.
#   sync: control plane (initial sync, RSS, programming latency; kube-proxy rule loads),
#   sized by SERVICES ENDPOINTS CES_ENDPOINTS CHANGES RATE, SYNC_ROUNDS=3
#   policy: policy control plane in process (tests/tools/policy_bench.c), sized by
#   POLICIES IDENTITIES POLICY_ENDPOINTS POLICY_CHANGES (1000 10000 100 200)
#   cni: CNI ADD/DEL latency at concurrency 1 and 20, axon-cni vs. ptp + host-local
#   churn: pod churn on one node: the agent's CES/identity writes per pod change and the time
#   until a pod is in a CiliumEndpointSlice, sized by PODS LABELS DURATION RATE (100 5 20 40)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
rc=0
for b in ${BENCHES:-connect datapath packet sync policy cni churn}; do
	case $b in
	connect)  /usr/bin/python3 tests/bench/bench_connect.py "$@" || rc=1 ;;
	datapath) /usr/bin/python3 tests/bench/bench_datapath.py || rc=1 ;;
	packet)   echo "tc programs, BPF_PROG_TEST_RUN, median of 5 rounds: established flows 1M runs, new flows 20000 SYNs; policy off and on:"
		  .output/tests/tools/tc_bench || rc=1 ;;
	sync)     ROUNDS=${SYNC_ROUNDS:-3} /usr/bin/python3 tests/bench/bench_sync.py || rc=1 ;;
	policy)   .output/tests/tools/policy_bench "${POLICIES:-1000}" "${IDENTITIES:-10000}" \
			"${POLICY_ENDPOINTS:-100}" "${POLICY_CHANGES:-200}" || rc=1 ;;
	cni)      /usr/bin/python3 tests/bench/bench_cni.py || rc=1 ;;
	churn)    /usr/bin/python3 tests/bench/bench_churn.py || rc=1 ;;
	*)        echo "bench: unknown benchmark $b" >&2; rc=1 ;;
	esac
done
exit $rc
