#!/usr/bin/env bash
# Makes a throwaway CA and a server certificate for the test apiserver.
#
#   gencerts.sh OUTDIR [NAME_OR_IP ...]
#
# Writes OUTDIR/ca.crt, ca.key, server.crt, server.key (ECDSA P-256, valid 30 days). The
# server certificate covers localhost, 127.0.0.1 and ::1 plus every extra argument: IP
# addresses become IP SANs, anything else a DNS SAN. Existing files are overwritten.
set -euo pipefail

if (($# < 1)); then
	echo "usage: $0 OUTDIR [NAME_OR_IP ...]" >&2
	exit 2
fi
out=$1
shift
mkdir -p "$out"

sans="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in "$@"; do
	if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then
		sans+=",IP:$name"
	else
		sans+=",DNS:$name"
	fi
done

ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ec "$out/ca.key"
openssl req -x509 -new -key "$out/ca.key" -days 30 -subj "/CN=axon-test-ca" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out "$out/ca.crt" 2>/dev/null

ec "$out/server.key"
openssl req -new -key "$out/server.key" -subj "/CN=kube-apiserver" -out "$out/server.csr" \
	2>/dev/null
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
	-CAcreateserial -days 30 -out "$out/server.crt" \
	-extfile <(printf '%s\n' "subjectAltName=$sans" \
		"basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature,keyEncipherment" \
		"extendedKeyUsage=serverAuth") 2>/dev/null
rm -f "$out/server.csr" "$out/ca.srl"
chmod 600 "$out/ca.key" "$out/server.key"
