#!/usr/bin/env bash
# NetworkPolicy on a real Kubernetes cluster with podwire (Namespaces, Pods and
# NetworkPolicies from the API): three namespaces x, y, z, each with pods a, b,
# c on node1, node2, node3 (two containers: netexec on 80 and on 81, TCP and
# UDP, named ports serve-80-tcp ... serve-81-udp). For each case -- the upstream
# NetworkPolicy e2e cases re-written as podwire's own -- every pod probes every
# pod on 80/tcp, 81/tcp, 80/udp, 81/udp (9 x 9 x 4 = 324 cells, one kubectl exec
# per source pod, all its probes in parallel, 1 s timeouts) and every cell is
# compared with the expected verdict. A pod always reaches itself (loopback, as
# upstream's matrix allows). Until the matrix matches (the three agents apply a
# change within a moment of each other), it is probed again, up to 8 times.
# Then: ipBlock with except (sources and destinations outside the pod network:
# podwire's ipBlocks do not match pod IPs, docs/policy.md), a connection that
# keeps flowing across a policy change, and nothing left in the policy maps
# once policies, pods and namespaces are deleted.
#   ROUTING=native|vxlan (default native)
#   SUBSET=1: a smaller set of cases (test_k8s_netpol_vxlan.sh runs it)
#   NETPOL_REUSE=1: run the cases on the running cluster $CLUSTER (KEEP=1 of an
#                   earlier run) and leave it running
# run-timeout: 900
set -u
cd "$(dirname "$0")/../.." || exit 1
export CLUSTER=${CLUSTER:-pwpk}
ROUTING=${ROUTING:-native}
SUBSET=${SUBSET:-0}
. test/e2e/k8s_lib.sh
k8s_init

t_start=$(date +%s)
if [ "${NETPOL_REUSE:-0}" = 1 ]; then
	trap 'pw_cleanup' EXIT   # a cluster of one's own, kept (to work on the cases)
	for ns in x y z; do k delete namespace "$ns" --wait --timeout=60s >/dev/null 2>&1; done
	k delete networkpolicy --all -A >/dev/null 2>&1
elif ! k8s_up --routing "$ROUTING"; then
	not_ok "cluster up ($ROUTING): scripts/k8s/cluster.sh up failed"
	exit 1
else
	ok "cluster up: $PWK_NODES nodes Ready (podwire, routing $ROUTING)"
fi

NSS=(x y z)
# k8s_retry N CMD...: CMD with the same stdin up to N times until it succeeds.
k8s_retry() {
	local n=$1 i in; shift
	in=$(cat)
	for i in $(seq "$n"); do
		"$@" <<<"$in" && return 0
		sleep 2
	done
	return 1
}
PODS=(a b c)
node_of_pod() { case $1 in a) echo 1 ;; b) echo 2 ;; c) echo 3 ;; esac; }

# ---- the workload ----------------------------------------------------------------
for ns in "${NSS[@]}"; do
	k8s_retry 3 k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: "$ns", labels: {ns: "$ns"}}
EOF
	for p in "${PODS[@]}"; do
		# (retried: a loaded API server can time a create out)
		k8s_retry 3 k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $p, namespace: "$ns", labels: {pod: "$p"}}
spec:
  nodeName: $(pwk_node_name "$(node_of_pod "$p")")
  terminationGracePeriodSeconds: 0
  containers:
  - name: c80
    image: $PWK_IMAGE_AGNHOST
    imagePullPolicy: Never
    args: [netexec, --http-port=80, --udp-port=80]
    ports:
    - {name: serve-80-tcp, containerPort: 80, protocol: TCP}
    - {name: serve-80-udp, containerPort: 80, protocol: UDP}
  - name: c81
    image: $PWK_IMAGE_AGNHOST
    imagePullPolicy: Never
    args: [netexec, --http-port=81, --udp-port=81]
    ports:
    - {name: serve-81-tcp, containerPort: 81, protocol: TCP}
    - {name: serve-81-udp, containerPort: 81, protocol: UDP}
EOF
	done
