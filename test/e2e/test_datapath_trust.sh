#!/usr/bin/env bash
# Who can get a packet with a source address of their choosing into a pod
# (docs/datapath.md "Trust"). Two nodes on a LAN with a host that is not a
# node ("world"), first in VXLAN mode, then in native routing.
#
# VXLAN: tunnel packets (built with test/e2e/inject.py, as any process can
# build them with a UDP socket) from a pod to its own node, from a pod to the
# other node, from the world, in fragments from the world (the kernel's
# pw_vxlan path) and from a real node with another VNI are delivered 0 times
# and each counted under its reason, in `metrics` and `monitor`; the same
# packet from a real node with the cluster's VNI is delivered (the injector
# works), and so is real cross-node traffic. Unencapsulated packets with a
# pod source from the world are dropped too.
# Native: a pod source of the node's own pod CIDR from the world is dropped.
set -u
. "$(dirname "$0")/lib.sh"
pw_init

INJECT="$(cd "$(dirname "$0")" && pwd)/inject.py"
N=5                     # packets per case
FORGED=10.244.2.66      # a source in node2's pod CIDR nobody has

peers_of() { # NODE: the other node of the two, as peers JSON
	case $1 in
	node1) echo '[{"name": "node2", "ip": "192.168.1.12", "podCIDR": "10.244.2.0/24"}]' ;;
	node2) echo '[{"name": "node1", "ip": "192.168.1.11", "podCIDR": "10.244.1.0/24"}]' ;;
	esac
}

cluster_up() { # MODE: the LAN, two nodes, the world; pods n1a n1b on node1, n2a on node2
	local n p
	lan_up
	for n in 1 2; do
		node_up "node$n" "192.168.1.1$n" "10.244.$n.0/24" "$1" "$(peers_of node$n)" ||
			{ not_ok "agent of node$n starts ($1)"; return 1; }
	done
	ext_up world 192.168.1.100
	# The world routes node1's pods via node1, as a LAN router could.
	in_ns "${PW_PREFIX}-world" ip route add 10.244.1.0/24 via 192.168.1.11
	for p in n1a n1b n2a; do
		pod_add "node${p:1:1}" "$p" || { not_ok "add $p ($1)"; return 1; }
	done
	ok "two nodes, the world and three pods up in $1 mode"
}

ctl() { # NODE ARGS...: podwirectl on that node
	local node=$1; shift
	in_ns "${PW_PREFIX}-$node" "$BUILD/podwirectl" --instance "${PW_NODE_INST[$node]}" "$@"
}

drops() { # NODE REASON DIRECTION: packets dropped for that reason so far
	ctl "$1" metrics -o json | jq --arg r "$2" --arg d "$3" \
		'[.counters[] | select(.kind == "drop" and .name == $r and .direction == $d) | .packets] | add // 0'
}

# sink POD PORT: counts the UDP datagrams that reach POD:PORT (in $PW_TMP/sink.PORT)
sink() {
	: >"$PW_TMP/sink.$2"
	bg_in_ns "${PW_PREFIX}-$1" socat -u UDP-RECV:"$2" OPEN:"$PW_TMP/sink.$2",append
	wait_listen "$1" "$2" udp
}
arrived() { # PORT: how many injected datagrams reached the sink
	sleep 0.5
	grep -c injected "$PW_TMP/sink.$1"
}

# expect_dropped NAME NODE REASON DIRECTION PORT SENDER_NS INJECT_ARGS...: the
# injection reaches the sink on PORT 0 times and NODE counts N more drops.
expect_dropped() {
	local name=$1 node=$2 reason=$3 dir=$4 port=$5 from=$6 before
	shift 6
	before=$(drops "$node" "$reason" "$dir")
	in_ns "${PW_PREFIX}-$from" python3 "$INJECT" "$@" || not_ok "$name: the injector failed"
	check_eq "$name: delivered 0 of $N times" "$(arrived "$port")" 0
	check_eq "$name: $N counted as $reason ($dir) on $node" "$(( $(drops "$node" "$reason" "$dir") - before ))" "$N"
}

