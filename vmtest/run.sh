#!/usr/bin/env bash
# The kernel matrix: boots each kernel under virtme-ng (vng) once and runs
# vmtest/guest.sh inside it (runner self-test, attach-mode probe, the BPF
# packet tests, the end-to-end subset). Prints a summary per kernel and a
# matrix table; exits non-zero if any kernel's suite fails.
#
# usage: vmtest/run.sh [KERNEL...]        (make vmtest KERNELS="6.1 6.12")
#   KERNEL       a series (6.1, 6.12) or a Debian package name; default "6.1 6.12"
# environment:
#   BUILD          build dir holding the binaries and tests (default build)
#   VMTEST_E2E     e2e tests to run in the guest (default test_single_node test_pod_device)
#   VMTEST_POD_DEVICE  --pod-device of the guest's agents (default auto: netkit on 6.12, veth on 6.1)
#   VMTEST_BENCH   test/bench scripts to run in the guest after the suite (e.g. pod_device)
#   VMTEST_HOME    where make deps put virtme-ng (default /opt/podwire-vmtest)
#   VMTEST_CACHE   kernel cache (default $VMTEST_HOME/kernels)
#   VMTEST_TIMEOUT seconds per kernel, boot included (default 900)
#   VMTEST_KVM     1 to use /dev/kvm (default 0: TCG, see kvm_works)
# Results: $BUILD/vmtest/<kernel>/{summary.txt,guest.log,console.log,...}
# and $BUILD/vmtest/summary.txt for the whole matrix. See docs/vmtest.md.
set -u
cd "$(dirname "$0")/.."
REPO=$(pwd)
BUILD=${BUILD:-build}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "vmtest: build dir ${BUILD} missing: run make first" >&2; exit 2; }
VMTEST_HOME=${VMTEST_HOME:-/opt/podwire-vmtest}
VMTEST_CACHE=${VMTEST_CACHE:-$VMTEST_HOME/kernels}
VMTEST_E2E=${VMTEST_E2E:-test_single_node test_pod_device}
VMTEST_TIMEOUT=${VMTEST_TIMEOUT:-900}
# vng runs virtme-run from PATH: the venv's bin must come first.
export PATH="$VMTEST_HOME/venv/bin:$PATH"
. vmtest/kernels.sh

kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(6.1 6.12)
[ "$(id -u)" = 0 ] || { echo "vmtest: needs root (the guest runs as the invoking user)" >&2; exit 2; }
command -v vng >/dev/null || { echo "vmtest: vng not found in $VMTEST_HOME/venv/bin: run make deps" >&2; exit 2; }

OUTROOT="$BUILD/vmtest"
mkdir -p "$OUTROOT" "$VMTEST_CACHE"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }

# KVM is opt-in: on this project's machines /dev/kvm exists and even creates
# VMs, but a guest under it never comes up, so TCG (--disable-kvm) is the default.
kvm_works() { [ "${VMTEST_KVM:-0}" = 1 ]; }

# The runner's own objects, built here and never by the product Makefile
# rules: the self-test BPF object and progstat (verified_insns per program).
build_tools() {
	local src=vmtest/selftest/needs_new_helper.bpf.c obj="$BUILD/vmtest/selftest/needs_new_helper.bpf.o"
	mkdir -p "$(dirname "$obj")"
	if ! [ "$obj" -nt "$src" ]; then
		${CLANG:-clang} -g -O2 -target bpf -Wall -Werror -I"/usr/include/$(${CC:-gcc} -print-multiarch)" \
			-c "$src" -o "$obj" || return 1
	fi
	if ! [ "$BUILD/vmtest/progstat" -nt vmtest/tools/progstat.c ]; then
		${CC:-gcc} -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $(pkg-config --cflags libbpf) \
			-o "$BUILD/vmtest/progstat" vmtest/tools/progstat.c $(pkg-config --libs libbpf) || return 1
	fi
}

VNG_ACCEL=(--disable-kvm)
kvm_works && VNG_ACCEL=()

declare -A R_STATUS R_BOOT R_SUITE R_ATTACH R_PODATTACH R_PODDEV R_INSNS R_COUNTS R_REL R_SELF
overall=0 total_passed=0 total_failed=0

# KEY from a result.env
getv() { sed -n "s/^$1=//p" "$2" | tail -n1; }

