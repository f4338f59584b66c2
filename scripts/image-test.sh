#!/usr/bin/env bash
# Proves the ko-built image without a Docker daemon: build it with ko into a
# registry on loopback, unpack its filesystem, and run its entrypoint as the
# image's nonroot user inside a fresh network namespace against TCP, HTTP and
# ICMP targets there. Then, without VERSION, checks that --version reports
# the pseudo-version or tag Go stamps from git. Needs root (namespaces,
# chroot), git and Go.
set -euo pipefail

KO_VERSION=v0.18.1
CRANE_VERSION=v0.21.9
VERSION=v0.0.0-imagetest

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
ns=portpatrol-image-$$
registry_pid=""
server_pid=""
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
	[ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'image test FAILED: %s\n' "$*" >&2; exit 1; }

step "install ko $KO_VERSION and crane $CRANE_VERSION"
export GOBIN="$work/bin"
go install "github.com/google/ko@$KO_VERSION"
go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
export PATH="$GOBIN:$PATH"

step "start a registry on loopback"
port=$(( 20000 + RANDOM % 20000 ))
crane registry serve --address "127.0.0.1:$port" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done
reg="127.0.0.1:$port"

step "push a stand-in for distroless static:nonroot (passwd with nonroot, CA bundle, no shell)"
base="$work/base"
mkdir -p "$base/etc/ssl/certs" "$base/tmp"
chmod 1777 "$base/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$base/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$base/etc/group"
cp /etc/ssl/certs/ca-certificates.crt "$base/etc/ssl/certs/"
tar --numeric-owner --owner=0 --group=0 -C "$base" -cf "$work/base.tar" .
for arch in amd64 arm64; do
	crane append --oci-empty-base -f "$work/base.tar" -t "$reg/base:$arch-raw" >/dev/null
	crane mutate --set-platform "linux/$arch" --user 65532:65532 -t "$reg/base:$arch" "$reg/base:$arch-raw" >/dev/null
done
crane index append -m "$reg/base:amd64" -m "$reg/base:arm64" -t "$reg/base:latest" >/dev/null

step "ko build for linux/amd64 and linux/arm64 with ko.yaml"
image=$(cd "$repo" && VERSION=$VERSION KO_DOCKER_REPO="$reg/portpatrol" KO_DEFAULTBASEIMAGE="$reg/base:latest" \
	KO_CONFIG_PATH="$repo/ko.yaml" ko build --bare --sbom=none --platform=linux/amd64,linux/arm64 . 2>"$work/ko.log") ||
	{ cat "$work/ko.log" >&2; fail "ko build"; }
echo "built $image"
platforms=$(crane manifest "$image" | tr -d ' \n' | grep -o '"architecture":"[a-z0-9]*"' | sort | tr '\n' ' ')
echo "platforms: $platforms"
[[ $platforms == *amd64* && $platforms == *arm64* ]] || fail "the index lacks a platform: $platforms"

config=$(crane config --platform linux/amd64 "$image")
user=$(printf '%s' "$config" | grep -o '"User":"[^"]*"' || true)
entrypoint=$(printf '%s' "$config" | grep -o '"Entrypoint":\[[^]]*\]' || true)
echo "config: $user $entrypoint"
[[ $user == '"User":"65532:65532"' || $user == '"User":"65532"' ]] || fail "image user is $user, want 65532"
[[ -n $entrypoint ]] || fail "the image has no entrypoint"
entry=$(printf '%s' "$entrypoint" | sed -E 's/"Entrypoint":\["([^"]*)".*/\1/')
# The examples (Dockerfile.copy, healthcheck/Dockerfile) copy it from there.
[ "$entry" = /ko-app/portpatrol ] || fail "the entrypoint is $entry; the examples copy /ko-app/portpatrol"

step "unpack the linux/amd64 and linux/arm64 filesystems"
for arch in amd64 arm64; do
	mkdir -p "$work/rootfs-$arch"
	crane export --platform "linux/$arch" "$image" - | tar -x -C "$work/rootfs-$arch"
