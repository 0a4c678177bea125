#!/usr/bin/env bash
# make demo: a local demo node with Axon (DEMO_KEEP=1 leaves it running); make demo-stop
# (demo.sh --stop) removes a kept one. See demo/demo.py and demo/keep.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 demo/demo.py "$@"
