#!/usr/bin/env bash
# podwirectl and the agent's /metrics against a real node with two pods:
# status/endpoints/peers agree with what the test created; a spoofed packet
# a packet to an unowned pod IP, to a pod CIDR no node owns and a connection
# to a service without backends show up in `monitor -o json` with the
# right reason and 5-tuple, and in `metrics -o json` and /metrics as exactly
# the number of packets sent; a second monitor is refused and events go off
# when the monitor ends; everything still reads with the agent stopped;
# every pinned map carries BTF; exit codes are the documented ones.
set -u
. "$(dirname "$0")/lib.sh"
pw_init

PORT=9977
export PW_AGENT_ARGS="--metrics-port $PORT"
PEERS='[{"name": "n2", "ip": "192.168.1.12", "podCIDR": "10.244.2.0/24"}]'
node_up n1 192.168.1.11 10.244.1.0/24 native "$PEERS" || { not_ok "agent starts"; exit 1; }
ok "agent starts with --metrics-port $PORT"
inst=${PW_NODE_INST[n1]}
pins=/sys/fs/bpf/podwire/$inst
# Pod a is named the way containerd names pods in CNI_ARGS; pod b is not.
# Pod a opts out of socket LB: its connect to a service without backends
# must reach the per-packet path to count a no-backend drop.
pod_add n1 a CNI_ARGS="K8S_POD_UID=8f0c;IgnoreUnknown=1;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=web-0.v1;K8S_POD_INFRA_CONTAINER_ID=abc;PODWIRE_SOCKET_LB=false" ||
	{ not_ok "cnitool add pod a"; exit 1; }
pod_add n1 b || { not_ok "cnitool add pod b"; exit 1; }
A=${PW_POD_IP[a]} B=${PW_POD_IP[b]}
SPOOF=10.244.1.200 NOBODY=10.244.1.250 UNOWNED=10.244.9.9 EMPTY_VIP=10.96.0.13
set_services n1 '[{"name": "empty", "vip": "'$EMPTY_VIP'", "port": 80, "protocol": "tcp", "backends": []}]' ||
	not_ok "service without backends applied"