done
all_ready() {
	for ns in "${NSS[@]}"; do
		[ "$(k -n "$ns" get pods --no-headers 2>/dev/null | grep -c .)" = "${#PODS[@]}" ] || return 1
		k -n "$ns" wait --for=condition=Ready pod --all --timeout=5s >/dev/null 2>&1 || return 1
	done
}
if k8s_wait 180 all_ready; then
	ok "9 pods in namespaces x, y, z Ready, a/b/c on node1/node2/node3"
else
	not_ok "pods not Ready in time"
	for ns in "${NSS[@]}"; do k -n "$ns" get pods -o wide | sed 's/^/#   /'; done
	exit 1
fi
declare -A IP=()
for ns in "${NSS[@]}"; do
	for p in "${PODS[@]}"; do IP[$ns/$p]=$(k -n "$ns" get pod "$p" -o jsonpath='{.status.podIP}'); done
done
ALL=()
for ns in "${NSS[@]}"; do for p in "${PODS[@]}"; do ALL+=("$ns/$p"); done; done
ALL4="80/tcp 81/tcp 80/udp 81/udp"

# probe_line DST CELL: the shell line (for the source pod's sh) that probes one
# cell and prints "DST PORT/PROTO 0|1". TCP: a connection within 2 s; UDP:
# netexec's answer to "hostname" within 2 s.
probe_line() {
	local d=$1 c=$2 ip=${IP[$1]} port=${2%/*}
	case $c in
	*/tcp) echo "(nc -z -w 2 $ip $port >/dev/null 2>&1 && echo '$d $c 1' || echo '$d $c 0') &" ;;
	*/udp) echo "(r=\$(echo hostname | nc -u -w 2 $ip $port 2>/dev/null); [ -n \"\$r\" ] && echo '$d $c 1' || echo '$d $c 0') &" ;;
	esac
}

# probe_cells TODO OUT: probes the cells of TODO ("SRC DST CELL" lines) into
# OUT ("SRC DST CELL 0|1"): one kubectl exec per source pod, in parallel, all
# of its cells at once.
probe_cells() {
	local todo=$1 out=$2 s d c script
	for s in "${ALL[@]}"; do
		script=$(while read -r src d c; do [ "$src" = "$s" ] && probe_line "$d" "$c"; done < "$todo")
		[ -n "$script" ] || continue
		timeout 30 kubectl --kubeconfig "$PWK_DIR/pki/admin.kubeconfig" -n "${s%/*}" exec "${s#*/}" -c c80 -- \
			sh -c "$script"$'\nwait' 2>/dev/null | sed "s|^|$s |" > "$out.$(tr / _ <<<"$s")" &
	done
	wait
	cat "$out".* 2>/dev/null > "$out"
	rm -f "$out".*
}

# expected SRC DST CELL -> 1|0 by the case's function $EXPECT (loopback always 1)
expected() { if [ "$1" = "$2" ]; then echo 1; else "$EXPECT" "$@"; fi; }

# grid CELL: the matrix of one cell as upstream prints it (. allowed, X denied)
grid() {
	local cell=$1 s d line
	line="    "; for d in "${ALL[@]}"; do line+=" $d"; done; echo "#   $line"
	for s in "${ALL[@]}"; do
		line="$s"
		for d in "${ALL[@]}"; do
			case ${GOT[$s $d $cell]:-?} in 1) line+="   ." ;; 0) line+="   X" ;; *) line+="   ?" ;; esac
		done
		echo "#   $line"
	done
}

