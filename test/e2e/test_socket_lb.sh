#!/usr/bin/env bash
# Socket load balancing (cgroup connect4/sendmsg4/recvmsg4/getpeername4):
# the node's own processes (and so hostNetwork pods) reach ClusterIPs and
# NodePorts; UDP replies and getpeername show the frontend; an instance acts
# only on its own node's namespace; the pinned links survive an agent
# restart (moved in place) and --uninstall removes them.
set -u
. "$(dirname "$0")/lib.sh"
pw_init
LB="/usr/bin/python3 $(cd "$(dirname "$0")" && pwd)/lbclient.py"
SC="/usr/bin/python3 $(cd "$(dirname "$0")" && pwd)/sockclient.py"
CG=$(findmnt -t cgroup2 -n -o TARGET | head -1)
if [ -z "$CG" ]; then
	ok "# SKIP no cgroup2 mount: socket load balancing cannot be tested"
	exit 0
fi
SOCK_PROGS="sock_connect4 sock_sendmsg4 sock_recvmsg4 sock_getpeername4"

# link_info NODE: "prog:link_id:prog_id" per pinned socket link, sorted
link_info() {
	local p pin
	for p in $SOCK_PROGS; do
		pin="/sys/fs/bpf/podwire/${PW_NODE_INST[$1]}/links/$p"
		[ -e "$pin" ] || continue
		echo "$p:$(bpftool -j link show pinned "$pin" 2>/dev/null | jq -r '"\(.id):\(.prog_id)"')"
	done | sort
}
# cgroup_progs: ids of the programs attached to the cgroup2 root, sorted
cgroup_progs() {
	bpftool -j cgroup show "$CG" 2>/dev/null | jq -r '.[].id' | sort -n
}
# attached NODE: how many of NODE's link programs are on the cgroup2 root
attached() {
	local ids n=0 l
	ids=$(cgroup_progs)
	for l in $(link_info "$1"); do
		grep -qx "${l##*:}" <<<"$ids" && n=$((n + 1))
	done
	echo "$n"
}

lan_up
for n in 1 2 3; do
	node_up "node$n" "192.168.1.1$n" "10.244.$n.0/24" native "$(seed_peers_json node$n)" ||
		{ not_ok "agent of node$n starts"; exit 1; }
done
for n in 1 2; do pod_add "node$n" "be$n" || not_ok "backend pod be$n"; done
for n in 1 2; do
	bg_in_ns "${PW_PREFIX}-be$n" socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:"echo be$n; cat"
	bg_in_ns "${PW_PREFIX}-be$n" socat UDP-RECVFROM:8081,fork,reuseaddr SYSTEM:"read -r _; echo be$n"
done
for n in 1 2; do wait_listen "be$n" 8080 tcp; wait_listen "be$n" 8081 udp; done

backends='[{"ip": "'${PW_POD_IP[be1]}'", "port": 8080}, {"ip": "'${PW_POD_IP[be2]}'", "port": 8080}]'
udp_backends=$(sed 's/8080/8081/g' <<<"$backends")
services='[
 {"name": "web", "vip": "10.96.0.10", "port": 80, "protocol": "tcp", "nodePort": 30080, "backends": '$backends'},
 {"name": "sticky", "vip": "10.96.0.11", "port": 80, "protocol": "tcp", "algorithm": "maglev", "affinityTimeoutSeconds": 60, "backends": '$backends'},
 {"name": "dns", "vip": "10.96.0.12", "port": 53, "protocol": "udp", "backends": '$udp_backends'},
 {"name": "empty", "vip": "10.96.0.13", "port": 80, "protocol": "tcp", "backends": []}
]'
# node3 is another node of the machine without these services: nothing of
# node1's or node2's may translate its sockets.
for n in 1 2; do set_services "node$n" "$services" || not_ok "services applied on node$n"; done

for n in 1 2 3; do
	check_eq "node$n: 4 socket links pinned and attached to $CG" "$(attached node$n)" 4
done

# From the node's own network namespace (not a pod).
spread=$(in_ns "${PW_PREFIX}-node1" $LB spread 10.96.0.10 80 60)
log "ClusterIP from node1's own namespace, 60 connections: $spread"
for n in 1 2; do
	cnt=$(jq -r ".be$n // 0" <<<"$spread")
	if [ "$cnt" -ge 10 ]; then ok "node process -> ClusterIP reaches be$n (node$n): $cnt of 60"
	else not_ok "node process -> ClusterIP: be$n got $cnt of 60: $spread"; fi
done
check_eq "node process -> ClusterIP: no connection failed" \
	"$(jq '[to_entries[] | select(.key | startswith("error")) | .value] | add // 0' <<<"$spread")" 0
sticky=$(in_ns "${PW_PREFIX}-node1" $LB spread 10.96.0.11 80 20)
check_eq "node process -> ClusterIP with ClientIP affinity (Maglev): 20 connections, one backend" \
	"$(jq -r 'keys | map(select(startswith("be"))) | length' <<<"$sticky")" 1

