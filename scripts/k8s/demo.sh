#!/usr/bin/env bash
# make demo-k8s: podwire as the CNI and kube-proxy replacement of a real
# Kubernetes cluster on this machine (scripts/k8s/cluster.sh), as a new user
# would see it: nodes Ready, a Deployment spread over the three nodes, pod IPs,
# a cross-node exchange with the source IP the receiver saw, a Service
# spreading connections over pods on every node; then everything goes.
#   scripts/k8s/demo.sh [up]        run the demo, tear down
#   KEEP=1 scripts/k8s/demo.sh      ... and leave the cluster running
#   ROUTING=vxlan scripts/k8s/demo.sh   the overlay instead of native routing
#   scripts/k8s/demo.sh down        remove a cluster left running (make demo-k8s-down)
set -u
cd "$(dirname "$0")/../.." || exit 1
export CLUSTER=${CLUSTER:-pwk}
export K8S_NS=demo
ROUTING=${ROUTING:-native}
CNI=${CNI:-podwire}
. test/e2e/k8s_lib.sh

hr() { printf '%s\n' "------------------------------------------------------------------------"; }
indent() { sed 's/^/  /'; }

demo_up() {
	if [ "${KEEP:-0}" = 1 ]; then
		trap 'echo "demo failed; tearing down"; k8s_down' ERR
	else
		trap 'k8s_down >/dev/null 2>&1; pw_cleanup' EXIT
		trap 'exit 130' INT TERM
	fi
	hr
	echo "podwire on a real Kubernetes $K8S_VERSION cluster: etcd, kube-apiserver, controller-manager,"
	echo "scheduler, and three nodes with their own containerd, kubelet and podwired"
	if [ "$CNI" = podwire ]; then echo "(CNI: podwire, routing: $ROUTING; no kube-proxy: podwire serves Services; cluster '$CLUSTER', state in $PWK_DIR)"; else echo "(CNI: $CNI with kube-proxy; cluster '$CLUSTER', state in $PWK_DIR)"; fi
	hr
	local t0=$SECONDS
	k8s_up --routing "$ROUTING" --cni "$CNI" 2>&1 | indent
	[ "${PIPESTATUS[0]}" = 0 ] || { echo "cluster up failed"; return 1; }
	echo; echo "Up in $((SECONDS - t0)) s. kubectl get nodes -o wide:"
	k get nodes -o wide | indent

	echo; echo "A Deployment of 6 agnhost netexec pods, spread over the nodes:"
	k8s_ns_create
	k8s_netexec_deployment netexec 6
	k8s_rollout netexec 120 || { kn get pods -o wide; return 1; }
	kn get pods -o wide | indent
	echo "  Each node's spec.podCIDR, and its pods' IPs in it:"
	local cidr ins total
	for n in $(pwk_node_nums); do
		cidr=$(pwk_node_podcidr "$n") ins=0 total=0
		for ip in $(kn get pods -o jsonpath="{range .items[?(@.spec.nodeName==\"$(pwk_node_name "$n")\")]}{.status.podIP} {end}"); do
			total=$((total + 1))
			k8s_ip_in_cidr "$ip" "$cidr" && ins=$((ins + 1))
		done
		printf '    %-12s %-15s %d of %d pods\n' "$(pwk_node_name "$n")" "$cidr" "$ins" "$total"
	done

	echo; echo "Cross-node exchanges (the receiving pod prints the source address it saw):"
	local pods a b an aip anode bip bnode proto seen
	mapfile -t pods < <(k8s_pods app=netexec)
	for pair in "0 2" "2 4" "4 0"; do
		read -r a b <<<"$pair"
		read -r an aip anode <<<"${pods[$a]}"
		read -r _ bip bnode <<<"${pods[$b]}"
		for proto in tcp udp; do
			seen=$(k8s_dial "$(k8s_node_num "$anode")" "$aip" "$bip" "$proto")
			printf '  %-3s %-15s (%s) -> %-15s (%s): receiver saw %-15s %s\n' "$proto" "$aip" "${anode#"$CLUSTER"-}" \
				"$bip" "${bnode#"$CLUSTER"-}" "${seen:-nothing}" \
				"$([ "$seen" = "$aip" ] && echo '(the pod IP: no NAT)' || echo '(UNEXPECTED)')"
		done
	done

	echo; echo "A ClusterIP Service in front of the Deployment (port 80 -> 8080):"
	kn expose deployment netexec --name web --port 80 --target-port 8080 >/dev/null
	kn get service web | indent
	local vip; vip=$(kn get service web -o jsonpath='{.spec.clusterIP}')
	k8s_wait 30 k8s_endpoints_are web 6
	read -r an aip anode <<<"${pods[0]}"
	echo "  30 new connections from $an ($aip, ${anode#"$CLUSTER"-}) to $vip:80 were answered by:"
	local out
	out=$(k8s_node_exec "$(k8s_node_num "$anode")" curl -s -m 60 \
		"http://$aip:8080/dial?request=hostname&protocol=http&host=$vip&port=80&tries=30")
	jq -r '.responses // [] | .[]' <<<"$out" 2>/dev/null | sort | uniq -c | while read -r count host; do
		printf '    %-28s %2d  (on %s)\n' "$host" "$count" "$(kn get pod "$host" -o jsonpath='{.spec.nodeName}')"
	done
	[ "$(jq '.errors // [] | length' <<<"$out" 2>/dev/null)" = 0 ] ||
		echo "    failed: $(jq -r '(.errors // ["no answer"]) | length' <<<"$out" 2>/dev/null) connections, e.g. $(jq -r '(.errors // ["no answer"])[0]' <<<"$out" 2>/dev/null)"

	echo; echo "The cluster DNS (CoreDNS behind kube-dns, itself a ClusterIP served by podwire):"
	local name=web.$K8S_NS.svc.cluster.local answer
	answer=$(kn exec "$an" -- nslookup "$name" 2>/dev/null | awk '/^Address: / {a = $2} END {print a}')
	echo "  $an resolves $name to ${answer:-nothing} (the Service's ClusterIP is $vip)"
	out=$(kn exec "$an" -- /agnhost connect "$name:80" --timeout 5s 2>&1) &&
		echo "  and connects to it by name" || echo "  connecting by name failed: $out"

	echo; k8s_status 2>/dev/null | sed -n '/^COMPONENT/,/^total/p' | indent
	hr
	if [ "${KEEP:-0}" = 1 ]; then
		echo "KEEP=1: the cluster stays. Try:"
		echo "  kubectl --kubeconfig $(pwk_kubeconfig) -n $K8S_NS get pods -o wide"
		echo "  CLUSTER=$CLUSTER scripts/k8s/cluster.sh status"
		echo "make demo-k8s-down removes it."
	else
		echo "Tearing down (KEEP=1 keeps the cluster)."
	fi
}

case ${1:-up} in
up) demo_up ;;
down) k8s_down ;;
*) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
