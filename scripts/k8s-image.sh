#!/usr/bin/env bash
# Packs a root filesystem directory into a single-layer container image, as a
# docker-archive tar that `ctr -n k8s.io images import` loads (there is no
# image registry on these machines: scripts/k8s-deps.sh builds every image the
# test cluster runs with this). The result is reproducible: same tree, same
# options, same bytes (files sorted, owned by root, mtime 0).
#
# Usage: scripts/k8s-image.sh OUT.tar ROOTFS_DIR --tag NAME:TAG [--tag ...]
#            [--entrypoint JSON_ARRAY] [--cmd JSON_ARRAY] [--env K=V]...
#            [--workdir DIR] [--user USER[:GROUP]] [--port N/PROTO]...
# e.g.   scripts/k8s-image.sh pause.tar rootfs/ --tag registry.k8s.io/pause:3.10.2 \
#            --entrypoint '["/pause"]' --user 65535:65535
set -euo pipefail

usage() { sed -n '/^# Usage:/,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
die() { echo "k8s-image: $*" >&2; exit 1; }

[ $# -ge 2 ] || usage
out=$1 rootfs=$2; shift 2
[ -d "$rootfs" ] || die "$rootfs: not a directory"
tags=() envs=() ports=() entrypoint=null cmd=null workdir=/ user=
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || die "$1 needs a value"
	case $1 in
	--tag) tags+=("$2") ;;
	--entrypoint) entrypoint=$2 ;;
	--cmd) cmd=$2 ;;
	--env) envs+=("$2") ;;
	--workdir) workdir=$2 ;;
	--user) user=$2 ;;
	--port) ports+=("$2") ;;
	*) die "unknown option $1" ;;
	esac
	shift 2
done
[ ${#tags[@]} -gt 0 ] || die "at least one --tag NAME:TAG is needed"
for j in "$entrypoint" "$cmd"; do
	jq -e 'type == "null" or (type == "array" and all(type == "string"))' <<<"$j" >/dev/null 2>&1 ||
		die "entrypoint/cmd must be a JSON array of strings, got: $j"
done
command -v jq >/dev/null || die "jq is needed (make deps installs it)"

work=$(mktemp -d "${TMPDIR:-/tmp}/k8s-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The layer: the tree as root-owned files with a fixed mtime, in name order.
tar -C "$rootfs" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
	--format=gnu -cf "$work/layer.tar" .
layer_sha=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mkdir "$work/$layer_sha"
mv "$work/layer.tar" "$work/$layer_sha/layer.tar"

json_list() { if [ $# -eq 0 ]; then echo '[]'; else printf '%s\n' "$@" | jq -R . | jq -s .; fi; }
env_json=$(json_list "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "${envs[@]}")
ports_json=$(json_list "${ports[@]}" | jq 'map({(.): {}}) | add // {}')

jq -n --argjson ep "$entrypoint" --argjson cmd "$cmd" --argjson env "$env_json" \
	--argjson ports "$ports_json" --arg wd "$workdir" --arg user "$user" \
	--arg diff "sha256:$layer_sha" '{
	architecture: "amd64", os: "linux", created: "1970-01-01T00:00:00Z",
	config: ({Env: $env, Entrypoint: $ep, Cmd: $cmd, WorkingDir: $wd, User: $user}
		+ (if $ports == {} then {} else {ExposedPorts: $ports} end)),
	rootfs: {type: "layers", diff_ids: [$diff]},
	history: [{created: "1970-01-01T00:00:00Z", created_by: "podwire scripts/k8s-image.sh"}]
}' >"$work/config.json"
config_sha=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$work/$config_sha.json"

json_list "${tags[@]}" | jq --arg cfg "$config_sha.json" --arg layer "$layer_sha/layer.tar" \
	'[{Config: $cfg, RepoTags: ., Layers: [$layer]}]' >"$work/manifest.json"

tar -C "$work" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
	-cf "$out.tmp" manifest.json "$config_sha.json" "$layer_sha"
mv -f "$out.tmp" "$out"
