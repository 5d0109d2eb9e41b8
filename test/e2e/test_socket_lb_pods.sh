#!/usr/bin/env bash
# Socket load balancing for pods: a pod's connect()/sendmsg() to a ClusterIP
# goes straight to a backend (getpeername still says the ClusterIP, no
# conntrack entry), connected and unconnected UDP included; a pod that opted
# out (CNI_ARGS PODWIRE_SOCKET_LB=false) and the pods of another node take
# the per-packet path (conntrack entries); the CNI plugin keeps pw_sock_netns
# in step with its pods and the agent drops stale entries; an agent restart
# during connections through socket LB loses nothing and new connects during
# it are still translated; a terminating endpoint keeps its open connection
# and gets new ones only when it is the last.
set -u
. "$(dirname "$0")/lib.sh"
pw_init
HERE=$(cd "$(dirname "$0")" && pwd)
SC="/usr/bin/python3 $HERE/sockclient.py"
LB="/usr/bin/python3 $HERE/lbclient.py"
EL="/usr/bin/python3 $HERE/echoloop.py"
if [ -z "$(findmnt -t cgroup2 -n -o TARGET | head -1)" ]; then
	ok "# SKIP no cgroup2 mount: socket load balancing cannot be tested"
	exit 0
fi

pin() { echo "/sys/fs/bpf/podwire/${PW_NODE_INST[$1]}/$2"; }
# sock_netns NODE: "IP FLAGS" per pw_sock_netns entry, sorted
sock_netns() {
	bpftool -j map dump pinned "$(pin "$1" pw_sock_netns)" 2>/dev/null |
		jq -r '.[] | .formatted.value | "\(.ip | map(tostring) | join(".")) \(.flags)"' | sort
}
# ct_from NODE IP: conntrack entries (forward) of flows IP opened
ct_from() {
	bpftool -j map dump pinned "$(pin "$1" pw_ct)" 2>/dev/null |
		jq --arg ip "$2" '[.[] | .formatted.key | select((.saddr | map(tostring) | join(".")) == $ip and .dir == 0)] | length'
}
# spread_of POD VIP PORT N: "be1 be2" counts of N new connections, and errors
spread_of() {
	in_ns "${PW_PREFIX}-$1" $LB spread "$2" "$3" "$4"
}
progress() { cat "$PW_TMP/$1.progress" 2>/dev/null || echo 0; }
wait_progress() { # NAME MIN: waits up to 5 s for NAME's echo loop to reach MIN
	local i
	for i in $(seq 100); do [ "$(progress "$1")" -ge "$2" ] && return 0; sleep 0.05; done
	return 1
}

lan_up
node_up node1 192.168.1.11 10.244.1.0/24 native "$(seed_peers_json node1)" || { not_ok "agent of node1 starts"; exit 1; }
# node2 runs without socket LB: its pods are the per-packet baseline, and
# node1's programs must not touch them.
PW_AGENT_ARGS="--socket-lb off" node_up node2 192.168.1.12 10.244.2.0/24 native "$(seed_peers_json node2)" ||
	{ not_ok "agent of node2 starts"; exit 1; }
pod_add node1 be1 || not_ok "backend pod be1"
pod_add node2 be2 || not_ok "backend pod be2"
pod_add node1 cli || not_ok "client pod cli"
pod_add node1 cliopt CNI_ARGS="IgnoreUnknown=1;PODWIRE_SOCKET_LB=false" || not_ok "opted-out client pod cliopt"
pod_add node2 cli2 || not_ok "client pod cli2 on node2"
for n in 1 2; do
	bg_in_ns "${PW_PREFIX}-be$n" socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:"echo be$n; cat"
	bg_in_ns "${PW_PREFIX}-be$n" socat UDP-RECVFROM:8081,fork,reuseaddr SYSTEM:"read -r _; echo be$n"
done
for n in 1 2; do wait_listen "be$n" 8080 tcp; wait_listen "be$n" 8081 udp; done
B1=${PW_POD_IP[be1]} B2=${PW_POD_IP[be2]}
be() { echo '{"ip": "'"$1"'", "port": '"$2"${3:+', "terminating": true'}'}'; }
term_svc() { echo '{"name": "term", "vip": "10.96.0.20", "port": 80, "protocol": "tcp", "backends": ['"$1"']}'; }
services() {
	echo '[{"name": "web", "vip": "10.96.0.10", "port": 80, "protocol": "tcp", "nodePort": 30080,
	        "backends": ['"$(be "$B1" 8080), $(be "$B2" 8080)"']},
	       {"name": "dns", "vip": "10.96.0.12", "port": 53, "protocol": "udp",
	        "backends": ['"$(be "$B1" 8081), $(be "$B2" 8081)"']}, '"$1"']'
}
for n in 1 2; do set_services "node$n" "$(services "$(term_svc "$(be "$B2" 8080)")")" || not_ok "services on node$n"; done

