#!/usr/bin/env bash
# A real Kubernetes cluster with podwire as its CNI (scripts/k8s/cluster.sh):
# nodes turn Ready only once podwired has written the node's conflist; every
# pod of a Deployment with 3 replicas per node gets an IP from its node's
# spec.podCIDR; every ordered pair of pods on different nodes exchanges TCP
# and UDP and the receiver sees the sender's pod IP; teardown leaves nothing.
#   ROUTING=native|vxlan (default native)
set -u
cd "$(dirname "$0")/../.." || exit 1
export CLUSTER=${CLUSTER:-pwkt}
ROUTING=${ROUTING:-native}
CNI=${CNI:-podwire}   # bridge: the same checks on Debian's bridge plugin (the script writes its conflist)
. test/e2e/k8s_lib.sh
k8s_init

# ---- up, with the nodes held before any CNI config exists ------------------
t0=$(date +%s.%N)
if ! PWK_CNI_HOLD=1 k8s_up --routing "$ROUTING" --cni "$CNI"; then
	not_ok "cluster up ($ROUTING): scripts/k8s/cluster.sh up failed"
	exit 1
fi
ok "control plane and $PWK_NODES kubelets registered (CNI $CNI, routing $ROUTING)"

conflists() { # the node's CNI config files, as kubelet's containerd sees them
	find "$(pwk_node_dir "$1")/cni-net.d/" -maxdepth 1 -name '[!.]*.conflist' 2>/dev/null | grep -c .
}
ready_of() { # N: the node's Ready condition status
	k get node "$(pwk_node_name "$1")" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null
}
ready_nodes() { # the names of the Ready nodes, one per line
	k get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null |
		awk '$2 == "True" {print $1}'
}
notready_for_network() { # N: NotReady, and for the network's sake
	local msg
	msg=$(k get node "$(pwk_node_name "$1")" -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}' 2>/dev/null)
	[ "$(ready_of "$1")" = False ] && grep -qi 'network' <<<"$msg"
}
sleep 3   # long enough for kubelet to have reported at least once more
for n in $(pwk_node_nums); do
	check "node$n NotReady for its network while no CNI config exists" notready_for_network "$n"
	check_eq "node$n has no conflist before $CNI runs" "$(conflists "$n")" 0
done

