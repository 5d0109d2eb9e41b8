#!/usr/bin/env bash
# Single-stream throughput across nodes with the setups interleaved:
# bridge-x, podwire-native, flannel-vxlan and podwire-vxlan (run.sh's
# setups) are all held up at once, each under a prefix of its own (its own
# LAN, nodes and agents), and iperf3 runs BENCH_TPUT_ROUNDS rounds of
# BENCH_SECONDS round-robin over them. On this 2-core VM a 5 s iperf3 swings
# by 10-20% from one run to the next (the copies to and from user space are
# most of the work and share the memory bus with everything else), and
# run.sh measures one setup after the other; interleaved, whatever the
# machine does hits every setup alike, and the median of many rounds is
# what each ratio compares. Part of `make bench`; alone:
# bash test/bench/tput.sh
set -u
cd "$(dirname "$0")/../.."
ROUNDS=${BENCH_TPUT_ROUNDS:-7}
SECS=${BENCH_SECONDS:-5}
CPU=${BENCH_CPU:-1}
SETUPS=(bridge-x podwire-native flannel-vxlan podwire-vxlan)
DIR=$(mktemp -d /tmp/pwtput.XXXXXX)
PIDS=()
declare -A VALS

release() {
	local s
	for s in "${SETUPS[@]}"; do touch "$DIR/$s.done"; done
	[ ${#PIDS[@]} -gt 0 ] && wait "${PIDS[@]}" 2>/dev/null
	rm -rf "$DIR" "${PW_TMP:-}"   # PW_TMP: lib.sh's scratch dir, made when it is sourced
}
trap release EXIT
trap 'exit 130' INT TERM
. test/e2e/lib.sh   # pw_median, pw_ratio, pw_iperf_gbit

i=0
for s in "${SETUPS[@]}"; do
	i=$((i + 1))
	PW_PREFIX="pwbtp$i" BENCH_ONLY="$s" BENCH_HOLD="$DIR/$s" BENCH_SERVICES=0 BENCH_POLICY=0 \
		bash test/bench/run.sh >"$DIR/$s.log" 2>&1 &
	PIDS+=($!)
done
for ((t = 0; t < 600; t++)); do
	n=0
	for s in "${SETUPS[@]}"; do [ -e "$DIR/$s.ready" ] && n=$((n + 1)); done
	[ "$n" = ${#SETUPS[@]} ] && break
	sleep 0.5
done
for s in "${SETUPS[@]}"; do
	[ -e "$DIR/$s.ready" ] || { echo "tput: $s did not come up:"; tail -5 "$DIR/$s.log"; exit 1; }
done

for ((r = 0; r < ROUNDS; r++)); do
	for s in "${SETUPS[@]}"; do
		read -r cns _ sip <"$DIR/$s.ready"
		VALS[$s]+=" $(pw_iperf_gbit "$cns" "$sip" "$SECS" "$CPU")"
	done
done

med() { pw_median <<<"${VALS[$1]}"; }
echo
echo "single-stream throughput across nodes, interleaved ($ROUNDS rounds of ${SECS}s, client+server on CPU $CPU)"
printf '%-16s %8s %10s  %s\n' setup "Gbit/s" "vs native" "rounds"
for s in "${SETUPS[@]}"; do
	printf '%-16s %8s %10s  %s\n' "$s" "$(med "$s")" "$(pw_ratio "$(med "$s")" "$(med podwire-native)")" "${VALS[$s]# }"
done
echo "podwire-vxlan throughput vs podwire-native: $(pw_ratio "$(med podwire-vxlan)" "$(med podwire-native)"), vs flannel-vxlan: $(pw_ratio "$(med podwire-vxlan)" "$(med flannel-vxlan)")"
