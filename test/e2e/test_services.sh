#!/usr/bin/env bash
# Service load balancing on the three-node cluster: ClusterIP spread over
# backends on every node, session affinity, NodePort from outside on every
# node, backend removal under live connections, UDP, hairpin, and a service
# without backends.
set -u
. "$(dirname "$0")/lib.sh"
pw_init
LB="/usr/bin/python3 $(cd "$(dirname "$0")" && pwd)/lbclient.py"

lan_up
for n in 1 2 3; do
	node_up "node$n" "192.168.1.1$n" "10.244.$n.0/24" native "$(seed_peers_json node$n)" ||
		{ not_ok "agent of node$n starts"; exit 1; }
done
ext_up world 192.168.1.100
for n in 1 2 3; do pod_add "node$n" "be$n" || not_ok "backend pod be$n"; done
pod_add node1 cli || not_ok "client pod"
pod_add node2 cli2 || not_ok "second client pod"

# Each backend greets with its name and then echoes (TCP 8080), or answers
# UDP on 8081 with its name.
for n in 1 2 3; do
	bg_in_ns "${PW_PREFIX}-be$n" socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:"echo be$n; cat"
	bg_in_ns "${PW_PREFIX}-be$n" socat UDP-RECVFROM:8081,fork,reuseaddr SYSTEM:"read -r _; echo be$n"
done
for n in 1 2 3; do wait_listen "be$n" 8080 tcp; done

backends='[{"ip": "'${PW_POD_IP[be1]}'", "port": 8080}, {"ip": "'${PW_POD_IP[be2]}'", "port": 8080}, {"ip": "'${PW_POD_IP[be3]}'", "port": 8080}]'
udp_backends=$(sed 's/8080/8081/g' <<<"$backends")
services='[
 {"name": "web", "vip": "10.96.0.10", "port": 80, "protocol": "tcp", "nodePort": 30080, "algorithm": "random", "backends": '$backends'},
 {"name": "sticky", "vip": "10.96.0.11", "port": 80, "protocol": "tcp", "algorithm": "maglev", "affinityTimeoutSeconds": 60, "backends": '$backends'},
 {"name": "dns", "vip": "10.96.0.12", "port": 53, "protocol": "udp", "algorithm": "maglev", "backends": '$udp_backends'},
 {"name": "empty", "vip": "10.96.0.13", "port": 80, "protocol": "tcp", "backends": []},
 {"name": "deaf-local", "vip": "10.96.0.14", "port": 53, "protocol": "udp", "backends": [{"ip": "'${PW_POD_IP[be1]}'", "port": 8099}]},
 {"name": "deaf-remote", "vip": "10.96.0.15", "port": 53, "protocol": "udp", "backends": [{"ip": "'${PW_POD_IP[be3]}'", "port": 8099}]},
 {"name": "void", "vip": "10.96.0.16", "port": 53, "protocol": "udp", "backends": []},
 {"name": "etp-local", "vip": "10.96.0.17", "port": 80, "protocol": "tcp", "nodePort": 30081, "externalTrafficPolicy": "Local", "backends": '$backends'},
 {"name": "etp-one", "vip": "10.96.0.19", "port": 80, "protocol": "tcp", "nodePort": 30083, "externalTrafficPolicy": "Local", "healthCheckNodePort": 32002, "backends": [{"ip": "'${PW_POD_IP[be1]}'", "port": 8080}]},
 {"name": "itp-local", "vip": "10.96.0.18", "port": 80, "protocol": "tcp", "internalTrafficPolicy": "Local", "backends": '$backends'}
]'
for n in 1 2 3; do set_services "node$n" "$services"; done
for i in $(seq 50); do
	c=$(bpftool -j map dump pinned "/sys/fs/bpf/podwire/${PW_NODE_INST[node3]}/pw_services" 2>/dev/null | jq length 2>/dev/null)
	[ "${c:-0}" -ge 13 ] && break
	sleep 0.1
done
check_eq "services applied on node3 (10 ClusterIPs, 3 NodePort frontends)" "${c:-0}" 13

