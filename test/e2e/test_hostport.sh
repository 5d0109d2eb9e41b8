#!/usr/bin/env bash
# hostPort (the CNI portMappings capability) served by the datapath, no
# portmap plugin: pods added by cnitool with CAP_ARGS portMappings, reached
# from a host on the LAN over the uplink, from pods of the same and of
# another node, and from the node's own namespace (as a hostNetwork pod) on
# 127.0.0.1 and the node IP through the socket LB. The Kubernetes
# conformance case ("no conflict between pods with same hostPort but
# different hostIP and protocol": 127.0.0.1 and the node IP over TCP, the
# node IP over UDP) with three pods; the plugin's error JSON for bad and
# conflicting mappings, nothing leaked by a refused ADD or after DEL (also
# DEL without CNI_NETNS); the entries survive the agent's restart and its
# service reconciler.
set -u
. "$(dirname "$0")/lib.sh"
pw_init
SC="/usr/bin/python3 $(cd "$(dirname "$0")" && pwd)/sockclient.py"
PLUGIN="$BUILD/podwire"
HP=54323             # the conformance spec's port (inside the ephemeral range, as there)

lan_up
for n in 1 2; do
	node_up "node$n" "192.168.1.1$n" "10.244.$n.0/24" native "$(seed_peers_json node$n)" ||
		{ not_ok "agent of node$n starts"; exit 1; }
done
ext_up client 192.168.1.100
INST=${PW_NODE_INST[node1]}
PIN=/sys/fs/bpf/podwire/$INST
# node1's conflist declares the capability, as podwired's own conflist does.
cl="$PW_TMP/node1/net.d/10-podwire.conflist"
jq '.plugins[0].capabilities.portMappings = true' "$cl" > "$cl.tmp" && mv "$cl.tmp" "$cl"

hp_frontends() { # hostPort frontends in node1's pw_services
	bpftool -j map dump pinned "$PIN/pw_services" | jq '[.[] | select(.formatted.key.scope == 2)] | length'
}
hp_backends() { # backends in the plugin's id range (abi.h PW_HOSTPORT_ID_BASE)
	bpftool -j map dump pinned "$PIN/pw_backends" | jq '[.[] | select(.formatted.key >= 16777216)] | length'
}
hp_rest() { # slots and revnat entries in the plugin's id range
	echo "$(bpftool -j map dump pinned "$PIN/pw_svc_slots" | jq '[.[] | select(.formatted.key.svc_id >= 16777216)] | length')/$(
		bpftool -j map dump pinned "$PIN/pw_revnat" | jq '[.[] | select(.formatted.key >= 16777216)] | length')"
}
caps() { echo "{\"portMappings\": $1}"; }
serve_tcp() { # POD PORT: answers "POD <peer address>"
	bg_in_ns "${PW_PREFIX}-$1" socat TCP-LISTEN:"$2",fork,reuseaddr SYSTEM:"echo $1 \$SOCAT_PEERADDR"
}
serve_udp() {
	bg_in_ns "${PW_PREFIX}-$1" socat UDP-RECVFROM:"$2",fork,reuseaddr SYSTEM:"read -r _; echo $1 \$SOCAT_PEERADDR"
}
tcp_from() { # NS-SUFFIX HOST PORT
	in_ns "${PW_PREFIX}-$1" timeout 5 socat -T3 - TCP:"$2":"$3" </dev/null 2>/dev/null
}
udp_from() { # NS-SUFFIX HOST PORT (UDP may lose a datagram: retried)
	local try got
	for try in 1 2 3; do
		got=$(echo hi | in_ns "${PW_PREFIX}-$1" timeout 3 socat -T1 - UDP:"$2":"$3" 2>/dev/null)
		[ -n "$got" ] && break
		sleep 0.3
	done
	echo "$got"
}

# ---- the conformance case: same hostPort, different hostIP and protocol ----
pod_add node1 lo CAP_ARGS="$(caps '[{"hostPort": '$HP', "containerPort": 8080, "protocol": "tcp", "hostIP": "127.0.0.1"}]')" ||
	not_ok "ADD pod lo: tcp hostPort $HP on hostIP 127.0.0.1"
pod_add node1 nodeip CAP_ARGS="$(caps '[{"hostPort": '$HP', "containerPort": 8080, "protocol": "tcp", "hostIP": "192.168.1.11"}]')" ||
	not_ok "ADD pod nodeip: tcp hostPort $HP on hostIP = the node IP"
