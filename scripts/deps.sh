#!/usr/bin/env bash
# Installs everything podwire builds and tests with, from Debian packages (plus
# cnitool from the Go module proxy at a pinned version). Idempotent: re-running
# it on a machine that has everything does nothing but check.
set -euo pipefail

CNITOOL_VERSION=${CNITOOL_VERSION:-v1.3.0}
PKGS=(clang llvm make gcc pkg-config libelf-dev zlib1g-dev libcjson-dev
      libnl-3-dev libnl-route-3-dev libmicrohttpd-dev iproute2 iputils-ping
      netcat-openbsd socat ethtool tcpdump jq iperf3
      containernetworking-plugins)
BACKPORTS_PKGS=(libbpf-dev bpftool)

need_root() { [ "$(id -u)" = 0 ] || { echo "make deps: run as root (needs apt-get)" >&2; exit 1; }; }

# The backports suite lives on the same mirror as the system's own Debian source:
# read its URI from the existing sources instead of naming a mirror here.
debian_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' "$f"
	done | head -n1
	if [ -f /etc/apt/sources.list ]; then
		awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list
	fi
	return 0
}

ensure_backports() {
	grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
	local uri
	uri=$(debian_uri | head -n1)
	[ -n "$uri" ] || { echo "make deps: no Debian bookworm source found to derive backports from" >&2; exit 1; }
	printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
		"$uri" > /etc/apt/sources.list.d/podwire-backports.sources
	APT_UPDATED=0
}

pkg_ok() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

libbpf_ok() { pkg-config --atleast-version=1.3 libbpf 2>/dev/null; }
bpftool_ok() { command -v bpftool >/dev/null && bpftool version 2>/dev/null | grep -qE 'v7\.([5-9]|[1-9][0-9])'; }

APT_UPDATED=1
DID_UPDATE=
apt_update_once() { if [ "$APT_UPDATED" = 1 ] && [ -n "$DID_UPDATE" ]; then return 0; fi; apt-get update -qq; DID_UPDATE=1; APT_UPDATED=1; }

missing=()
for p in "${PKGS[@]}"; do pkg_ok "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ] || ! libbpf_ok || ! bpftool_ok; then
	need_root
	export DEBIAN_FRONTEND=noninteractive
	ensure_backports
	apt_update_once
	[ ${#missing[@]} -gt 0 ] && apt-get install -y -qq --no-install-recommends "${missing[@]}"
	if ! libbpf_ok || ! bpftool_ok; then
		apt-get install -y -qq --no-install-recommends -t bookworm-backports "${BACKPORTS_PKGS[@]}"
	fi
fi

# cnitool: the CNI project's own client, the one tests and the demo drive the plugin with.
if ! [ -x /usr/local/bin/cnitool ] || ! /usr/local/bin/cnitool 2>&1 | grep -q 'gc'; then
	command -v go >/dev/null || { need_root; apt_update_once; apt-get install -y -qq golang-go; }
	GOBIN=/usr/local/bin GOFLAGS=-mod=mod go install "github.com/containernetworking/cni/cnitool@${CNITOOL_VERSION}"
fi
echo "deps: ok (libbpf $(pkg-config --modversion libbpf), $(bpftool version | head -1), cnitool ${CNITOOL_VERSION})"
