#!/usr/bin/env bash
# The pod device mode (podwired --pod-device veth|netkit|auto, node.podDevice)
# on whatever kernel runs the test: the kernel's own answer (`ip link add
# type netkit` in a scratch namespace) decides what is expected.
# - auto publishes netkit where the kernel has it, else veth;
# - netkit on a kernel without it stops the agent with a clear error;
# - one kind per node: with pods wired as veth, an explicit other kind is
#   refused at start and auto keeps veth, and the pod still works;
# - auto pods across two nodes over VXLAN: encapsulated and decapsulated in
#   BPF from the pod's device (netkit's hook on 6.12), a transfer intact.
set -u
. "$(dirname "$0")/lib.sh"
pw_init
# Every agent here chooses explicitly (vmtest exports --pod-device auto for
# the other tests; the flag would override node.podDevice below).
PW_AGENT_ARGS=

scratch="${PW_PREFIX}-nkprobe"
ip netns add "$scratch"
if in_ns "$scratch" ip link add pwtnk0 type netkit >/dev/null 2>&1; then has_netkit=1; else has_netkit=0; fi
ip netns del "$scratch"
want_auto=$([ "$has_netkit" = 1 ] && echo netkit || echo veth)
log "kernel $(uname -r): netkit devices $([ "$has_netkit" = 1 ] && echo available || echo unavailable)"

pod_device() { # NODE: podDevice from its node.json, "absent" without one
	local f="/run/podwire/${PW_NODE_INST[$1]}/node.json"
	if [ -f "$f" ]; then jq -r '.podDevice // "absent"' "$f"; else echo absent; fi
}

# auto
if PW_AGENT_ARGS="--pod-device auto" node_up n1 192.168.1.11 10.244.1.0/27; then
	check_eq "auto: podDevice is $want_auto on this kernel" "$(pod_device n1)" "$want_auto"
	if pod_add n1 a; then
		check_eq "auto: the pod's host device is a $want_auto" \
			"$(in_ns "${PW_PREFIX}-n1" ip -d -j link show | jq -r '[.[] | select(.ifname | startswith("pw")) | .linkinfo.info_kind] | join(",")')" \
			"$want_auto"
		check "auto: the node reaches its pod" in_ns "${PW_PREFIX}-n1" ping -c 1 -W 2 "${PW_POD_IP[a]}"
		check "auto: cnitool check" cni n1 check a
		check "auto: cnitool del" pod_del a
	else
		not_ok "auto: cnitool add"
	fi
else
	not_ok "auto: agent starts"
fi

# netkit requested explicitly
if [ "$has_netkit" = 1 ]; then
	if PW_AGENT_ARGS="--pod-device netkit" node_up n2 192.168.1.12 10.244.2.0/27; then
		check_eq "netkit: podDevice netkit" "$(pod_device n2)" netkit
		# A restart moves the pod to the new program in place
		# (bpf_link_update on the pinned netkit link): same link, so the
		# pod's side is never left without a program (it would blackhole).
		if pod_add n2 k; then
			pin=$(ls -d "/sys/fs/bpf/podwire/${PW_NODE_INST[n2]}/links/pw"* 2>/dev/null | head -n1)
			id1=$(bpftool -j link show pinned "$pin" 2>/dev/null | jq -r '"\(.id) \(.type)"')
			agent_stop n2
			PW_AGENT_ARGS="--pod-device netkit" agent_start n2 >/dev/null || not_ok "netkit: agent restarts"
			id2=$(bpftool -j link show pinned "$pin" 2>/dev/null | jq -r '"\(.id) \(.type)"')
			check_eq "netkit: the restart kept the pod's netkit link (updated in place)" "$id2" "$id1"
			check_eq "netkit: the pod's link is a netkit link" "${id1#* }" netkit
			check "netkit: the node reaches its pod after the restart" in_ns "${PW_PREFIX}-n2" ping -c 1 -W 2 "${PW_POD_IP[k]}"
			check "netkit: cnitool del" pod_del k
		else
			not_ok "netkit: cnitool add"
		fi
	else
		not_ok "netkit: agent starts on a kernel with netkit"
	fi