# As containerd sends it (go-cni's Go field names as keys, protocol lowercase).
pod_add node1 udp CAP_ARGS="$(caps '[{"HostPort": '$HP', "ContainerPort": 8081, "Protocol": "udp", "HostIP": "192.168.1.11"}]')" ||
	not_ok "ADD pod udp: udp hostPort $HP on the node IP, keys as containerd writes them"
pod_add node1 any CAP_ARGS="$(caps '[{"hostPort": 9090, "containerPort": 90}, {"hostPort": 9091, "containerPort": 91, "protocol": "udp", "hostIP": ""}]')" ||
	not_ok "ADD pod any: hostPorts 9090/tcp and 9091/udp on every address"
pod_add node1 c1 || not_ok "ADD client pod c1 on node1"
pod_add node2 c2 || not_ok "ADD client pod c2 on node2"
check_eq "five hostPort frontends written by the plugin" "$(hp_frontends)" 5
check_eq "five hostPort backends, slots and revnat entries" "$(hp_backends) $(hp_rest)" "5 5/5"

serve_tcp lo 8080; serve_tcp nodeip 8080; serve_udp udp 8081; serve_tcp any 90; serve_udp any 91
wait_listen lo 8080 tcp; wait_listen nodeip 8080 tcp; wait_listen udp 8081 udp
wait_listen any 90 tcp; wait_listen any 91 udp

# From the node's own namespace: a hostNetwork pod, as the spec's client.
got=$(tcp_from node1 127.0.0.1 $HP)
check "node netns -> 127.0.0.1:$HP (tcp) reaches pod lo ($got)" grep -q '^lo ' <<<"$got"
got=$(tcp_from node1 192.168.1.11 $HP)
check "node netns -> node IP:$HP (tcp) reaches pod nodeip, not lo ($got)" grep -q '^nodeip ' <<<"$got"
got=$(udp_from node1 192.168.1.11 $HP)
check "node netns -> node IP:$HP (udp) reaches pod udp ($got)" grep -q '^udp ' <<<"$got"
got=$(in_ns "${PW_PREFIX}-node1" $SC udp 192.168.1.11 $HP)
check "node netns, unconnected udp: the answer comes from node IP:$HP ($got)" grep -q " 192.168.1.11:$HP\$" <<<"$got"
got=$(in_ns "${PW_PREFIX}-node1" $SC tcp 127.0.0.1 $HP)
check "node netns, tcp: getpeername shows 127.0.0.1:$HP ($got)" grep -q " 127.0.0.1:$HP\$" <<<"$got"
for a in 127.0.0.1 192.168.1.11; do
	got=$(tcp_from node1 $a 9090)
	check "node netns -> $a:9090 (wildcard hostIP) reaches pod any ($got)" grep -q '^any ' <<<"$got"
	got=$(udp_from node1 $a 9091)
	check "node netns -> $a:9091 udp (wildcard hostIP) reaches pod any ($got)" grep -q '^any ' <<<"$got"
done

# From the LAN, over the uplink: the client's address is kept.
got=$(tcp_from client 192.168.1.11 $HP)
check_eq "LAN host -> node IP:$HP (tcp): pod nodeip, client IP kept" "$got" "nodeip 192.168.1.100"
got=$(udp_from client 192.168.1.11 $HP)
check_eq "LAN host -> node IP:$HP (udp): pod udp, client IP kept" "$got" "udp 192.168.1.100"
got=$(in_ns "${PW_PREFIX}-client" $SC udp 192.168.1.11 $HP)
check "LAN host, udp: the reply comes from node IP:$HP ($got)" grep -q " 192.168.1.11:$HP\$" <<<"$got"
got=$(tcp_from client 192.168.1.11 9090)
check_eq "LAN host -> node IP:9090 (wildcard): pod any" "$got" "any 192.168.1.100"
got=$(in_ns "${PW_PREFIX}-client" $SC tcp 192.168.1.11 9090)
check "LAN host, tcp: peer is node IP:9090 ($got)" grep -q " 192.168.1.11:9090\$" <<<"$got"
got=$(tcp_from client 192.168.1.11 9092)
check_eq "LAN host -> a port without hostPort: nothing (the host's, no listener)" "$got" ""

# From pods: same node (pod_ingress), other node (over the fabric).
got=$(tcp_from c1 192.168.1.11 $HP)
check_eq "pod on node1 -> node IP:$HP: pod nodeip, source the pod's" "$got" "nodeip ${PW_POD_IP[c1]}"
got=$(udp_from c1 192.168.1.11 9091)
check_eq "pod on node1 -> node IP:9091 udp (wildcard): pod any" "$got" "any ${PW_POD_IP[c1]}"
got=$(tcp_from c2 192.168.1.11 $HP)
check_eq "pod on node2 -> node1's IP:$HP: pod nodeip, source the pod's" "$got" "nodeip ${PW_POD_IP[c2]}"
got=$(tcp_from c2 192.168.1.11 9090)
check_eq "pod on node2 -> node1's IP:9090 (wildcard): pod any" "$got" "any ${PW_POD_IP[c2]}"