# --- pw_sock_netns: node1's pods, with the opt-out flag; never node2's.
check_eq "pw_sock_netns of node1: its 3 pods, cliopt flagged PW_EP_F_NO_SOCK_LB (1)" \
	"$(sock_netns node1 | tr '\n' ' ')" \
	"$(printf '%s\n' "$B1 0" "${PW_POD_IP[cli]} 0" "${PW_POD_IP[cliopt]} 1" | sort | tr '\n' ' ')"
check_eq "pw_sock_netns of node2 (socket LB off there): written all the same, for a later agent with it on" \
	"$(sock_netns node2 | wc -l)" 2

# --- a pod through socket LB: the ClusterIP at connect(), no conntrack.
got=$(in_ns "${PW_PREFIX}-cli" $SC tcp 10.96.0.10 80)
check "pod -> ClusterIP (socket LB): answered, getpeername is the ClusterIP ($got)" \
	grep -Eq '^be[12] 10\.96\.0\.10:80$' <<<"$got"
spread=$(spread_of cli 10.96.0.10 80 40)
log "pod cli -> ClusterIP, 40 connections: $spread"
check "pod -> ClusterIP (socket LB): both backends, the one on node2 too, none failed ($spread)" \
	jq -e '(.be1 // 0) >= 5 and (.be2 // 0) >= 5 and ((.be1 // 0) + (.be2 // 0)) == 40' <<<"$spread"
got=$(in_ns "${PW_PREFIX}-cli" $SC udp-connected 10.96.0.12 53)
check "pod -> ClusterIP, connected UDP (socket LB): source and peer are the ClusterIP ($got)" \
	grep -Eq '^be[12] 10\.96\.0\.12:53 10\.96\.0\.12:53$' <<<"$got"
got=$(in_ns "${PW_PREFIX}-cli" $SC udp 10.96.0.12 53)
check "pod -> ClusterIP, unconnected UDP (socket LB): the answer comes from the ClusterIP ($got)" \
	grep -Eq '^be[12] 10\.96\.0\.12:53$' <<<"$got"
check_eq "pod through socket LB: no conntrack entry on node1 for its 43 flows (no per-packet NAT)" \
	"$(ct_from node1 "${PW_POD_IP[cli]}")" 0
got=$(in_ns "${PW_PREFIX}-cli" $SC tcp 192.168.1.11 30080)
check "pod -> its node's IP:nodePort (socket LB): answered, peer the node port ($got)" \
	grep -Eq '^be[12] 192\.168\.1\.11:30080$' <<<"$got"

# The server's side of a translated connection: a plain connection from the pod.
in_ns "${PW_PREFIX}-cli" $EL 10.96.0.20 80 "$PW_TMP/srv.stop" "$PW_TMP/srv.progress" > "$PW_TMP/srv.out" &
PW_BG_PIDS+=($!)
wait_progress srv 3
check "backend be2 sees the pod's connection from the pod's IP to its own address" \
	bash -c "nsenter --net=/run/netns/${PW_PREFIX}-be2 ss -Htn state established '( sport = :8080 )' | grep -q '$B2:8080 *${PW_POD_IP[cli]}:'"
touch "$PW_TMP/srv.stop"; wait "${PW_BG_PIDS[-1]}"

# --- the opted-out pod and node2's pod: the per-packet path, conntrack entries.
got=$(in_ns "${PW_PREFIX}-cliopt" $SC tcp 10.96.0.10 80)
check "opted-out pod -> ClusterIP (per-packet): answered, peer the ClusterIP ($got)" \
	grep -Eq '^be[12] 10\.96\.0\.10:80$' <<<"$got"
got=$(in_ns "${PW_PREFIX}-cliopt" $SC udp 10.96.0.12 53)
check "opted-out pod -> ClusterIP, unconnected UDP (per-packet): from the ClusterIP ($got)" \
	grep -Eq '^be[12] 10\.96\.0\.12:53$' <<<"$got"
check "opted-out pod: its flows are in node1's conntrack (per-packet NAT): $(ct_from node1 "${PW_POD_IP[cliopt]}")" \
	test "$(ct_from node1 "${PW_POD_IP[cliopt]}")" -ge 2
got=$(in_ns "${PW_PREFIX}-cli2" $SC tcp 10.96.0.10 80)
check "node2's pod -> ClusterIP: answered ($got)" grep -Eq '^be[12] 10\.96\.0\.10:80$' <<<"$got"
check "node2's pod: untouched by node1's socket programs, translated per packet on node2 (conntrack)" \
	test "$(ct_from node2 "${PW_POD_IP[cli2]}")" -ge 1

