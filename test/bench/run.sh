#!/usr/bin/env bash
# make bench: pod-to-pod TCP request/response (1 byte, one connection),
# connection-per-request and single-stream throughput, for podwire and, in the
# same run, for the baselines:
#   veth    two namespaces joined by a plain veth pair (the ceiling)
#   bridge  a Linux bridge with the containernetworking-plugins bridge + host-local
# Client and server share one CPU (taskset): on a 2-core VM cross-CPU wake-ups
# cost more than any datapath and would drown the difference.
set -u
cd "$(dirname "$0")/../.."
export PW_PREFIX=pwbench
. test/e2e/lib.sh
pw_init
SECS=${BENCH_SECONDS:-5}
CPU=${BENCH_CPU:-1}
PERF="$BUILD/test/bench/pwperf"
declare -A RES

measure() { # LABEL CLIENT_NS SERVER_NS SERVER_IP
	local label=$1 cns=$2 sns=$3 sip=$4 spid ipid
	# nsenter directly, not in_ns: $! must be the server itself, not a subshell.
	nsenter --net="/run/netns/$sns" taskset -c "$CPU" "$PERF" server 7100 & spid=$!
	nsenter --net="/run/netns/$sns" taskset -c "$CPU" iperf3 -s -p 7101 -1 >/dev/null 2>&1 & ipid=$!
	sleep 0.3
	RES[$label,rr]=$(in_ns "$cns" taskset -c "$CPU" "$PERF" rr "$sip" 7100 "$SECS" | awk '{print $2}')
	RES[$label,crr]=$(in_ns "$cns" taskset -c "$CPU" "$PERF" crr "$sip" 7100 "$SECS" | awk '{print $2}')
	RES[$label,tput]=$(in_ns "$cns" taskset -c "$CPU" iperf3 -c "$sip" -p 7101 -t "$SECS" -J 2>/dev/null |
		jq '.end.sum_received.bits_per_second / 1e9 | . * 100 | round / 100')
	kill "$spid" "$ipid" 2>/dev/null; wait "$spid" "$ipid" 2>/dev/null
}

veth_baseline() {
	ip netns add "${PW_PREFIX}-va"; ip netns add "${PW_PREFIX}-vb"
	ip link add veth0 netns "${PW_PREFIX}-va" type veth peer name veth0 netns "${PW_PREFIX}-vb"
	in_ns "${PW_PREFIX}-va" ip addr add 10.250.0.1/24 dev veth0
	in_ns "${PW_PREFIX}-vb" ip addr add 10.250.0.2/24 dev veth0
	for n in va vb; do in_ns "${PW_PREFIX}-$n" ip link set veth0 up; in_ns "${PW_PREFIX}-$n" ip link set lo up; done
	measure veth "${PW_PREFIX}-va" "${PW_PREFIX}-vb" 10.250.0.2
}

bridge_baseline() {
	local ns="${PW_PREFIX}-bridge" out ipa ipb
	mkdir -p "$PW_TMP/bridge/net.d"
	cat > "$PW_TMP/bridge/net.d/10-bridge.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "bridge",
 "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
              "ipam": {"type": "host-local", "subnet": "10.251.1.0/24", "dataDir": "$PW_TMP/bridge/ipam",
                       "routes": [{"dst": "0.0.0.0/0"}]}}]}
JSON
	ip netns add "$ns"; ip netns add "${PW_PREFIX}-ba"; ip netns add "${PW_PREFIX}-bb"
	in_ns "$ns" ip link set lo up
	for p in ba bb; do
		out=$(NETCONFPATH="$PW_TMP/bridge/net.d" CNI_PATH=/usr/lib/cni in_ns "$ns" cnitool add bridge "/run/netns/${PW_PREFIX}-$p")
		eval "ip_$p=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)"
	done
	measure bridge "${PW_PREFIX}-ba" "${PW_PREFIX}-bb" "$ip_bb"
	for p in ba bb; do
		NETCONFPATH="$PW_TMP/bridge/net.d" CNI_PATH=/usr/lib/cni in_ns "$ns" cnitool del bridge "/run/netns/${PW_PREFIX}-$p" >/dev/null 2>&1
	done
}

podwire_same_node() {
	node_up n1 192.168.1.11 10.244.1.0/24 >/dev/null || { echo "podwire node did not start"; return 1; }
	pod_add n1 a && pod_add n1 b || return 1
	measure podwire "${PW_PREFIX}-a" "${PW_PREFIX}-b" "${PW_POD_IP[b]}"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

veth_baseline
bridge_baseline
podwire_same_node

echo
echo "pod-to-pod, same node (${SECS}s per figure, client+server on CPU $CPU)"
printf '%-10s %12s %8s %12s %8s %12s %8s\n' setup "RR/s" "vs veth" "CRR/s" "vs veth" "Gbit/s" "vs veth"
for s in veth bridge podwire; do
	printf '%-10s %12s %8s %12s %8s %12s %8s\n' "$s" \
		"${RES[$s,rr]:--}" "$(ratio "${RES[$s,rr]:-0}" "${RES[veth,rr]:-0}")" \
		"${RES[$s,crr]:--}" "$(ratio "${RES[$s,crr]:-0}" "${RES[veth,crr]:-0}")" \
		"${RES[$s,tput]:--}" "$(ratio "${RES[$s,tput]:-0}" "${RES[veth,tput]:-0}")"
done
