#!/usr/bin/env bash
# Runs Axon's test suites and prints one closing line: "N passed, N failed".
#
#   tests/run.sh                 every suite
#   tests/run.sh unit bpf ...    just those (unit asan bpf apiserver e2e fuzz)
#
# Needs root (BPF, namespaces, cgroups). Each suite cleans up after itself.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-.output}
PY=/usr/bin/python3
passed=0
failed=0
failed_names=()

[ "$(id -u)" -eq 0 ] || { echo "tests/run.sh: run as root (BPF, namespaces, cgroups)" >&2; exit 1; }

# What every suite needs from the machine: bpffs mounted.
if ! grep -q " /sys/fs/bpf bpf " /proc/mounts; then
	mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf
fi

# The recorded apiserver responses every suite reads: tests/fixtures/k8s, or
# AXON_FIXTURES to try others. Made absolute and exported once here, so C,
# Python and fuzz read the same files whatever directory they run in.
AXON_FIXTURES=$(realpath -m "${AXON_FIXTURES:-tests/fixtures/k8s}")
if [ ! -f "$AXON_FIXTURES/services-list.json" ]; then
	echo "tests/run.sh: no k8s fixtures in $AXON_FIXTURES (services-list.json missing)" >&2
	exit 1
fi
export AXON_FIXTURES

count_cmocka() {	# $1 = test name, $2 = output file, $3 = exit status
	local p f
	p=$(grep -oE '^\[  PASSED  \] [0-9]+' "$2" | grep -oE '[0-9]+$' | tail -n1)
	f=$(grep -oE '^\[  FAILED  \] [0-9]+ test' "$2" | grep -oE '[0-9]+' | tail -n1)
	p=${p:-0}
	f=${f:-0}
	if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1	# crashed before reporting
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" -eq 0 ] || failed_names+=("$1")
}

count_pytest() {	# $1 = suite name, $2 = output file, $3 = exit status
	local line p f e
	line=$(grep -E '[0-9]+ (passed|failed|error)' "$2" | tail -n1)
	p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+')
	f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
	e=$(grep -oE '[0-9]+ errors?' <<<"$line" | grep -oE '[0-9]+')
	p=${p:-0}
	f=$(( ${f:-0} + ${e:-0} ))
	if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" -eq 0 ] || failed_names+=("$1")
}

run_cmocka_dir() {	# $1 = dir of binaries
	local t log
	for t in "$1"/test_*; do
		[ -x "$t" ] || continue
		log=$(mktemp)
		echo "== $t"
		"$t" 2>&1 | tee "$log"
		count_cmocka "$t" "$log" "${PIPESTATUS[0]}"
		rm -f "$log"
	done
}

run_pytest() {	# $1 = name, $2... = pytest args
	local name=$1 log
	shift
	log=$(mktemp)
	echo "== pytest $*"
	$PY -m pytest -q -p no:cacheprovider "$@" 2>&1 | tee "$log"
	count_pytest "$name" "$log" "${PIPESTATUS[0]}"
	rm -f "$log"
}

suite_unit()      { run_cmocka_dir "$OUT/tests/unit"; }
suite_asan()      {
	local log
	log=$(mktemp)
	echo "== ASan+UBSan unit tests"
	make --no-print-directory test-asan 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]} line p f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n1)
	p=$(cut -d' ' -f1 <<<"$line")
	f=$(cut -d' ' -f3 <<<"$line")
	p=${p:-0}
	f=${f:-0}
	[ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" -eq 0 ] || failed_names+=("asan")
	rm -f "$log"
}
suite_bpf()       { run_cmocka_dir "$OUT/tests/bpf"; }
suite_apiserver() { run_pytest apiserver tests/apiserver; }
suite_e2e()       { run_pytest e2e tests/e2e; }
suite_fuzz()      {
	echo "== fuzz (short)"
	if ./tests/fuzz/run.sh "${FUZZ_SECONDS:-5}"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failed_names+=("fuzz")
	fi
}

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(unit bpf apiserver e2e fuzz asan)
for s in "${suites[@]}"; do
	if [ "$s" = fuzz ] && [ ! -x tests/fuzz/run.sh ]; then
		continue
	fi
	"suite_$s"
done

echo
if [ ${#failed_names[@]} -gt 0 ]; then
	echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