# Start podwired on every node and watch, as often as kubectl allows, which
# comes first on each node: its conflist or its Ready.
k8s_cni_up > "$PW_TMP/cni-up.log" 2>&1 &
cni_pid=$!
declare -A seen_conf=() seen_ready=()
for i in $(seq 1500); do
	# Ready first, conflist second: a conflist seen in the same round was there before the Ready.
	ready=$(ready_nodes)
	for n in $(pwk_node_nums); do
		[ -z "${seen_conf[$n]:-}" ] && [ "$(conflists "$n")" -gt 0 ] && seen_conf[$n]=$i
		[ -z "${seen_ready[$n]:-}" ] && grep -qx "$(pwk_node_name "$n")" <<<"$ready" && seen_ready[$n]=$i
	done
	[ ${#seen_ready[@]} = "$PWK_NODES" ] && break
	sleep 0.05
done
wait "$cni_pid"; rc=$?
t_ready=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
[ "$rc" = 0 ] || { sed 's/^/#   /' "$PW_TMP/cni-up.log"; }
for n in $(pwk_node_nums); do
	if [ -z "${seen_ready[$n]:-}" ]; then
		not_ok "node$n Ready: never (conflist seen: ${seen_conf[$n]:+yes})"
		tail -5 "$(pwk_node_dir "$n")/log/podwired.log" 2>/dev/null | sed 's/^/#   podwired: /'
	elif [ -z "${seen_conf[$n]:-}" ] || [ "${seen_conf[$n]}" -gt "${seen_ready[$n]}" ]; then
		not_ok "node$n turned Ready before $CNI wrote its conflist (conflist at poll ${seen_conf[$n]:-never}, Ready at ${seen_ready[$n]})"
	else
		ok "node$n Ready only after $CNI wrote its conflist"
	fi
done
log "cluster up to $PWK_NODES nodes Ready: ${t_ready}s"
[ ${#seen_ready[@]} = "$PWK_NODES" ] || exit 1

# ---- a Deployment, 3 replicas per node --------------------------------------
per_node=3
k8s_ns_create
k8s_netexec_deployment netexec $((per_node * PWK_NODES))
if k8s_rollout netexec 180; then
	ok "Deployment netexec: $((per_node * PWK_NODES)) pods available"
else
	not_ok "Deployment netexec did not become available"
	kn get pods -o wide | sed 's/^/#   /'
fi
mapfile -t pods < <(k8s_pods app=netexec)
check_eq "every pod Running with an IP" "${#pods[@]}" $((per_node * PWK_NODES))

declare -A cidr_of=() count_on=()
for n in $(pwk_node_nums); do cidr_of[$(pwk_node_name "$n")]=$(pwk_node_podcidr "$n"); done
bad=""
for p in "${pods[@]}"; do
	read -r name ip node <<<"$p"
	count_on[$node]=$(( ${count_on[$node]:-0} + 1 ))
	k8s_ip_in_cidr "$ip" "${cidr_of[$node]}" || bad+=" $name($ip not in $node's ${cidr_of[$node]})"
done
check_eq "every pod's IP is in its node's spec.podCIDR" "${bad:-none}" none
for n in $(pwk_node_nums); do
	check_eq "node$n runs $per_node pods" "${count_on[$(pwk_node_name "$n")]:-0}" "$per_node"
done

# ---- every ordered pair of pods on different nodes, TCP and UDP -------------
for proto in tcp udp; do
	pairs=0 wrong=""
	for a in "${pods[@]}"; do
		read -r an aip anode <<<"$a"
		for b in "${pods[@]}"; do
			read -r bn bip bnode <<<"$b"
			[ "$anode" = "$bnode" ] && continue
			pairs=$((pairs + 1))
			seen=$(k8s_dial "$(k8s_node_num "$anode")" "$aip" "$bip" "$proto")
			[ "$seen" = "$aip" ] || wrong+=" $an->$bn saw '${seen:-nothing}'"
		done
	done
	check_eq "$proto: all $pairs ordered cross-node pod pairs exchange, receiver sees the sender's pod IP" "${wrong:-none}" none
done

# ---- the `kubernetes` Service: its endpoint is the API server, not a pod -----
read -r first _ <<<"${pods[0]}"
check "a pod reaches the API server through the kubernetes Service (10.96.0.1:443)" \
	kn exec "$first" -- /agnhost connect 10.96.0.1:443 --timeout 5s

# ---- the API server reaches pods (its proxy), replies keep the pod's address --
# The API server runs on no node: the fabric routes pod CIDRs, and the pods'
# replies must not be masqueraded (inbound flows, docs/datapath.md).
wrong=""
for n in $(pwk_node_nums); do
	for p in "${pods[@]}"; do
		read -r name _ node <<<"$p"
		[ "$node" = "$(pwk_node_name "$n")" ] || continue
		got=$(k get --raw "/api/v1/namespaces/$K8S_NS/pods/$name:8080/proxy/hostname" --request-timeout=10s 2>&1)
		[ "$got" = "$name" ] || wrong+=" $name: '${got:0:60}'"
		break
	done
done
check_eq "the API server's pods/proxy reaches a pod on every node" "${wrong:-none}" none

# ---- DNS: CoreDNS answers through the kube-dns ClusterIP ---------------------
got=$(kn exec "$first" -- nslookup kubernetes.default.svc.cluster.local 2>/dev/null | awk '/^Address: / {print $2}' | tail -1)
check_eq "a pod resolves kubernetes.default through CoreDNS (kube-dns 10.96.0.10)" "$got" 10.96.0.1

# ---- teardown ----------------------------------------------------------------
[ "${KEEP:-0}" = 1 ] && exit 0   # the cluster stays for a look (k8s_cleanup says how to remove it)
t1=$(date +%s.%N)
k8s_down >/dev/null 2>&1
log "teardown: $(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')s"
left=$(k8s_leftovers)
check_eq "nothing of the cluster left (netns, cgroups, mounts, pins, processes, state)" "${left:-nothing}" nothing
exit 0
