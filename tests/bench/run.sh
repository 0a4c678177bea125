#!/usr/bin/env bash
# make bench: side-by-side benchmarks (see each script's header).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
/usr/bin/python3 tests/bench/bench_connect.py "$@"
