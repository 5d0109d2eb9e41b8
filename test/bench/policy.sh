#!/usr/bin/env bash
# make bench, NetworkPolicy section (docs/policy.md "Measured"): TCP RR and
# CRR from pod a to pod b (real pods, real traffic, pwperf as in run.sh) on
# four podwire nodes side by side, one per model:
#   none   no policy model at all
#   0      1,000 policies over 10,000 pods, none selecting b
#   100    the same with 100 of them selecting b
#   1000   all 1,000 selecting b
# The machine is shared: the four are measured in turn, BENCH_POLICY_ROUNDS
# short rounds of each (rotating which goes first), so a busy spell falls
# on all of them; the table gives the median and the best round. Policy k
# allows app-(k%500) from any namespace on port 1000+k; policy 0 allows a
# (app-0) on the measured port. Each model is checked to be enforced: a's
# connection to b's other port is refused where b is selected. The agents'
# own apply times (from their logs) are reported beside, then the BPF
# time per packet on the same traffic (pod_ingress's run time from the
# kernel's BPF statistics, one more RR and CRR run per model), then
# build/test/bench/policy_cost (userspace and per-packet costs) runs.
set -u
cd "$(dirname "$0")/../.."
export PW_PREFIX=${PW_PREFIX:-pwpi}
. test/e2e/lib.sh
pw_init
SECS=${BENCH_POLICY_SECONDS:-2}
CPU=${BENCH_CPU:-1}
ROUNDS=${BENCH_POLICY_ROUNDS:-7}
PERF="$BUILD/test/bench/pwperf"
declare -A RR CRR APPLY ENFORCED

# model N: the namespaces, pods and policies of the model with N policies
# selecting b (the policy_cost model, with a and b as this node's pods).
model() {
	awk -v nsel="$1" 'BEGIN {
		printf "{\"namespaces\":["
		for (i = 0; i < 10; i++) printf "%s{\"name\":\"ns-%d\",\"labels\":{\"team\":\"t%d\"}}", i ? "," : "", i, i % 3
		printf "],\"pods\":[{\"namespace\":\"ns-0\",\"name\":\"a\",\"labels\":{\"app\":\"app-0\"}},"
		printf "{\"namespace\":\"ns-0\",\"name\":\"b\",\"labels\":{\"app\":\"measured\"}}"
		for (i = 0; i < 9998; i++)
			printf ",{\"namespace\":\"ns-%d\",\"name\":\"p%d\",\"labels\":{\"app\":\"app-%d\",\"tier\":\"x\"},\"ip\":\"10.250.%d.%d\"}",
				i % 10, i, i % 500, int(i / 250), i % 250 + 1
		printf "],\"networkPolicies\":["
		for (k = 0; k < 1000; k++) {
			port = k == 0 ? 7100 : 1000 + k
			if (k < nsel)
				printf "%s{\"metadata\":{\"namespace\":\"ns-0\",\"name\":\"sel-%d\"},\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"measured\"}},\"ingress\":[{\"from\":[{\"namespaceSelector\":{},\"podSelector\":{\"matchLabels\":{\"app\":\"app-%d\"}}}],\"ports\":[{\"port\":%d}]}]}}",
					k ? "," : "", k, k % 500, port
			else
				printf "%s{\"metadata\":{\"namespace\":\"ns-%d\",\"name\":\"bg-%d\"},\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"app-%d\"}},\"ingress\":[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"app-%d\"}}}],\"ports\":[{\"port\":%d}]}]}}",
					k ? "," : "", k % 10, k, k % 500, (k + 1) % 500, port
		}
		printf "]}\n"
	}'
}

