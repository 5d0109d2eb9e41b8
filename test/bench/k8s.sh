#!/usr/bin/env bash
# make bench (and make bench-k8s), Kubernetes (issue 10): on real clusters of
# scripts/k8s/cluster.sh, in one run:
#   1. EndpointSlice change -> datapath: a selector-less Service with a
#      hand-managed EndpointSlice (managed-by is not the controller's); its
#      port is PATCHed BENCH_K8S_CHANGES times (default 1,000), and after
#      each PATCH test/bench/k8s_svc polls node1's pinned maps (every 20 us)
#      until the service's backend has the new port. p50/p99 from the API
#      server's answer (it has stored the change) and from sending the PATCH.
#   2. BENCH_K8S_SERVICES (10,000) selector-less Services, each with an
#      EndpointSlice of BENCH_K8S_ENDPOINTS (2) endpoints, created through the
#      API (8 keep-alive connections); the time from the API's answer to the
#      last create until node1's pw_services holds every ClusterIP with all
#      its backends; podwired's RSS (and peak) after that. Then step 1 again
#      with all of them loaded (BENCH_K8S_CHANGES_LOADED, default 1,000).
#   3. pod start-up: `kubectl apply` of BENCH_K8S_PODS (30) pods (agnhost
#      pause) until all are Running, BENCH_K8S_POD_ROUNDS (2) rounds, on the
#      podwire cluster and on the same cluster with Debian's bridge plugin and
#      kube-proxy (iptables mode) - the baseline - both up, rounds in turn.
# Both clusters have BENCH_K8S_NODES (2) nodes and unique names
# (BENCH_K8S_CLUSTER pwbn, BENCH_K8S_BRIDGE_CLUSTER pwbb); both go, pass or
# fail. Selector-less Services with hand-made slices, rather than pods or
# kwok's fake nodes: the datapath sees the same EndpointSlices either way, and
# 20,000 endpoints are created in seconds on 2 cores.
#
# BENCH_K8S=0 (from run.sh) skips all of it; BENCH_K8S_BRIDGE=0 skips the
# baseline cluster.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export BUILD
TOOL=$BUILD/test/bench/k8s_svc
CHANGES=${BENCH_K8S_CHANGES:-1000}
CHANGES_LOADED=${BENCH_K8S_CHANGES_LOADED:-1000}
SERVICES=${BENCH_K8S_SERVICES:-10000}
EPS=${BENCH_K8S_ENDPOINTS:-2}
PODS=${BENCH_K8S_PODS:-30}
ROUNDS=${BENCH_K8S_POD_ROUNDS:-2}
NODES=${BENCH_K8S_NODES:-2}
# The kube-proxy baseline of 1 and 2 (its iptables read with iptables-save, a
# few ms per look; every change waits for its 1 s minimum sync period).
BASE_CHANGES=${BENCH_K8S_BASE_CHANGES:-100}
BASE_SERVICES=${BENCH_K8S_BASE_SERVICES:-$SERVICES}
PW_CLUSTER=${BENCH_K8S_CLUSTER:-pwbn}
BR_CLUSTER=${BENCH_K8S_BRIDGE_CLUSTER:-pwbb}
OUT=$(mktemp -d /tmp/pwbench-k8s.XXXXXX)

say() { echo "# [k8s bench $(date +%H:%M:%S)] $*" >&2; }

cluster() { # NAME ARGS...: scripts/k8s/cluster.sh for cluster NAME
	local name=$1; shift
	CLUSTER=$name PWK_NODES=$NODES bash scripts/k8s/cluster.sh "$@"
}

cleanup() {
	cluster "$PW_CLUSTER" down >/dev/null 2>&1
	cluster "$BR_CLUSTER" down >/dev/null 2>&1
	rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- inside one cluster (CLUSTER set, scripts/k8s/env.sh sourced) ----------

k() { pwk_kubectl "$@"; }

# The pods of a round: agnhost pause, no probes, left to the scheduler.
pods_manifest() {
	local i
	for i in $(seq 1 "$PODS"); do
		cat <<EOF
---
apiVersion: v1
kind: Pod
metadata: {name: p$i, namespace: bench-pods}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {name: c, image: $PWK_IMAGE_AGNHOST, imagePullPolicy: Never, args: [pause]}
EOF
	done
}

# pod_round SETUP: apply the pods, wait for all Running (seconds, wall clock
# of apply + wait, appended to $OUT/SETUP.pods), delete them.
pod_round() {
	local setup=$1 t0 t1
	if ! k get namespace bench-pods >/dev/null 2>&1; then
		k create namespace bench-pods >/dev/null || return 1
		# The namespace's default service account must exist before pods are admitted.
		for _ in $(seq 100); do k -n bench-pods get serviceaccount default >/dev/null 2>&1 && break; sleep 0.1; done
	fi
	pods_manifest > "$OUT/pods-$setup.yaml"
	t0=$(date +%s.%N)
	k apply -f "$OUT/pods-$setup.yaml" >/dev/null || return 1
	# (kubectl wait logs its watches' cancellation as errors: kept aside)
	if ! k -n bench-pods wait --for=jsonpath='{.status.phase}'=Running pod --all --timeout=300s \
		>/dev/null 2>"$OUT/wait.log"; then
		cat "$OUT/wait.log" >&2
		k -n bench-pods get pods -o wide >&2
		return 1
	fi
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }' >> "$OUT/$setup.pods"
	say "$setup: $PODS pods Running in $(tail -1 "$OUT/$setup.pods") s (load $(cut -d' ' -f1 /proc/loadavg))"
	k -n bench-pods delete pods --all --wait=true --timeout=300s >/dev/null
}

