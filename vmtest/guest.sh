#!/usr/bin/env bash
# The vmtest guest side: run by vmtest/run.sh as the one command of a
# virtme-ng boot. The guest sees the host's root read-only over 9p (with
# virtme-ng's writable overlays on /etc, /usr, /var, /tmp, ... and a tmpfs
# /run); OUTDIR is shared read-write (--rwdir) and gets the results.
#
# usage: [VMTEST_BENCH=NAME...] guest.sh BUILD OUTDIR E2E_TEST...
#   BUILD   the build dir (absolute), holding test/bpf/test_* and the binaries
#   OUTDIR  where result.env, progs.tsv, net.txt, selftest.log go
#   E2E_TEST  test/e2e/<name>.sh to run, e.g. test_single_node
#
# Every check prints "ok - name" / "not ok - name: why" as the host suites do;
# the exit status is 0 only if every check passed.
set -u
BUILD=$1 OUT=$2
shift 2
E2E=("$@")
cd "$(dirname "$0")/.."
export BUILD PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Every agent the probe and the e2e subset start chooses its pod devices
# itself: netkit where the kernel has it (6.12), else veth (6.1). Tests that
# pass their own PW_AGENT_ARGS (test_pod_device) choose explicitly.
export PW_AGENT_ARGS="--pod-device ${VMTEST_POD_DEVICE:-auto}"

passed=0 failed=0
ok()     { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
now()    { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

# name, command...: counts the "ok -"/"not ok -" lines of a test program; a
# non-zero exit without a reported failure counts as one failure (as test/run.sh).
run_one() {
	local name=$1 t0 out rc p f; shift
	echo "=== $name"
	t0=$(now)
	out=$("$@" 2>&1); rc=$?
	printf '%s\n' "$out"
	p=$(grep -c '^ok - ' <<<"$out")
	f=$(grep -c '^not ok - ' <<<"$out")
	[ "$rc" != 0 ] && [ "$f" = 0 ] && { f=1; echo "not ok - $name exited with status $rc"; }
	passed=$((passed + p)); failed=$((failed + f))
	echo "# $name: $p passed, $f failed in $(elapsed "$t0") s"
}

# "6.12.117+deb12-amd64" -> 612 (major*100+minor), for feature expectations.
kver_num() { uname -r | awk -F. '{print $1 * 100 + $2}'; }

setup() {
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	mkdir -p /run/netns
	# Loaded on demand by the kernel too; loading them up front makes a
	# missing module a clear failure here rather than a netlink EOPNOTSUPP.
	# (sch_ingress carries clsact; on 6.12 some of these are built in.)
	local m
	for m in veth sch_ingress cls_bpf; do
		modprobe "$m" 2>/dev/null || grep -qw "$m" "/lib/modules/$(uname -r)/modules.builtin" 2>/dev/null ||
			echo "# modprobe $m failed"
	done
}

# The runner self-test: vmtest/selftest/needs_new_helper.bpf.o calls a helper
# that arrived in 6.2. It must be rejected below 6.2 and load from 6.2 on;
# anything else means this is not the kernel the matrix claims.
selftest() {
	local obj="$BUILD/vmtest/selftest/needs_new_helper.bpf.o" pin=/sys/fs/bpf/pwvm-selftest-$$ got want
	if bpftool prog load "$obj" "$pin" > "$OUT/selftest.log" 2>&1; then got=loads; else got=rejected; fi
	rm -f "$pin"
	[ "$(kver_num)" -ge 602 ] && want=loads || want=rejected
	echo "selftest=$got" >> "$OUT/result.env"
	if [ "$got" = "$want" ]; then
		ok "selftest needs_new_helper (helper #210, Linux 6.2): $got on $(uname -r), as expected"
	else
		not_ok "selftest needs_new_helper (helper #210, Linux 6.2): $got on $(uname -r), want $want"
	fi
	[ "$got" = rejected ] && sed -n '/[Ee]rror\|failed\|invalid\|unknown/{s/^/#   /;p}' "$OUT/selftest.log" | tail -n 3
}

# Attach mode and instruction counts, then the mode is checked against the
# kernel: tcx exists from 6.6 on, so 6.1 must fall back to tc (clsact + cls_bpf).
probe() {
	local attach want
	if ! bash vmtest/probe.sh "$OUT"; then
		not_ok "probe node: agent up with one pod"
		echo "attach=unknown" >> "$OUT/result.env"
		return
	fi
	attach=$(cat "$OUT/attach")
	echo "attach=$attach" >> "$OUT/result.env"
	echo "pod_attach=$(cat "$OUT/pod_attach")" >> "$OUT/result.env"
	echo "pod_device=$(cat "$OUT/pod_device")" >> "$OUT/result.env"
	[ "$(kver_num)" -ge 606 ] && want=tcx || want=tc
	if [ "$attach" = "$want" ]; then
		ok "uplink attach mode on $(uname -r) is $attach"
	else
		not_ok "uplink attach mode on $(uname -r) is $attach, want $want"
	fi
	# netkit arrived in 6.7; Debian's 6.12 builds it in (CONFIG_NETKIT=y).
	[ "$(kver_num)" -ge 607 ] && want=netkit || want=veth
	[ "${VMTEST_POD_DEVICE:-auto}" = auto ] || want=$VMTEST_POD_DEVICE
	if [ "$(cat "$OUT/pod_device")" = "$want" ]; then
		ok "pod devices on $(uname -r) with --pod-device ${VMTEST_POD_DEVICE:-auto}: $want"
	else
		not_ok "pod devices on $(uname -r) with --pod-device ${VMTEST_POD_DEVICE:-auto}: $(cat "$OUT/pod_device"), want $want"
	fi
	if [ "$attach" = tc ]; then
		grep -q 'bpf.*direct-action' "$OUT/net.txt" && ok "uplink carries a cls_bpf filter in direct-action mode" ||
			not_ok "no cls_bpf direct-action filter on the uplink (see net.txt)"
	fi
}

main() {
	local t0 t
	t0=$(now)
	: > "$OUT/result.env"
	echo "kernel=$(uname -r)" >> "$OUT/result.env"
	echo "uptime_at_start=$(cut -d' ' -f1 /proc/uptime)" >> "$OUT/result.env"
	echo "# guest: $(uname -r), $(nproc) CPUs, up $(cut -d' ' -f1 /proc/uptime) s"
	setup
	selftest
	probe
	for t in "$BUILD"/test/bpf/test_*; do
		[ -x "$t" ] && run_one "bpf/$(basename "$t")" "$t"
	done
	for t in "${E2E[@]}"; do
		run_one "e2e/$t" timeout 600 bash "test/e2e/$t.sh"
	done
	# VMTEST_BENCH (from run.sh): test/bench/<name>.sh to run after the
	# suite, output kept in OUTDIR/bench_<name>.txt (pod_device: netkit
	# against veth on this kernel; an indication only under TCG).
	for t in ${VMTEST_BENCH:-}; do
		run_one "bench/$t" timeout 900 bash -c "bash test/bench/$t.sh | tee '$OUT/bench_$t.txt'"
	done
	{
		echo "suite_s=$(elapsed "$t0")"
		echo "passed=$passed"
		echo "failed=$failed"
	} >> "$OUT/result.env"
	echo "# guest: $passed passed, $failed failed"
	[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
}

main 2>&1 | tee "$OUT/guest.log"
exit "${PIPESTATUS[0]}"