# --- CNI DEL removes the pod's entry; the agent drops entries whose endpoint is gone.
pod_add node1 tmp || not_ok "pod tmp"
TMPIP=${PW_POD_IP[tmp]}
check "ADD: pw_sock_netns has the new pod" grep -qx "$TMPIP 0" <<<"$(sock_netns node1)"
pod_del tmp >/dev/null
check "DEL: its pw_sock_netns entry is gone" bash -c "! grep -q '^$TMPIP ' <<<'$(sock_netns node1)'"
# A leftover: cookie 12345 for 10.244.1.250 on ifindex 999, no such endpoint.
bpftool map update pinned "$(pin node1 pw_sock_netns)" key hex 39 30 00 00 00 00 00 00 \
	value hex 0a f4 01 fa e7 03 00 00 00 00 00 00 00 00 00 00
check "a stale entry written by hand is there" grep -q '^10.244.1.250 ' <<<"$(sock_netns node1)"

# --- agent restart during connections through socket LB.
in_ns "${PW_PREFIX}-cli" $EL 10.96.0.10 80 "$PW_TMP/el.stop" "$PW_TMP/el.progress" > "$PW_TMP/el.out" &
el=$!
PW_BG_PIDS+=($el)
in_ns "${PW_PREFIX}-cliopt" $EL 10.96.0.10 80 "$PW_TMP/el.stop" "$PW_TMP/elopt.progress" > "$PW_TMP/elopt.out" &
elopt=$!
PW_BG_PIDS+=($elopt)
wait_progress el 5 || not_ok "the echo loop through socket LB runs"
wait_progress elopt 5 || not_ok "the echo loop through the per-packet path runs"
agent_stop node1
p0=$(progress el)
fails=0
for i in 1 2 3 4 5; do
	got=$(in_ns "${PW_PREFIX}-cli" $SC tcp 10.96.0.10 80)
	grep -Eq '^be[12] 10\.96\.0\.10:80$' <<<"$got" || fails=$((fails + 1))
done
check_eq "agent stopped: 5 new connects from the pod still translated (pinned links and maps)" "$fails" 0
check "agent stopped: the long-lived connection kept exchanging ($p0 -> $(progress el))" \
	wait_progress el $((p0 + 10))
agent_start node1 || not_ok "agent of node1 restarts"
p1=$(progress el)
wait_progress el $((p1 + 10)) || true
touch "$PW_TMP/el.stop"
wait "$el"; wait "$elopt"
got=$(tail -1 "$PW_TMP/el.out")
check "restart: the connection through socket LB lost nothing ($got)" \
	grep -Eq '^OK [0-9]+ be[12] 10\.96\.0\.10:80$' <<<"$got"
got=$(tail -1 "$PW_TMP/elopt.out")
check "restart: the opted-out pod's connection (per-packet, conntrack) lost nothing ($got)" \
	grep -Eq '^OK [0-9]+ be[12] 10\.96\.0\.10:80$' <<<"$got"
check_eq "after the restart: the stale entry is gone, the 3 pods' stay" \
	"$(sock_netns node1 | cut -d' ' -f1 | tr '\n' ' ')" \
	"$(printf '%s\n' "$B1" "${PW_POD_IP[cli]}" "${PW_POD_IP[cliopt]}" | sort | tr '\n' ' ')"
spread=$(spread_of cli 10.96.0.10 80 20)
check "after the restart: 20 new connections from the pod, none failed ($spread)" \
	jq -e '((.be1 // 0) + (.be2 // 0)) == 20' <<<"$spread"
check_eq "after the restart: still no conntrack entry for the pod" "$(ct_from node1 "${PW_POD_IP[cli]}")" 0

# --- graceful termination: be2 is the only backend of "term"; a connection
# to it stays while be2 is terminating and be1 takes the new ones; once be2
# is the last, terminating, it gets them again.
rm -f "$PW_TMP/el.stop"
in_ns "${PW_PREFIX}-cli" $EL 10.96.0.20 80 "$PW_TMP/el.stop" "$PW_TMP/term.progress" > "$PW_TMP/term.out" &
el=$!
PW_BG_PIDS+=($el)
wait_progress term 5 || not_ok "the echo loop to the term service runs"
set_services node1 "$(services "$(term_svc "$(be "$B2" 8080 t), $(be "$B1" 8080)")")" || not_ok "be2 terminating"
spread=$(spread_of cli 10.96.0.20 80 20)
check_eq "be2 terminating, be1 ready: the 20 new connections all go to be1" "$spread" '{"be1": 20}'
p0=$(progress term)
check "be2 terminating: its open connection keeps exchanging" wait_progress term $((p0 + 10))
set_services node1 "$(services "$(term_svc "$(be "$B2" 8080 t)")")" || not_ok "be2 terminating, the last"
spread=$(spread_of cli 10.96.0.20 80 10)
check_eq "be2 terminating and the last backend: it gets the new connections" "$spread" '{"be2": 10}'
touch "$PW_TMP/el.stop"
wait "$el"
got=$(tail -1 "$PW_TMP/term.out")
check "the connection to the terminating endpoint lost nothing ($got)" \
	grep -Eq '^OK [0-9]+ be2 10\.96\.0\.20:80$' <<<"$got"

[ "$PW_FAILED" = 0 ]