api_arg() {
	echo "https://127.0.0.1:$(cat "$PWK_DIR/api-port"),$PKI/ca.crt,$PKI/admin.crt,$PKI/admin.key"
}

# k8s_svc in node1's mount namespace (its bpffs) and the root network
# namespace (the API relay).
svc_tool() { nsenter -t "$(pwk_holder 1)" -m "$TOOL" "$1" "$(api_arg)" "/sys/fs/bpf/podwire/$(pwk_node_name 1)" "${@:2}"; }

# rss NAME: node1's podwired RSS and peak RSS in MiB, into $OUT.
podwired_rss() {
	local pid; pid=$(cat "$(pwk_node_dir 1)/pid/podwired")
	awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {printf "%.1f %.1f\n", r / 1024, h / 1024}' \
		"/proc/$pid/status" > "$OUT/$1.rss"
	say "podwired RSS $(cut -d' ' -f1 "$OUT/$1.rss") MiB, peak $(cut -d' ' -f2 "$OUT/$1.rss") MiB ($1)"
}

podwire_up() {
	say "podwire cluster $CLUSTER: up ($NODES nodes)"
	cluster "$CLUSTER" up >"$OUT/pw-up.log" 2>&1 || { tail -20 "$OUT/pw-up.log" >&2; return 1; }
}

podwire_measure() {
	k create namespace bench-svc >/dev/null || return 1
	podwired_rss idle
	say "slice changes: $CHANGES"
	svc_tool latency bench-svc "$CHANGES" | tee "$OUT/lat.txt" >&2 || return 1
	say "bulk: $SERVICES services with $EPS endpoints each"
	svc_tool bulk bench-svc "$SERVICES" "$EPS" 8 | tee "$OUT/bulk.txt" >&2 || return 1
	podwired_rss loaded
	if [ "$CHANGES_LOADED" -gt 0 ]; then
		k -n bench-svc delete service lat >/dev/null && k -n bench-svc delete endpointslice lat-1 >/dev/null
		say "slice changes with $SERVICES services loaded: $CHANGES_LOADED"
		svc_tool latency bench-svc "$CHANGES_LOADED" | tee "$OUT/lat-loaded.txt" >&2 || return 1
		podwired_rss after
	fi
}

# k8s_svc against kube-proxy: in node1's namespaces (its iptables), the API
# server straight on the fabric (no relay reaches into a node's netns).
kp_tool() {
	nsenter -t "$(pwk_holder 1)" -m -n "$TOOL" "$1" \
		"https://$PWK_API_IP:$PWK_API_PORT,$PKI/ca.crt,$PKI/admin.crt,$PKI/admin.key" iptables "${@:2}"
}

kube_proxy_rss() {
	local pid; pid=$(cat "$(pwk_node_dir 1)/pid/kube-proxy")
	awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {printf "%.1f %.1f\n", r / 1024, h / 1024}' \
		"/proc/$pid/status" > "$OUT/kp.rss"
	say "kube-proxy RSS $(cut -d' ' -f1 "$OUT/kp.rss") MiB, peak $(cut -d' ' -f2 "$OUT/kp.rss") MiB"
}

bridge_up() {
	say "bridge + kube-proxy cluster $CLUSTER: up ($NODES nodes)"
	cluster "$CLUSTER" up --cni bridge >"$OUT/br-up.log" 2>&1 || { tail -20 "$OUT/br-up.log" >&2; return 1; }
}

bridge_measure() {
	if [ "$BASE_CHANGES" -gt 0 ] || [ "$BASE_SERVICES" -gt 0 ]; then
		k create namespace bench-svc >/dev/null || return 1
	fi
	if [ "$BASE_CHANGES" -gt 0 ]; then
		say "kube-proxy: slice changes: $BASE_CHANGES"
		kp_tool latency bench-svc "$BASE_CHANGES" | tee "$OUT/kp-lat.txt" >&2 || return 1
	fi
	if [ "$BASE_SERVICES" -gt 0 ]; then
		say "kube-proxy: bulk: $BASE_SERVICES services with $EPS endpoints each"
		kp_tool bulk bench-svc "$BASE_SERVICES" "$EPS" 8 | tee "$OUT/kp-bulk.txt" >&2 || return 1
		kube_proxy_rss
	fi
	# What kube-proxy changed outside its rules (nothing, when configured as node.sh does).
	grep -h "Changed sysctl\|modprobe" "$(pwk_node_dir 1)/log/kube-proxy.log" >&2
	return 0
}

