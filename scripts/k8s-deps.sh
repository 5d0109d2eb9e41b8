#!/usr/bin/env bash
# make k8s-deps: everything the real-Kubernetes test cluster runs, cached outside
# the tree in $PW_K8S_CACHE (names in scripts/k8s-env.sh, docs/kubernetes.md):
#   debian  containerd and runc installed from Debian; etcd and etcdctl unpacked
#           from Debian's etcd-server/etcd-client into the cache (no service);
#   go      kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
#           kube-proxy (the bridge baseline's), kubectl, e2e.test, ginkgo and
#           agnhost built from the Go module proxy through the pinned scratch
#           module test/k8s/go, coredns through
#           test/k8s/coredns;
#   images  the images the cluster and its tests run, built here from those
#           binaries and Debian's as docker-archive tars (there is no registry).
# Idempotent and quick when everything is there: each Go binary is keyed on its
# module's go.mod/go.sum, each image on its recipe and inputs.
#
# Usage: scripts/k8s-deps.sh [debian|go|images]...   (default: all, in that order)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
# shellcheck source=k8s-env.sh
. "$HERE/k8s-env.sh"
APT_LIB_WHO="make k8s-deps"
# shellcheck source=apt-lib.sh
. "$HERE/apt-lib.sh"
export PATH=$PATH:/usr/local/go/bin