# use_model NODE none|N: the node's config with that model; waits until
# the agent has applied it and notes its "network policy:" log line.
use_model() {
	local node=$1 m=$2 cfg="$PW_TMP/$1/config.json" applied="/run/podwire/${PW_NODE_INST[$1]}/applied.json"
	local before mark i
	before=$(cat "$applied" 2>/dev/null)
	mark=$(wc -l < "$PW_TMP/$node/agent.log")
	[ "$m" = none ] && return 0
	model "$m" > "$PW_TMP/model.json"
	jq -s '.[0] * .[1]' "$cfg" "$PW_TMP/model.json" > "$cfg.tmp" && mv "$cfg.tmp" "$cfg"
	for i in $(seq 2400); do
		[ "$(cat "$applied" 2>/dev/null)" != "$before" ] &&
			tail -n +"$((mark + 1))" "$PW_TMP/$node/agent.log" | grep -q 'network policy: ' && break
		sleep 0.05
	done
	APPLY[$m]=$(tail -n +"$((mark + 1))" "$PW_TMP/$node/agent.log" | grep -o 'network policy: .*' | tail -1)
	[ -n "${APPLY[$m]}" ] || { echo "# model $m not applied within 120 s"; return 1; }
}

# connects SRC_NS IP PORT: 0 when a TCP connection is made within 2 s
connects() {
	in_ns "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null
}

# stats VALUES...: "median best" of the values
stats() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%d %d", v[int((NR + 1) / 2)], v[NR] }'
}

measure() { # MODEL: one round of RR and CRR a -> b on that model's node
	local m=$1 i=${IDX[$1]}
	RR[$m]+=" $(in_ns "${PW_PREFIX}-a$i" taskset -c "$CPU" "$PERF" rr "${PW_POD_IP[b$i]}" 7100 "$SECS" | awk '{print $2}')"
	CRR[$m]+=" $(in_ns "${PW_PREFIX}-a$i" taskset -c "$CPU" "$PERF" crr "${PW_POD_IP[b$i]}" 7100 "$SECS" | awk '{print $2}')"
}


declare -A IDX
models=(none 0 100 1000)
i=0
for m in "${models[@]}"; do
	i=$((i + 1)); IDX[$m]=$i
	node_up "m$i" "192.168.1.2$i" "10.244.$i.0/24" >/dev/null || { echo "podwire node m$i did not start"; exit 1; }
	pod_add "m$i" "a$i" CNI_ARGS="K8S_POD_NAMESPACE=ns-0;K8S_POD_NAME=a" &&
		pod_add "m$i" "b$i" CNI_ARGS="K8S_POD_NAMESPACE=ns-0;K8S_POD_NAME=b" || { echo "pods not added"; exit 1; }
	bg_in_ns "${PW_PREFIX}-b$i" taskset -c "$CPU" "$PERF" server 7100
	bg_in_ns "${PW_PREFIX}-b$i" "$PERF" server 7102
	use_model "m$i" "$m" || exit 1
done
sleep 0.3
for m in "${models[@]}"; do
	# Enforced as the model says: b's port 7100 open to a; 7102 only where nothing selects b.
	i=${IDX[$m]}
	connects "${PW_PREFIX}-a$i" "${PW_POD_IP[b$i]}" 7100 && ok7100=Y || ok7100=N
	connects "${PW_PREFIX}-a$i" "${PW_POD_IP[b$i]}" 7102 && ok7102=Y || ok7102=N
	ENFORCED[$m]="7100:$ok7100 7102:$ok7102"
done
for round in $(seq "$ROUNDS"); do
	# Each round starts one model later: a busy spell of the machine does
	# not always fall on the same model.
	k=$(( (round - 1) % 4 ))
	for m in "${models[@]:$k}" "${models[@]:0:$k}"; do
		measure "$m"
	done
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "NetworkPolicy, pod a -> pod b, one node per model ($ROUNDS rounds of ${SECS}s per figure, median and best round, client+server on CPU $CPU, load average $load)"
printf '%-20s %9s %7s %9s %7s %9s %7s %9s %7s  %s\n' "policies selecting b" "RR/s med" "vs none" "RR best" "vs none" \
	"CRR/s med" "vs none" "CRR best" "vs none" "a->b 7100 / 7102"
declare -A MED BEST
for m in "${models[@]}"; do
	# shellcheck disable=SC2086
	read -r MED[$m,rr] BEST[$m,rr] <<<"$(stats ${RR[$m]})"
	# shellcheck disable=SC2086
	read -r MED[$m,crr] BEST[$m,crr] <<<"$(stats ${CRR[$m]})"