# matrix NAME EXPECT_FN CELLS: every cell of CELLS between every pair of pods,
# compared with EXPECT_FN. A cell that does not match yet is probed again
# (the agents apply a change within a moment of each other; a probe can be
# lost on a loaded machine), every second, at most 8 rounds; a cell that
# matched stays as seen.
RESULTS=()
declare -A GOT=()
matrix() {
	local name=$1 CELLS=$3 s d c v tries=0 wrong total allowed t0 secs
	local exp=$PW_TMP/expected todo=$PW_TMP/todo res=$PW_TMP/res
	EXPECT=$2
	GOT=()
	: > "$exp"
	for s in "${ALL[@]}"; do for d in "${ALL[@]}"; do for c in $CELLS; do
		echo "$s $d $c $(expected "$s" "$d" "$c")" >> "$exp"
	done; done; done
	cut -d' ' -f1-3 "$exp" > "$todo"
	total=$(wc -l < "$exp")
	t0=$(date +%s.%N)
	while :; do
		tries=$((tries + 1))
		probe_cells "$todo" "$res"
		while read -r s d c v; do GOT[$s $d $c]=$v; done < "$res"
		: > "$todo"
		while read -r s d c v; do [ "${GOT[$s $d $c]:-?}" = "$v" ] || echo "$s $d $c" >> "$todo"; done < "$exp"
		wrong=$(wc -l < "$todo")
		[ "$wrong" = 0 ] || [ "$tries" -ge 8 ] && break
		sleep 1
	done
	allowed=$(awk '$4 == 1' "$exp" | wc -l)
	secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
	RESULTS+=("$name | $CELLS | $total | $allowed | $((total - allowed)) | $wrong | $tries | ${secs}s")
	if [ "$wrong" = 0 ]; then
		ok "matrix $name: all $total cells as expected ($allowed allowed, $((total - allowed)) denied; $tries round(s), ${secs}s)"
		if [ "${PW_NETPOL_GRIDS:-0}" = 1 ]; then for c in $CELLS; do echo "# $c"; grid "$c"; done; fi
	else
		not_ok "matrix $name: $wrong of $total cells wrong after $tries rounds:"
		while read -r s d c; do
			echo "#   $s -> $d $c: want $(grep "^$s $d $c " "$exp" | cut -d' ' -f4) got ${GOT[$s $d $c]:-nothing}"
		done < <(head -20 "$todo")
		for c in $CELLS; do echo "# $c"; grid "$c"; done
	fi
}

np() { k8s_retry 3 k apply -f - >/dev/null; }   # NetworkPolicies from stdin
np_clear() { for ns in "${NSS[@]}"; do k -n "$ns" delete networkpolicy --all --wait >/dev/null 2>&1; done; }
ns_of() { echo "${1%/*}"; }
port_of() { echo "${1%/*}"; }
proto_of() { echo "${1#*/}"; }

# ---- the cases ---------------------------------------------------------------------
exp_all() { echo 1; }
matrix "no policy: everything allowed" exp_all "$ALL4"

# default deny ingress in x
np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: "x"}
spec: {podSelector: {}, policyTypes: [Ingress]}
EOF
exp_deny_in_x() { [ "$(ns_of "$2")" = x ] && echo 0 || echo 1; }
matrix "default-deny ingress in x" exp_deny_in_x "80/tcp 80/udp"
np_clear

if [ "$SUBSET" != 1 ]; then
	np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: "x"}
spec: {podSelector: {}, policyTypes: [Egress]}
EOF
	exp_deny_eg_x() { [ "$(ns_of "$1")" = x ] && echo 0 || echo 1; }
	matrix "default-deny egress in x" exp_deny_eg_x "80/tcp 80/udp"
	np_clear

	np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-b, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
EOF
	exp_pod_sel() { [ "$2" = x/a ] && { [ "$1" = x/b ] && echo 1 || echo 0; } || echo 1; }
	matrix "podSelector: x/a from pod=b of its namespace" exp_pod_sel "80/tcp 80/udp"
	np_clear

	np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-y, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}]}]
EOF
	exp_ns_sel() { [ "$2" = x/a ] && { [ "$(ns_of "$1")" = y ] && echo 1 || echo 0; } || echo 1; }
	matrix "namespaceSelector: x/a from namespace y" exp_ns_sel "80/tcp 80/udp"
	np_clear
fi

np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-y-c, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}, podSelector: {matchLabels: {pod: c}}}]}]
EOF
exp_and() { [ "$2" = x/a ] && { [ "$1" = y/c ] && echo 1 || echo 0; } || echo 1; }
matrix "namespaceSelector AND podSelector: x/a from pod=c in namespace y" exp_and "80/tcp 80/udp"
np_clear

if [ "$SUBSET" != 1 ]; then
	np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-y-or-c, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchExpressions: [{key: ns, operator: In, values: ["y"]}]}
    - podSelector: {matchExpressions: [{key: pod, operator: NotIn, values: ["a", "b"]}]}
