#!/usr/bin/env bash
# Installs everything podwire builds and tests with, from Debian packages (plus
# cnitool from the Go module proxy at a pinned version). Idempotent: re-running
# it on a machine that has everything does nothing but check.
set -euo pipefail

CNITOOL_VERSION=${CNITOOL_VERSION:-v1.3.0}
PKGS=(clang llvm make gcc pkg-config libelf-dev zlib1g-dev libcjson-dev
      libnl-3-dev libnl-route-3-dev libmicrohttpd-dev iproute2 iputils-ping
      netcat-openbsd socat ethtool tcpdump jq iperf3
      containernetworking-plugins libclang-rt-14-dev iptables nftables
      libcurl4-openssl-dev libyaml-dev
      strace)   # strace: test/e2e/test_ipam_faults.sh kills the plugin at each syscall
BACKPORTS_PKGS=(libbpf-dev bpftool)

# need_root, pkg_ok, apt_update_once, apt_install_missing
. "$(dirname "$0")/apt-lib.sh"

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

libbpf_ok() { pkg-config --atleast-version=1.3 libbpf 2>/dev/null; }
bpftool_ok() { command -v bpftool >/dev/null && bpftool version 2>/dev/null | grep -qE 'v7\.([5-9]|[1-9][0-9])'; }

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

# ---- vmtest (make vmtest, vmtest/run.sh; owner: vmtest) --------------------
# virtme-ng from PyPI at a pinned version, in its own venv under VMTEST_HOME
# (vmtest/run.sh puts its bin/ first on PATH: vng runs virtme-run from PATH).
# Debian packages it needs on the host, whose root the guest shares:
#   qemu-system-x86  the VM (TCG here: /dev/kvm does not work on these machines)
#   busybox-static   virtme-ng's initramfs shell
#   kmod             depmod for the unpacked kernel trees, modprobe in the guest
#   udev             the guest's udevd creates /dev/virtio-ports/virtme.*,
#                    without which vng cannot pass the script's I/O and exit status
# Kernels are not installed here: vmtest/run.sh fetches them as .deb per run
# (cached in VMTEST_HOME/kernels, see docs/vmtest.md).
VNG_VERSION=${VNG_VERSION:-1.42}
VMTEST_HOME=${VMTEST_HOME:-/opt/podwire-vmtest}
VMTEST_PKGS=(qemu-system-x86 busybox-static kmod udev)

vng_ok() {
	[ -x "$VMTEST_HOME/venv/bin/vng" ] &&
		[ "$("$VMTEST_HOME/venv/bin/python3" -c 'import importlib.metadata as m; print(m.version("virtme-ng"))' 2>/dev/null)" = "$VNG_VERSION" ]
}

vmissing=()
for p in "${VMTEST_PKGS[@]}"; do pkg_ok "$p" || vmissing+=("$p"); done
if [ ${#vmissing[@]} -gt 0 ]; then
	need_root
	export DEBIAN_FRONTEND=noninteractive
	apt_update_once
	apt-get install -y -qq --no-install-recommends "${vmissing[@]}"
fi
if ! vng_ok; then
	need_root
	# A venv whose interpreter went away (pyenv version change) is rebuilt whole.
	rm -rf "$VMTEST_HOME/venv"
	mkdir -p "$VMTEST_HOME"
	if ! python3 -m venv "$VMTEST_HOME/venv" 2>/dev/null; then
		rm -rf "$VMTEST_HOME/venv"
		apt_update_once
		apt-get install -y -qq --no-install-recommends python3-venv
		/usr/bin/python3 -m venv "$VMTEST_HOME/venv"
	fi
	"$VMTEST_HOME/venv/bin/pip" install -q --disable-pip-version-check "virtme-ng==${VNG_VERSION}"
	vng_ok || { echo "make deps: virtme-ng ${VNG_VERSION} did not install into $VMTEST_HOME/venv" >&2; exit 1; }
fi
# ---- end vmtest --------------------------------------------------------------

# ---- runtimes (test/e2e/test_runtime_*.sh; owner: runtimes) ----------------
# The container runtimes Debian ships, as podwire's CNI clients in e2e tests:
# podman (CNI backend; conmon comes with it) and containerd with runc;
# busybox-static is the root file system of the test image
# (test/runtimes/busybox-image.sh). nerdctl, containerd's client, is not in
# Debian: built from the Go module proxy at the version
# test/runtimes/nerdctl/go.mod pins, cached under /var/cache/podwire.
RUNTIME_PKGS=(podman containerd runc busybox-static)
rmissing=()
for p in "${RUNTIME_PKGS[@]}"; do pkg_ok "$p" || rmissing+=("$p"); done
if [ ${#rmissing[@]} -gt 0 ]; then
	need_root
	export DEBIAN_FRONTEND=noninteractive
	apt_update_once
	apt-get install -y -qq --no-install-recommends "${rmissing[@]}"
fi
NERDCTL=$(bash "$(dirname "$0")/../test/runtimes/nerdctl/build.sh")
# ---- end runtimes ------------------------------------------------------------

echo "deps: ok (libbpf $(pkg-config --modversion libbpf), $(bpftool version | head -1), cnitool ${CNITOOL_VERSION}, virtme-ng ${VNG_VERSION}, $("$NERDCTL" --version))"
