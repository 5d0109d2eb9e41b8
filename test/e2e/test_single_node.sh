#!/usr/bin/env bash
# One node, three pods added by cnitool: every pair pings and talks TCP both
# ways with real pod source IPs; the endpoints map holds exactly the three pods;
# DEL of all three leaves no veth, endpoint, reservation or pin, and the IPs
# are handed out again.
set -u
. "$(dirname "$0")/lib.sh"
pw_init

node_up n1 192.168.1.11 10.244.1.0/27 || { not_ok "agent starts"; exit 1; }
ok "agent starts and publishes node.json"
inst=${PW_NODE_INST[n1]}

for p in a b; do
	if pod_add n1 "$p"; then ok "cnitool add pod $p -> ${PW_POD_IP[$p]}"; else not_ok "cnitool add pod $p"; fi
done
# Pod c asks for its address and MAC through the conflist's ips and mac
# capabilities (cnitool passes CAP_ARGS as runtimeConfig), as podman --ip does.
# netkit pod devices (PW_AGENT_ARGS="--pod-device netkit|auto" where the
# kernel has them) are L3: a MAC request is refused, leaving nothing behind,
# and the address alone is honoured.
pod_device=$(jq -r '.podDevice // "veth"' "/run/podwire/$inst/node.json")
log "pod devices: $pod_device"
if [ "$pod_device" = netkit ]; then
	ip netns add "${PW_PREFIX}-c"
	PW_POD_NODE[c]=n1
	out=$(cni n1 add c CAP_ARGS='{"ips": ["10.244.1.20/27"], "mac": "02:aa:bb:cc:dd:ee"}' 2>&1)
	log "MAC request on netkit: $out"
	check_eq "netkit: a MAC request is refused with a clear error" \
		"$(grep -c 'pod devices are netkit' <<<"$out")" 1
	check_eq "netkit: the refused ADD left no reservation" "$(ls "/run/podwire/$inst/ipam" | grep -c '^10.244.1.20$')" 0
	check_eq "netkit: the refused ADD left no device" \
		"$(in_ns "${PW_PREFIX}-n1" ip -o link show | awk -F': ' '{print $2}' | grep -c '^pw')" 2
	unset 'PW_POD_NODE[c]'
	ip netns del "${PW_PREFIX}-c"
	if pod_add n1 c CAP_ARGS='{"ips": ["10.244.1.20/27"]}'; then
		ok "cnitool add pod c with runtimeConfig ips -> ${PW_POD_IP[c]}"
	else
		not_ok "cnitool add pod c with runtimeConfig ips"
	fi
	check_eq "pod devices are netkit on both ends" \
		"$(in_ns "${PW_PREFIX}-c" ip -d -j link show eth0 | jq -r '.[0].linkinfo.info_kind') $(in_ns "${PW_PREFIX}-n1" ip -d -j link show | jq -r '[.[] | select(.ifname | startswith("pw")) | .linkinfo.info_kind] | unique | join(",")')" \
		"netkit netkit"
elif pod_add n1 c CAP_ARGS='{"ips": ["10.244.1.20/27"], "mac": "02:aa:bb:cc:dd:ee"}'; then
	ok "cnitool add pod c with runtimeConfig ips and mac -> ${PW_POD_IP[c]}"
else
	not_ok "cnitool add pod c with runtimeConfig ips and mac"
fi
check_eq "pod c got the requested address" "${PW_POD_IP[c]}" 10.244.1.20
[ "$pod_device" = netkit ] || check_eq "pod c's eth0 has the requested MAC" \
	"$(in_ns "${PW_PREFIX}-c" ip -j link show eth0 | jq -r '.[0].address')" 02:aa:bb:cc:dd:ee

check_eq "endpoints map lists exactly the three pods" \
	"$(endpoint_ips n1 | tr '\n' ' ')" \
	"$(printf '%s\n' "${PW_POD_IP[a]}" "${PW_POD_IP[b]}" "${PW_POD_IP[c]}" | sort | tr '\n' ' ')"