ctl() { in_ns "${PW_PREFIX}-n1" "$BUILD/podwirectl" --instance "$inst" "$@"; }
scrape() { in_ns "${PW_PREFIX}-n1" curl -sf "http://127.0.0.1:$PORT/metrics"; }
prom() { # NAME{LABELS}: the sample's value in a scrape (0 if absent)
	scrape | awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'
}
drop_json() { # REASON FIELD: egress packets/bytes of a drop reason per `metrics -o json`
	ctl metrics -o json | jq --arg r "$1" --arg f "$2" \
		'[.counters[] | select(.kind == "drop" and .name == $r and .direction == "egress") | .[$f]] | add // 0'
}
host_veth() { # POD: name of the pod's host-side veth (peer of its eth0)
	local idx
	idx=$(in_ns "${PW_PREFIX}-$1" ip -j link show eth0 | jq -r '.[0].link_index')
	in_ns "${PW_PREFIX}-n1" ip -j link show | jq -r --argjson i "$idx" '.[] | select(.ifindex == $i) | .ifname'
}
wait_for() { # FILE PATTERN: up to 5 s
	local i
	for i in $(seq 50); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
settings_field() { # FIELD of pw_settings as bpftool prints it
	bpftool -j map dump pinned "$pins/pw_settings" | jq -r ".[0].formatted.value.$1"
}

# ---------- status, endpoints, peers ----------
st=$(ctl status -o json)
check_eq "status: agent running" "$(jq -r .agent.running <<<"$st")" true
check_eq "status: agent pid" "$(jq -r .agent.pid <<<"$st")" "${PW_AGENT_PID[n1]}"
check_eq "status: node name" "$(jq -r .node.name <<<"$st")" n1
check_eq "status: pod CIDR" "$(jq -r .node.podCIDR <<<"$st")" 10.244.1.0/24
check_eq "status: attach mode is what node.json says" "$(jq -r .node.attach <<<"$st")" \
	"$(jq -r .attach "/run/podwire/$inst/node.json")"
check_eq "status: routing" "$(jq -r .node.routing <<<"$st")" native
check_eq "status: endpoints" "$(jq -r .counts.endpoints <<<"$st")" 2
check_eq "status: peers" "$(jq -r .counts.peers <<<"$st")" 1
check_eq "status: pw_endpoints fill 2/4096" \
	"$(jq -r '.maps[] | select(.name == "pw_endpoints") | "\(.entries)/\(.maxEntries)"' <<<"$st")" 2/4096
check_eq "status: events off" "$(jq -r '"\(.events.drops) \(.events.traces)"' <<<"$st")" "false false"
check "status table says the agent runs" grep -q "^agent: *running (pid ${PW_AGENT_PID[n1]})" <<<"$(ctl status)"

eps=$(ctl endpoints -o json)
check_eq "endpoints: the two pod IPs" "$(jq -r '.[].ip' <<<"$eps" | sort | tr '\n' ' ')" \
	"$(printf '%s\n' "$A" "$B" | sort | tr '\n' ' ')"
check_eq "endpoints: host ifname of pod a" "$(jq -r --arg ip "$A" '.[] | select(.ip == $ip) | .ifname' <<<"$eps")" \
	"$(host_veth a)"
check_eq "endpoints: pod MAC of pod a is its eth0's" \
	"$(jq -r --arg ip "$A" '.[] | select(.ip == $ip) | .mac' <<<"$eps")" \
	"$(in_ns "${PW_PREFIX}-a" ip -j link show eth0 | jq -r '.[0].address')"
check_eq "endpoints -o json: pod a's namespace and name from CNI_ARGS" \
	"$(jq -r --arg ip "$A" '.[] | select(.ip == $ip) | "\(.namespace)/\(.name)"' <<<"$eps")" team-a/web-0.v1
check_eq "endpoints -o json: pod b without CNI_ARGS has null namespace and name" \
	"$(jq -c --arg ip "$B" '.[] | select(.ip == $ip) | [.namespace, .name]' <<<"$eps")" '[null,null]'
tbl=$(ctl endpoints)
check_eq "endpoints table: POD column after IP" "$(head -1 <<<"$tbl" | awk '{print $1, $2}')" "IP POD"
check_eq "endpoints table: pod a is team-a/web-0.v1" "$(awk -v ip="$A" '$1 == ip {print $2}' <<<"$tbl")" team-a/web-0.v1
check_eq "endpoints table: pod b is -" "$(awk -v ip="$B" '$1 == ip {print $2}' <<<"$tbl")" -
check_eq "peers: n2's pod CIDR via its node IP" "$(ctl peers -o json | jq -r '.[] | "\(.podCIDR) \(.nodeIP)"')" \
	"10.244.2.0/24 192.168.1.12"

# ---------- drops: monitor, metrics, /metrics ----------
spoof0=$(drop_json spoofed-source-ip packets) spoofb0=$(drop_json spoofed-source-ip bytes)
unk0=$(drop_json unknown-endpoint packets)
noroute0=$(drop_json no-route packets) nobe0=$(drop_json no-backend packets)
prom_noroute0=$(prom 'podwire_drop_packets_total{reason="no-route",direction="egress"}')
prom_nobe0=$(prom 'podwire_drop_packets_total{reason="no-backend",direction="egress"}')
prom_spoof0=$(prom 'podwire_drop_packets_total{reason="spoofed-source-ip",direction="egress"}')
prom_unk0=$(prom 'podwire_drop_packets_total{reason="unknown-endpoint",direction="egress"}')

mon_out=$PW_TMP/monitor.json mon_err=$PW_TMP/monitor.err
in_ns "${PW_PREFIX}-n1" "$BUILD/podwirectl" --instance "$inst" monitor -o json --count 8 --timeout 20 \
	>"$mon_out" 2>"$mon_err" &
mon=$!
wait_for "$mon_err" "monitoring instance" && ok "monitor started" || not_ok "monitor started: $(cat "$mon_err")"
check_eq "monitor switched drop events on" "$(settings_field drop_events)" 1
ctl monitor --timeout 1 >/dev/null 2>"$PW_TMP/second.err"
check_eq "a second monitor is refused (exit 1)" "$?" 1
check "the refusal names the running monitor" grep -q "another podwirectl monitor (pid" "$PW_TMP/second.err"
check_eq "the refused monitor left events on for the first" "$(settings_field drop_events)" 1

in_ns "${PW_PREFIX}-a" ip addr add "$SPOOF/32" dev eth0
in_ns "${PW_PREFIX}-a" ping -c 3 -i 0.2 -W 1 -I "$SPOOF" "$B" >/dev/null 2>&1
in_ns "${PW_PREFIX}-a" ip addr del "$SPOOF/32" dev eth0
in_ns "${PW_PREFIX}-a" ping -c 2 -i 0.2 -W 1 "$NOBODY" >/dev/null 2>&1
# A pod CIDR no node owns, and a service without backends (its SYN is answered with a RST).
in_ns "${PW_PREFIX}-a" ping -c 2 -i 0.2 -W 1 "$UNOWNED" >/dev/null 2>&1
in_ns "${PW_PREFIX}-a" timeout 5 socat -T2 - TCP:$EMPTY_VIP:80,connect-timeout=3 </dev/null >/dev/null 2>&1
check_eq "a connection to a service without backends is refused" "$?" 1
wait "$mon"
check_eq "monitor exits 0 after --count 8" "$?" 0
check_eq "monitor printed 8 events" "$(wc -l <"$mon_out")" 8
check "monitor output is one JSON object per line" jq -e . "$mon_out"
check_eq "spoofed: 3 events with reason, 5-tuple, direction, interface" \
	"$(jq -c 'select(.reason == "spoofed-source-ip") | [.type, .code, .saddr, .daddr, .proto, .direction, .ifname]' "$mon_out" | sort | uniq -c | awk '{$1=$1};1')" \
	"3 [\"drop\",-2,\"$SPOOF\",\"$B\",1,\"egress\",\"$(host_veth a)\"]"
check_eq "unknown-endpoint: 2 events with reason and 5-tuple" \
	"$(jq -c 'select(.reason == "unknown-endpoint") | [.code, .saddr, .daddr, .proto, .direction]' "$mon_out" | sort | uniq -c | awk '{$1=$1};1')" \
	"2 [-4,\"$A\",\"$NOBODY\",1,\"egress\"]"
check_eq "no-route: 2 events with reason and 5-tuple" \
	"$(jq -c 'select(.reason == "no-route") | [.code, .saddr, .daddr, .proto, .direction]' "$mon_out" | sort | uniq -c | awk '{$1=$1};1')" \
	"2 [-5,\"$A\",\"$UNOWNED\",1,\"egress\"]"
check_eq "no-backend: 1 event with reason and 5-tuple (TCP to VIP:80)" \
	"$(jq -c 'select(.reason == "no-backend") | [.code, .saddr, .daddr, .proto, .dport, .direction]' "$mon_out" | sort | uniq -c | awk '{$1=$1};1')" \
	"1 [-6,\"$A\",\"$EMPTY_VIP\",6,80,\"egress\"]"
check_eq "events switched off when the monitor ended" "$(settings_field drop_events) $(settings_field trace_events)" "0 0"

check_eq "metrics -o json: spoofed-source-ip egress +3 packets" "$(( $(drop_json spoofed-source-ip packets) - spoof0 ))" 3
check_eq "metrics -o json: spoofed-source-ip egress +3*98 bytes" "$(( $(drop_json spoofed-source-ip bytes) - spoofb0 ))" 294
check_eq "metrics -o json: unknown-endpoint egress +2 packets" "$(( $(drop_json unknown-endpoint packets) - unk0 ))" 2
check_eq "metrics -o json: no-route egress +2 packets" "$(( $(drop_json no-route packets) - noroute0 ))" 2
check_eq "metrics -o json: no-backend egress +1 packet" "$(( $(drop_json no-backend packets) - nobe0 ))" 1
check_eq "/metrics: no-route egress +2" \
	"$(( $(prom 'podwire_drop_packets_total{reason="no-route",direction="egress"}') - prom_noroute0 ))" 2
check_eq "/metrics: no-backend egress +1" \
	"$(( $(prom 'podwire_drop_packets_total{reason="no-backend",direction="egress"}') - prom_nobe0 ))" 1
check_eq "/metrics: spoofed-source-ip egress +3" \
	"$(( $(prom 'podwire_drop_packets_total{reason="spoofed-source-ip",direction="egress"}') - prom_spoof0 ))" 3
check_eq "/metrics: unknown-endpoint egress +2" \
	"$(( $(prom 'podwire_drop_packets_total{reason="unknown-endpoint",direction="egress"}') - prom_unk0 ))" 2
check_eq "/metrics: podwire_endpoints" "$(prom podwire_endpoints)" 2
check_eq "/metrics: podwire_peers" "$(prom podwire_peers)" 1
check_eq "/metrics: pw_endpoints entries / capacity" \
	"$(prom 'podwire_map_entries{map="pw_endpoints"}')/$(prom 'podwire_map_capacity{map="pw_endpoints"}')" 2/4096
check "/metrics: reconcile error counter exported" grep -qx 'podwire_agent_reconcile_errors_total 0' <<<"$(scrape)"
check_eq "/metrics: only on loopback (node IP refused)" \
	"$(in_ns "${PW_PREFIX}-n1" curl -s -o /dev/null -w '%{http_code}' "http://192.168.1.11:$PORT/metrics")" 000

# Trace events: opt-in, filtered by address.
in_ns "${PW_PREFIX}-n1" "$BUILD/podwirectl" --instance "$inst" monitor -o json --trace --addr "$B" --count 1 \
	--timeout 10 >"$PW_TMP/trace.json" 2>"$PW_TMP/trace.err" &
mon=$!
wait_for "$PW_TMP/trace.err" "monitoring instance"
check_eq "monitor --trace --addr sets the filter" "$(settings_field trace_events) $(settings_field 'trace_addr | map(tostring) | join(".")')" "1 $B"
in_ns "${PW_PREFIX}-a" ping -c 1 -W 1 "$B" >/dev/null 2>&1
wait "$mon"
check_eq "trace: a -> b delivered to b's veth" \
	"$(jq -r '[.type, .point, .saddr, .daddr, .targetIfname] | join(" ")' "$PW_TMP/trace.json" | head -1)" \
	"trace to-pod $A $B $(host_veth b)"

# ---------- with the agent stopped ----------
agent_stop n1
st=$(ctl status -o json)
check_eq "agent stopped: status says not running" "$(jq -r .agent.running <<<"$st")" false
check "agent stopped: status table says it reads the pins" \
	grep -q '^agent: *not running (reading pinned maps directly)' <<<"$(ctl status)"
check_eq "agent stopped: endpoints still listed" "$(ctl endpoints -o json | jq -r '.[].ip' | sort | tr '\n' ' ')" \
	"$(printf '%s\n' "$A" "$B" | sort | tr '\n' ' ')"
check_eq "agent stopped: counters still read" "$(( $(drop_json spoofed-source-ip packets) - spoof0 ))" 3
in_ns "${PW_PREFIX}-n1" "$BUILD/podwirectl" --instance "$inst" monitor -o json --count 1 --timeout 10 \
	>"$PW_TMP/down.json" 2>"$PW_TMP/down.err" &
mon=$!
wait_for "$PW_TMP/down.err" "monitoring instance"
in_ns "${PW_PREFIX}-a" ping -c 1 -W 1 "$NOBODY" >/dev/null 2>&1
wait "$mon"
check_eq "agent stopped: monitor still reports drops" "$(jq -r .reason "$PW_TMP/down.json")" unknown-endpoint

# ---------- BTF of every pinned map ----------
nmaps=0
for m in "$pins"/*; do
	[ -f "$m" ] || continue
	show=$(bpftool -j map show pinned "$m" 2>/dev/null) || continue   # a program pin
	name=$(basename "$m") type=$(jq -r .type <<<"$show")
	nmaps=$((nmaps + 1))
	case $type in array_of_maps|hash_of_maps)
		# The value is an inner map's id, which has no BTF type of its own.
		check "map $name: dumps (map of maps)" bpftool -j map dump pinned "$m"
		continue ;;
	esac
	if [ "$type" = ringbuf ]; then
		# A ring buffer has no key or value: the kernel stores no BTF for it and
		# cannot dump it. Its record is struct pw_event (include/podwire/abi.h).
		check_eq "map $name: a ring buffer (no key/value to describe)" "$(jq -r '.bytes_key + .bytes_value' <<<"$show")" 0
		continue
	fi
	check "map $name: has BTF" test "$(jq -r '.btf_id // 0' <<<"$show")" -gt 0
	dump=$(bpftool -j map dump pinned "$m")
	if [ "$(jq length <<<"$dump")" -gt 0 ]; then
		check_eq "map $name: every entry dumps with named fields" \
			"$(jq '[.[] | has("formatted") or (has("values") and (.values[0] | has("formatted")))] | all' <<<"$dump")" true
	fi
done
[ "$nmaps" -ge 6 ] && ok "checked $nmaps pinned maps" || not_ok "only $nmaps pinned maps found"

# ---------- exit codes ----------
# services and ct are placeholders until load balancing lands (then they
# list, and their own tests check them against what was created).
ctl services >/dev/null 2>"$PW_TMP/svc.err"
if [ $? = 4 ]; then
	check "services: exit 4 says why" grep -q "no services/conntrack maps in this datapath yet" "$PW_TMP/svc.err"
	check_eq "status: services count is null while unsupported" "$(ctl status -o json | jq -r .counts.services)" null
fi
ctl ct >/dev/null 2>"$PW_TMP/ct.err"
if [ $? = 4 ]; then
	check "ct: exit 4 says why" grep -q "no services/conntrack maps in this datapath yet" "$PW_TMP/ct.err"
fi
in_ns "${PW_PREFIX}-n1" "$BUILD/podwirectl" --instance "${PW_PREFIX}-nosuch" status >/dev/null 2>&1
check_eq "unknown instance: exit 3" "$?" 3
ctl frobnicate >/dev/null 2>&1
check_eq "unknown command: exit 2" "$?" 2
ctl -o yaml status >/dev/null 2>&1
check_eq "bad -o: exit 2" "$?" 2
ctl monitor --count x >/dev/null 2>&1
check_eq "bad monitor flag: exit 2" "$?" 2

[ "$PW_FAILED" = 0 ]
