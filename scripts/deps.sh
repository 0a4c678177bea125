#!/usr/bin/env bash
# Installs every Debian package Axon's build, tests, demo and benchmarks need.
# Idempotent and non-interactive: does nothing when all are present.
set -euo pipefail

pkgs=(
	make gcc clang llvm bpftool pkg-config
	libbpf-dev libelf-dev zlib1g-dev libcurl4-openssl-dev libcjson-dev
	libnl-3-dev libnl-route-3-dev libyaml-dev libcmocka-dev libclang-rt-14-dev
	iproute2 openssl iperf3 sockperf iptables nftables procps curl
	python3 python3-pytest python3-yaml nghttp2-server
	buildah podman runc etcd-server
	containerd containernetworking-plugins libc6-dev
	prometheus	# promtool: the chart's alert rules and the agent's /metrics
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: need root to install packages" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