run_kernel() {
	local spec=$1 dir rel vmlinuz out t0 t1 rc wall suite boot status
	out="$OUTROOT/$spec"
	rm -rf "$out"; mkdir -p "$out"
	echo "=== vmtest $spec"
	if ! dir=$(vmk_fetch "$spec"); then
		R_STATUS[$spec]="FAIL (no kernel)"; return 1
	fi
	rel=$(vmk_release "$dir")
	vmlinuz="$dir/boot/vmlinuz-$rel"
	echo "# $spec: $(basename "$dir") ($rel) from $dir"
	# Modules: vng --run <tree>/boot/vmlinuz-R finds <tree>/lib/modules/R by
	# walking up from the image, puts the modules it needs to mount the root
	# into its initramfs, and links /lib/modules/R to that host path in the
	# guest; the guest reads the rest over the 9p root.
	t0=$(now)
	timeout -k 10 "$VMTEST_TIMEOUT" vng "${VNG_ACCEL[@]}" --force-9p --memory 2G --cpus 2 \
		--rwdir "$out" --run "$vmlinuz" -- \
		env VMTEST_BENCH="${VMTEST_BENCH:-}" VMTEST_POD_DEVICE="${VMTEST_POD_DEVICE:-auto}" bash "$REPO/vmtest/guest.sh" "$BUILD" "$out" $VMTEST_E2E \
		</dev/null > "$out/console.log" 2>&1
	rc=$?
	t1=$(now)
	wall=$(secs "$t0" "$t1")
	if [ ! -s "$out/result.env" ]; then
		echo "# $spec: the guest wrote no results (vng exit $rc); console:"
		tail -n 30 "$out/console.log" | sed 's/^/#   /'
		R_STATUS[$spec]="FAIL (guest did not run, exit $rc)"; R_BOOT[$spec]=$wall
		return 1
	fi
	# Show the guest's own log (not the console: that one also has the boot).
	sed 's/^/  /' "$out/guest.log" 2>/dev/null | grep -v '^  ok - ' || true
	suite=$(getv suite_s "$out/result.env"); suite=${suite:-0}
	boot=$(awk -v w="$wall" -v s="$suite" 'BEGIN {printf "%.1f", w - s}')
	[ "$rc" = 0 ] && status=PASS || status="FAIL (exit $rc)"
	[ "$rc" = 124 ] && status="FAIL (timeout after ${VMTEST_TIMEOUT}s)"
	if [ "$rc" != 0 ]; then
		echo "# $spec: last kernel messages (full console: $out/console.log)"
		grep -a '^\[ *[0-9.]*\]' "$out/console.log" | tail -n 15 | sed 's/^/#   /'
	fi
	R_STATUS[$spec]=$status R_BOOT[$spec]=$boot R_SUITE[$spec]=$suite R_REL[$spec]=$rel
	R_ATTACH[$spec]=$(getv attach "$out/result.env")
	R_PODATTACH[$spec]=$(getv pod_attach "$out/result.env")
	R_PODDEV[$spec]=$(getv pod_device "$out/result.env")
	R_SELF[$spec]=$(getv selftest "$out/result.env")
	R_COUNTS[$spec]="$(getv passed "$out/result.env") passed, $(getv failed "$out/result.env") failed"
	local np nf
	np=$(getv passed "$out/result.env") nf=$(getv failed "$out/result.env")
	total_passed=$((total_passed + ${np:-0})) total_failed=$((total_failed + ${nf:-0}))
	R_INSNS[$spec]=$(awk -F'\t' '{printf "%s%s=%s", (NR > 1 ? " " : ""), $1, $3}' "$out/progs.tsv" 2>/dev/null)
	{
		echo "kernel:   $spec: $(basename "$dir") (uname -r $rel)"
		echo "result:   $status"
		echo "boot:     ${boot} s (wall ${wall} s minus suite; qemu $([ ${#VNG_ACCEL[@]} = 0 ] && echo KVM || echo TCG), 2 CPUs, 2G)"
		echo "suite:    ${suite} s (measured in the guest)"
		case ${R_ATTACH[$spec]} in
		tcx) echo "attach:   tcx on the uplink (bpf_link on the tcx hook)" ;;
		tc)  echo "attach:   tc on the uplink (clsact qdisc + cls_bpf direct-action filter: no tcx on this kernel)" ;;
		*)   echo "attach:   ${R_ATTACH[$spec]} on the uplink" ;;
		esac
		echo "          ${R_PODATTACH[$spec]:-unknown} on pod devices (node.json podAttach)"
		echo "pods:     ${R_PODDEV[$spec]:-unknown} devices (--pod-device auto; node.json podDevice)"
		echo "selftest: needs_new_helper ${R_SELF[$spec]}"
		echo "checks:   ${R_COUNTS[$spec]}"
		echo "programs (name, type, verified_insns, bytes_xlated):"
		sed 's/^/  /' "$out/progs.tsv" 2>/dev/null
	} > "$out/summary.txt"
	sed 's/^/  /' "$out/summary.txt"
	[ "$rc" = 0 ]
}

t_all=$(now)
build_tools || { echo "vmtest: building the self-test object or progstat failed" >&2; exit 1; }
for k in "${kernels[@]}"; do
	run_kernel "$k" || overall=1
done

{
	echo "vmtest matrix ($(secs "$t_all" "$(now)") s total, $([ ${#VNG_ACCEL[@]} = 0 ] && echo KVM || echo TCG))"
	printf '%-6s %-24s %-6s %-7s %-6s %-6s %-7s %-9s %-22s %s\n' kernel release boot_s suite_s uplink pods podDev selftest checks result
	for k in "${kernels[@]}"; do
		printf '%-6s %-24s %-6s %-7s %-6s %-6s %-7s %-9s %-22s %s\n' "$k" "${R_REL[$k]:--}" "${R_BOOT[$k]:--}" \
			"${R_SUITE[$k]:--}" "${R_ATTACH[$k]:--}" "${R_PODATTACH[$k]:--}" "${R_PODDEV[$k]:--}" "${R_SELF[$k]:--}" "${R_COUNTS[$k]:--}" "${R_STATUS[$k]}"
	done
	echo "verified_insns per program:"
	for k in "${kernels[@]}"; do echo "  $k: ${R_INSNS[$k]:--}"; done
} > "$OUTROOT/summary.txt"
echo
cat "$OUTROOT/summary.txt"
# A kernel that never ran its suite counts as one failure.
for k in "${kernels[@]}"; do
	[ -n "${R_SUITE[$k]:-}" ] || total_failed=$((total_failed + 1))
done
echo "vmtest: $total_passed passed, $total_failed failed"
exit "$overall"
