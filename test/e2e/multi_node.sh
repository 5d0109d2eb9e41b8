# The three-node cluster of the seeds, in the routing mode $MODE (native or
# vxlan): sourced by test_multi_node_native.sh and test_multi_node_vxlan.sh.
set -u
. "$(dirname "$0")/lib.sh"
pw_init

lan_up
for n in 1 2 3; do
	node_up "node$n" "192.168.1.1$n" "10.244.$n.0/24" "$MODE" "$(seed_peers_json node$n)" ||
		{ not_ok "agent of node$n starts ($MODE)"; exit 1; }
done
ok "three agents up in $MODE mode"
ext_up world 192.168.1.100

PODS=()
for n in 1 2 3; do
	for p in a b; do
		pod="n${n}$p"
		if pod_add "node$n" "$pod"; then PODS+=("$pod"); else not_ok "add $pod on node$n"; fi
	done
done
check_eq "six pods, each in its node's pod CIDR" \
	"$(for p in "${PODS[@]}"; do echo "${PW_POD_IP[$p]%.*}"; done | sort | uniq -c | awk '{print $1}' | tr '\n' ' ')" "2 2 2 "

# Every ordered pair: TCP and UDP, and the receiver sees the sender's pod IP.
bad_tcp=() bad_udp=()
for from in "${PODS[@]}"; do
	for to in "${PODS[@]}"; do
		[ "$from" = "$to" ] && continue
		[ "$(tcp_peer_seen "$from" "$to")" = "${PW_POD_IP[$from]}" ] || bad_tcp+=("$from->$to")
		[ "$(udp_peer_seen "$from" "$to")" = "${PW_POD_IP[$from]}" ] || bad_udp+=("$from->$to")
	done
done
check_eq "TCP between all 30 ordered pod pairs, source IP preserved ($MODE)" "${bad_tcp[*]:-}" ""
check_eq "UDP between all 30 ordered pod pairs, source IP preserved ($MODE)" "${bad_udp[*]:-}" ""

check "node1 (host stack) reaches a pod on node2 ($MODE)" in_ns "${PW_PREFIX}-node1" ping -c 1 -W 2 "${PW_POD_IP[n2a]}"

# 1 MiB over TCP across nodes, checked byte for byte.
vxlan_rx() { in_ns "${PW_PREFIX}-node3" ip -j -s link show pw_vxlan 2>/dev/null | jq '.[0].stats64.rx.packets // 0'; }
vxlan_tx() { in_ns "${PW_PREFIX}-node1" ip -j -s link show pw_vxlan 2>/dev/null | jq '.[0].stats64.tx.packets // 0'; }
[ "$MODE" = vxlan ] && rx_before=$(vxlan_rx) && tx_before=$(vxlan_tx)
check "1 MiB TCP transfer node1 -> node3 arrives intact ($MODE)" \
	tcp_transfer_intact n1a n3a "${PW_POD_IP[n3a]}" 7010 1048576
# The transfer's packets, GSO ones (up to 64 KiB) included, are decapsulated
# by uplink_ingress: none goes up through node3's pw_vxlan (decap.h).
[ "$MODE" = vxlan ] && check_eq "1 MiB transfer: every packet decapsulated in BPF, none through pw_vxlan on node3" \
	"$(($(vxlan_rx) - rx_before))" 0
# ... and encapsulated by pod_ingress on node1: none goes out through its pw_vxlan (encap.h).
[ "$MODE" = vxlan ] && check_eq "1 MiB transfer: every packet encapsulated in BPF, none through pw_vxlan on node1" \
	"$(($(vxlan_tx) - tx_before))" 0

# The outside world sees the node's IP and its replies find the pod.
check_eq "pod on node2 -> outside host over TCP: outside sees node2's IP" "$(tcp_peer_seen n2a world)" 192.168.1.12
check_eq "pod on node3 -> outside host over UDP: outside sees node3's IP" "$(udp_peer_seen n3b world)" 192.168.1.13
check "pod on node1 pings the outside host" in_ns "${PW_PREFIX}-n1a" ping -c 1 -W 2 192.168.1.100
nat() { in_ns "${PW_PREFIX}-$1" "$BUILD/podwirectl" --instance "${PW_NODE_INST[$1]}" -o json nat --addr 192.168.1.100; }
check_eq "podwirectl nat on node2: the pod's TCP flow to the outside host, as node2's IP, masquerade" \
	"$(nat node2 | jq -r --arg p "${PW_POD_IP[n2a]}" '[.[] | select(.from == $p and .protocol == "tcp")][0] | "\(.as) \(.remote) \(.kind)"')" \
	"192.168.1.12 192.168.1.100 masquerade"
check_eq "pod -> other node's IP is not masqueraded" "$(
	nsenter --net="/run/netns/${PW_PREFIX}-node2" timeout 10 socat -T5 TCP-LISTEN:7011,reuseaddr SYSTEM:'echo $SOCAT_PEERADDR' &
	wait_listen_ns() { for i in $(seq 50); do in_ns "${PW_PREFIX}-node2" ss -lnt | grep -q ':7011 ' && return; sleep 0.05; done; }
	wait_listen_ns
	in_ns "${PW_PREFIX}-n1a" timeout 5 socat -T3 - TCP:192.168.1.12:7011 </dev/null 2>/dev/null)" "${PW_POD_IP[n1a]}"

# The kernel picks the node's own ephemeral ports from the masquerade range
# without knowing our claims. A node connection from the very port a pod's
# masqueraded flow holds towards the same remote is moved to another port,
# and both connections work.
nsenter --net="/run/netns/${PW_PREFIX}-world" timeout 15 socat TCP-LISTEN:7012,reuseaddr,fork \
	SYSTEM:'echo $SOCAT_PEERPORT; cat' &