# ---- the agent's services and restart leave the plugin's entries alone ------
set_services node1 '[{"name": "web", "vip": "10.96.0.10", "port": 80, "protocol": "tcp", "nodePort": 30080,
	"backends": [{"ip": "'${PW_POD_IP[nodeip]}'", "port": 8080}]}]' || not_ok "services applied on node1"
set_services node1 '[]' || not_ok "services removed on node1"
agent_stop node1
agent_start node1 || not_ok "agent of node1 restarts"
set_services node1 '[{"name": "web2", "vip": "10.96.0.11", "port": 80, "protocol": "tcp",
	"backends": [{"ip": "'${PW_POD_IP[lo]}'", "port": 8080}]}]' || not_ok "services applied after the restart"
check_eq "after services applied, removed, an agent restart and another apply: five hostPort frontends" \
	"$(hp_frontends) $(hp_backends) $(hp_rest)" "5 5 5/5"
got=$(tcp_from client 192.168.1.11 $HP)
check_eq "after the agent's restart: LAN host -> node IP:$HP still pod nodeip" "$got" "nodeip 192.168.1.100"

# ---- refused ADDs: error JSON, nothing left --------------------------------
conf() { # PORTMAPPINGS_JSON
	printf '{"cniVersion":"1.0.0","name":"podwire","type":"podwire","instance":"%s","logFile":"%s","runtimeConfig":{"portMappings":%s}}' \
		"$INST" "$PW_TMP/node1/cni.log" "$1"
}
plugin() { # VERB CONTAINERID NETNS|- PORTMAPPINGS_JSON: sets OUT, RC
	local envs=(CNI_COMMAND="$1" CNI_PATH="$BUILD" CNI_CONTAINERID="$2" CNI_IFNAME=eth0)
	[ "$3" = - ] || envs+=(CNI_NETNS="$3")
	OUT=$(conf "$4" | in_ns "${PW_PREFIX}-node1" env -i PATH="$PATH" "${envs[@]}" "$PLUGIN" 2>/dev/null)
	RC=$?
}
counts() { # veths, reservations, endpoints, hostPort frontends/backends/slots+revnat of node1
	echo "veths=$(in_ns "${PW_PREFIX}-node1" ip -o link show | grep -c ': pw[0-9a-f]\{12\}@')" \
		"resv=$(ls "/run/podwire/$INST/ipam" | grep -c '^[0-9]')" \
		"eps=$(bpftool -j map dump pinned "$PIN/pw_endpoints" | jq length)" \
		"hp=$(hp_frontends)/$(hp_backends)/$(hp_rest)"
}
ip netns add "${PW_PREFIX}-x"
PW_PODS+=(x)
before=$(counts)
refuse() { # NAME WANT_CODE MSG_PART MAPPINGS
	plugin ADD x "/run/netns/${PW_PREFIX}-x" "$4"
	check_eq "$1: code $2" "$RC/$(jq -r '.code // empty' <<<"$OUT")" "1/$2"
	check "$1: the message says '$3' ($(jq -r .msg <<<"$OUT"))" grep -qF -- "$3" <<<"$(jq -r .msg <<<"$OUT")"
	check_eq "$1: nothing left (veth, address, endpoint, hostPort entries)" "$(counts)" "$before"
}
refuse "the node IP's tcp $HP again" 110 "pod ${PW_POD_IP[nodeip]} holds tcp 192.168.1.11:$HP" \
	'[{"hostPort": '$HP', "containerPort": 80, "hostIP": "192.168.1.11"}]'
refuse "tcp $HP on every address (127.0.0.1 and the node IP hold it)" 110 "is taken" \
	'[{"hostPort": '$HP', "containerPort": 80}]'
refuse "127.0.0.1:9090 (the wildcard holds it)" 110 "holds tcp *:9090" \
	'[{"hostPort": 9090, "containerPort": 80, "hostIP": "127.0.0.1"}]'
refuse "a free mapping beside a taken one" 110 "is taken" \
	'[{"hostPort": 7000, "containerPort": 80}, {"hostPort": 9091, "containerPort": 80, "protocol": "udp"}]'