else
	if PW_AGENT_ARGS="--pod-device netkit" node_up n2 192.168.1.12 10.244.2.0/27 >/dev/null; then
		not_ok "netkit: the agent started on a kernel without netkit"
	else
		ok "netkit: the agent refuses to start on a kernel without netkit"
	fi
	check_eq "netkit: the error says why" \
		"$(grep -c 'netkit requested (--pod-device) but this kernel cannot create netkit devices' "$PW_TMP/n2/agent.log")" 1
	check_eq "netkit: no node.json published" "$(pod_device n2)" absent
fi

# One kind per node: a veth node (the default) with a pod; then the config
# file asks for netkit (node.podDevice), which must be refused while the pod
# exists, and --pod-device auto (the flag wins over the file) keeps veth.
if node_up n3 192.168.1.13 10.244.3.0/27 && pod_add n3 b; then
	check_eq "veth (default): podDevice veth" "$(pod_device n3)" veth
	agent_stop n3
	jq '.node.podDevice = "netkit"' "$PW_TMP/n3/config.json" > "$PW_TMP/n3/config.new" &&
		mv "$PW_TMP/n3/config.new" "$PW_TMP/n3/config.json"
	if agent_start n3 >/dev/null; then
		not_ok "mixed: the agent switched a node with veth pods to netkit"
		agent_stop n3
	elif [ "$has_netkit" = 1 ]; then
		check_eq "mixed: node.podDevice netkit refused while a veth pod exists, saying why" \
			"$(grep -c '1 pod(s) of this node have veth devices; netkit needs a node without pods' "$PW_TMP/n3/agent.log")" 1
	else
		check_eq "mixed: node.podDevice netkit refused on a kernel without netkit, saying why" \
			"$(grep -c 'netkit requested (node.podDevice) but this kernel cannot create netkit devices' "$PW_TMP/n3/agent.log")" 1
	fi
	if PW_AGENT_ARGS="--pod-device auto" agent_start n3; then
		check_eq "mixed: auto keeps the pods' kind (veth)" "$(pod_device n3)" veth
		check "mixed: the pod still answers after the restarts" in_ns "${PW_PREFIX}-n3" ping -c 1 -W 2 "${PW_POD_IP[b]}"
	else
		not_ok "mixed: auto starts on a node with veth pods"
	fi
	check "mixed: cnitool del" pod_del b
else
	not_ok "veth node with a pod"
fi

# Across nodes over VXLAN with auto pods: the BPF tunnel (encap.h, decap.h)
# from whichever hook the pod's device gives, none of it through pw_vxlan.
vx_count() { in_ns "${PW_PREFIX}-$1" ip -j -s link show pw_vxlan | jq ".[0].stats64.$2.packets"; }
lan_up
if PW_AGENT_ARGS="--pod-device auto" node_up node1 192.168.1.11 10.244.1.0/24 vxlan "$(seed_peers_json node1)" &&
	PW_AGENT_ARGS="--pod-device auto" node_up node2 192.168.1.12 10.244.2.0/24 vxlan "$(seed_peers_json node2)" &&
	pod_add node1 x1 && pod_add node2 x2; then
	check_eq "vxlan, auto: both nodes' pods are $want_auto" "$(pod_device node1) $(pod_device node2)" \
		"$want_auto $want_auto"
	tx=$(vx_count node1 tx) rx=$(vx_count node2 rx)
	check "vxlan, auto: 1 MiB TCP from node1's pod to node2's arrives intact" \
		tcp_transfer_intact x1 x2 "${PW_POD_IP[x2]}" 7020 1048576
	check_eq "vxlan, auto: none of it through pw_vxlan (sender tx, receiver rx)" \
		"$(($(vx_count node1 tx) - tx)) $(($(vx_count node2 rx) - rx))" "0 0"
	# A new connection each try: under TCG (vmtest) the server's fork of a
	# shell can outlast the client's 3 s wait.
	for port in 7031 7032 7033; do
		seen=$(tcp_peer_seen x1 x2 "$port")
		[ "$seen" = "${PW_POD_IP[x1]}" ] && break
	done
	check_eq "vxlan, auto: the receiver saw the sender's pod IP" "$seen" "${PW_POD_IP[x1]}"
else
	not_ok "vxlan, auto: two nodes with a pod each"
fi

[ "$PW_FAILED" = 0 ]
