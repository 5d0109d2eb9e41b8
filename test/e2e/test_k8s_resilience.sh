#!/usr/bin/env bash
# podwire on a real Kubernetes cluster (scripts/k8s/cluster.sh) when things
# break and change:
#  1. podwired on node2 restarted (SIGTERM) and killed (SIGKILL) while pods
#     ping across nodes through node2's pods every 10 ms and two TCP
#     connections stay open, one from a node2 pod through a ClusterIP (socket
#     LB: addressed to the backend since connect(), no conntrack entry) and
#     one from the fabric host through node2's NodePort (per-packet, node2's
#     conntrack): no ping lost, both connections survive; Services
#     created, re-ported and deleted while the agent was down are right in
#     node2's maps once it is back;
#  2. the API server killed, changes made on it while the agents cannot reach
#     it, etcd compacted at the current revision, the API server started
#     again: the agents' re-watch gets 410 Gone and they relist (their logs
#     say so), every node converges, and the maps did not change at all while
#     the API server was away (sampled);
#  3. a node added and a node deleted: the peers of every other node follow,
#     and a pod on the new node is reached from another node;
#  4. pods deleted: their endpoints, veths and IP reservations go; a node's
#     kubelet, containerd, shims and pods die and its pods' netns vanish (a
#     reboot): containerd's DEL without a netns releases the old pods'
#     endpoints and reservations, and the new pods work.
#   ROUTING=native|vxlan (default native)
set -u
cd "$(dirname "$0")/../.." || exit 1
export CLUSTER=${CLUSTER:-pwkt}
ROUTING=${ROUTING:-native}
. test/e2e/k8s_lib.sh
k8s_init
cl() { bash "$K8S_CLUSTER_SH" "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

# ---- helpers: node N's datapath through podwirectl --------------------------
pwctl() { local n=$1; shift; k8s_node_exec "$n" "$PWK_DIR/bin/podwirectl" --instance "$(pwk_node_name "$n")" -o json "$@"; }
# svc_lines N: "VIP:PORT/PROTO ACTIVE_BACKENDS" per service in node N's maps
svc_lines() {
	pwctl "$1" services | jq -r '.[] | "\(.vip):\(.port)/\(.protocol) \([.backends[] | select(.state == "active")] | length)"' | sort
}
peer_lines() { pwctl "$1" peers | jq -r '.[] | "\(.podCIDR) \(.nodeIP)"' | sort; }
ep_ips() { pwctl "$1" endpoints | jq -r '.[].ip' | sort; }
# ipam_ips N: the IPs node N's IPAM holds a reservation for
ipam_ips() {
	find "$(pwk_node_dir "$1")/podwire-run/$(pwk_node_name "$1")/ipam/" -maxdepth 1 -regex '.*/[0-9.]+' -printf '%f\n' 2>/dev/null | sort
}
# veths N: the host-side pod veths in node N's namespace
veths() { ip -n "$(pwk_node_name "$1")" -o link show type veth | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -vx eth0 | sort; }
svc_ip() { kn get svc "$1" -o jsonpath='{.spec.clusterIP}'; }
has_svc() { grep -Fqx "$2 $3" <(svc_lines "$1"); }            # N FRONTEND ACTIVE_BACKENDS
lacks_frontend() { ! svc_lines "$1" | grep -q "^$2 "; }       # N VIP:PORT/PROTO
lacks_vip() { ! svc_lines "$1" | grep -q "^$2:"; }            # N VIP
svc_yaml() { # NAME PORT [SELECTOR [TYPE]]: a Service (ClusterIP by default) to the netexec pods' 8080
	printf -- '---\napiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec:\n  type: %s\n  selector: {%s}\n  ports: [{port: %s, targetPort: 8080, protocol: TCP}]\n' \
		"$1" "${4:-ClusterIP}" "${3:-app: netexec}" "$2"
}
repeat_until() { # TIMEOUT_S CMD...: polls CMD; prints the seconds it took
	local t0; t0=$(now)
	k8s_wait "$@" || return 1
	since "$t0"
}

# ---- helpers: inside pods (their netns, entered from their node) -----------
pod_netns() { # N IP: the name of the pod's network namespace on node N
	k8s_node_exec "$1" bash -c 'for f in /run/netns/*; do
		ip -n "${f##*/}" -4 -o addr show 2>/dev/null | grep -q " inet $0/" && { echo "${f##*/}"; exit 0; }
	done; exit 1' "$2"
}
in_pod() { local n=$1 ns=$2; shift 2; k8s_node_exec "$n" nsenter --net="/run/netns/$ns" "$@"; }
# dial N POD_IP HOST PORT: the hostname of whoever answered HOST:PORT over HTTP,
# asked of netexec POD_IP (on node N)
dial() {
	k8s_node_exec "$1" curl -s -m 10 "http://$2:8080/dial?request=hostname&protocol=http&host=$3&port=$4&tries=1" |
		jq -r '.responses[0] // empty' 2>/dev/null
}

declare -A PING_JOB=()
ping_start() { # NAME N NETNS DST: pings DST every 10 ms from the pod netns until ping_check
	in_pod "$2" "$3" sh -c 'echo $$ > "$0.pid"; exec ping -D -i 0.01 -W 2 "$1"' "$PW_TMP/ping-$1" "$4" > "$PW_TMP/ping-$1" 2>&1 &
	PING_JOB[$1]=$!
}
# ping_check NAME WHAT: stops the ping (SIGINT) and checks that every echo
# came back (but the last one, which may have been in flight)
ping_check() {
	local name=$1 what=$2 sent recv missing
	kill -INT "$(cat "$PW_TMP/ping-$name.pid")" 2>/dev/null
	wait "${PING_JOB[$name]}"
	sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$PW_TMP/ping-$name")
	recv=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$PW_TMP/ping-$name")
	missing=$(awk -v n="${sent:-0}" 'match($0, /icmp_seq=[0-9]+ /) { got[substr($0, RSTART + 9, RLENGTH - 10)] = 1 }
		END { for (i = 1; i < n; i++) if (!(i in got)) { c++; if (c <= 5) l = l " " i } print c + 0 (c ? ":" l : "") }' "$PW_TMP/ping-$name")
	if [ -n "$sent" ] && [ "$sent" -gt 100 ] && [ "$missing" = 0 ]; then
		ok "$what: $recv of $sent pings (every 10 ms) answered${recv:+$([ "$recv" != "$sent" ] && echo " (the last in flight when stopped)")}"
	else
		not_ok "$what: ${recv:-?} of ${sent:-?} pings answered, missing icmp_seq ${missing}: $(tail -2 "$PW_TMP/ping-$name" | tr '\n' ' ')"
	fi
}

# ---- up: 3 nodes, 2 netexec pods per node ------------------------------------
T0=$(now)
if ! k8s_up --routing "$ROUTING" 2> "$PW_TMP/up.log"; then
	not_ok "cluster up ($ROUTING): $(tail -3 "$PW_TMP/up.log" | tr '\n' ' ')"
	exit 1
fi
k8s_ns_create
k8s_netexec_deployment netexec $((2 * PWK_NODES))
k8s_rollout netexec 180 || { not_ok "Deployment netexec did not become available"; kn get pods -o wide | sed 's/^/#   /'; exit 1; }
mapfile -t pods < <(k8s_pods app=netexec)
declare -A POD_ON=() IP_ON=()
for p in "${pods[@]}"; do
	read -r name ip node <<<"$p"
	n=$(k8s_node_num "$node")
	[ -n "${POD_ON[$n]:-}" ] || { POD_ON[$n]=$name IP_ON[$n]=$ip; }
done
[ ${#POD_ON[@]} = 3 ] || { not_ok "a netexec pod on every node: got ${!POD_ON[*]}"; exit 1; }
ok "cluster up ($ROUTING), 6 netexec pods on 3 nodes, $(since "$T0") s"

# The kept connections go through a Service that selects node1's and node3's
# pods. From node2's pod, the socket LB picked the backend at connect(): the
# connection depends on no map of node2's. From the fabric host through
# node2's NodePort, node2's per-packet path translates every packet: should
# node2 lose the connection's conntrack entry, its packets would be balanced
# afresh, and half of the time reach the other pod, which resets it.
kn label pod "${POD_ON[1]}" "${POD_ON[3]}" keep=yes >/dev/null
{
	svc_yaml keep 7000 "keep: 'yes'" NodePort
	for s in moved gone1 gone2 api-moved api-gone; do svc_yaml "$s" 80; done
} | kn apply -f - >/dev/null
declare -A VIP=()
for s in keep moved gone1 gone2 api-moved api-gone; do VIP[$s]=$(svc_ip "$s"); done
all_services_on() { # N: every Service of the setup in node N's maps, with its backends
	has_svc "$1" "${VIP[keep]}:7000/tcp" 2 || return 1
	for s in moved gone1 gone2 api-moved api-gone; do has_svc "$1" "${VIP[$s]}:80/tcp" 6 || return 1; done
}
for n in 1 2 3; do
	t=$(repeat_until 30 all_services_on "$n") && ok "node$n: 6 Services in the maps with their backends (${t} s)" ||
		not_ok "node$n: the Services are not all in the maps: $(svc_lines "$n" | tr '\n' ',')"
done

NS1=$(pod_netns 1 "${IP_ON[1]}") NS2=$(pod_netns 2 "${IP_ON[2]}")
[ -n "$NS1" ] && [ -n "$NS2" ] || { not_ok "pod network namespaces of ${POD_ON[1]} and ${POD_ON[2]} found"; exit 1; }

# ---- 1. podwired restart and kill -9 on node2 while traffic flows -----------
KC_STOP=$PW_TMP/keepconn.stop
KEEP_NP=$(kn get svc keep -o jsonpath='{.spec.ports[0].nodePort}')
declare -A KC_PID=() KC_WHAT=(
	[pod]="the TCP connection through keep's ClusterIP from node2's pod (socket LB)"
	[np]="the TCP connection from the fabric host through node2's NodePort $KEEP_NP (per-packet, conntrack)")
in_pod 2 "$NS2" python3 "$K8S_LIB_DIR/keepconn.py" "${VIP[keep]}" 7000 "$KC_STOP" "$PW_TMP/kc-pod.progress" 0.05 > "$PW_TMP/kc-pod.out" 2>&1 &
KC_PID[pod]=$!
k8s_host_exec python3 "$K8S_LIB_DIR/keepconn.py" "$(k8s_node_ip 2)" "$KEEP_NP" "$KC_STOP" "$PW_TMP/kc-np.progress" 0.05 > "$PW_TMP/kc-np.out" 2>&1 &
KC_PID[np]=$!
for c in pod np; do
	k8s_wait 10 test -s "$PW_TMP/kc-$c.progress" || not_ok "${KC_WHAT[$c]} started: $(cat "$PW_TMP/kc-$c.out")"
done
kc_count() { cat "$PW_TMP/kc-$1.progress" 2>/dev/null || echo 0; }   # pod|np
kc_beyond() { [ "$(kc_count "$1")" -gt "$2" ]; }
# Which path each connection took: the pod's socket is connected to a backend
# pod itself (the kernel's peer, not what getpeername shows the application)
# and node2 holds no conntrack entry for keep's ClusterIP; the NodePort
# connection has its forward entry in node2's conntrack.
pod_peer=$(in_pod 2 "$NS2" ss -Htn state established "( dport = :8080 or dport = :7000 )" | awk '{print $4}' | sort -u | tr '\n' ' ')
ct_fwd() { pwctl 2 ct | jq --arg d "$1" --argjson p "$2" '[.[] | select(.direction == "forward" and .dst == $d and .dstPort == $p)] | length'; }
check_eq "kept connection from node2's pod: socket LB (the socket's peer is a backend, node2 has no conntrack entry to ${VIP[keep]}:7000)" \
	"$(grep -Eq "^(${IP_ON[1]}|${IP_ON[3]}):8080 $" <<<"$pod_peer" && echo backend || echo "peer '$pod_peer'") $(ct_fwd "${VIP[keep]}" 7000)" "backend 0"
check_eq "kept connection through node2's NodePort: per-packet (1 forward conntrack entry on node2)" \
	"$(ct_fwd "$(k8s_node_ip 2)" "$KEEP_NP")" 1

changes_during_restart() {
	svc_yaml fresh1 80 | kn apply -f - >/dev/null
	kn patch svc moved --type=json -p '[{"op": "replace", "path": "/spec/ports/0/port", "value": 90}]' >/dev/null
	kn delete svc gone1 --wait=false >/dev/null
	VIP[fresh1]=$(svc_ip fresh1)
}
applied_after_restart() {
	has_svc 2 "${VIP[fresh1]}:80/tcp" 6 && has_svc 2 "${VIP[moved]}:90/tcp" 6 &&
		lacks_frontend 2 "${VIP[moved]}:80/tcp" && lacks_vip 2 "${VIP[gone1]}"
}
changes_during_kill() {
	svc_yaml fresh2 80 | kn apply -f - >/dev/null
	kn patch svc moved --type=json -p '[{"op": "replace", "path": "/spec/ports/0/port", "value": 91}]' >/dev/null
	kn delete svc gone2 fresh1 --wait=false >/dev/null
	VIP[fresh2]=$(svc_ip fresh2)
}
applied_after_kill() {
	has_svc 2 "${VIP[fresh2]}:80/tcp" 6 && has_svc 2 "${VIP[moved]}:91/tcp" 6 &&
		lacks_frontend 2 "${VIP[moved]}:90/tcp" && lacks_vip 2 "${VIP[gone2]}" && lacks_vip 2 "${VIP[fresh1]}"
}

# agent_outage SIGNAL WHAT CHANGES APPLIED: podwired on node2 stops on SIGNAL
# while the pings and the kept connection run, CHANGES are made to the API
# while it is down, it starts again; APPLIED must then hold on node2.
agent_outage() {
	local sig=$1 what=$2 changes=$3 applied=$4 c reused0 t t_back log2 down
	local -A kc0=()
	log2=$(pwk_node_dir 2)/log/podwired.log
	reused0=$(grep -c 'reusing pinned maps' "$log2")
	ping_start a 1 "$NS1" "${IP_ON[2]}"   # node1's pod -> node2's pod
	ping_start b 2 "$NS2" "${IP_ON[3]}"   # node2's pod -> node3's pod
	sleep 1
	for c in pod np; do kc0[$c]=$(kc_count "$c"); done
	if cl podwired 2 stop "$sig"; then ok "$what: podwired on node2 gone"; else not_ok "$what: podwired on node2 did not exit"; fi
	down=$(now)
	"$changes"
	sleep 1
	cl podwired 2 start
	if t=$(repeat_until 30 "$applied"); then
		ok "$what: the Services changed while it was down are right in node2's maps ${t} s after the start"
	else
		not_ok "$what: node2's maps after the restart: $(svc_lines 2 | tr '\n' ',')"
	fi
	t_back=$(now)
	log "$what: node2's agent away $(awk -v a="$down" -v b="$t_back" 'BEGIN {printf "%.1f", b - a}') s until its maps were right"
	check "$what: podwired reused the pinned maps" test "$(grep -c 'reusing pinned maps' "$log2")" -gt "$reused0"
	sleep 2   # the pings go on a while after the agent is back
	ping_check a "$what: node1 pod -> node2 pod"
	ping_check b "$what: node2 pod -> node3 pod"
	for c in pod np; do
		if kill -0 "${KC_PID[$c]}" 2>/dev/null && k8s_wait 5 kc_beyond "$c" "$((kc0[$c] + 20))"; then
			ok "$what: ${KC_WHAT[$c]} lives on ($(kc_count "$c") requests answered)"
		else
			not_ok "$what: ${KC_WHAT[$c]}: $(tail -1 "$PW_TMP/kc-$c.out")"
		fi
	done
	t=$(dial 2 "${IP_ON[2]}" "${VIP[moved]}" "$(svc_lines 2 | grep -q "^${VIP[moved]}:91/" && echo 91 || echo 90)")
	[ -n "$t" ] && ok "$what: a new connection from node2's pod to moved's new port answered by $t" ||
		not_ok "$what: a new connection from node2's pod to moved's new port failed"
}
agent_outage TERM "podwired restart" changes_during_restart applied_after_restart
agent_outage KILL "podwired kill -9" changes_during_kill applied_after_kill
t=$(dial 2 "${IP_ON[2]}" "${VIP[fresh2]}" 80)
[ -n "$t" ] && ok "fresh2, created while the agent was killed, answers from node2's pod ($t)" ||
	not_ok "fresh2 (${VIP[fresh2]}:80), created while the agent was killed, does not answer from node2's pod"
touch "$KC_STOP"
for c in pod np; do
	if wait "${KC_PID[$c]}"; then ok "kept connection ($c): $(tail -1 "$PW_TMP/kc-$c.out")"
	else not_ok "kept connection ($c): $(tail -1 "$PW_TMP/kc-$c.out")"; fi
done

# ---- 2. API server restart with etcd compacted: 410, relist, nothing flushed --
in_fabric() { nsenter --net="/run/netns/$PWK_FABRIC" "$@"; }
ETCDCTL() { in_fabric etcdctl --endpoints http://127.0.0.1:2379 "$@"; }
kalt() { in_fabric kubectl --kubeconfig "$(pwk_kubeconfig)" --server "https://127.0.0.1:6444" -n "$K8S_NS" "$@"; }
state_of() { echo "$(svc_lines "$1" | md5sum | cut -c1-8) $(svc_lines "$1" | wc -l) $(peer_lines "$1" | md5sum | cut -c1-8) $(peer_lines "$1" | wc -l)"; }
declare -A BASE=() GONE0=()
for n in 1 2 3; do
	BASE[$n]=$(state_of "$n")
	GONE0[$n]=$(grep -c 'is gone' "$(pwk_node_dir "$n")/log/podwired.log")
done
SAMPLE_STOP=$PW_TMP/sample.stop
echo away > "$PW_TMP/phase"
( while [ ! -e "$SAMPLE_STOP" ]; do
	for n in 1 2 3; do echo "$(cat "$PW_TMP/phase") $n $(state_of "$n")"; done
	sleep 0.3
done ) > "$PW_TMP/samples" 2>/dev/null &
SAMPLER=$!
PW_BG_PIDS+=("$SAMPLER")
t0=$(now)
cl apiserver stop || not_ok "kube-apiserver killed"
# The same API server on another port: the agents (which dial 6443) stay cut
# off while the test changes Services.
if cl apiserver start --secure-port=6444 2>"$PW_TMP/api.log"; then
	svc_yaml api-new 80 | kalt apply -f - >/dev/null &&
		kalt patch svc api-moved --type=json -p '[{"op": "replace", "path": "/spec/ports/0/port", "value": 85}]' >/dev/null &&
		kalt delete svc api-gone --wait=false >/dev/null &&
		ok "API server away from the agents: api-new created, api-moved re-ported, api-gone deleted" ||
		not_ok "changes on the API server at :6444 failed"
else
	not_ok "kube-apiserver on :6444: $(tail -3 "$PW_TMP/api.log")"
fi
cl apiserver stop
rev=$(ETCDCTL endpoint status -w json | jq -r '.[0].Status.header.revision')
if ETCDCTL compact --physical "$rev" >/dev/null; then ok "etcd compacted at its current revision $rev"
else not_ok "etcd compact at revision $rev failed"; fi
sleep 1
echo back > "$PW_TMP/phase"
cl apiserver start 2>"$PW_TMP/api.log" || not_ok "kube-apiserver restarts: $(tail -3 "$PW_TMP/api.log")"
log "API server away for $(since "$t0") s"
VIP[api-new]=$(svc_ip api-new)
converged() { # N
	has_svc "$1" "${VIP[api-new]}:80/tcp" 6 && has_svc "$1" "${VIP[api-moved]}:85/tcp" 6 &&
		lacks_frontend "$1" "${VIP[api-moved]}:80/tcp" && lacks_vip "$1" "${VIP[api-gone]}"
}
for n in 1 2 3; do
	if t=$(repeat_until 90 converged "$n"); then
		ok "node$n converged after the API server came back (api-new, api-moved:85, no api-gone) ${t} s later"
	else
		not_ok "node$n did not converge: $(svc_lines "$n" | tr '\n' ',')"
	fi
	gone=$(grep 'is gone' "$(pwk_node_dir "$n")/log/podwired.log" | tail -n +$((GONE0[$n] + 1)))
	if [ -n "$gone" ]; then
		ok "node$n: the agent's re-watch got 410 Gone and it relisted ($(grep -c . <<<"$gone") informer(s))"
		log "node$n: $(tail -1 <<<"$gone")"
	else
		not_ok "node$n: no 410 relist in podwired's log after the compaction: $(tail -3 "$(pwk_node_dir "$n")/log/podwired.log" | tr '\n' ' ')"
	fi
done
# Samples taken while the API server was away must all equal the baseline;
# after it came back, while the agents relisted and converged, no node may
# have held fewer services or other peers (api-gone went, api-new came).
touch "$SAMPLE_STOP"; wait "$SAMPLER"
nsamples=0 changed="" nback=0 fewer=""
while read -r phase n st; do
	if [ "$phase" = away ]; then
		nsamples=$((nsamples + 1))
		[ "$st" = "${BASE[$n]}" ] || changed+=" node$n:'$st'"
	else
		nback=$((nback + 1))
		read -r _ cnt phash pcnt <<<"$st"
		read -r _ bcnt bphash _ <<<"${BASE[$n]}"
		[ "$cnt" -ge "$bcnt" ] && [ "$phash" = "$bphash" ] || fewer+=" node$n:'$st'"
	fi
done < "$PW_TMP/samples"
check_eq "API server away: $nsamples samples of every node's service and peer maps, all as before" "${changed:-none}" none
check_eq "API server back, agents relisting: $nback samples, never fewer services or other peers" "${fewer:-none}" none
log "baseline (services hash count, peers hash count): ${BASE[1]} | ${BASE[2]} | ${BASE[3]}"
svc_yaml api-after 80 | kn apply -f - >/dev/null
VIP[api-after]=$(svc_ip api-after)
for n in 1 2 3; do
	t=$(repeat_until 20 has_svc "$n" "${VIP[api-after]}:80/tcp" 6) &&
		ok "node$n: the watches resumed (a Service created afterwards in the maps ${t} s later)" ||
		not_ok "node$n: api-after not in the maps 20 s after its creation"
done

# ---- 3. a node added, a node deleted: peers follow ---------------------------
CIDRS_BEFORE=$(peer_lines 1)
t0=$(now)
if timeout 300 bash "$K8S_CLUSTER_SH" node-add 4 2>"$PW_TMP/node4.log"; then ok "node4 added and Ready ($(since "$t0") s)"
else
	not_ok "node4 added: $(tail -3 "$PW_TMP/node4.log" | tr '\n' ' ')"
	sed 's/^/#   node-add: /' "$PW_TMP/node4.log" | tail -20
	sed 's/^/#   up: /' "$(pwk_node_dir 4)/log/up.log" 2>/dev/null | tail -20
fi
CIDR4=$(pwk_node_podcidr 4)
peer_of() { peer_lines "$1" | grep -qx "$2 $3"; }      # N CIDR NODE_IP
no_peer() { ! peer_lines "$1" | grep -q "^$2 "; }      # N CIDR
for n in 1 2 3; do
	t=$(repeat_until 20 peer_of "$n" "$CIDR4" "$(pwk_node_ip 4)") &&
		ok "node$n: node4 ($CIDR4 via $(pwk_node_ip 4)) became a peer (${t} s)" ||
		not_ok "node$n: node4 not a peer: $(peer_lines "$n" | tr '\n' ',')"
done
check_eq "node4's peers are the three other nodes" "$(peer_lines 4 | grep -c .)" 3
check_eq "node4 holds the same services as node1" "$(svc_lines 4)" "$(svc_lines 1)"
kn apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: on4, labels: {app: on4}}
spec:
  nodeName: $(pwk_node_name 4)
  terminationGracePeriodSeconds: 0
  containers:
  - {name: netexec, image: $PWK_IMAGE_AGNHOST, imagePullPolicy: Never, args: [netexec, --http-port=8080, --udp-port=8081]}
EOF
if kn wait --for=condition=Ready pod/on4 --timeout=60s >/dev/null 2>&1; then
	ip4=$(kn get pod on4 -o jsonpath='{.status.podIP}')
	check_eq "node1's pod reaches the pod on node4 ($ip4), which sees its pod IP" \
		"$(k8s_dial 1 "${IP_ON[1]}" "$ip4" tcp)" "${IP_ON[1]}"
else
	not_ok "pod on4 on node4 not Ready: $(kn get pod on4 -o wide --no-headers)"
fi
t0=$(now)
cl node-del 4 2>"$PW_TMP/node4.log" || not_ok "node-del 4: $(tail -3 "$PW_TMP/node4.log")"
for n in 1 2 3; do
	t=$(repeat_until 20 no_peer "$n" "$CIDR4") && ok "node$n: node4's peer gone ${t} s after its Node was deleted" ||
		not_ok "node$n: node4 still a peer: $(peer_lines "$n" | tr '\n' ',')"
done
check_eq "node1's peers are what they were before node4" "$(peer_lines 1)" "$CIDRS_BEFORE"
kn delete pod on4 --force --grace-period=0 >/dev/null 2>&1

# ---- 4a. pods deleted: endpoints, veths, IP reservations gone ----------------
for p in del-a del-b; do
	cat <<EOF
---
apiVersion: v1
kind: Pod
metadata: {name: $p}
spec:
  nodeName: $(pwk_node_name 1)
  terminationGracePeriodSeconds: 0
  containers:
  - {name: netexec, image: $PWK_IMAGE_AGNHOST, imagePullPolicy: Never, args: [netexec, --http-port=8080]}
EOF
done | kn apply -f - >/dev/null
kn wait --for=condition=Ready pod/del-a pod/del-b --timeout=60s >/dev/null 2>&1 || not_ok "pods del-a, del-b not Ready"
DEL_IPS=$(kn get pod del-a del-b -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}' | sort)
DEL_VETHS=$(pwctl 1 endpoints | jq -r --argjson ips "$(jq -R . <<<"$DEL_IPS" | jq -s .)" '.[] | select(.ip as $i | $ips | index($i)) | .ifname' | sort)
check_eq "del-a, del-b: endpoints with their namespace/name on node1" \
	"$(pwctl 1 endpoints | jq -r '.[] | select(.name == "del-a" or .name == "del-b") | "\(.namespace)/\(.name)"' | sort | tr '\n' ' ')" \
	"$K8S_NS/del-a $K8S_NS/del-b "
check_eq "del-a, del-b: their veths exist on node1" "$(comm -12 <(veths 1) <(echo "$DEL_VETHS") | grep -c .)" 2
check_eq "del-a, del-b: their IPs reserved on node1" "$(comm -12 <(ipam_ips 1) <(echo "$DEL_IPS") | grep -c .)" 2
kn delete pod del-a del-b --wait=true --timeout=60s >/dev/null
released() { # N IPS VETHS: none of IPS in endpoints or IPAM, none of VETHS left
	[ -z "$(comm -12 <(ep_ips "$1") <(echo "$2"))" ] && [ -z "$(comm -12 <(ipam_ips "$1") <(echo "$2"))" ] &&
		[ -z "$(comm -12 <(veths "$1") <(echo "$3"))" ]
}
t=$(repeat_until 20 released 1 "$DEL_IPS" "$DEL_VETHS") &&
	ok "pods deleted: their endpoints, veths and IP reservations are gone (${t} s after the API said so)" ||
	not_ok "pods deleted: left: endpoints $(comm -12 <(ep_ips 1) <(echo "$DEL_IPS") | tr '\n' ' ') ipam $(comm -12 <(ipam_ips 1) <(echo "$DEL_IPS") | tr '\n' ' ') veths $(comm -12 <(veths 1) <(echo "$DEL_VETHS") | tr '\n' ' ')"

# ---- 4b. node3 "reboots": DEL with an empty CNI_NETNS -------------------------
node3_pod_ips() { # every namespace's (CoreDNS runs on nodes too)
	k get pods -A --field-selector "spec.nodeName=$(pwk_node_name 3)" \
		-o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}' | grep . | sort
}
OLD_IPS=$(node3_pod_ips)
OLD_VETHS=$(pwctl 3 endpoints | jq -r '.[].ifname' | sort)
check_eq "node3 before the reboot: endpoints = its pods' IPs" "$(ep_ips 3 | tr '\n' ' ')" "$(tr '\n' ' ' <<<"$OLD_IPS")"
# The sandboxes the old pods' reservations name (first line of each).
OLD_SANDBOXES=$(for ip in $OLD_IPS; do head -1 "$(pwk_node_dir 3)/podwire-run/$(pwk_node_name 3)/ipam/$ip"; done)
CTRD_LOG=$(pwk_node_dir 3)/log/containerd.log
ctrd_lines=$(wc -l < "$CTRD_LOG")
cl runtime 3 stop
# A reboot empties /run: the pods' netns handles vanish with the pods.
k8s_node_exec 3 bash -c 'for f in /run/netns/*; do [ -e "$f" ] || continue; umount "$f" 2>/dev/null; rm -f "$f"; done'
gone_veths() { [ -z "$(comm -12 <(veths 3) <(echo "$OLD_VETHS"))" ]; }
check "node3 down: the old pods' netns and veths are gone" k8s_wait 10 gone_veths
check_eq "node3 down: nothing has released the old pods yet (endpoints as before)" "$(ep_ips 3 | tr '\n' ' ')" "$(tr '\n' ' ' <<<"$OLD_IPS")"
check_eq "node3 down: nothing has released the old pods yet (IP reservations as before)" "$(ipam_ips 3 | tr '\n' ' ')" "$(tr '\n' ' ' <<<"$OLD_IPS")"
t0=$(now)
cl runtime 3 start || not_ok "containerd and kubelet on node3 start again"
node3_settled() { # every pod of node3 Running with a new IP, all old IPs released
	local cur
	cur=$(node3_pod_ips)
	[ "$(grep -c . <<<"$cur")" = "$(grep -c . <<<"$OLD_IPS")" ] || return 1
	[ -z "$(comm -12 <(echo "$cur") <(echo "$OLD_IPS"))" ] || return 1
	[ "$(ep_ips 3)" = "$cur" ] && [ "$(ipam_ips 3)" = "$cur" ]
}
if t=$(repeat_until 120 node3_settled); then
	ok "node3 after the reboot: the old pods' endpoints and IP reservations released, new pods have new IPs (${t} s)"
else
	not_ok "node3 after the reboot: pods $(node3_pod_ips | tr '\n' ' '), endpoints $(ep_ips 3 | tr '\n' ' '), ipam $(ipam_ips 3 | tr '\n' ' '), old $(tr '\n' ' ' <<<"$OLD_IPS")"
fi
check_eq "node3 after the reboot: one veth per pod, none of the old ones" \
	"$(veths 3 | grep -c .) $(comm -12 <(veths 3) <(echo "$OLD_VETHS") | grep -c .)" "$(node3_pod_ips | grep -c .) 0"
# Their netns were gone before containerd started: its teardown of the old
# sandboxes was a CNI DEL with an empty CNI_NETNS (and the cached result).
torn=0
for id in $OLD_SANDBOXES; do
	tail -n +$((ctrd_lines + 1)) "$CTRD_LOG" | grep -F "$id" | grep -q 'TearDown network for sandbox.*successfully' && torn=$((torn + 1))
done
check_eq "containerd tore down the network of every old sandbox after their netns vanished (CNI DEL without a netns)" \
	"$torn" "$(grep -c . <<<"$OLD_SANDBOXES")"
k8s_rollout netexec 120 || not_ok "netexec available again after node3's reboot"
mapfile -t pods < <(k8s_pods app=netexec)
bad=""
for p in "${pods[@]}"; do
	read -r name ip node <<<"$p"
	[ "$(k8s_node_num "$node")" = 3 ] || continue
	seen=$(k8s_dial 3 "$ip" "${IP_ON[1]}" tcp)
	[ "$seen" = "$ip" ] || bad+=" $name->node1 saw '${seen:-nothing}'"
	seen=$(k8s_dial 1 "${IP_ON[1]}" "$ip" tcp)
	[ "$seen" = "${IP_ON[1]}" ] || bad+=" node1->$name saw '${seen:-nothing}'"
done
check_eq "node3's new pods exchange with node1's pod both ways" "${bad:-none}" none
log "test body: $(since "$T0") s"

# ---- teardown ----------------------------------------------------------------
[ "${KEEP:-0}" = 1 ] && exit 0
k8s_down >/dev/null 2>&1
left=$(k8s_leftovers)
check_eq "nothing of the cluster left (netns, cgroups, mounts, pins, processes, state)" "${left:-nothing}" nothing
exit 0