done
rootfs="$work/rootfs-amd64"
bin="$rootfs$entry"
[ -x "$bin" ] || fail "entrypoint $entry is not in the image"
size=$(stat -c %s "$bin")
image_size=$(crane manifest --platform linux/amd64 "$image" | grep -o '"size":[0-9]*' | cut -d: -f2 | awk '{s+=$1} END {print s}')
echo "binary $entry: $size bytes; compressed image (config + layers) for linux/amd64: $image_size bytes"
file "$bin" "$work/rootfs-arm64$entry"
if readelf -l "$bin" | grep -q INTERP; then fail "the binary is not static"; fi
readelf -h "$work/rootfs-arm64$entry" | grep -q AArch64 || fail "the arm64 image does not hold an arm64 binary"
for sh in bin/sh bin/bash bin/ash bin/busybox usr/bin/sh; do
	[ ! -e "$rootfs/$sh" ] || fail "the image has a shell: /$sh"
done
echo "static binary, no shell"

step "run the entrypoint as 65532 in a fresh network namespace"
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" sh -c 'echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range'
(cd "$repo" && CGO_ENABLED=0 go build -o "$work/loopback-server" ./scripts/loopback-server)
ip netns exec "$ns" "$work/loopback-server" -addr 127.0.0.1:8080 -for 2m &
server_pid=$!
out=$(ip netns exec "$ns" chroot --userspec=65532:65532 "$rootfs" "$entry" \
	--log-level=debug --timeout=20s \
	--tcp.db.address=127.0.0.1:8080 \
	--http.web.address=http://127.0.0.1:8080/health \
	--icmp.host.address=127.0.0.1 \
	-- "$entry" --version 2>"$work/run.log") || { rc=$?; cat "$work/run.log" >&2; fail "the entrypoint exited $rc"; }
cat "$work/run.log"
grep -q 'ICMP uses unprivileged datagram sockets' "$work/run.log" || fail "ICMP did not fall back to datagram sockets"
for t in db web host; do
	grep -q "msg=ready target=$t" "$work/run.log" || fail "target $t was not ready"
done
[ "$out" = "portpatrol version $VERSION" ] || fail "exec after ready printed '$out', want 'portpatrol version $VERSION'"
echo "stdout after exec: $out"

step "--probe in the image, as a HEALTHCHECK runs it: silent exit 0, or exit 1 and one line"
probe() { ip netns exec "$ns" chroot --userspec=65532:65532 "$rootfs" "$entry" --probe --timeout=4s "$@" 2>&1; }
out=$(probe --http.web.address=http://127.0.0.1:8080/health --http.web.timeout=3s) || fail "probe of a ready target: $out"
[ -z "$out" ] || fail "a healthy probe printed: $out"
rc=0
out=$(probe --tcp.gone.address=127.0.0.1:9) || rc=$?
[ "$rc" = 1 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "probe of a closed port: exit $rc: $out"
echo "unhealthy: $out"

step "ko build without VERSION: --version is what Go stamps from git"
# From a clone without tags, so that the expectation does not depend on the
# checkout: a worktree (Go stamps nothing there), a dirty tree or a tag.
clone="$work/clone"
git clone -q "$repo" "$clone"
git -C "$clone" tag -l | xargs -r git -C "$clone" tag -d >/dev/null
unversioned() { # builds linux/amd64 with VERSION unset; prints its --version
	local image root="$work/rootfs-unversioned-$1"
	image=$(cd "$clone" && env -u VERSION KO_DOCKER_REPO="$reg/portpatrol-$1" KO_DEFAULTBASEIMAGE="$reg/base:latest" \
		KO_CONFIG_PATH="$clone/ko.yaml" ko build --bare --sbom=none --platform=linux/amd64 . 2>"$work/ko-$1.log") ||
		{ cat "$work/ko-$1.log" >&2; fail "ko build without VERSION ($1)"; }
	mkdir -p "$root"
	crane export --platform linux/amd64 "$image" - | tar -x -C "$root"
	chroot --userspec=65532:65532 "$root" "$entry" --version
}
commit=$(git -C "$clone" rev-parse --short=12 HEAD)
out=$(unversioned untagged)
echo "untagged commit $commit: $out"
[[ $out =~ ^portpatrol\ version\ v0\.0\.0-[0-9]{14}-$commit$ ]] || fail "untagged: '$out', want the pseudo-version of $commit"
git -C "$clone" tag v1.9.8 # v0 or v1: a v2+ tag needs a /v2 module path
out=$(unversioned tagged)
echo "tagged v1.9.8: $out"
[ "$out" = "portpatrol version v1.9.8" ] || fail "tagged: '$out', want 'portpatrol version v1.9.8'"

printf '\nimage test passed\n'