expect_delivered() { # NAME PORT SENDER_NS INJECT_ARGS...
	local name=$1 port=$2 from=$3
	shift 3
	in_ns "${PW_PREFIX}-$from" python3 "$INJECT" "$@" || not_ok "$name: the injector failed"
	check_eq "$name: delivered $N of $N times" "$(arrived "$port")" "$N"
}

# ---------- VXLAN ----------
cluster_up vxlan || exit 1
N1A=${PW_POD_IP[n1a]} N1B=${PW_POD_IP[n1b]} N2A=${PW_POD_IP[n2a]}

# Every drop event node1 sees while the attacks run, by reason.
ctl node1 monitor -o json --count $((5 * N)) --timeout 60 >"$PW_TMP/monitor.json" 2>"$PW_TMP/monitor.err" &
mon=$!
for i in $(seq 50); do grep -q "monitoring instance" "$PW_TMP/monitor.err" 2>/dev/null && break; sleep 0.1; done

sink n1b 7101
expect_dropped "vxlan: pod-built VXLAN packet to its own node's IP" node1 pod-to-tunnel-port egress 7101 n1a \
	vxlan 192.168.1.11 1 "$FORGED" "$N1B" 7101 "$N"
sink n2a 7102
expect_dropped "vxlan: pod-built VXLAN packet to the other node's IP" node1 pod-to-tunnel-port egress 7102 n1a \
	vxlan 192.168.1.12 1 "$FORGED" "$N2A" 7102 "$N"
sink n1b 7103
expect_dropped "vxlan: VXLAN packet from a LAN host that is not a node" node1 tunnel-foreign-source ingress 7103 \
	world vxlan 192.168.1.11 1 "$FORGED" "$N1B" 7103 "$N"
sink n1b 7104
expect_dropped "vxlan: the same in fragments (kernel path, overlay_ingress)" node1 tunnel-foreign-source ingress \
	7104 world vxlan 192.168.1.11 1 "$FORGED" "$N1B" 7104 "$N" 1600
sink n1b 7105
expect_dropped "vxlan: VXLAN packet from a real node with another VNI" node1 tunnel-bad-vni ingress 7105 node2 \
	vxlan 192.168.1.11 42 "$FORGED" "$N1B" 7105 "$N"
wait "$mon"
check_eq "monitor on node1 showed each attack under its reason" \
	"$(jq -r '.reason' "$PW_TMP/monitor.json" | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')" \
	"pod-to-tunnel-port=$((2 * N)) tunnel-bad-vni=$N tunnel-foreign-source=$((2 * N)) "
check_eq "monitor: the LAN host's tunnel packets name it as the source" \
	"$(jq -r 'select(.reason == "tunnel-foreign-source") | .saddr' "$PW_TMP/monitor.json" | sort -u)" 192.168.1.100

# To another address of its node (not a node IP, so not refused at the
# pod): the kernel's VXLAN socket takes it, and overlay_ingress finds the
# pod as the tunnel's sender.
in_ns "${PW_PREFIX}-node1" ip addr add 192.168.77.1/32 dev lo
sink n1b 7111
expect_dropped "vxlan: pod-built VXLAN packet to another address of its node" node1 tunnel-foreign-source ingress \
	7111 n1a vxlan 192.168.77.1 1 "$FORGED" "$N1B" 7111 "$N"

# The node network's other hosts may reach pods (routed), but not as a pod.
sink n1b 7106
expect_dropped "vxlan: unencapsulated from the LAN with a peer's pod source" node1 forged-pod-source ingress 7106 \
	world raw "$FORGED" "$N1B" 7106 "$N"
sink n1b 7107
expect_dropped "vxlan: unencapsulated from the LAN with node1's own pod source" node1 forged-pod-source ingress \
	7107 world raw 10.244.1.77 "$N1B" 7107 "$N"

