#!/usr/bin/env bash
# Services through podwirectl and the agent (one node): `service add`
# creates a service that `services -o json` shows with the same frontend
# and backends and that is in the config file, everything else of the file
# kept; bad input is refused with the parser's message and the file
# unchanged; --replace and del; `status` and /metrics count services;
# the conntrack GC expires entries by state and age, both halves of a flow
# together, and counts it; `ct -o json` shows entries (hand-made ones, and
# a real connection through a service when the pod program uses pw_ct);
# with the agent stopped, add exits 5 and the change applies at start.
set -u
. "$(dirname "$0")/lib.sh"
pw_init

PORT=9979
# Short conntrack timeouts: the GC is observable within seconds.
export PW_AGENT_ARGS="--metrics-port $PORT --ct-timeout-tcp 6 --ct-timeout-tcp-syn 2 --ct-timeout-tcp-close 1 --ct-timeout-udp 2"
PEERS='[{"name": "n2", "ip": "192.168.1.12", "podCIDR": "10.244.2.0/24"}]'
node_up n1 192.168.1.11 10.244.1.0/24 native "$PEERS" || { not_ok "agent starts"; exit 1; }
inst=${PW_NODE_INST[n1]}
pins=/sys/fs/bpf/podwire/$inst
cfg=$PW_TMP/n1/config.json

