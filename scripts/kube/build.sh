#!/usr/bin/env bash
# Builds the kube-apiserver and etcd that the Kubernetes tests (kube_test.go)
# start on loopback, from this directory's module, into
# ${PORTPATROL_KUBE_BIN:-${XDG_CACHE_HOME:-~/.cache}/portpatrol-kube}, where
# the tests look for them. A cold build takes minutes on two cores, so it is
# skipped while the binaries there were built from this go.mod and go.sum.
set -euo pipefail
cd "$(dirname "$0")"

out="${PORTPATROL_KUBE_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/portpatrol-kube}"
stamp="$(cat go.mod go.sum | sha256sum | cut -d' ' -f1)"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
	echo "kube-apiserver and etcd in $out are up to date"
	exit 0
fi

mkdir -p "$out"
tmp="$(mktemp -d "$out/.build-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
go build -trimpath -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -o "$tmp/etcd" go.etcd.io/etcd/server/v3
# Replace the old binaries only once both new ones are built.
rm -f "$out/stamp"
mv -f "$tmp/kube-apiserver" "$tmp/etcd" "$out/"
echo "$stamp" >"$out/stamp"
echo "built kube-apiserver and etcd into $out in $((SECONDS - start)) s"
