# Sourced by vmtest/run.sh: the kernel matrix, from Debian packages only.
#
# A kernel is named by its series ("6.1", "6.12") or by an exact Debian
# package name ("linux-image-6.1.0-56-amd64"). The series is resolved through
# Debian's meta-packages, whichever is newest in the configured suites:
#   6.1  -> linux-image-amd64 (bookworm / bookworm-security, 6.1.x) -> linux-image-6.1.0-N-amd64
#   6.12 -> linux-image-6.12-amd64 (bookworm-security)                -> linux-image-6.12.N+deb12-amd64
# The .deb is fetched with `apt-get download` and unpacked with `dpkg -x` into
# $VMTEST_CACHE/<series>/<package>_<version>/ (boot/vmlinuz-*, lib/modules/*):
# nothing is installed, the host's /boot and /lib/modules are untouched.
#
# The cache must not live under /var/cache, /var/log, /var/lib/apt or
# /var/spool: virtme-ng's guest init mounts tmpfs over those, and the guest
# reads the module tree from the host path (see docs/vmtest.md).

VMTEST_CACHE=${VMTEST_CACHE:-/opt/podwire-vmtest/kernels}

vmk_log() { echo "vmtest: $*" >&2; }

# Highest version of META whose version starts with SERIES., and the exact
# image package it depends on: prints "PACKAGE VERSION".
vmk_resolve_meta() {
	local meta=$1 series=$2 ver dep
	ver=$(apt-cache madison "$meta" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' |
		grep -E "^${series//./\\.}\." | sort -V | tail -n1)
	[ -n "$ver" ] || return 1
	dep=$(apt-cache show "$meta=$ver" 2>/dev/null | awk -F': ' '/^Depends:/ {print $2; exit}' |
		tr ',' '\n' | sed 's/^ *//' | grep -E '^linux-image-[0-9]' | awk '{print $1}' | head -n1)
	[ -n "$dep" ] || return 1
	echo "$dep $ver"
}

# SPEC -> "PACKAGE VERSION" from the apt lists.
vmk_resolve() {
	local spec=$1 ver
	case $spec in
	linux-image-*)
		ver=$(apt-cache policy "$spec" 2>/dev/null | awk '/Candidate:/ {print $2}')
		[ -n "$ver" ] && [ "$ver" != "(none)" ] && echo "$spec $ver" ;;
	[0-9]*.[0-9]*)
		vmk_resolve_meta "linux-image-$spec-amd64" "$spec" ||
			vmk_resolve_meta linux-image-amd64 "$spec" ;;
	*) return 1 ;;
	esac
}

# The newest already unpacked tree of SPEC (for a machine whose apt cannot
# resolve it right now): prints its directory.
vmk_cached() {
	local d
	d=$(ls -d "$VMTEST_CACHE/$1"/*/ 2>/dev/null | sort -V | tail -n1)
	[ -n "$d" ] && [ -f "${d%/}/.complete" ] && echo "${d%/}"
}

# Fetches and unpacks SPEC if needed; prints the tree's directory. The tree
# gets modules.dep (Debian's .deb does not ship it; virtme-ng would otherwise
# run depmod on every first boot) and a .complete marker once whole.
vmk_fetch() {
	local spec=$1 pkg ver res dir deb kver tmp
	res=$(vmk_resolve "$spec") || {
		apt-get update -qq >/dev/null 2>&1
		res=$(vmk_resolve "$spec")
	} || {
		dir=$(vmk_cached "$spec") && { vmk_log "$spec: apt cannot resolve it, using cached $dir"; echo "$dir"; return 0; }
		vmk_log "$spec: no Debian package found (tried linux-image-$spec-amd64 and linux-image-amd64 $spec.*)"
		return 1
	}
	read -r pkg ver <<<"$res"
	dir="$VMTEST_CACHE/$spec/${pkg}_${ver}"
	if [ -f "$dir/.complete" ]; then echo "$dir"; return 0; fi

	vmk_log "$spec: fetching $pkg $ver"
	tmp=$(mktemp -d "$VMTEST_CACHE/.fetch.XXXXXX") || return 1
	# apt's _apt user cannot write into a root-only mktemp dir; it then warns
	# and downloads as root, which is fine: silence the warning only.
	if ! (cd "$tmp" && apt-get download -q "$pkg=$ver" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2; exit "${PIPESTATUS[0]}"); then
		rm -rf "$tmp"; vmk_log "$spec: apt-get download $pkg=$ver failed"; return 1
	fi
	deb=$(ls "$tmp"/*.deb | head -n1)
	rm -rf "$dir" && mkdir -p "$dir" && dpkg -x "$deb" "$dir" || { rm -rf "$tmp" "$dir"; return 1; }
	rm -rf "$tmp"
	kver=$(ls "$dir/lib/modules" 2>/dev/null | head -n1)
	[ -n "$kver" ] && ls "$dir/boot/vmlinuz-$kver" >/dev/null 2>&1 || {
		vmk_log "$spec: $pkg has no boot/vmlinuz-* and lib/modules/* pair"; rm -rf "$dir"; return 1; }
	depmod -a -b "$dir" "$kver" || { vmk_log "$spec: depmod failed"; rm -rf "$dir"; return 1; }
	touch "$dir/.complete"
	# Older trees of the same series are dead weight (about 0.5 GB each).
	find "$VMTEST_CACHE/$spec" -mindepth 1 -maxdepth 1 -type d ! -path "$dir" -exec rm -rf {} +
	echo "$dir"
}

# The kernel release of an unpacked tree (its only lib/modules entry).
vmk_release() { ls "$1/lib/modules" | head -n1; }