EOF
	exp_or() { [ "$2" = x/a ] && { [ "$(ns_of "$1")" = y ] || [ "$1" = x/c ]; } && echo 1 && return
		[ "$2" = x/a ] && echo 0 || echo 1; }
	matrix "namespaceSelector OR podSelector (expressions): x/a from namespace y or x/c" exp_or "80/tcp 80/udp"
	np_clear

	# two policies add up
	np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-y-only, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-z-81, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "z"}}}], ports: [{port: 81}]}]
EOF
	exp_sum() {
		[ "$2" = x/a ] || { echo 1; return; }
		case $(ns_of "$1") in y) echo 1 ;; z) [ "$3" = 81/tcp ] && echo 1 || echo 0 ;; *) echo 0 ;; esac
	}
	matrix "two policies add up: x/a from y, and from z on 81/tcp" exp_sum "80/tcp 81/tcp"
	np_clear
fi

np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-named-81, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: serve-81-tcp}]}]
EOF
exp_named() { [ "$2" = x/a ] && { [ "$3" = 81/tcp ] && echo 1 || echo 0; } || echo 1; }
matrix "named port: x/a on serve-81-tcp only" exp_named "80/tcp 81/tcp"
np_clear

if [ "$SUBSET" != 1 ]; then
	# a named egress port resolves against the destination pods' ports
	np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-named-80-udp, namespace: "y"}
spec:
  podSelector: {matchLabels: {pod: b}}
  policyTypes: [Egress]
  egress: [{ports: [{port: serve-80-udp, protocol: UDP}]}]
EOF
	exp_named_eg() { [ "$1" = y/b ] && { [ "$3" = 80/udp ] && echo 1 || echo 0; } || echo 1; }
	matrix "named egress port: y/b to serve-80-udp only" exp_named_eg "80/tcp 80/udp 81/udp"
	np_clear

	np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-endport, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{protocol: TCP, port: 78, endPort: 80}]}]
EOF
	exp_endport() { [ "$2" = x/a ] && { [ "$3" = 80/tcp ] && echo 1 || echo 0; } || echo 1; }
	matrix "endPort: x/a on TCP 78-80" exp_endport "80/tcp 81/tcp"
	np_clear
fi

np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-udp-80, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{protocol: UDP, port: 80}]}]
EOF
exp_udp() { [ "$2" = x/a ] && { [ "$3" = 80/udp ] && echo 1 || echo 0; } || echo 1; }
matrix "UDP: x/a on 80/udp only" exp_udp "80/tcp 80/udp 81/udp"
# The agent takes policies object by object and publishes the whole model
# (kubernetes.json, at most once a second) for podwirectl to name them.
pol_of_xa() {
	k8s_node_exec 1 "$PWK_DIR/bin/podwirectl" --instance "$(pwk_node_name 1)" -o json policy x/a 2>/dev/null |
		jq -r '.[0] | [.ingressPoliced, (.selectedBy | join(","))] | map(tostring) | join(" ")'
}
for _ in $(seq 50); do [ "$(pol_of_xa)" = "true x/a-udp-80" ] && break; sleep 0.2; done
check_eq "podwirectl policy x/a on its node: ingress policed, selected by x/a-udp-80" "$(pol_of_xa)" "true x/a-udp-80"
np_clear

# a policy updated in place (upstream's "should enforce updated policy")
if [ "$SUBSET" != 1 ]; then
	upd() {
		np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-updated, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "$1"}}}], ports: [{port: $2}]}]
EOF
	}
	upd y 81
	exp_upd1() { [ "$2" = x/a ] && { [ "$(ns_of "$1")" = y ] && [ "$3" = 81/tcp ] && echo 1 || echo 0; } || echo 1; }
	matrix "updated policy, before: x/a from y on 81/tcp" exp_upd1 "80/tcp 81/tcp"
	upd z 80
	exp_upd2() { [ "$2" = x/a ] && { [ "$(ns_of "$1")" = z ] && [ "$3" = 80/tcp ] && echo 1 || echo 0; } || echo 1; }
	matrix "updated policy, after: x/a from z on 80/tcp" exp_upd2 "80/tcp 81/tcp"
	np_clear
fi

# a pod whose labels change, a namespace whose labels change
np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-clients, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {role: client}}}]
  - from: [{namespaceSelector: {matchLabels: {team: blue}}}]