for from in a b c; do
	for to in a b c; do
		[ "$from" = "$to" ] && continue
		check "ping $from -> $to" in_ns "${PW_PREFIX}-$from" ping -c 2 -i 0.2 -W 2 "${PW_POD_IP[$to]}"
		check_eq "tcp $from -> $to: receiver sees the sender's pod IP" \
			"$(tcp_peer_seen "$from" "$to")" "${PW_POD_IP[$from]}"
	done
done

# The packets took the BPF path: the forwarded counter moved and nothing was dropped.
fwd=$(bpftool -j map dump pinned "/sys/fs/bpf/podwire/$inst/pw_metrics" |
	jq '[.[] | select(.formatted.key == 0) | .formatted.values[] | .value.egress.packets] | add // 0' 2>/dev/null)
[ "${fwd:-0}" -gt 0 ] 2>/dev/null && ok "datapath forwarded $fwd packets" || not_ok "forwarded counter is zero ($fwd)"

# A ClusterIP in front of pods b and c: pod a's connections reach both, and
# the reply comes from the VIP (conntrack + reverse NAT on this node).
for p in b c; do
	bg_in_ns "${PW_PREFIX}-$p" socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:"echo $p"
	wait_listen "$p" 8080 tcp
done
set_services n1 '[{"name": "web", "vip": "10.96.0.10", "port": 80, "protocol": "tcp", "backends": [
	{"ip": "'"${PW_POD_IP[b]}"'", "port": 8080}, {"ip": "'"${PW_POD_IP[c]}"'", "port": 8080}]}]' ||
	not_ok "service applied"
seen=""
for i in $(seq 20); do
	seen+=$(in_ns "${PW_PREFIX}-a" timeout 5 socat -T3 - TCP:10.96.0.10:80 </dev/null 2>/dev/null)$'\n'
done
check_eq "ClusterIP 10.96.0.10:80 spreads 20 connections over both backends" \
	"$(grep -v '^$' <<<"$seen" | sort -u | tr '\n' ' ')" "b c "
set_services n1 '[]' || not_ok "service removed"

# Host stack to pod (node -> pod) still works through the host routes.
check "node reaches pod a" in_ns "${PW_PREFIX}-n1" ping -c 1 -W 2 "${PW_POD_IP[a]}"

old_ips=$(printf '%s\n' "${PW_POD_IP[a]}" "${PW_POD_IP[b]}" "${PW_POD_IP[c]}" | sort)
for p in a b c; do
	check "cnitool del pod $p" pod_del "$p"
done
check "second DEL of pod a succeeds" pod_del a
check_eq "no endpoint left in the map" "$(endpoint_ips n1 | wc -l)" 0
check_eq "no pod veth left on the node" \
	"$(in_ns "${PW_PREFIX}-n1" ip -o link show | awk -F': ' '{print $2}' | grep -c '^pw')" 0
check_eq "no IPAM reservation left" "$(ls "/run/podwire/$inst/ipam" | grep -c '^[0-9]')" 0
check_eq "no per-pod link pin left" "$(ls "/sys/fs/bpf/podwire/$inst/links" 2>/dev/null | grep -vEc '^(uplink|uplink_egress|overlay|overlay_egress|sock_[a-z0-9]+)$')" 0

# Addresses come back: with the round-robin allocator a fresh pool serves
# new ones first, so churn through the /27 once and expect an old IP again.
reused=0
ip netns add "${PW_PREFIX}-r"
PW_POD_NODE[r]=n1
for i in $(seq 1 40); do
	out=$(cni n1 add r) || break
	ipr=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)
	cni n1 del r >/dev/null
	grep -qx "$ipr" <<<"$old_ips" && { reused=1; break; }
done
unset 'PW_POD_NODE[r]'
[ "$reused" = 1 ] && ok "released IPs are handed out again ($ipr after $i ADD/DEL)" || not_ok "released IPs never came back"

[ "$PW_FAILED" = 0 ]
