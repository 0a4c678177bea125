#!/usr/bin/env bash
# make demo: a local demo node with Axon. See demo/demo.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 demo/demo.py "$@"