refuse "hostPort 70000" 7 "hostPort\" must be a port 1-65535" '[{"hostPort": 70000, "containerPort": 80}]'
refuse "containerPort 0" 7 "containerPort\" must be a port 1-65535" '[{"hostPort": 7000, "containerPort": 0}]'
refuse "protocol sctp" 7 "must be \"tcp\" or \"udp\"" '[{"hostPort": 7000, "containerPort": 80, "protocol": "sctp"}]'
refuse "hostIP 10.0.0.300" 7 "hostIP\" must be a unicast IPv4 address" \
	'[{"hostPort": 7000, "containerPort": 80, "hostIP": "10.0.0.300"}]'
refuse "hostIP ::" 7 "IPv4-only" '[{"hostPort": 7000, "containerPort": 80, "hostIP": "::"}]'

# udp 9090 is free (the wildcard holds tcp only); ADD then DEL without CNI_NETNS.
plugin ADD x "/run/netns/${PW_PREFIX}-x" '[{"hostPort": 9090, "containerPort": 9090, "protocol": "udp"}, {"hostPort": 7000, "containerPort": 7000, "hostIP": "192.168.1.11"}]'
check_eq "ADD with udp 9090 (tcp 9090 is another pod's) and tcp 7000: accepted" "$RC" 0
check_eq "two more hostPort frontends" "$(hp_frontends)" 7
serve_udp x 9090
wait_listen x 9090 udp
got=$(udp_from client 192.168.1.11 9090)
check_eq "LAN host -> node IP:9090 udp: pod x, beside tcp 9090 of pod any" "$got" "x 192.168.1.100"
plugin DEL x - '[]'
check_eq "DEL without CNI_NETNS: success" "$RC" 0
check_eq "DEL without CNI_NETNS: everything gone (veth, address, endpoint, hostPort entries)" "$(counts)" "$before"
plugin DEL x - '[]'
check_eq "DEL again: success (idempotent)" "$RC" 0
got=$(udp_from client 192.168.1.11 9090)
check_eq "after DEL: node IP:9090 udp answers nothing" "$got" ""

# ---- DEL frees the port for another pod --------------------------------------
pod_del nodeip >/dev/null || not_ok "DEL pod nodeip"
PW_POD_NODE[nodeip]=
check_eq "DEL pod nodeip: its hostPort entries gone, the others kept" "$(hp_frontends) $(hp_backends) $(hp_rest)" "4 4 4/4"
got=$(tcp_from client 192.168.1.11 $HP)
check_eq "after DEL: node IP:$HP tcp reaches nobody" "$got" ""
got=$(tcp_from node1 127.0.0.1 $HP)
check "after DEL of pod nodeip: 127.0.0.1:$HP still pod lo ($got)" grep -q '^lo ' <<<"$got"
pod_add node1 next CAP_ARGS="$(caps '[{"hostPort": '$HP', "containerPort": 8080, "hostIP": "192.168.1.11"}]')"
check "the freed node IP:$HP can be taken by another pod" test -n "${PW_POD_IP[next]:-}"
serve_tcp next 8080
wait_listen next 8080 tcp
got=$(tcp_from client 192.168.1.11 $HP)
check_eq "LAN host -> node IP:$HP: the new pod" "$got" "next 192.168.1.100"

for p in lo udp any next c1; do pod_del "$p" >/dev/null || not_ok "DEL pod $p"; PW_POD_NODE[$p]=; done
check_eq "every pod deleted: no hostPort entry left on node1" "$(hp_frontends) $(hp_backends) $(hp_rest)" "0 0 0/0"

# GC (CNI 1.1.0) of an attachment the runtime no longer lists: its hostPort goes with it.
plugin ADD x "/run/netns/${PW_PREFIX}-x" '[{"hostPort": 7001, "containerPort": 7001}]'
check_eq "ADD x again with tcp 7001: one hostPort frontend" "$RC/$(hp_frontends)" "0/1"
OUT=$(printf '{"cniVersion":"1.1.0","name":"podwire","type":"podwire","instance":"%s","cni.dev/valid-attachments":[]}' "$INST" |
	in_ns "${PW_PREFIX}-node1" env -i PATH="$PATH" CNI_COMMAND=GC CNI_PATH="$BUILD" "$PLUGIN" 2>/dev/null)
check_eq "GC without x among the valid attachments: success" "$?" 0
check_eq "GC: x's veth, address, endpoint and hostPort entries gone" "$(counts)" \
	"veths=0 resv=0 eps=0 hp=0/0/0/0"
[ "$PW_FAILED" = 0 ]
