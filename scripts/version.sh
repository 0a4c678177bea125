#!/usr/bin/env bash
# Prints Axon's version for the build: the newest release tag (vX.Y.Z) that
# `git describe` finds, else the VERSION file (a tarball or a clone without
# tags). Second line: the commit, "-dirty" when the tree has changes, or
# "unknown" outside git. The image tag and the chart's appVersion use the
# first line; the binaries print both.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(git describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null || true)
version=${version#v}
[ -n "$version" ] || version=$(tr -d ' \n' < VERSION)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && ! git diff --quiet HEAD -- 2>/dev/null; then
	commit="$commit-dirty"
fi
printf '%s\n%s\n' "$version" "$commit"
