#!/usr/bin/env bash
# make bench, NetworkPolicy section (docs/policy.md "Measured"): TCP RR and
# CRR from pod a to pod b on one podwire node (real pods, real traffic,
# pwperf as in run.sh) with
#   none   no policy model at all
#   0      1,000 policies over 10,000 pods, none selecting b
#   100    the same with 100 of them selecting b
#   1000   all 1,000 selecting b
# in one run, rounds interleaved (the machine is shared: each figure is
# the best of BENCH_POLICY_ROUNDS rounds). Policy k allows app-(k%500) from
# any namespace on port 1000+k; policy 0 allows a (app-0) on the measured
# port. Before measuring, each model is checked to be enforced: a's
# connection to b's other port is refused by policy where b is selected.
# The agent's own apply times (from its log) are reported beside, then
# build/test/bench/policy_cost (userspace and per-packet costs) runs.
set -u
cd "$(dirname "$0")/../.."
export PW_PREFIX=${PW_PREFIX:-pwpi}
. test/e2e/lib.sh
pw_init
SECS=${BENCH_SECONDS:-5}
CPU=${BENCH_CPU:-1}
ROUNDS=${BENCH_POLICY_ROUNDS:-2}
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

# use_model none|N: the node's config with that model; waits until the
# agent has applied it and notes its "network policy:" log line.
use_model() {
	local cfg="$PW_TMP/n1/config.json" applied="/run/podwire/${PW_NODE_INST[n1]}/applied.json" before mark i
	before=$(cat "$applied" 2>/dev/null)
	mark=$(wc -l < "$PW_TMP/n1/agent.log")
	if [ "$1" = none ]; then
		jq 'del(.namespaces, .pods, .networkPolicies)' "$cfg" > "$cfg.tmp"
	else
		model "$1" > "$PW_TMP/model.json"
		jq -s '.[0] * .[1]' "$cfg" "$PW_TMP/model.json" > "$cfg.tmp"
	fi
	if cmp -s "$cfg.tmp" "$cfg"; then
		rm -f "$cfg.tmp"
		APPLY[$1]="(already the node's config)"
		return 0
	fi
	mv "$cfg.tmp" "$cfg"
	for i in $(seq 1200); do
		[ "$(cat "$applied" 2>/dev/null)" != "$before" ] && break
		sleep 0.05
	done
	[ "$(cat "$applied" 2>/dev/null)" != "$before" ] || { echo "# model $1 not applied within 60 s"; return 1; }
	APPLY[$1]=$(tail -n +"$((mark + 1))" "$PW_TMP/n1/agent.log" | grep -o 'network policy: .*' | tail -1)
}

# connects SRC_NS IP PORT: 0 when a TCP connection is made within 2 s
connects() {
	in_ns "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null
}

best() { # CURRENT NEW: the larger
	awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { print (b > a ? b : a) }'
}

measure() { # MODEL
	local m=$1 r c
	r=$(in_ns "${PW_PREFIX}-a" taskset -c "$CPU" "$PERF" rr "${PW_POD_IP[b]}" 7100 "$SECS" | awk '{print $2}')
	c=$(in_ns "${PW_PREFIX}-a" taskset -c "$CPU" "$PERF" crr "${PW_POD_IP[b]}" 7100 "$SECS" | awk '{print $2}')
	RR[$m]=$(best "${RR[$m]:-0}" "$r")
	CRR[$m]=$(best "${CRR[$m]:-0}" "$c")
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

node_up n1 192.168.1.11 10.244.1.0/24 >/dev/null || { echo "podwire node did not start"; exit 1; }
pod_add n1 a CNI_ARGS="K8S_POD_NAMESPACE=ns-0;K8S_POD_NAME=a" &&
	pod_add n1 b CNI_ARGS="K8S_POD_NAMESPACE=ns-0;K8S_POD_NAME=b" || { echo "pods not added"; exit 1; }
bg_in_ns "${PW_PREFIX}-b" taskset -c "$CPU" "$PERF" server 7100
bg_in_ns "${PW_PREFIX}-b" "$PERF" server 7102
sleep 0.3

models=(none 0 100 1000)
for round in $(seq "$ROUNDS"); do
	# Each round starts one model later: a busy spell of the machine does
	# not always fall on the same model.
	order=("${models[@]:$(( (round - 1) % 4 ))}" "${models[@]:0:$(( (round - 1) % 4 ))}")
	for m in "${order[@]}"; do
		use_model "$m" || exit 1
		if [ -z "${ENFORCED[$m]:-}" ]; then
			# Enforced as the model says: b's port 7100 open to a; 7102 only where nothing selects b.
			connects "${PW_PREFIX}-a" "${PW_POD_IP[b]}" 7100 && ok7100=Y || ok7100=N
			connects "${PW_PREFIX}-a" "${PW_POD_IP[b]}" 7102 && ok7102=Y || ok7102=N
			ENFORCED[$m]="7100:$ok7100 7102:$ok7102"
		fi
		measure "$m"
	done
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "NetworkPolicy, pod a -> pod b on one node (${SECS}s per figure, best of $ROUNDS rounds, client+server on CPU $CPU, load average $load)"
printf '%-24s %10s %8s %10s %8s  %s\n' "policies selecting b" "RR/s" "vs none" "CRR/s" "vs none" "a->b 7100 / 7102 (want Y/N where b is selected)"
for m in "${models[@]}"; do
	label=$m; [ "$m" = none ] && label="none (no model)"; [ "$m" = 0 ] && label="0 (1,000 others)"
	printf '%-24s %10s %8s %10s %8s  %s\n' "$label" "${RR[$m]}" "$(ratio "${RR[$m]}" "${RR[none]}")" \
		"${CRR[$m]}" "$(ratio "${CRR[$m]}" "${CRR[none]}")" "${ENFORCED[$m]}"
done
bad=0
for m in 100 1000; do [ "${ENFORCED[$m]}" = "7100:Y 7102:N" ] || bad=1; done
for m in none 0; do [ "${ENFORCED[$m]}" = "7100:Y 7102:Y" ] || bad=1; done
[ "$bad" = 0 ] && echo "every model enforced as expected" || echo "WARNING: a model was not enforced as expected (see the last column)"
echo
echo "the agent applying each model (its log, the last round, after the model before it):"
for m in "${models[@]}"; do echo "  $m: ${APPLY[$m]:-(no policy line)}"; done
pw_cleanup_nodes 2>/dev/null

echo
"$BUILD/test/bench/policy_cost"