EOF
exp_labels0() { [ "$2" = x/a ] && echo 0 || echo 1; }
matrix "labels: x/a from role=client pods or team=blue namespaces, none yet" exp_labels0 "80/tcp"
k -n y label pod b role=client >/dev/null
exp_labels1() { [ "$2" = x/a ] && { [ "$1" = y/b ] && echo 1 || echo 0; } || echo 1; }
matrix "labels: y/b labelled role=client" exp_labels1 "80/tcp"
if [ "$SUBSET" != 1 ]; then
	k label namespace z team=blue >/dev/null
	exp_labels2() { [ "$2" = x/a ] && { [ "$1" = y/b ] || [ "$(ns_of "$1")" = z ]; } && echo 1 && return
		[ "$2" = x/a ] && echo 0 || echo 1; }
	matrix "labels: namespace z labelled team=blue" exp_labels2 "80/tcp"
	k label namespace z team- >/dev/null
fi
k -n y label pod b role- >/dev/null
matrix "labels: labels removed again" exp_labels0 "80/tcp"
np_clear

matrix "policies deleted: everything allowed again" exp_all "80/tcp"

# ---- ipBlock with except: sources and destinations outside the pod network ------
# Ingress to x/a (node1) from the fabric (192.168.1.2, the API server's
# namespace), node2 and node3 (their host addresses): the /24 except node3.
# node1 itself is always allowed (kubelet's probes). Egress from y/a (node1)
# to the fabric's /24 except the API server's address: node2's kubelet port
# yes, the API server no, pods no (ipBlock does not match pod IPs).
if [ "$SUBSET" != 1 ]; then
	np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-ipblock, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{ipBlock: {cidr: 192.168.1.0/24, except: [$(pwk_node_ip 3)/32]}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-ipblock-egress, namespace: "y"}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 192.168.1.0/24, except: [$PWK_API_IP/32]}}]}]
EOF
	xa=${IP[x/a]}
	tcp_from_fabric() { nsenter --net="/run/netns/$PWK_FABRIC" nc -z -w 1 "$xa" 80; }
	tcp_from_node() { k8s_node_exec "$1" nc -z -w 1 "$xa" 80; }
	want_got() { # NAME WANT(0|1) CMD...: polls the verdict for up to 8 s
		local name=$1 want=$2 got i; shift 2
		for i in $(seq 8); do
			if "$@" >/dev/null 2>&1; then got=1; else got=0; fi
			[ "$got" = "$want" ] && break
			sleep 1
		done
		check_eq "$name" "$got" "$want"
	}
	want_got "ipBlock: fabric $PWK_API_IP -> x/a:80 allowed (in cidr)" 1 tcp_from_fabric
	want_got "ipBlock: node2 -> x/a:80 allowed (in cidr)" 1 tcp_from_node 2
	want_got "ipBlock: node3 -> x/a:80 denied (except)" 0 tcp_from_node 3
	want_got "ipBlock: node1 -> x/a:80 allowed (its own node)" 1 tcp_from_node 1
	ya_to() { k -n y exec a -c c80 -- nc -z -w 1 "$1" "$2"; }
	want_got "ipBlock egress: y/a -> node2 $(pwk_node_ip 2):10250 allowed (in cidr)" 1 ya_to "$(pwk_node_ip 2)" 10250
	want_got "ipBlock egress: y/a -> API server $PWK_API_IP:$PWK_API_PORT denied (except)" 0 ya_to "$PWK_API_IP" "$PWK_API_PORT"
	want_got "ipBlock egress: y/a -> pod y/b denied (pod IPs are not ipBlock addresses)" 0 ya_to "${IP[y/b]}" 80
	np_clear
fi

