#!/usr/bin/env bash
# Builds the kube-apiserver and etcd that the Kubernetes tests (kube_test.go)
# start on loopback, and the kubectl they ask for a second opinion (the
# differential tests), from this directory's module, into
# ${PORTPATROL_KUBE_BIN:-${XDG_CACHE_HOME:-~/.cache}/portpatrol-kube}, where
# the tests look for them. A cold build takes minutes on two cores, so it is
# skipped while the binaries there were built by this script from this go.mod
# and go.sum.
set -euo pipefail
cd "$(dirname "$0")"

out="${PORTPATROL_KUBE_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/portpatrol-kube}"
stamp="$(cat build.sh go.mod go.sum | sha256sum | cut -d' ' -f1)"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ] && [ -x "$out/kubectl" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
	echo "kube-apiserver, etcd and kubectl in $out are up to date"
	exit 0
fi

mkdir -p "$out"
tmp="$(mktemp -d "$out/.build-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
# Kubernetes' own build stamps the release into the binary; without it the
# server's /version says v0.0.0-master.
version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
minor="${version#v1.}"
minor="${minor%%.*}"
pkg=k8s.io/component-base/version
go build -trimpath -o "$tmp/kube-apiserver" \
	-ldflags="-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
	k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -o "$tmp/kubectl" \
	-ldflags="-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
	k8s.io/kubernetes/cmd/kubectl
go build -trimpath -o "$tmp/etcd" go.etcd.io/etcd/server/v3
# Replace the old binaries only once all new ones are built.
rm -f "$out/stamp"
mv -f "$tmp/kube-apiserver" "$tmp/kubectl" "$tmp/etcd" "$out/"
echo "$stamp" >"$out/stamp"
echo "built kube-apiserver, kubectl and etcd into $out in $((SECONDS - start)) s"