# 300 new connections to the ClusterIP spread over the three backends.
spread=$(in_ns "${PW_PREFIX}-cli" $LB spread 10.96.0.10 80 300)
log "ClusterIP spread over 300 connections: $spread"
for n in 1 2 3; do
	cnt=$(jq -r ".be$n // 0" <<<"$spread")
	if [ "$cnt" -ge 60 ] && [ "$cnt" -le 141 ]; then ok "backend be$n (node$n) got $cnt of 300 (20-47%)"
	else not_ok "backend be$n (node$n) got $cnt of 300, want 60-141: $spread"; fi
done
check_eq "no connection failed" "$(jq '[to_entries[] | select(.key | startswith("error"))] | length' <<<"$spread")" 0

# The backend sees the client's real pod IP.
seen=$(in_ns "${PW_PREFIX}-cli" timeout 5 socat -T3 - TCP:10.96.0.10:80 </dev/null 2>/dev/null | head -1)
case $seen in be[123]) ok "ClusterIP answered by $seen" ;; *) not_ok "ClusterIP answer: '$seen'" ;; esac

# Affinity: one client, one backend.
sticky=$(in_ns "${PW_PREFIX}-cli" $LB spread 10.96.0.11 80 30)
check_eq "ClientIP affinity pins 30 connections to one backend" "$(jq 'keys | length' <<<"$sticky")" 1

# UDP through a ClusterIP.
reply=$(in_ns "${PW_PREFIX}-cli2" $LB udp 10.96.0.12 53)
case $reply in be[123]) ok "UDP request/reply through a ClusterIP (answered by $reply)" ;; *) not_ok "UDP through ClusterIP: '$reply'" ;; esac

# UDP to a service whose backend does not listen: the backend's "port
# unreachable" reaches the client as if from the service, so a connected
# socket (as resolvers use) fails at once instead of waiting for a timeout.
check_eq "UDP to a ClusterIP whose backend on the same node does not listen: refused at once" \
	"$(in_ns "${PW_PREFIX}-cli" $LB udp-connected 10.96.0.14 53)" refused
check_eq "UDP to a ClusterIP whose backend on another node does not listen: refused at once" \
	"$(in_ns "${PW_PREFIX}-cli" $LB udp-connected 10.96.0.15 53)" refused

# Hairpin: a backend reaching the service may land on itself.
hp=$(in_ns "${PW_PREFIX}-be1" $LB spread 10.96.0.10 80 30)
check_eq "hairpin: a backend reaches its own service (30 connections, none failed)" \
	"$(jq '[to_entries[] | select(.key | startswith("error")) | .value] | add // 0' <<<"$hp")" 0

# No backends: a fast, explicit failure.
start=$(date +%s%N)
if in_ns "${PW_PREFIX}-cli" timeout 5 socat -T2 - TCP:10.96.0.13:80,connect-timeout=3 </dev/null >/dev/null 2>&1; then
	not_ok "connection to a service without backends succeeded"
else
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	ok "connection to a service without backends fails (${ms} ms)"
fi
check_eq "UDP to a service without backends: refused at once (ICMP port unreachable from the service)" \
	"$(in_ns "${PW_PREFIX}-cli" $LB udp-connected 10.96.0.16 53)" refused

# NodePort from outside the cluster, on every node's IP.
all=""
for n in 1 2 3; do
	np=$(in_ns "${PW_PREFIX}-world" $LB spread "192.168.1.1$n" 30080 30)
	log "NodePort via node$n: $np"
	check_eq "NodePort on node$n answers 30 connections from outside" \
		"$(jq '[to_entries[] | select(.key | startswith("be")) | .value] | add // 0' <<<"$np")" 30
	all+=$(jq -r 'keys[]' <<<"$np")$'\n'
done
check_eq "NodePort reaches backends on all three nodes" "$(grep -c . <<<"$(sort -u <<<"$all" | grep '^be')")" 3

# Traffic policies "Local": externalTrafficPolicy keeps a node port on the
# node's own backends (the client's address kept: no SNAT to another node),
# internalTrafficPolicy keeps a ClusterIP on the client node's backends.
for n in 1 2; do
	np=$(in_ns "${PW_PREFIX}-world" $LB spread "192.168.1.1$n" 30081 30)
	check_eq "externalTrafficPolicy Local: NodePort on node$n serves 30 connections from node$n's backend only" \
		"$(jq -c . <<<"$np")" "{\"be$n\":30}"