done
for m in "${models[@]}"; do
	label=$m; [ "$m" = none ] && label="none (no model)"; [ "$m" = 0 ] && label="0 (1,000 others)"
	printf '%-20s %9s %7s %9s %7s %9s %7s %9s %7s  %s\n' "$label" \
		"${MED[$m,rr]}" "$(pw_ratio "${MED[$m,rr]}" "${MED[none,rr]}")" \
		"${BEST[$m,rr]}" "$(pw_ratio "${BEST[$m,rr]}" "${BEST[none,rr]}")" \
		"${MED[$m,crr]}" "$(pw_ratio "${MED[$m,crr]}" "${MED[none,crr]}")" \
		"${BEST[$m,crr]}" "$(pw_ratio "${BEST[$m,crr]}" "${BEST[none,crr]}")" "${ENFORCED[$m]}"
done
for m in "${models[@]}"; do echo "  rounds $m: RR${RR[$m]} CRR${CRR[$m]}"; done
bad=0
for m in 100 1000; do [ "${ENFORCED[$m]}" = "7100:Y 7102:N" ] || bad=1; done
for m in none 0; do [ "${ENFORCED[$m]}" = "7100:Y 7102:Y" ] || bad=1; done
[ "$bad" = 0 ] && echo "every model enforced as expected" || echo "WARNING: a model was not enforced as expected (see the last column)"
# BPF time per packet on real traffic: pod_ingress's run_time_ns / run_cnt
# (every pod's program of the machine together: only the measured model's
# node has traffic meanwhile). bpf_stats_on holds BPF_ENABLE_STATS, so the
# kernel.bpf_stats_enabled sysctl is never changed.
prog_ns() { # "run_time_ns run_cnt" of every pod_ingress program
	bpftool -j prog show 2>/dev/null |
		jq -r '[.[] | select(.name == "pod_ingress")] | "\(map(.run_time_ns // 0) | add // 0) \(map(.run_cnt // 0) | add // 0)"'
}
per_packet() { # BEFORE AFTER TX: "ns/packet packets/transaction"
	awk -v b="$1" -v a="$2" -v tx="$3" 'BEGIN { split(b, x, " "); split(a, y, " "); n = y[2] - x[2]
		if (n > 0 && tx > 0) printf "%.0f %.1f", (y[1] - x[1]) / n, n / tx; else printf "- -" }'
}
declare -A PNS
STATS_SECS=${BENCH_POLICY_STATS_SECONDS:-3}
coproc STATS { exec "$BUILD/test/bench/bpf_stats_on"; }
PW_BG_PIDS+=("$STATS_PID")
if read -r -t 5 on <&"${STATS[0]}" && [ "$on" = on ]; then
	for m in "${models[@]}"; do
		i=${IDX[$m]}
		for t in rr crr; do
			s0=$(prog_ns)
			r=$(in_ns "${PW_PREFIX}-a$i" taskset -c "$CPU" "$PERF" "$t" "${PW_POD_IP[b$i]}" 7100 "$STATS_SECS" | awk '{print $2}')
			PNS[$m,$t]="$(per_packet "$s0" "$(prog_ns)" "$(( ${r:-0} * STATS_SECS ))")"
		done
	done
	echo
	echo "BPF time per packet (pod_ingress, kernel BPF statistics, one ${STATS_SECS}s RR and CRR run per model)"
	printf '%-20s %14s %9s %14s %9s\n' "policies selecting b" "RR ns/packet" "pkts/tx" "CRR ns/packet" "pkts/tx"
	for m in "${models[@]}"; do
		read -r rn rp <<<"${PNS[$m,rr]}"
		read -r cn cp <<<"${PNS[$m,crr]}"
		printf '%-20s %14s %9s %14s %9s\n' "$m" "$rn" "$rp" "$cn" "$cp"
	done
else
	echo "# BPF statistics unavailable (bpf_stats_on did not start): no BPF time per packet"
fi
kill "$STATS_PID" 2>/dev/null

echo
echo "each node's agent applying its model onto empty maps (its log):"
for m in "${models[@]}"; do echo "  $m: ${APPLY[$m]:-(no policy line)}"; done
pw_cleanup_nodes 2>/dev/null

echo
"$BUILD/test/bench/policy_cost"