srv=$!
wait_listen world 7012 tcp
(echo first; sleep 2; echo second) |
	in_ns "${PW_PREFIX}-n1a" timeout 8 socat -T5 - TCP:192.168.1.100:7012 >"$PW_TMP/pod_flow" 2>/dev/null &
podc=$!
for i in $(seq 60); do [ -s "$PW_TMP/pod_flow" ] && break; sleep 0.05; done
pod_port=$(head -1 "$PW_TMP/pod_flow")
node_port=$(in_ns "${PW_PREFIX}-node1" timeout 5 socat -T2 - TCP:192.168.1.100:7012,sourceport="${pod_port:-0}" \
	</dev/null 2>/dev/null | head -1)
wait "$podc"
kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null
check "node1's own connection from the port a pod's masqueraded flow holds is moved ($MODE): pod ${pod_port:-?}, node ${node_port:-?}" \
	test -n "$pod_port" -a -n "$node_port" -a "$node_port" != "$pod_port"
check_eq "the pod's masqueraded connection on that port carries on ($MODE)" \
	"$(tail -n +2 "$PW_TMP/pod_flow" | tr '\n' ' ')" "first second "
check_eq "podwirectl nat on node1 shows the node's flow moved off the pod's port ($MODE)" \
	"$(nat node1 | jq -r --argjson p "${pod_port:-0}" '[.[] | select(.fromPort == $p and .kind == "node,moved")][0].asPort')" \
	"${node_port:-?}"

# Path MTU discovery through masquerade: the far host is behind a link of
# MTU 1280 but announces MSS 1460, so the pod's full-size segments do not
# fit. The router's
# "fragmentation needed" is addressed to the node IP and must reach the
# pod, quoting the pod's own packet, or the transfer stalls.
narrow_path_up 1280
in_ns "${PW_PREFIX}-node1" ip route add 203.0.113.0/24 via 192.168.1.1
check "256 KiB from a pod to a host behind a 1280-byte MTU link, masqueraded, arrives ($MODE)" \
	tcp_transfer_intact n1a far 203.0.113.2 7013 262144
check "the pod learnt the path MTU from the translated ICMP error ($MODE)" \
	sh -c "nsenter --net=/run/netns/${PW_PREFIX}-n1a ip route get 203.0.113.2 | grep -q 'mtu 1280'"

# Removing a peer from node1's config cuts node1 off from node2's pods only.
cp "$PW_TMP/node1/config.json" "$PW_TMP/node1/config.full"
jq '.peers |= map(select(.name != "node2"))' "$PW_TMP/node1/config.full" > "$PW_TMP/node1/config.tmp"
mv "$PW_TMP/node1/config.tmp" "$PW_TMP/node1/config.json"
sleep 1
if in_ns "${PW_PREFIX}-n1a" ping -c 1 -W 1 "${PW_POD_IP[n2a]}" >/dev/null 2>&1; then
	not_ok "after removing peer node2, node1's pod still reaches node2's pod"
else
	ok "after removing peer node2, node1's pods cannot reach node2's pods"
fi
check_eq "... while node1 -> node3 keeps working" "$(tcp_peer_seen n1a n3a)" "${PW_POD_IP[n1a]}"
check_eq "... and node3 -> node2 keeps working" "$(tcp_peer_seen n3b n2b)" "${PW_POD_IP[n3b]}"
cp "$PW_TMP/node1/config.full" "$PW_TMP/node1/config.tmp"
mv "$PW_TMP/node1/config.tmp" "$PW_TMP/node1/config.json"
sleep 1
check_eq "adding peer node2 back restores node1 -> node2" "$(tcp_peer_seen n1b n2a)" "${PW_POD_IP[n1b]}"

# --uninstall (as an operator runs it: no --config) takes back what the agent
# put into the node's kernel: peer routes, the peers' neighbour entries it
# made (managed or permanent) on the uplink, pw_vxlan and what hangs off it.
agent_stop node1
in_ns "${PW_PREFIX}-node1" "$BUILD/podwired" --instance "${PW_NODE_INST[node1]}" --uninstall >"$PW_TMP/uninstall.log" 2>&1 ||
	sed 's/^/# uninstall: /' "$PW_TMP/uninstall.log"
check_eq "after --uninstall: no peer route (proto 112) on node1 ($MODE)" \
	"$(in_ns "${PW_PREFIX}-node1" ip -4 route show proto 112)" ""
check_eq "after --uninstall: no managed or permanent neighbour entry on node1's uplink ($MODE)" \
	"$(in_ns "${PW_PREFIX}-node1" ip -4 neigh show dev eth0 | grep -E 'managed|PERMANENT')" ""
# (The agent's only FDB is pw_vxlan's: with the device gone none can remain.)
check_eq "after --uninstall: no pw_vxlan, no FDB entry of it on node1 ($MODE)" \
	"$(in_ns "${PW_PREFIX}-node1" ip -o link show dev pw_vxlan 2>/dev/null; in_ns "${PW_PREFIX}-node1" bridge fdb show | grep pw_vxlan)" ""

# Teardown leaves nothing behind.
insts=$(printf '%s\n' "${PW_NODE_INST[@]}")
pw_cleanup
trap - EXIT
left=$(ip netns list | grep -c "^${PW_PREFIX}-")
for i in $insts; do
	[ -e "/sys/fs/bpf/podwire/$i" ] && left=$((left + 1))
	[ -e "/run/podwire/$i" ] && left=$((left + 1))
done
check_eq "teardown leaves no namespace, pin or state dir" "$left" 0
[ "$PW_FAILED" = 0 ]
