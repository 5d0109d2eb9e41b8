#!/usr/bin/env bash
# The local demo: podwire nodes as network namespaces on this machine, each
# with its own podwired, pods added through the CNI plugin by cnitool, and a
# short report of what talks to what.
#   scripts/demo.sh up      build the cluster, show the report, tear down
#   KEEP=1 scripts/demo.sh up   ... and leave it running for exploration
#   MODE=vxlan scripts/demo.sh up   the overlay instead of native routing
#   scripts/demo.sh down    remove a demo left running
set -u
cd "$(dirname "$0")/.."
export PW_PREFIX=pwdemo
MODE=${MODE:-native}   # or vxlan
. test/e2e/lib.sh

demo_down() {
	local ns inst
	pkill -TERM -f "podwired --instance ${PW_PREFIX}-" 2>/dev/null
	sleep 0.2
	for ns in $(ip netns list | awk '{print $1}' | grep "^${PW_PREFIX}-"); do
		inst=$ns
		[ -d "/sys/fs/bpf/podwire/$inst" ] && in_ns "$ns" "$BUILD/podwired" --instance "$inst" --uninstall >/dev/null 2>&1
		rm -rf "/sys/fs/bpf/podwire/$inst" "/run/podwire/$inst"
	done
	ns_del $(ip netns list | awk '{print $1}' | grep "^${PW_PREFIX}-")
	rm -rf /tmp/${PW_PREFIX}.*
}

hr() { printf '%s\n' "------------------------------------------------------------------------"; }

demo_up() {
	demo_down
	ensure_bpffs
	if [ "${KEEP:-0}" = 1 ]; then
		trap 'echo "demo failed; tearing down"; demo_down' ERR
	else
		trap demo_down EXIT
		trap 'exit 130' INT TERM
	fi
	set -e
	hr; echo "podwire demo: three nodes on LAN 192.168.1.0/24, two pods each, routing: $MODE"
	echo "(namespaces prefixed ${PW_PREFIX}-; each node runs its own podwired)"; hr
	lan_up
	for n in 1 2 3; do
		node_up "node$n" "192.168.1.1$n" "10.244.$n.0/24" "$MODE" "$(seed_peers_json node$n)"
	done
	ext_up world 192.168.1.100
	for n in 1 2 3; do for p in a b; do pod_add "node$n" "pod$n$p"; done; done
	set +e

	printf '\n%-7s %-7s %-15s\n' POD NODE IP
	for n in 1 2 3; do for p in a b; do
		printf '%-7s %-7s %-15s\n' "pod$n$p" "node$n" "${PW_POD_IP[pod$n$p]}"
	done; done

	echo; echo "ping pod1a (node1) -> pod3b (node3):"
	in_ns "${PW_PREFIX}-pod1a" ping -c 3 -i 0.2 "${PW_POD_IP[pod3b]}" | sed 's/^/  /'
	echo; echo "TCP exchanges across nodes (the server prints the source address it saw):"
	for pair in "pod1a pod2a" "pod2b pod3a" "pod3b pod1b" "pod1a pod1b"; do
		set -- $pair
		seen=$(tcp_peer_seen "$1" "$2")
		printf '  %-6s %-11s -> %-6s %-11s server saw %-11s %s\n' "$1" "${PW_POD_IP[$1]}" "$2" "${PW_POD_IP[$2]}" \
			"${seen:-nothing}" "$([ "$seen" = "${PW_POD_IP[$1]}" ] && echo '(pod IP, no NAT)' || echo '(UNEXPECTED)')"
	done
	seen=$(tcp_peer_seen pod2a world)
	printf '  %-6s %-11s -> %-6s %-11s server saw %-11s %s\n' pod2a "${PW_POD_IP[pod2a]}" world 192.168.1.100 \
		"${seen:-nothing}" "(outside the cluster: masqueraded to node2)"
	echo; echo "A ClusterIP service web 10.96.0.10:80 with a backend on every node (pod1b, pod2b, pod3b):"
	for n in 1 2 3; do
		bg_in_ns "${PW_PREFIX}-pod${n}b" socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:"echo pod${n}b"
	done
	for n in 1 2 3; do wait_listen "pod${n}b" 8080 tcp; done
	svc='[{"name": "web", "vip": "10.96.0.10", "port": 80, "protocol": "tcp", "nodePort": 30080,
	       "algorithm": "maglev", "backends": ['"$(for n in 1 2 3; do printf '%s{"ip": "%s", "port": 8080}' "$([ $n = 1 ] || echo ,)" "${PW_POD_IP[pod${n}b]}"; done)"']}]'
	for n in 1 2 3; do set_services "node$n" "$svc"; done
	sleep 0.5
	echo "  60 new connections from pod1a (node1) to 10.96.0.10:80 were answered by:"
	in_ns "${PW_PREFIX}-pod1a" /usr/bin/python3 test/e2e/lbclient.py spread 10.96.0.10 80 60 |
		jq -r 'to_entries[] | "    \(.key): \(.value)"'
	echo "  30 connections from the outside host to NodePort 192.168.1.13:30080 were answered by:"
	in_ns "${PW_PREFIX}-world" /usr/bin/python3 test/e2e/lbclient.py spread 192.168.1.13 30080 30 |
		jq -r 'to_entries[] | "    \(.key): \(.value)"'
	echo; echo "node1's maps (bpftool map dump pinned /sys/fs/bpf/podwire/${PW_NODE_INST[node1]}/...):"
	for m in pw_endpoints pw_peers pw_services; do
		echo "  $m:"
		bpftool map dump pinned "/sys/fs/bpf/podwire/${PW_NODE_INST[node1]}/$m" | sed 's/^/    /'
	done
	echo
	if [ "${KEEP:-0}" = 1 ]; then
		hr
		echo "The demo keeps running. Explore, e.g.:"
		echo "  nsenter --net=/run/netns/${PW_PREFIX}-pod1a ping ${PW_POD_IP[pod3a]}"
		echo "  nsenter --net=/run/netns/${PW_PREFIX}-node1 $BUILD/podwirectl --instance ${PW_NODE_INST[node1]} endpoints"
		echo "  bpftool map dump pinned /sys/fs/bpf/podwire/${PW_NODE_INST[node1]}/pw_metrics"
		echo "Remove it with: make demo-down"
		trap - EXIT
		PW_PODS=() PW_NODES=()   # keep lib.sh's exit cleanup away from the live demo
	fi
}

case ${1:-up} in
up) demo_up ;;
down) demo_down ;;
*) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
