# Sourced by scripts/deps.sh and scripts/k8s-deps.sh: the one way they check
# for and install Debian packages. Set APT_LIB_WHO to name the caller in errors.

need_root() { [ "$(id -u)" = 0 ] || { echo "${APT_LIB_WHO:-make deps}: run as root (needs apt-get)" >&2; exit 1; }; }

pkg_ok() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# apt-get update at most once per run; ensure_backports (deps.sh) sets
# APT_UPDATED=0 after adding a source so that the next call updates again.
APT_UPDATED=1
DID_UPDATE=
apt_update_once() { if [ "$APT_UPDATED" = 1 ] && [ -n "$DID_UPDATE" ]; then return 0; fi; apt-get update -qq; DID_UPDATE=1; APT_UPDATED=1; }

# apt_install_missing PKG...: installs those not installed yet, nothing if none.
apt_install_missing() {
	local p missing=()
	for p in "$@"; do pkg_ok "$p" || missing+=("$p"); done
	[ ${#missing[@]} -gt 0 ] || return 0
	need_root
	export DEBIAN_FRONTEND=noninteractive
	apt_update_once
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