got=$(in_ns "${PW_PREFIX}-node1" $SC tcp 10.96.0.10 80)
check "TCP: getpeername shows the ClusterIP, not the backend ($got)" grep -Eq '^be[12] 10\.96\.0\.10:80$' <<<"$got"
for fe in 127.0.0.1 192.168.1.11; do
	got=$(in_ns "${PW_PREFIX}-node1" $SC tcp "$fe" 30080)
	check "node process -> $fe:30080 (NodePort) answered by a backend, peer $fe:30080 ($got)" \
		grep -Eq "^be[12] $fe:30080\$" <<<"$got"
done
got=$(in_ns "${PW_PREFIX}-node1" $SC udp-connected 10.96.0.12 53)
check "connected UDP through a ClusterIP: answered, source and peer are the ClusterIP ($got)" \
	grep -Eq '^be[12] 10\.96\.0\.12:53 10\.96\.0\.12:53$' <<<"$got"
got=$(in_ns "${PW_PREFIX}-node1" $SC udp 10.96.0.12 53)
check "unconnected UDP through a ClusterIP: answered from the ClusterIP ($got)" \
	grep -Eq '^be[12] 10\.96\.0\.12:53$' <<<"$got"
check_eq "connect to a ClusterIP without backends: ECONNREFUSED at once" \
	"$(in_ns "${PW_PREFIX}-node1" $SC tcp 10.96.0.13 80)" error:ECONNREFUSED

# node3 has no such service: its sockets go out untranslated (no route to the VIP).
got=$(in_ns "${PW_PREFIX}-node3" $SC tcp 10.96.0.10 80)
check_eq "another node's namespace is untouched by node1's and node2's programs" "$got" error:ENETUNREACH
got=$(in_ns "${PW_PREFIX}-node3" $SC tcp 127.0.0.1 30080)
check_eq "another node's 127.0.0.1:30080 is untouched (nothing listens there)" "$got" error:ECONNREFUSED

# Restart: the pinned links stay attached while no agent runs, and the new
# agent moves them to its programs in place (same link, new program).
before=$(link_info node1)
in_ns "${PW_PREFIX}-node1" $LB hold 10.96.0.10 80 6 "$PW_TMP/trigger" > "$PW_TMP/hold.out" &
holder=$!
for i in $(seq 50); do [ -s "$PW_TMP/hold.out" ] && break; sleep 0.1; done
agent_stop node1
check_eq "agent stopped: node1's socket links still attached" "$(attached node1)" 4
got=$(in_ns "${PW_PREFIX}-node1" $SC tcp 10.96.0.10 80)
check "agent stopped: node process -> ClusterIP still works ($got)" grep -Eq '^be[12] ' <<<"$got"
agent_start node1 || not_ok "agent of node1 restarts"
after=$(link_info node1)
check_eq "restart: the same 4 links" "$(cut -d: -f1,2 <<<"$after" | tr '\n' ' ')" "$(cut -d: -f1,2 <<<"$before" | tr '\n' ' ')"
check "restart: every link runs a new program" \
	test -z "$(comm -12 <(cut -d: -f3 <<<"$before" | sort) <(cut -d: -f3 <<<"$after" | sort))"
check_eq "restart: 4 links attached" "$(attached node1)" 4
touch "$PW_TMP/trigger"
wait "$holder"
check_eq "connections through socket LB survive the restart (6 held)" \
	"$(tail -1 "$PW_TMP/hold.out" | jq '[.alive[] | select(. == true)] | length')" 6
got=$(in_ns "${PW_PREFIX}-node1" $LB spread 10.96.0.10 80 20)
check_eq "after the restart: 20 new connections to the ClusterIP, none failed" \
	"$(jq '[to_entries[] | select(.key | startswith("be")) | .value] | add // 0' <<<"$got")" 20

# --socket-lb off removes the hooks of that node only.
agent_stop node2
PW_AGENT_ARGS="--socket-lb off" agent_start node2 || not_ok "agent of node2 starts with --socket-lb off"
check_eq "--socket-lb off: node2 has no socket link" "$(link_info node2 | wc -l)" 0
check_eq "--socket-lb off: node2's process -> ClusterIP is not translated" \
	"$(in_ns "${PW_PREFIX}-node2" $SC tcp 10.96.0.10 80)" error:ENETUNREACH
check_eq "--socket-lb off on node2: node1's 4 links untouched" "$(attached node1)" 4

# --uninstall: no link, pin or program of node1 left on the cgroup.
progs=$(link_info node1 | cut -d: -f3)
agent_stop node1
in_ns "${PW_PREFIX}-node1" "$BUILD/podwired" --instance "${PW_NODE_INST[node1]}" --uninstall >/dev/null 2>&1
check "uninstall: no link pin left" test ! -e "/sys/fs/bpf/podwire/${PW_NODE_INST[node1]}/links/sock_connect4"
check_eq "uninstall: none of node1's programs left on $CG" \
	"$(comm -12 <(cgroup_progs) <(sort -n <<<"$progs") | wc -l)" 0
check_eq "uninstall of node1: node3's links untouched" "$(attached node3)" 4

[ "$PW_FAILED" = 0 ]
