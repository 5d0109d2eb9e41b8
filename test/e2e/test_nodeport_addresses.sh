#!/usr/bin/env bash
# NodePort on every address of the node: a second address added to the
# uplink at runtime serves the node port (and stops when removed);
# cluster.nodePortAddresses (a reload) and --nodeport-addresses (a flag,
# over the config) leave an address outside their CIDRs to the host stack;
# the NodePort range reserved in the node netns's ip_local_reserved_ports,
# merged with what was there, taken back on --uninstall, and the root
# namespace's sysctl never touched. ICMP errors about a NodePort and a
# hairpin flow reach their client translated.
set -u
. "$(dirname "$0")/lib.sh"
pw_init
SYSCTL=/proc/sys/net/ipv4/ip_local_reserved_ports
LB="/usr/bin/python3 $(cd "$(dirname "$0")" && pwd)/lbclient.py"
root_before=$(cat $SYSCTL)

lan_up
node_up node1 192.168.1.11 10.244.1.0/24 native || { not_ok "agent of node1 starts"; exit 1; }
ext_up world 192.168.1.100
N="${PW_PREFIX}-node1"
inst=${PW_NODE_INST[node1]}
ctl() { in_ns "$N" "$BUILD/podwirectl" --instance "$inst" "$@"; }
np_addrs() { ctl -o json status | jq -r '.nodePortAddresses | join(" ")'; }
wait_np() { # WANT: pw_np_addrs becomes WANT (space separated, sorted) within 5 s
	local i
	for i in $(seq 50); do [ "$(np_addrs)" = "$1" ] && return 0; sleep 0.1; done
	return 1
}
fetch() { # IP: the first line the node port 30080 answers with from outside, or the error
	in_ns "${PW_PREFIX}-world" timeout 5 socat -T3 - "TCP:$1:30080,connect-timeout=3" </dev/null 2>&1 | head -1
}

# ---- reserved ports ----
check_eq "the node netns reserves the NodePort range" "$(in_ns "$N" cat $SYSCTL)" 30000-32767
check_eq "the root namespace's ip_local_reserved_ports is unchanged" "$(cat $SYSCTL)" "$root_before"

# Merge with what an operator reserved before the agent started: restart
# from scratch over "8000,30500".
agent_stop node1
in_ns "$N" "$BUILD/podwired" --instance "$inst" --uninstall >/dev/null 2>&1
check_eq "--uninstall takes the range back out" "$(in_ns "$N" cat $SYSCTL)" ""
echo "8000,30500" | in_ns "$N" tee $SYSCTL >/dev/null
agent_start node1 || { not_ok "agent of node1 restarts"; exit 1; }
check_eq "reserved ports merged with the operator's" "$(in_ns "$N" cat $SYSCTL)" 8000,30000-32767
# A narrower range by reload: the ports the agent added and no longer wants
# go, the operator's stay.
jq '.cluster.nodePortRange = "31000-32767"' "$PW_TMP/node1/config.json" > "$PW_TMP/c.json" &&
	mv "$PW_TMP/c.json" "$PW_TMP/node1/config.json"
for i in $(seq 50); do [ "$(in_ns "$N" cat $SYSCTL)" = "8000,30500,31000-32767" ] && break; sleep 0.1; done
check_eq "a new range on reload: the operator's ports kept, the old range's taken back" \
	"$(in_ns "$N" cat $SYSCTL)" 8000,30500,31000-32767

# ---- NodePort addresses ----
pod_add node1 be1 || not_ok "backend pod be1"
bg_in_ns "${PW_PREFIX}-be1" socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:"echo be1; cat"
wait_listen be1 8080 tcp
# "deaf": be1 does not listen on 8099, its kernel answers port unreachable.
set_services node1 '[{"name": "web", "vip": "10.96.0.10", "port": 80, "protocol": "tcp", "nodePort": 30080,
  "backends": [{"ip": "'"${PW_POD_IP[be1]}"'", "port": 8080}]},
 {"name": "deaf", "vip": "10.96.0.11", "port": 53, "protocol": "udp", "nodePort": 30053,
  "backends": [{"ip": "'"${PW_POD_IP[be1]}"'", "port": 8099}]}]'