ctl() { in_ns "${PW_PREFIX}-n1" "$BUILD/podwirectl" --instance "$inst" "$@"; }
scrape() { in_ns "${PW_PREFIX}-n1" curl -sf "http://127.0.0.1:$PORT/metrics"; }
prom() { scrape | awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'; }
svc_json() { ctl services -o json | jq -c --arg n "$1" '.[] | select(.name == $n)'; }
backends_of() { jq -r '[.backends[] | "\(.ip):\(.port)"] | sort | join(",")' <<<"$1"; }
sum() { sha256sum "$cfg" | cut -d' ' -f1; }

check_eq "node.json names the config file" "$(jq -r .config "/run/podwire/$inst/node.json")" "$(realpath "$cfg")"

# ---------- add ----------
out=$(ctl service add web --vip 10.96.0.10 --port 80 --protocol tcp --node-port 30080 \
	--backend 10.244.1.5:8080 --backend 10.244.2.5:8080 2>&1); rc=$?
check_eq "service add: exit 0" "$rc" 0
check "service add: says the agent applied it" grep -q "service web added: applied by podwired" <<<"$out"
web=$(svc_json web)
check_eq "services: web's frontend" "$(jq -r '"\(.vip):\(.port)/\(.protocol) \(.nodePort) \(.algorithm)"' <<<"$web")" \
	"10.96.0.10:80/tcp 30080 random"
check_eq "services: web's backends" "$(backends_of "$web")" "10.244.1.5:8080,10.244.2.5:8080"
check_eq "services: backends active" "$(jq -r '[.backends[].state] | unique | join(",")' <<<"$web")" active
cweb=$(jq -c '.services[] | select(.name == "web")' "$cfg")
check_eq "config file: web with the same VIP, port, nodePort" \
	"$(jq -r '"\(.vip):\(.port)/\(.protocol) \(.nodePort)"' <<<"$cweb")" "10.96.0.10:80/tcp 30080"
check_eq "config file: web's backends" "$(backends_of "$cweb")" "10.244.1.5:8080,10.244.2.5:8080"
check_eq "config file: node and peers kept" "$(jq -r '"\(.node.name) \(.node.podCIDR) \(.peers[0].name)"' "$cfg")" \
	"n1 10.244.1.0/24 n2"
check_eq "service list: applied" "$(ctl service list -o json | jq -r '.[] | select(.name == "web") | .applied')" true
check_eq "bpftool: ClusterIP and NodePort frontends in pw_services" \
	"$(bpftool -j map dump pinned "$pins/pw_services" | jq -c '[.[].formatted.key | "\(.addr | map(tostring) | join(".")):\(.port)/\(.scope)"] | sort')" \
	'["0.0.0.0:30080/1","10.96.0.10:80/0"]'

st=$(ctl status -o json)
check_eq "status: 1 service" "$(jq -r .counts.services <<<"$st")" 1
check_eq "status: conntrack counted" "$(jq -r '.counts.conntrack | type' <<<"$st")" number
check_eq "status: pw_services fill 2/32768" \
	"$(jq -r '.maps[] | select(.name == "pw_services") | "\(.entries)/\(.maxEntries)"' <<<"$st")" 2/32768
check_eq "status: pw_ct capacity is the default 524288" \
	"$(jq -r '.maps[] | select(.name == "pw_ct") | .maxEntries' <<<"$st")" 524288

# ---------- refused input leaves the file alone ----------
before=$(sum)
refused() { # NAME WANT_RC PATTERN ARGS...: refused with exit WANT_RC, message matching PATTERN, file unchanged
	local name=$1 want=$2 pat=$3 err rc; shift 3
	err=$(ctl service add "$@" 2>&1 >/dev/null); rc=$?
	if [ "$rc" = "$want" ] && grep -q -- "$pat" <<<"$err" && [ "$(sum)" = "$before" ]; then
		ok "refused: $name"
	else
		not_ok "refused: $name: exit $rc (want $want), message '$err', file changed: $([ "$(sum)" = "$before" ] && echo no || echo yes)"
	fi
}
refused "invalid VIP" 1 'services\[1\].vip' bad --vip 10.96.0.300 --port 80 --backend 10.244.1.5:80
refused "VIP outside serviceCIDR" 1 'is not inside cluster.serviceCIDR 10.96.0.0/12' bad --vip 10.1.0.10 --port 80 \
	--backend 10.244.1.5:80
refused "nodePort out of range" 1 'services\[1\].nodePort' bad --vip 10.96.0.11 --port 80 --node-port 80 \
	--backend 10.244.1.5:80
refused "nodePort of another service" 1 'nodePort: 30080 is also services\[0\].nodePort' bad --vip 10.96.0.11 \
	--port 80 --node-port 30080 --backend 10.244.1.5:80
refused "protocol" 1 'is not one of tcp, udp' bad --vip 10.96.0.11 --port 80 --protocol sctp --backend 10.244.1.5:80
refused "no backends (usage)" 2 'at least one --backend' bad --vip 10.96.0.11 --port 80
refused "backend not IP:PORT (usage)" 2 'is not IP:PORT' bad --vip 10.96.0.11 --port 80 --backend 10.244.1.5
refused "name with a quote and a newline (DNS-1035)" 1 'services\[1\].name: "we\\"b\\nx" is not a valid service name (DNS-1035' \
	$'we"b\nx' --vip 10.96.0.11 --port 80 --backend 10.244.1.5:80
refused "name namespace/name (DNS-1035)" 1 'is not a valid service name (DNS-1035' default/web --vip 10.96.0.11 --port 80 \
	--backend 10.244.1.5:80
refused "existing name" 1 'exists already' web --vip 10.96.0.11 --port 80 --backend 10.244.1.5:80
check_eq "refused: the datapath still has 1 service" "$(ctl services -o json | jq length)" 1

# ---------- replace, Maglev + affinity, UDP ----------
ctl service add web --replace --vip 10.96.0.10 --port 80 --backend 10.244.2.5:8080 >/dev/null 2>&1
check_eq "service add --replace: exit 0" "$?" 0
web=$(svc_json web)
check_eq "replace: one backend left, NodePort gone" "$(backends_of "$web") $(jq -r .nodePort <<<"$web")" \
	"10.244.2.5:8080 null"
ctl service add mg --vip 10.96.0.11 --port 443 --algorithm maglev --affinity-timeout 30 \
	--backend 10.244.1.5:8443 --backend 10.244.1.6:8443 --backend 10.244.2.6:8443 >/dev/null 2>&1
check_eq "maglev service: exit 0" "$?" 0
mg=$(svc_json mg)
check_eq "maglev service: algorithm, affinity, 3 backends" \
	"$(jq -r '"\(.algorithm) \(.affinityTimeoutSeconds) \(.backends | length)"' <<<"$mg")" "maglev 30 3"
check_eq "maglev service: its table in pw_maglev" \
	"$(bpftool -j map dump pinned "$pins/pw_maglev" 2>/dev/null | jq length)" 1
ctl service add dns --vip 10.96.0.53 --port 53 --protocol udp --backend 10.244.1.7:53 -o json >"$PW_TMP/add.json" 2>&1
check_eq "-o json: add reports applied" "$(jq -r '"\(.service) \(.action) \(.applied)"' "$PW_TMP/add.json")" \
	"dns added true"
check_eq "status: 3 services" "$(ctl status -o json | jq -r .counts.services)" 3
check_eq "/metrics: podwire_services" "$(prom podwire_services)" 3
check_eq "/metrics: podwire_backends (distinct addresses)" "$(prom podwire_backends)" 5

# ---------- conntrack GC (hand-made entries: independent of the programs) ----------
mg_id=$(jq -r .id <<<"$mg")
be_id=$(jq -r '.backends[] | select(.ip == "10.244.1.5") | .id' <<<"$mg")
ct_put() { # SRC SPORT DST DPORT DIR AGE_S STATE FLAGS: one pw_ct entry, TCP, service mg, backend be_id
	# struct pw_ct_key / pw_ct_entry (abi.h) as bpftool hex bytes, last_seen_ns
	# = CLOCK_MONOTONIC (bpf_ktime_get_ns) now - AGE_S; one python for speed.
	# shellcheck disable=SC2046
	bpftool map update pinned "$pins/pw_ct" $(python3 - "$@" "$mg_id" "$be_id" <<'PY'
import socket, struct, sys, time
src, sport, dst, dport, d, age, state, flags, svc, be = sys.argv[1:]
key = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("<HHBBH", int(sport), int(dport), 6, int(d), 0)
last = time.monotonic_ns() - int(age) * 10**9
val = struct.pack("<QIIBBHBBH4sI", last, int(svc), int(be), int(state), 0, 0, int(flags), 0, 0, bytes(4), 0)
print("key hex", " ".join("%02x" % b for b in key), "value hex", " ".join("%02x" % b for b in val))
PY
)
}
ct_has() { ctl ct -o json | jq -r --arg s "$1" --argjson p "$2" '[.[] | select(.src == $s and .srcPort == $p)] | length'; }
del0=$(prom podwire_ct_gc_deleted_total)
# Each bpftool call takes a moment and the GC runs every 500 ms: a flow's
# fresh half goes in first, so that an old half never sits there alone.
# A: established, reply fresh, forward idle 10 s (past the 6 s timeout): kept whole.
ct_put 10.244.1.5 8443 10.244.1.20 40001 1 0 1 0
ct_put 10.244.1.20 40001 10.96.0.11 443 0 10 1 0
# D: established, both fresh.
ct_put 10.244.1.5 8443 10.244.1.23 40004 1 0 1 0
ct_put 10.244.1.23 40004 10.96.0.11 443 0 0 1 0
check_eq "ct --addr: filters by client address" \
	"$(ctl ct --addr 10.244.1.23 -o json | jq -r '[.[].direction] | sort | join(",")')" "forward,reply"
check_eq "ct -o json: state in words, frontend and backend resolved" \
	"$(ctl ct --addr 10.244.1.23 -o json | jq -r '.[] | select(.direction == "forward") | "\(.state) \(.frontend) \(.backend) \(.ageSeconds < 5)"')" \
	"established 10.96.0.11:443 10.244.1.5:8443 true"
check_eq "ct --addr of the backend: every flow through it" "$(ctl ct --addr 10.244.1.5 -o json | jq length)" 4
check "ct: table output" grep -q "^forward  tcp" <<<"$(ctl ct)"
# The checks above may have taken seconds on a busy machine (the fresh
# halves aging past the timeout): A and D again, fresh halves first.
ct_put 10.244.1.5 8443 10.244.1.20 40001 1 0 1 0
ct_put 10.244.1.20 40001 10.96.0.11 443 0 10 1 0
ct_put 10.244.1.5 8443 10.244.1.23 40004 1 0 1 0
ct_put 10.244.1.23 40004 10.96.0.11 443 0 0 1 0
# B: established, idle 10 s both ways: both go. C: closed 2 s ago (close timeout 1 s): both go.
ct_put 10.244.1.21 40002 10.96.0.11 443 0 10 1 0
ct_put 10.244.1.5 8443 10.244.1.21 40002 1 10 1 0
ct_put 10.244.1.22 40003 10.96.0.11 443 0 2 3 0
ct_put 10.244.1.5 8443 10.244.1.22 40003 1 2 3 0
sleep 1.2   # GC every 500 ms with these timeouts
check_eq "ct gc: an idle forward half is kept while the reply is fresh" "$(ct_has 10.244.1.20 40001)" 1
check_eq "ct gc: both halves of an idle flow deleted" "$(ct_has 10.244.1.21 40002) $(ct_has 10.244.1.5 8443)" "0 2"
check_eq "ct gc: a closed flow deleted after the close timeout" "$(ct_has 10.244.1.22 40003)" 0
check_eq "/metrics: podwire_ct_gc_deleted_total +4" "$(( $(prom podwire_ct_gc_deleted_total) - del0 ))" 4
check_eq "/metrics: podwire_ct_entries" "$(prom podwire_ct_entries)" 4
for i in $(seq 40); do [ "$(ctl ct -o json | jq length)" = 0 ] && break; sleep 0.25; done
check_eq "ct gc: the rest goes once idle past 6 s" "$(ctl ct -o json | jq length)" 0

# ---------- a real connection through a service (when the pod program does load balancing) ----------
ct_id=$(bpftool -j map show pinned "$pins/pw_ct" | jq .id)
if bpftool -j prog show pinned "$pins/progs/pod_ingress" | jq -e --argjson id "$ct_id" '.map_ids | index($id)' >/dev/null; then
	# cli opts out of socket LB: its connection must make conntrack entries.
	pod_add n1 cli CNI_ARGS="IgnoreUnknown=1;PODWIRE_SOCKET_LB=false" && pod_add n1 srv ||
		not_ok "pods for the service connection"
	bg_in_ns "${PW_PREFIX}-srv" socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:"echo hello; sleep 5"
	wait_listen srv 8080 tcp
	ctl service add conn --vip 10.96.0.20 --port 80 --backend "${PW_POD_IP[srv]}:8080" >/dev/null 2>&1
	check_eq "service to a real pod: added" "$?" 0
	reply=$(in_ns "${PW_PREFIX}-cli" timeout 5 socat -T2 - TCP:10.96.0.20:80 </dev/null 2>/dev/null | head -1)
	check_eq "connection through the VIP reaches the backend" "$reply" hello
	ctj=$(ctl ct --addr "${PW_POD_IP[cli]}" -o json)
	check_eq "ct: the connection's forward entry (client -> VIP, backend)" \
		"$(jq -r '.[] | select(.direction == "forward") | "\(.dst):\(.dstPort) \(.backend)"' <<<"$ctj" | head -1)" \
		"10.96.0.20:80 ${PW_POD_IP[srv]}:8080"
	check_eq "ct: and its reply entry (backend -> client)" \
		"$(jq -r '.[] | select(.direction == "reply") | "\(.src):\(.srcPort) \(.dst)"' <<<"$ctj" | head -1)" \
		"${PW_POD_IP[srv]}:8080 ${PW_POD_IP[cli]}"
else
	log "the pod program does not use pw_ct yet: the real-connection conntrack checks are skipped"
fi

# ---------- del ----------
ctl service del web >/dev/null 2>&1
check_eq "service del: exit 0" "$?" 0
check_eq "service del: gone from the datapath" "$(svc_json web)" ""
check_eq "service del: gone from the config" "$(jq '[.services[] | select(.name == "web")] | length' "$cfg")" 0
before=$(sum)
ctl service del web >/dev/null 2>"$PW_TMP/del.err"
check_eq "service del of an unknown name: exit 1" "$?" 1
check "service del of an unknown name: says so" grep -q 'no service "web"' "$PW_TMP/del.err"
check_eq "service del of an unknown name: file unchanged" "$(sum)" "$before"

# ---------- the agent stopped ----------
agent_stop n1
ctl service add late --vip 10.96.0.30 --port 80 --backend 10.244.1.9:80 >/dev/null 2>"$PW_TMP/late.err"
check_eq "agent stopped: add exits 5" "$?" 5
check "agent stopped: says it applies when the agent starts" grep -q "podwired is not running" "$PW_TMP/late.err"
check_eq "agent stopped: the change is in the config" "$(jq -r '.services[] | select(.name == "late") | .vip' "$cfg")" 10.96.0.30
agent_start n1 || not_ok "agent restarts"
check_eq "agent restarted: the service is applied" "$(svc_json late | jq -r .vip)" 10.96.0.30
check_eq "agent restarted: ids kept (mg's id unchanged)" "$(svc_json mg | jq -r .id)" "$mg_id"
ctl service add x --vip 10.96.0.31 --port 80 --backend 1.2.3.4:5 --frob >/dev/null 2>&1
check_eq "unknown flag: exit 2" "$?" 2

# ---------- map sizes: flags, pinned maps, Maglev M ----------
agent_stop n1
PW_AGENT_ARGS="--metrics-port 0 --max-ct 1000" agent_start n1 >/dev/null 2>&1
check_eq "a size flag contradicting a pinned map: the agent refuses to start" \
	"$(kill -0 "${PW_AGENT_PID[n1]}" 2>/dev/null && echo running || echo exited)" exited
check "the refusal says why and what to do" grep -q "pw_ct has 524288 entries and a pinned map cannot be resized.*--uninstall" \
	"$PW_TMP/n1/agent.log"
PW_AGENT_ARGS="--metrics-port 0 --max-ct 2048 --max-services 1024 --max-backends 4096 --max-slots 8192 --max-maglev 64 --maglev-size 251" \
	node_up n2 192.168.1.12 10.244.2.0/24 native '[]' || not_ok "agent with custom map sizes starts"
pins2=/sys/fs/bpf/podwire/${PW_NODE_INST[n2]}
maxe() { bpftool -j map show pinned "$pins2/$1" | jq .max_entries; }
check_eq "custom sizes: pw_ct pw_services pw_revnat pw_backends pw_svc_slots pw_maglev" \
	"$(for m in pw_ct pw_services pw_revnat pw_backends pw_svc_slots pw_maglev; do maxe $m; done | tr '\n' ' ')" \
	"2048 1024 1024 4096 8192 64 "
in_ns "${PW_PREFIX}-n2" "$BUILD/podwirectl" --instance "${PW_NODE_INST[n2]}" service add m --vip 10.96.0.40 --port 80 \
	--algorithm maglev --backend 10.244.2.5:80 --backend 10.244.2.6:80 >/dev/null 2>&1
inner=$(bpftool -j map dump pinned "$pins2/pw_maglev" | jq -r '.[0].value | map(ltrimstr("0x") | (if length == 1 then "0" + . else . end)) | reverse | join("")')
check_eq "--maglev-size 251: the service's Maglev table has 251 entries" \
	"$(bpftool -j map show id "$((16#$inner))" | jq .max_entries)" 251
agent_stop n2
PW_AGENT_ARGS="--metrics-port 0" agent_start n2 >/dev/null 2>&1
check_eq "restart without the size flags: the pinned sizes are kept" "$(maxe pw_ct) $(kill -0 "${PW_AGENT_PID[n2]}" && echo up)" "2048 up"
