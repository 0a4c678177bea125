#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan+UBSan) into .output-fuzz and run each for a
# while on a seed corpus made from the recorded apiserver responses (tests/fixtures/k8s).
#
#   tests/fuzz/run.sh [SECONDS]      (default 10 per target)
#
# Exit status is non-zero when a target crashes, leaks or trips a sanitizer; the
# reproducer is left in .output-fuzz/<target>/ (crash-*, leak-*, timeout-*), the
# binaries in .output-fuzz/bin/ (run one on a reproducer to replay it).
set -euo pipefail
cd "$(dirname "$0")/../.."

secs=${1:-10}
[ -n "$secs" ] || secs=10
OUT=.output-fuzz
CC=${FUZZ_CC:-clang}
FIXTURES=${AXON_FIXTURES:-tests/fixtures/k8s}
CFLAGS=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
	-fno-omit-frame-pointer -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror
	-Iinclude -Ilib -Iagent -Icli -Icni)

K8S=agent/k8s
declare -A SRCS=(
	[fuzz_stream]="$K8S/stream.c $K8S/json.c $K8S/objects.c $K8S/strpool.c"
	[fuzz_objects]="$K8S/objects.c $K8S/json.c $K8S/strpool.c $K8S/service.c $K8S/endpointslice.c $K8S/cilium.c $K8S/node.c"
	[fuzz_policy]="$K8S/objects.c $K8S/json.c $K8S/strpool.c $K8S/labelselector.c $K8S/policy_common.c $K8S/netpol.c $K8S/cnp.c $K8S/cnp_ports.c $K8S/identity.c $K8S/namespace.c $K8S/pod.c agent/identity/labels.c agent/policy/arena.c agent/policy/entity.c agent/policy/labels.c agent/policy/rules.c agent/policy/selector.c"
	[fuzz_yaml]="$K8S/yaml_doc.c"
	[fuzz_capture]="cli/pkt_summary.c"
	[fuzz_cni]="cni/json.c"
)
targets=(fuzz_stream fuzz_objects fuzz_policy fuzz_yaml fuzz_capture fuzz_cni)

mkdir -p "$OUT/bin"
for t in "${targets[@]}"; do
	echo "  FUZZCC   $OUT/bin/$t"
	# shellcheck disable=SC2086
	"$CC" "${CFLAGS[@]}" "tests/fuzz/$t.c" ${SRCS[$t]} -lcjson -lyaml -o "$OUT/bin/$t"
done

# Seeds: each fixture object on its own, the recorded watch streams, and the hand-made
# seeds under tests/fuzz/corpus/<kind>/.
seeds=$OUT/seeds
rm -rf "$seeds"
mkdir -p "$seeds"/{objects,policy,stream,yaml,capture,cni}
cp tests/fuzz/corpus/objects/* "$seeds/objects/" 2>/dev/null || true
cp tests/fuzz/corpus/policy/* "$seeds/policy/" 2>/dev/null || true
cp tests/fuzz/corpus/stream/* "$seeds/stream/" 2>/dev/null || true
cp tests/fuzz/corpus/yaml/* "$seeds/yaml/" 2>/dev/null || true
cp tests/fuzz/corpus/capture/* "$seeds/capture/" 2>/dev/null || true
cp tests/fuzz/corpus/cni/* "$seeds/cni/" 2>/dev/null || true
if [ ! -d "$FIXTURES" ]; then
	echo "fuzz: no fixtures at $FIXTURES (AXON_FIXTURES)" >&2
	exit 1
fi
/usr/bin/python3 - "$FIXTURES" "$seeds" <<'PY'
import json, pathlib, sys
fix, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for f in sorted(fix.glob("*.json")):
    try:
        data = json.loads(f.read_text())
    except ValueError:
        continue
    items = data.get("items") if isinstance(data, dict) else None
    for i, item in enumerate(items or [data]):
        (out / "objects" / f"{f.stem}-{i}.json").write_text(json.dumps(item))
        (out / "policy" / f"{f.stem}-{i}.json").write_text(json.dumps(item))
    if items:
        # Whole lists too: the policy target evaluates policies against identities.
        (out / "policy" / f.name).write_text(json.dumps(data))
for f in sorted(fix.glob("*.jsonl")):
    # The first byte picks the fragment size in fuzz_stream.
    (out / "stream" / f.name).write_bytes(b"\x07" + f.read_bytes())
PY

declare -A SEEDS=([fuzz_stream]=stream [fuzz_objects]=objects [fuzz_policy]=policy
	[fuzz_yaml]=yaml [fuzz_capture]=capture [fuzz_cni]=cni)
status=0
for t in "${targets[@]}"; do
	work=$OUT/$t
	mkdir -p "$work/corpus"
	echo "  FUZZ     $t for ${secs}s"
	if ! (cd "$work" && ASAN_OPTIONS=detect_leaks=1 "../bin/$t" -max_total_time="$secs" \
		-max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		corpus "../seeds/${SEEDS[$t]}" >"log.txt" 2>&1); then
		echo "fuzz: $t FAILED; see $work/log.txt" >&2
		tail -n 30 "$work/log.txt" >&2
		status=1
	else
		grep -E '^stat::number_of_executed_units|^Done' "$work/log.txt" | sed 's/^/    /' || true
	fi
done
exit $status