done
etp_cip=$(in_ns "${PW_PREFIX}-cli" $LB spread 10.96.0.17 80 60)
check_eq "externalTrafficPolicy Local: the ClusterIP still spreads over every node's backend" \
	"$(jq -r 'keys | map(select(startswith("be"))) | length' <<<"$etp_cip")" 3
seen=$(in_ns "${PW_PREFIX}-world" timeout 5 socat -T3 - TCP:192.168.1.12:30081 </dev/null 2>/dev/null | head -1)
check_eq "externalTrafficPolicy Local: answered by the node's own backend" "$seen" be2
check_eq "externalTrafficPolicy Local: podwirectl services names the node port alone" \
	"$(in_ns "${PW_PREFIX}-node2" "$BUILD/podwirectl" --instance "${PW_NODE_INST[node2]}" -o json services 2>/dev/null |
	   jq -r '[.[] | select(.vip == "0.0.0.0") | .name] | sort | join(",")')" etp-local,etp-one
# The health check port of an externalTrafficPolicy Local service, as a
# load balancer asks it: 200 and the count where the node has endpoints, 503 where not.
hc() { # NODE_IP: "localEndpoints status"
	local out
	out=$(in_ns "${PW_PREFIX}-world" curl -s -m 5 -w '\n%{http_code}' "http://$1:32002/healthz")
	echo "$(head -1 <<<"$out" | jq -r .localEndpoints 2>/dev/null) $(tail -1 <<<"$out")"
}
check_eq "healthCheckNodePort on node1 (its backend): localEndpoints 1, 200" "$(hc 192.168.1.11)" "1 200"
check_eq "healthCheckNodePort on node2 (no backend): localEndpoints 0, 503" "$(hc 192.168.1.12)" "0 503"
check_eq "healthCheckNodePort names the service" \
	"$(in_ns "${PW_PREFIX}-world" curl -s -m 5 http://192.168.1.11:32002/ | jq -r .service.name)" etp-one
refused=$(in_ns "${PW_PREFIX}-world" timeout 5 socat -T2 - TCP:192.168.1.12:30083,connect-timeout=3 </dev/null 2>&1)
check "externalTrafficPolicy Local: a node without local backends refuses its node port" grep -qi refused <<<"$refused"
for c in cli:1 cli2:2; do
	itp=$(in_ns "${PW_PREFIX}-${c%:*}" $LB spread 10.96.0.18 80 30)
	check_eq "internalTrafficPolicy Local: a client on node${c#*:} reaches only node${c#*:}'s backend" \
		"$(jq -c . <<<"$itp")" "{\"be${c#*:}\":30}"
done

# Removing a backend while long-lived connections run to the others loses none of them.
in_ns "${PW_PREFIX}-cli" $LB hold 10.96.0.10 80 12 "$PW_TMP/trigger" > "$PW_TMP/hold.out" &
holder=$!
for i in $(seq 50); do [ -s "$PW_TMP/hold.out" ] && break; sleep 0.1; done
log "long-lived connections: $(head -1 "$PW_TMP/hold.out")"
less_be3=$(jq -c 'map(if .name == "web" then .backends |= map(select(.ip != "'${PW_POD_IP[be3]}'")) else . end)' <<<"$services")
for n in 1 2 3; do set_services "node$n" "$less_be3"; done
sleep 1
after=$(in_ns "${PW_PREFIX}-cli" $LB spread 10.96.0.10 80 60)
check_eq "after removing be3 no new connection goes to it" "$(jq '.be3 // 0' <<<"$after")" 0
touch "$PW_TMP/trigger"
wait "$holder"
report=$(tail -1 "$PW_TMP/hold.out")
names=$(head -1 "$PW_TMP/hold.out" | jq -r '.backends[]')
alive=$(jq -r '.alive[]' <<<"$report")
lost=$(paste <(echo "$names") <(echo "$alive") | awk '$1 != "be3" && $2 != "true"' | wc -l)
kept=$(paste <(echo "$names") <(echo "$alive") | awk '$1 != "be3"' | wc -l)
check_eq "connections to the remaining backends survive the removal (${kept} checked)" "$lost" 0

[ "$PW_FAILED" = 0 ]