# Controls: what a real node tunnels, and a LAN host as itself, get through.
sink n1b 7108
expect_delivered "vxlan: the same VXLAN packet from a real node with the cluster's VNI" 7108 node2 \
	vxlan 192.168.1.11 1 "$FORGED" "$N1B" 7108 "$N"
sink n1b 7109
expect_delivered "vxlan: a LAN host's own packets routed to a pod" 7109 world raw 192.168.1.100 "$N1B" 7109 "$N"

# Real cross-node traffic is unaffected, and nothing of it is dropped.
fs1=$(drops node1 tunnel-foreign-source ingress) fs2=$(drops node2 tunnel-foreign-source ingress)
check_eq "vxlan: TCP node1 -> node2 pod, source kept" "$(tcp_peer_seen n1a n2a)" "$N1A"
check_eq "vxlan: TCP node2 -> node1 pod, source kept" "$(tcp_peer_seen n2a n1b)" "$N2A"
check_eq "vxlan: UDP node1 -> node2 pod, source kept" "$(udp_peer_seen n1b n2a)" "$N1B"
check_eq "vxlan: UDP node2 -> node1 pod, source kept" "$(udp_peer_seen n2a n1a)" "$N2A"
check "vxlan: node1's host reaches node2's pod" in_ns "${PW_PREFIX}-node1" ping -c 2 -i 0.2 -W 2 "$N2A"
check "vxlan: node2's host reaches node1's pod" in_ns "${PW_PREFIX}-node2" ping -c 2 -i 0.2 -W 2 "$N1A"
check "vxlan: 512 KiB node1 -> node2 over TCP arrives intact" tcp_transfer_intact n1a n2a "$N2A" 7110 524288
# A node whose route to a peer prefers another of its addresses still
# tunnels from its node IP, the address the peer knows it by.
in_ns "${PW_PREFIX}-node1" ip addr add 192.168.1.211/24 dev eth0
in_ns "${PW_PREFIX}-node1" ip route add 192.168.1.12/32 dev eth0 src 192.168.1.211
check_eq "vxlan: route to node2 with another source address: TCP node1 -> node2 pod, source kept" \
	"$(tcp_peer_seen n1a n2a 7112)" "$N1A"
check "vxlan: ... and node1's host reaches node2's pod" in_ns "${PW_PREFIX}-node1" ping -c 2 -i 0.2 -W 2 "$N2A"
in_ns "${PW_PREFIX}-node1" ip route del 192.168.1.12/32
check_eq "vxlan: real traffic dropped nowhere as tunnel-foreign-source" \
	"$(drops node1 tunnel-foreign-source ingress) $(drops node2 tunnel-foreign-source ingress)" "$fs1 $fs2"

pw_cleanup_nodes
ns_del "${PW_PREFIX}-world"

# ---------- native routing ----------
cluster_up native || exit 1
N1A=${PW_POD_IP[n1a]} N1B=${PW_POD_IP[n1b]} N2A=${PW_POD_IP[n2a]}
sink n1b 7201
expect_dropped "native: from the LAN with node1's own pod source" node1 forged-pod-source ingress 7201 \
	world raw 10.244.1.77 "$N1B" 7201 "$N"
sink n1b 7202
expect_dropped "native: from the LAN with the target pod's own address as source" node1 forged-pod-source \
	ingress 7202 world raw "$N1B" "$N1B" 7202 "$N"
sink n1b 7203
expect_delivered "native: a LAN host's own packets routed to a pod" 7203 world raw 192.168.1.100 "$N1B" 7203 "$N"
check_eq "native: TCP node2 -> node1 pod, source kept" "$(tcp_peer_seen n2a n1a)" "$N2A"
check_eq "native: UDP node1 -> node2 pod, source kept" "$(udp_peer_seen n1b n2a)" "$N1B"

[ "$PW_FAILED" = 0 ]
