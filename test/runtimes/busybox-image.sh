#!/usr/bin/env bash
# busybox-image.sh OUT.tar [NAME]: writes a one-layer busybox image as a
# docker-archive (manifest.json + config + layer.tar), the format both
# `podman load` and `nerdctl load` read: the runtime tests need an image and
# no registry is reachable. The root file system is Debian's busybox-static
# with a symlink per applet. Deterministic: same busybox, same archive.
set -euo pipefail
out=$1
name=${2:-localhost/pwbusybox:1}
bb=/bin/busybox
[ -x "$bb" ] && "$bb" --list | grep -x nc >/dev/null || { echo "busybox-image: $bb (busybox-static) missing or without nc" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,dev,proc,sys,etc,tmp,root,run,var}
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for a in $("$bb" --list); do
	[ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"

mkdir "$work/img"
tar -C "$root" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$work/layer.tar" .
layer=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mkdir "$work/img/$layer"
mv "$work/layer.tar" "$work/img/$layer/layer.tar"
printf '{"architecture":"%s","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
	"$(dpkg --print-architecture)" "$layer" > "$work/config.json"
config=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$work/img/$config.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$config" "$name" "$layer" \
	> "$work/img/manifest.json"
tar -C "$work/img" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$out" .