# in_cluster NAME CMD...: CMD in a subshell set up for cluster NAME.
in_cluster() {
	(
		export CLUSTER=$1 PWK_NODES=$NODES
		. scripts/k8s/env.sh
		. scripts/k8s/pki.sh
		"${@:2}"
	)
}

# ---- the table ----------------------------------------------------------------

line_of() { grep -h "^$2" "$1" 2>/dev/null; }
pcts() { # FILE KIND: "p50 / p99" of the from_api (or from_patch) line
	line_of "$1" "$2" | sed -n 's/.*p50=\([0-9.]*\).*p99=\([0-9.]*\).*/\1 \/ \2/p'
}
bulk_of() { # FILE KEY
	sed -n "s/^$2 \([0-9.]*\).*/\1/p" "$1" 2>/dev/null
}
row() { printf '%-50s %15s %15s %9s\n' "$@"; }

table() {
	local pw br
	printf '\n%s\n' "Kubernetes: $NODES-node clusters on this machine (2 cores, shared with other jobs: noisy)"
	row measure podwire "kube-proxy" target
	row "slice change -> datapath p50 / p99, ms" "$(pcts "$OUT/lat.txt" from_api)" \
		"$(pcts "$OUT/kp-lat.txt" from_api)" "p99 < 50"
	row "  counted from sending the PATCH" "$(pcts "$OUT/lat.txt" from_patch)" "$(pcts "$OUT/kp-lat.txt" from_patch)" ""
	row "  with $SERVICES services loaded" "$(pcts "$OUT/lat-loaded.txt" from_api)" "" "p99 < 50"
	row "$SERVICES services + $((SERVICES * EPS)) endpoints: API create, s" \
		"$(bulk_of "$OUT/bulk.txt" api_create_s)" "$(bulk_of "$OUT/kp-bulk.txt" api_create_s)" ""
	row "  datapath holds all, ms after the API does" "$(bulk_of "$OUT/bulk.txt" datapath_after_api_ms)" \
		"$(bulk_of "$OUT/kp-bulk.txt" datapath_after_api_ms)" "< 5000"
	row "agent RSS idle / loaded / peak, MiB" \
		"$(cut -d' ' -f1 "$OUT/idle.rss" 2>/dev/null) / $(cut -d' ' -f1 "$OUT/loaded.rss" 2>/dev/null) / $(cat "$OUT/idle.rss" "$OUT/loaded.rss" "$OUT/after.rss" 2>/dev/null | grep -v '^$' | cut -d' ' -f2 | sort -n | tail -1)" \
		"$(cut -d' ' -f1,2 "$OUT/kp.rss" 2>/dev/null | sed 's| | / peak |')" "< 50"
	pw=$(paste -sd/ "$OUT/podwire.pods" 2>/dev/null) br=$(paste -sd/ "$OUT/bridge.pods" 2>/dev/null)
	row "$PODS pods apply -> all Running, s (per round)" "${pw:--}" "${br:--}" "<= base"
	echo "(kube-proxy: the bridge cluster - Debian's bridge plugin + kube-proxy iptables mode - same shape;"
	echo " its slice changes: $BASE_CHANGES of them, each waits for its 1 s minimum sync period)"
}

[ -x "$TOOL" ] || { echo "no $TOOL: run make" >&2; exit 1; }
rc=0 bridge=${BENCH_K8S_BRIDGE:-1}
# Both clusters up, their pod rounds taken in turn (whichever goes first
# alternates): the machine's load, which other jobs change by the minute,
# weighs on both alike. Then each cluster's service figures, alone.
in_cluster "$PW_CLUSTER" podwire_up || rc=1
if [ "$bridge" != 0 ] && ! in_cluster "$BR_CLUSTER" bridge_up; then
	echo "bridge cluster did not come up" >&2
	rc=1 bridge=0
fi
if [ $rc = 0 ]; then
	for r in $(seq 1 "$ROUNDS"); do
		order="$PW_CLUSTER:podwire $BR_CLUSTER:bridge"
		[ $((r % 2)) = 0 ] && order="$BR_CLUSTER:bridge $PW_CLUSTER:podwire"
		for o in $order; do
			[ "${o#*:}" = bridge ] && [ "$bridge" = 0 ] && continue
			in_cluster "${o%%:*}" pod_round "${o#*:}" || { echo "${o#*:}: pod round $r failed" >&2; rc=1; }
		done
	done
	if [ "$bridge" != 0 ]; then
		in_cluster "$BR_CLUSTER" bridge_measure || { echo "kube-proxy figures failed" >&2; rc=1; }
	fi
fi
cluster "$BR_CLUSTER" down >/dev/null 2>&1
if [ $rc = 0 ] || [ -s "$OUT/podwire.pods" ]; then
	in_cluster "$PW_CLUSTER" podwire_measure || { echo "podwire figures failed" >&2; rc=1; }
fi
cluster "$PW_CLUSTER" down >/dev/null 2>&1
table
exit $rc