# ---- a connection across a policy change -------------------------------------------
# y/b holds one HTTP/1.1 connection to x/a:80 open and sends a request every
# 0.2 s for 6 s; 2 s in, x/a's policy changes from "from y" to "from z". The
# connection was allowed when it started: it keeps flowing (docs/policy.md,
# "Connections across a policy change"); a new one from y/b is refused.
np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-flow, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}]}]
EOF
xa=${IP[x/a]}
yb_new() { k -n y exec b -c c80 -- nc -z -w 1 "$xa" 80; }
k8s_wait 10 yb_new || not_ok "flow: y/b cannot reach x/a before the change"
k -n y exec b -c c80 -- sh -c "i=0; while [ \$i -lt 30 ]; do printf 'GET /hostname HTTP/1.1\r\nHost: a\r\n\r\n'; sleep 0.2; i=\$((i+1)); done | nc -w 3 $xa 80" \
	> "$PW_TMP/flow.out" 2>/dev/null &
flow_pid=$!
sleep 2
np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-flow, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "z"}}}]}]
EOF
denied_new() { ! yb_new; }
if k8s_wait 10 denied_new; then
	ok "flow: a new connection y/b -> x/a is refused after the change"
else
	not_ok "flow: new connections y/b -> x/a still allowed 10 s after the change"
fi
wait "$flow_pid"
answers=$(grep -ao 'HTTP/1.1 200' "$PW_TMP/flow.out" | wc -l)  # bodies end without a newline
check_eq "flow: the connection established before the change got all 30 answers" "$answers" 30
np_clear

# ---- nothing left ------------------------------------------------------------------
map_len() { # N MAP: entries of a pinned map on node N (pw_pol_ep: its occupied slots)
	k8s_node_exec "$1" bpftool -j map dump pinned "/sys/fs/bpf/podwire/$(pwk_node_name "$1")/$2" 2>/dev/null |
		if [ "$2" = pw_pol_ep ]; then pol_ep_count; else jq length; fi
}
maps_empty() {
	local n m
	for n in $(pwk_node_nums); do
		for m in pw_pol_ep pw_policy pw_pol_ids; do [ "$(map_len "$n" "$m")" = 0 ] || return 1; done
	done
}
if k8s_wait 15 maps_empty; then
	ok "policies deleted: pw_pol_ep, pw_policy, pw_pol_ids empty on every node"
else
	not_ok "policies deleted: policy maps not empty: $(for n in $(pwk_node_nums); do echo -n "node$n:"; for m in pw_pol_ep pw_policy pw_pol_ids; do echo -n " $m=$(map_len "$n" "$m")"; done; echo -n "; "; done)"
fi
# A policy again (selecting no pod: only identities are written), then the
# pods and namespaces go: every node drops the identities of the 9 pods.
np <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: keep, namespace: default}
spec: {podSelector: {matchLabels: {nothing: here}}}
EOF
ids_total() { local n t=0; for n in $(pwk_node_nums); do t=$((t + $(map_len "$n" pw_pol_ids))); done; echo "$t"; }
ids_at_least() { [ "$(ids_total)" -ge "$1" ]; }
k8s_wait 15 ids_at_least $((9 * PWK_NODES))
ids_with=$(ids_total)
k delete namespace "${NSS[@]}" --wait --timeout=120s >/dev/null 2>&1
ids_are() { [ "$(ids_total)" = "$1" ]; }
if k8s_wait 15 ids_are $((ids_with - 9 * PWK_NODES)); then
	ok "pods and namespaces deleted: their 9 identities gone on every node ($ids_with -> $(ids_total) entries in all)"
else
	not_ok "pods and namespaces deleted: pw_pol_ids entries $ids_with -> $(ids_total), want $((ids_with - 9 * PWK_NODES))"
fi
k -n default delete networkpolicy keep >/dev/null 2>&1
if k8s_wait 15 maps_empty; then
	ok "last policy deleted: the policy maps empty on every node"
else
	not_ok "last policy deleted: policy maps not empty"
fi

log "matrix results ($ROUTING): case | cells | total | allowed | denied | wrong | rounds | time"
for r in "${RESULTS[@]}"; do log "  $r"; done
log "test time: $(( $(date +%s) - t_start ))s"

# ---- teardown ----------------------------------------------------------------------
[ "${KEEP:-0}" = 1 ] || [ "${NETPOL_REUSE:-0}" = 1 ] && exit 0
k8s_down >/dev/null 2>&1
left=$(k8s_leftovers)
check_eq "nothing of the cluster left (netns, cgroups, mounts, pins, processes, state)" "${left:-nothing}" nothing
exit 0
