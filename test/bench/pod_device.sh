#!/usr/bin/env bash
# netkit against veth pod devices on the same kernel, same machine, same
# run: one podwired node per mode (--pod-device veth / netkit), two pods on
# it, pwperf TCP request/response (rr) and connection-per-request (crr)
# from pod a to pod b. The modes alternate for ROUNDS rounds so that drift
# of the machine hits both alike; the median of the rounds is printed.
# Needs a kernel with netkit (>= 6.7, CONFIG_NETKIT): on this project's
# machine that is the 6.12 vmtest guest (VMTEST_BENCH=pod_device make
# vmtest KERNELS=6.12). Under TCG the figures are an indication of the
# direction only, not a benchmark.
# usage: BUILD=... test/bench/pod_device.sh   (BENCH_SECONDS, BENCH_ROUNDS)
set -u
cd "$(dirname "$0")/../.."
export PW_PREFIX=pwbnk
. test/e2e/lib.sh
pw_init
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CPU=${BENCH_CPU:-1}
PERF="$BUILD/test/bench/pwperf"
declare -A VALS


# MODE NODE_IP PODCIDR: a node with pods a-MODE and b-MODE, server on b.
setup_mode() {
	local mode=$1 node="n-$1"
	PW_AGENT_ARGS="--pod-device $mode" node_up "$node" "$2" "$3" || return 1
	[ "$(jq -r .podDevice "/run/podwire/${PW_NODE_INST[$node]}/node.json")" = "$mode" ] || return 1
	pod_add "$node" "a-$mode" && pod_add "$node" "b-$mode" || return 1
	nsenter --net="/run/netns/${PW_PREFIX}-b-$mode" taskset -c "$CPU" "$PERF" server 7100 &
	PW_SERVER[$mode]=$!
	sleep 0.3
}

declare -A PW_SERVER
# Nothing to compare on a kernel without netkit (the 6.1 guest of the same
# vmtest run): said, not counted.
ip netns add "${PW_PREFIX}-probe"
if ! in_ns "${PW_PREFIX}-probe" ip link add pwbnk0 type netkit >/dev/null 2>&1; then
	ip netns del "${PW_PREFIX}-probe"
	echo "# $(uname -r) cannot create netkit devices: no netkit/veth comparison on this kernel"
	exit 0
fi
ip netns del "${PW_PREFIX}-probe"
setup_mode veth 192.168.1.11 10.244.1.0/27 || { echo "not ok - veth node with two pods"; exit 1; }
setup_mode netkit 192.168.1.12 10.244.2.0/27 || { echo "not ok - netkit node with two pods"; exit 1; }
echo "ok - a veth node and a netkit node, two pods each"

for r in $(seq "$ROUNDS"); do
	for mode in veth netkit; do
		for t in rr crr; do
			v=$(in_ns "${PW_PREFIX}-a-$mode" taskset -c "$CPU" "$PERF" "$t" "${PW_POD_IP[b-$mode]}" 7100 "$SECS" | awk '{print $2}')
			VALS[$mode,$t]+="${v:-0} "
			echo "# round $r $mode $t: ${v:-0}/s"
		done
	done
done
kill "${PW_SERVER[veth]}" "${PW_SERVER[netkit]}" 2>/dev/null
wait "${PW_SERVER[veth]}" "${PW_SERVER[netkit]}" 2>/dev/null

echo "pod devices, same node, pod a -> pod b ($(uname -r), median of $ROUNDS rounds of ${SECS} s, client and server on CPU $CPU)"
printf '%-8s %12s %12s\n' device rr/s crr/s
for mode in veth netkit; do
	printf '%-8s %12s %12s\n' "$mode" "$(pw_median <<<"${VALS[$mode,rr]}")" "$(pw_median <<<"${VALS[$mode,crr]}")"
done
for t in rr crr; do
	v=$(pw_median <<<"${VALS[veth,$t]}") n=$(pw_median <<<"${VALS[netkit,$t]}")
	awk -v v="$v" -v n="$n" -v t="$t" 'BEGIN {printf "netkit/veth %s: %.2fx\n", t, (v > 0 ? n / v : 0)}'
done
[ "$PW_FAILED" = 0 ]
