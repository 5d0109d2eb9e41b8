#!/usr/bin/env bash
# The local demo: podwire nodes as network namespaces on this machine, each
# with its own podwired, pods added through the CNI plugin by cnitool, and a
# short report of what talks to what.
#   scripts/demo.sh up      build the cluster, show the report, tear down
#   KEEP=1 scripts/demo.sh up   ... and leave it running for exploration
#   scripts/demo.sh down    remove a demo left running
set -u
cd "$(dirname "$0")/.."
export PW_PREFIX=pwdemo
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
	for ns in $(ip netns list | awk '{print $1}' | grep "^${PW_PREFIX}-"); do ip netns del "$ns"; done
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
	hr; echo "podwire demo: one node, three pods (namespaces prefixed ${PW_PREFIX}-)"; hr
	node_up node1 192.168.1.11 10.244.1.0/24
	for p in pod1 pod2 pod3; do pod_add node1 "$p"; done
	set +e

	printf '\n%-8s %-8s %-15s\n' POD NODE IP
	for p in pod1 pod2 pod3; do printf '%-8s %-8s %-15s\n' "$p" "${PW_POD_NODE[$p]}" "${PW_POD_IP[$p]}"; done

	echo; echo "ping pod1 -> pod3:"
	in_ns "${PW_PREFIX}-pod1" ping -c 3 -i 0.2 "${PW_POD_IP[pod3]}" | sed 's/^/  /'
	echo; echo "TCP exchanges (the server prints the source address it saw):"
	for pair in "pod1 pod2" "pod2 pod3" "pod3 pod1"; do
		set -- $pair
		printf '  %s (%s) -> %s (%s): server saw %s\n' "$1" "${PW_POD_IP[$1]}" "$2" "${PW_POD_IP[$2]}" \
			"$(tcp_peer_seen "$1" "$2")"
	done
	echo; echo "bpftool map dump pinned /sys/fs/bpf/podwire/${PW_NODE_INST[node1]}/pw_endpoints"
	bpftool map dump pinned "/sys/fs/bpf/podwire/${PW_NODE_INST[node1]}/pw_endpoints" | sed 's/^/  /'
	echo
	if [ "${KEEP:-0}" = 1 ]; then
		hr
		echo "The demo keeps running. Explore, e.g.:"
		echo "  nsenter --net=/run/netns/${PW_PREFIX}-pod1 ping ${PW_POD_IP[pod2]}"
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