STAMPS=$PW_K8S_CACHE/stamps
BUILD=$PW_K8S_CACHE/build
log() { printf 'k8s-deps: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# is_cached NAME KEY: NAME was made from inputs whose key is KEY.
is_cached() { [ -e "$1" ] && [ "$(cat "$STAMPS/${1##*/}" 2>/dev/null)" = "$2" ]; }
mark_cached() { echo "$2" >"$STAMPS/${1##*/}"; }

# ---- Debian: containerd, runc, etcd --------------------------------------------
# The packages the image recipes below copy programs from (with their libraries).
IMAGE_SOURCE_PKGS=(dash busybox-static wget curl netcat-openbsd bind9-dnsutils libc-bin gcc libc6-dev jq)

# deb_extract PKG DIR: unpacks Debian's PKG into DIR without installing it
# (apt-get download + dpkg -x: no maintainer scripts, no service started).
deb_extract() {
	local pkg=$1 dir=$2 dl
	dl=$(mktemp -d "${TMPDIR:-/tmp}/k8s-deps-deb.XXXXXX")
	(cd "$dl" && apt-get download -qq "$pkg" 2>/dev/null) ||
		{ apt_update_once && (cd "$dl" && apt-get download -qq "$pkg"); } ||
		{ rm -rf "$dl"; die "apt-get download $pkg failed"; }
	dpkg -x "$dl"/"$pkg"_*.deb "$dir"
	basename "$dl"/"$pkg"_*.deb .deb | cut -d_ -f2 >"$dir/.version"
	rm -rf "$dl"
}

# install_from_deb PKG PATH_IN_PKG NAME: $PW_K8S_BIN/NAME from Debian's PKG.
install_from_deb() {
	local pkg=$1 path=$2 name=$3 dir
	[ -x "$PW_K8S_BIN/$name" ] && [ -s "$STAMPS/$name" ] && return 0
	need_root
	dir=$(mktemp -d "${TMPDIR:-/tmp}/k8s-deps-x.XXXXXX")
	deb_extract "$pkg" "$dir"
	[ -x "$dir/$path" ] || { rm -rf "$dir"; die "$pkg has no $path"; }
	install -m 0755 "$dir/$path" "$PW_K8S_BIN/$name"
	echo "$pkg $(cat "$dir/.version")" >"$STAMPS/$name"
	rm -rf "$dir"
	log "$name: from Debian $(cat "$STAMPS/$name")"
}

step_debian() {
	mkdir -p "$PW_K8S_BIN" "$STAMPS"
	apt_install_missing containerd runc "${IMAGE_SOURCE_PKGS[@]}"
	install_from_deb etcd-server usr/bin/etcd etcd
	install_from_deb etcd-client usr/bin/etcdctl etcdctl
}

# ---- Go binaries ----------------------------------------------------------------
K8S_MOD=$ROOT/test/k8s/go
COREDNS_MOD=$ROOT/test/k8s/coredns
# The release time of k8s.io/kubernetes v1.37.2 on the module proxy: a fixed
# buildDate keeps the binaries reproducible.
K8S_BUILD_DATE=2026-10-27T12:01:04Z

k8s_ldflags() {
	local pkg v ldf="-s -w"
	local major=${K8S_VERSION#v}; major=${major%%.*}
	local minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
	# Both packages, as kubernetes' hack/lib/version.sh does: kubectl's client
	# version comes from client-go's copy, everything else from component-base's.
	for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		for v in "gitVersion=$K8S_VERSION" "gitMajor=$major" "gitMinor=$minor" \
			"gitTreeState=clean" "buildDate=$K8S_BUILD_DATE"; do
			ldf+=" -X $pkg.$v"
		done
	done
	printf '%s' "$ldf"
}

# The cache key of a module's binaries: its go.mod and go.sum (pins) and how
# they are built. A changed pin rebuilds everything built from that module.
module_key() {
	{ cat "$1/go.mod" "$1/go.sum"; go version; k8s_ldflags; } | sha256sum | cut -c1-16
}

# go_build NAME KEY MODULE_DIR SUBCOMMAND PACKAGE [FLAGS...]: builds into a
# temporary file and moves it into place only when the build succeeded, so an
# interrupted run never leaves a half-written binary that later looks cached.
go_build() {
	local name=$1 key=$2 dir=$3 sub=$4 pkg=$5; shift 5
	is_cached "$PW_K8S_BIN/$name" "$key" && return 0
	local tmp=$PW_K8S_BIN/.$name.tmp t0=$SECONDS
	log "building $name (go $sub $pkg)"
	(cd "$dir" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go "$sub" -o "$tmp" "$@" "$pkg") ||
		{ rm -f "$tmp"; die "building $name failed"; }
	mv -f "$tmp" "$PW_K8S_BIN/$name"
	mark_cached "$PW_K8S_BIN/$name" "$key"
	log "built $name in $((SECONDS - t0)) s ($(du -m "$PW_K8S_BIN/$name" | cut -f1) MB)"
}

step_go() {
	command -v go >/dev/null || die "go not found (Go 1.26 is expected at /usr/local/go)"
	mkdir -p "$PW_K8S_BIN" "$STAMPS"
	local key ldf cmd
	key=$(module_key "$K8S_MOD")
	ldf=$(k8s_ldflags)
	for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
		go_build "$cmd" "$key" "$K8S_MOD" build "k8s.io/kubernetes/cmd/$cmd" -trimpath -ldflags "$ldf"
	done
	go_build agnhost "$key" "$K8S_MOD" build k8s.io/kubernetes/test/images/agnhost -trimpath -ldflags "-s -w"
	go_build ginkgo "$key" "$K8S_MOD" build github.com/onsi/ginkgo/v2/ginkgo -trimpath -ldflags "-s -w"
	go_build e2e.test "$key" "$K8S_MOD" test k8s.io/kubernetes/test/e2e -c -vet=off -trimpath -ldflags "$ldf"
	key=$(module_key "$COREDNS_MOD")
	go_build coredns "$key" "$COREDNS_MOD" build github.com/coredns/coredns -trimpath -ldflags "-s -w"
}

# ---- Images ---------------------------------------------------------------------
# One recipe_<name> per entry of PW_K8S_IMAGE_TARS (names in scripts/k8s-env.sh).

# add_bin ROOTFS SRC [DEST]: a dynamically linked Debian program and every
# library ldd says it loads, at the same paths as on the host.
add_bin() {
	local rootfs=$1 src=$2 dest=${3:-$2} lib
	[ -x "$src" ] || die "$src is missing (Debian package not installed?)"
	install -D -m 0755 "$src" "$rootfs$dest"
	for lib in $(ldd "$src" 2>/dev/null | grep -o '/[^ ]*' || true); do
		[ -e "$rootfs$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
	done
}

# add_busybox ROOTFS [all]: Debian's static busybox with a link per applet where
# nothing real sits. Without "all" the shells are left out: a busybox shell runs
# its own applets whatever PATH says, so /bin/sh is dash and the real wget, nc,
# nslookup added beside win.
add_busybox() {
	local rootfs=$1 all=${2:-} applet d
	install -D -m 0755 /bin/busybox "$rootfs/bin/busybox"
	for applet in $(/bin/busybox --list-full); do
		case ${applet##*/} in sh | ash | hush) [ "$all" = all ] || continue ;; esac
		for d in bin sbin usr/bin usr/sbin; do
			[ -e "$rootfs/$d/${applet##*/}" ] && continue 2
		done
		mkdir -p "$rootfs/$(dirname "$applet")"
		ln -s /bin/busybox "$rootfs/$applet"
	done
}

# base_rootfs DIR: the files every image but pause and coredns needs.
base_rootfs() {
	local rootfs=$1
	rm -rf "$rootfs"
	mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,root,run,var/run,usr/bin,usr/sbin}
	install -d -m 1777 "$rootfs/tmp"
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
		>"$rootfs/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$rootfs/etc/group"
	printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$rootfs/etc/nsswitch.conf"
	printf '127.0.0.1\tlocalhost\n' >"$rootfs/etc/hosts"
	: >"$rootfs/etc/resolv.conf"
	: >"$rootfs/etc/hostname"
}

# The tools the network e2e specs run inside agnhost and glibc-dns-testing pods
# (sh -c loops of dig/getent/curl/wget/nc) and podwire's own tests use.
add_net_tools() {
	local rootfs=$1
	add_bin "$rootfs" /bin/dash /bin/sh
	add_bin "$rootfs" /usr/bin/curl
	add_bin "$rootfs" /usr/bin/wget # GNU wget: busybox 1.35's `wget -T` segfaults
	add_bin "$rootfs" /bin/nc.openbsd /usr/bin/nc
	add_bin "$rootfs" /usr/bin/dig
	add_bin "$rootfs" /usr/bin/nslookup
	add_bin "$rootfs" /usr/bin/host
	add_bin "$rootfs" /usr/bin/getent
	add_busybox "$rootfs"
}

recipe_pause() {
	local rootfs=$1
	mkdir -p "$rootfs"
	gcc -std=c11 -Wall -Wextra -Werror -Os -static -o "$rootfs/pause" "$ROOT/test/k8s/images/pause.c"
	strip "$rootfs/pause"
	"$HERE/k8s-image.sh" "$2" "$rootfs" --tag "$PW_K8S_PAUSE_IMAGE" --entrypoint '["/pause"]' --user 65535:65535
}

# agnhost as upstream packs it (test/images/agnhost/Dockerfile): /agnhost with
# the agnhost-2 link, /coredns, /uploads, porter's certificate, the users the
# security-context specs look for; Debian's tools instead of Alpine's.
recipe_agnhost() {
	local rootfs=$1 src
	base_rootfs "$rootfs"
	add_net_tools "$rootfs"
	install -m 0755 "$PW_K8S_BIN/agnhost" "$rootfs/agnhost"
	ln -s agnhost "$rootfs/agnhost-2"
	install -m 0755 "$PW_K8S_BIN/coredns" "$rootfs/coredns"
	mkdir -p "$rootfs/uploads"
	src=$(cd "$K8S_MOD" && go list -mod=readonly -f '{{.Dir}}' k8s.io/kubernetes/test/images/agnhost/porter)
	install -m 0644 "$src/localhost.crt" "$src/localhost.key" "$rootfs/"
	echo 'user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh' >>"$rootfs/etc/passwd"
	printf '%s\n' 'user-defined-in-image:x:1000:' 'group-defined-in-image:x:50000:user-defined-in-image' \
		>>"$rootfs/etc/group"
	"$HERE/k8s-image.sh" "$2" "$rootfs" --tag "$PW_K8S_AGNHOST_IMAGE" --tag "$PW_K8S_TEST_IMAGE" \
		--entrypoint '["/agnhost"]' --cmd '["pause"]' \
		--port 80/tcp --port 8080/tcp --port 8081/tcp --port 9376/tcp --port 5000/tcp
}

# glibc-dns-testing upstream is Debian with dnsutils: dig and glibc's getent.
recipe_glibc_dns_testing() {
	base_rootfs "$1"
	add_net_tools "$1"
	"$HERE/k8s-image.sh" "$2" "$1" --tag "$PW_K8S_GLIBC_DNS_IMAGE" --cmd '["/bin/sh"]'
}

recipe_busybox() {
	base_rootfs "$1"
	add_busybox "$1" all
	"$HERE/k8s-image.sh" "$2" "$1" --tag "$PW_K8S_BUSYBOX_IMAGE" --cmd '["sh"]'
}

# nginx from Debian's package (unpacked, not installed: no service on the host),
# serving a static page on port 80 with logs on stdout/stderr, as the upstream
# image does; its compiled-in paths (/var/log/nginx, /var/lib/nginx) exist.
recipe_nginx() {
	local rootfs=$1 deb
	base_rootfs "$rootfs"
	deb=$(mktemp -d "${TMPDIR:-/tmp}/k8s-deps-nginx.XXXXXX")
	deb_extract nginx "$deb"
	add_bin "$rootfs" "$deb/usr/sbin/nginx" /usr/sbin/nginx
	rm -rf "$deb"
	add_bin "$rootfs" /bin/dash /bin/sh
	add_busybox "$rootfs"
	mkdir -p "$rootfs"/{etc/nginx,var/log/nginx,var/lib/nginx,var/lock,usr/share/nginx/html}
	echo 'nginx:x:101:101:nginx:/nonexistent:/bin/false' >>"$rootfs/etc/passwd"
	echo 'nginx:x:101:' >>"$rootfs/etc/group"
	cat >"$rootfs/etc/nginx/nginx.conf" <<'CONF'
user nginx;
worker_processes 1;
error_log /dev/stderr notice;
pid /run/nginx.pid;
events { worker_connections 1024; }
http {
	access_log /dev/stdout;
	default_type text/html;
	server {
		listen 80;
		root /usr/share/nginx/html;
		index index.html;
	}
}
CONF
	echo '<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>' \
		>"$rootfs/usr/share/nginx/html/index.html"
	"$HERE/k8s-image.sh" "$2" "$rootfs" --tag "$PW_K8S_NGINX_IMAGE" --cmd '["nginx", "-g", "daemon off;"]' --port 80/tcp
}

# CoreDNS runs as root here: it binds :53 without an added capability.
recipe_coredns() {
	mkdir -p "$1"
	install -m 0755 "$PW_K8S_BIN/coredns" "$1/coredns"
	"$HERE/k8s-image.sh" "$2" "$1" --tag "$PW_K8S_COREDNS_IMAGE" --entrypoint '["/coredns"]' \
		--port 53/udp --port 53/tcp --port 9153/tcp
}

# What an image is made of: its recipe (this script, the packer, pause.c), the
# Go binaries' keys and the Debian packages' versions. Any change rebuilds it.
images_key() {
	{
		cat "$0" "$HERE/k8s-image.sh" "$ROOT/test/k8s/images/pause.c"
		cat "$STAMPS/agnhost" "$STAMPS/coredns"
		dpkg-query -W "${IMAGE_SOURCE_PKGS[@]}"
	} | sha256sum | cut -c1-16
}

build_image() {
	local name=$1 key=$2 tar=$PW_K8S_IMAGES/$1.tar t0=$SECONDS
	is_cached "$tar" "$key" && return 0
	"recipe_${name//-/_}" "$BUILD/rootfs-$name" "$tar.new" || { rm -rf "$BUILD/rootfs-$name" "$tar.new"; die "image $name failed"; }
	mv -f "$tar.new" "$tar"
	rm -rf "$BUILD/rootfs-$name"
	mark_cached "$tar" "$key"
	log "image $name: $(du -m "$tar" | cut -f1) MB in $((SECONDS - t0)) s"
}

step_images() {
	local name key
	for name in agnhost coredns; do
		[ -x "$PW_K8S_BIN/$name" ] || die "$PW_K8S_BIN/$name is missing: run scripts/k8s-deps.sh go first"
	done
	mkdir -p "$PW_K8S_IMAGES" "$BUILD" "$STAMPS"
	key=$(images_key)
	for name in "${PW_K8S_IMAGE_TARS[@]}"; do
		build_image "$name" "$key"
	done
}

main() {
	local steps=("$@") s t0
	[ ${#steps[@]} -gt 0 ] || steps=(debian go images)
	# One run at a time per cache: a second one waits, then finds it all built.
	mkdir -p "$PW_K8S_CACHE"
	exec 9>"$PW_K8S_CACHE/.lock"
	flock -n 9 || { log "waiting for another k8s-deps run on $PW_K8S_CACHE"; flock 9; }
	for s in "${steps[@]}"; do
		t0=$SECONDS
		case $s in
		debian | go | images) "step_$s" ;;
		*) die "unknown step '$s' (debian, go, images)" ;;
		esac
		log "$s: ok ($((SECONDS - t0)) s)"
	done
}

main "$@"
