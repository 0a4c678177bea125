#!/usr/bin/env bash
# Builds Axon's OCI image from scratch (no base image is pulled): the
# binaries (axon-agent, agentctl, and the static axon-cni the chart's init
# container copies onto the node), exactly the shared libraries they link
# (ldd) and the dynamic loader, CA certificates; the default command is the
# agent, and the binaries are on PATH (`podman run IMAGE agentctl version`). Output: a
# docker-archive tarball that `podman load`, `docker load` and
# `ctr -n k8s.io images import` all take.
#
#   scripts/image.sh OUT_DIR IMAGE TAG
#
# buildah runs with its own storage under OUT_DIR (vfs driver), so building
# touches neither the machine's container storage nor its registries config.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$1
image=$2
tag=$3
bins=("$out/axon-agent" "$out/agentctl" "$out/axon-cni")
work="$out/image"
rootfs="$work/rootfs"
storage=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
archive="$work/axon-agent-$tag.tar"
commit=$(./scripts/version.sh | sed -n 2p)

rm -rf "$rootfs" "$archive"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/tmp" \
	"$rootfs/var/run/axon" "$rootfs/sys/fs/bpf"
chmod 1777 "$rootfs/tmp"

# A library is copied to the path the loader resolved it to, and the loader
# to both its real path and the interpreter path the binaries name.
copy_path() {
	local src=$1 real
	real=$(readlink -f "$src")
	mkdir -p "$rootfs$(dirname "$src")" "$rootfs$(dirname "$real")"
	[ -e "$rootfs$real" ] || cp "$real" "$rootfs$real"
	[ "$src" = "$real" ] || [ -e "$rootfs$src" ] || ln -s "$real" "$rootfs$src"
}
for b in "${bins[@]}"; do
	install -m 0755 "$b" "$rootfs/usr/local/bin/"
	# axon-cni is static: ldd lists nothing (and fails).
	{ ldd "$b" || true; } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
		while read -r lib; do copy_path "$lib"; done
done
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
printf 'hosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/usr/local/bin/axon-agent\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\n' > "$rootfs/etc/group"

ctr=$(buildah "${storage[@]}" from --quiet scratch)
cleanup() { buildah "${storage[@]}" rm "$ctr" >/dev/null 2>&1 || true; }
trap cleanup EXIT
buildah "${storage[@]}" copy --quiet "$ctr" "$rootfs/" / >/dev/null
buildah "${storage[@]}" config \
	--entrypoint '' --cmd '["axon-agent"]' \
	--env PATH=/usr/local/bin \
	--env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
	--label org.opencontainers.image.title=axon-agent \
	--label org.opencontainers.image.version="$tag" \
	--label org.opencontainers.image.revision="$commit" \
	--label org.opencontainers.image.description="Axon eBPF datapath agent and agentctl" \
	"$ctr"
buildah "${storage[@]}" commit --quiet --format docker --timestamp 0 --rm "$ctr" \
	"$image:$tag" >/dev/null
trap - EXIT
buildah "${storage[@]}" push --quiet "$image:$tag" "docker-archive:$archive:$image:$tag"
buildah "${storage[@]}" rmi --quiet "$image:$tag" >/dev/null 2>&1 || true
echo "$archive"