check_eq "NodePort addresses at start: the node IP (loopback left out)" "$(np_addrs)" 192.168.1.11
check_eq "NodePort on the node IP" "$(fetch 192.168.1.11)" be1
ctl status | grep -q '^nodeports:  192.168.1.11$' && ok "podwirectl status lists the NodePort addresses" ||
	not_ok "podwirectl status: $(ctl status | grep nodeports)"

in_ns "$N" ip addr add 192.168.1.21/24 dev eth0
wait_np "192.168.1.11 192.168.1.21" && ok "an address added at runtime becomes a NodePort address" ||
	not_ok "NodePort addresses after adding 192.168.1.21: $(np_addrs)"
check_eq "NodePort on the second address" "$(fetch 192.168.1.21)" be1
# The reply came from the address the client used (else its socket would not match).
check_eq "the second address's replies come from it: the client's connection is to 192.168.1.21" \
	"$(in_ns "${PW_PREFIX}-world" timeout 5 socat -T3 - "TCP:192.168.1.21:30080" </dev/null 2>/dev/null | head -1)" be1

# ICMP errors about NodePort and hairpin flows reach the client as about
# the frontend it used: a connected UDP socket fails at once.
check_eq "UDP to a node port on the second address whose backend does not listen: refused at once" \
	"$(in_ns "${PW_PREFIX}-world" $LB udp-connected 192.168.1.21 30053)" refused
check_eq "UDP from the backend pod to its own ClusterIP (hairpin), nothing listening: refused at once" \
	"$(in_ns "${PW_PREFIX}-be1" $LB udp-connected 10.96.0.11 53)" refused

in_ns "$N" ip addr add 10.9.9.9/32 dev lo
wait_np "10.9.9.9 192.168.1.11 192.168.1.21" && ok "an address on another interface (lo, not 127/8) too" ||
	not_ok "NodePort addresses after adding 10.9.9.9 on lo: $(np_addrs)"
in_ns "$N" ip addr del 10.9.9.9/32 dev lo

# cluster.nodePortAddresses by reload: only 192.168.1.0/28 (.0-.15).
jq '.cluster.nodePortAddresses = ["192.168.1.0/28"]' "$PW_TMP/node1/config.json" > "$PW_TMP/c.json" &&
	mv "$PW_TMP/c.json" "$PW_TMP/node1/config.json"
wait_np 192.168.1.11 && ok "cluster.nodePortAddresses (reload): only the addresses inside serve" ||
	not_ok "NodePort addresses with 192.168.1.0/28: $(np_addrs)"
case $(fetch 192.168.1.21) in
*refused*) ok "NodePort on an address outside cluster.nodePortAddresses: refused by the host (not load-balanced)" ;;
*) not_ok "NodePort on 192.168.1.21 outside the CIDRs: '$(fetch 192.168.1.21)'" ;;
esac
check_eq "NodePort on the node IP inside the CIDRs still served" "$(fetch 192.168.1.11)" be1

# --nodeport-addresses overrides the config: 192.168.1.16/28 (.16-.31).
agent_stop node1
PW_AGENT_ARGS="--nodeport-addresses 192.168.1.16/28" agent_start node1 || not_ok "agent restarts with the flag"
wait_np 192.168.1.21 && ok "--nodeport-addresses overrides the config" ||
	not_ok "NodePort addresses with --nodeport-addresses 192.168.1.16/28: $(np_addrs)"
check_eq "NodePort on the address inside the flag's CIDR" "$(fetch 192.168.1.21)" be1
case $(fetch 192.168.1.11) in
*refused*) ok "NodePort on the node IP outside --nodeport-addresses: refused by the host" ;;
*) not_ok "NodePort on 192.168.1.11 outside the flag's CIDRs: '$(fetch 192.168.1.11)'" ;;
esac
in_ns "$N" ip addr del 192.168.1.21/24 dev eth0
wait_np "" && ok "an address removed at runtime stops serving NodePorts" ||
	not_ok "NodePort addresses after removing 192.168.1.21: $(np_addrs)"

# ---- uninstall ----
agent_stop node1
in_ns "$N" "$BUILD/podwired" --instance "$inst" --uninstall >/dev/null 2>&1
check_eq "--uninstall leaves exactly the operator's reserved ports" "$(in_ns "$N" cat $SYSCTL)" 8000,30500
check_eq "the root namespace's ip_local_reserved_ports is still unchanged" "$(cat $SYSCTL)" "$root_before"
[ "$PW_FAILED" = 0 ]
