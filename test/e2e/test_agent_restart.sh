#!/usr/bin/env bash
# While one pod pings another every 10 ms, the agent is stopped and started
# again: not one packet is lost and the endpoints are still in the maps.
set -u
. "$(dirname "$0")/lib.sh"
pw_init

node_up n1 192.168.1.11 10.244.1.0/24 || { not_ok "agent starts"; exit 1; }
pod_add n1 a && pod_add n1 b || { not_ok "pods added"; exit 1; }
ok "two pods added"
before=$(endpoint_ips n1)

in_ns "${PW_PREFIX}-a" ping -i 0.01 -c 400 -W 1 "${PW_POD_IP[b]}" > "$PW_TMP/ping.out" 2>&1 &
ping_pid=$!
sleep 0.5
agent_stop n1
ok "agent stopped (SIGTERM)"
sleep 0.5
if agent_start n1; then ok "agent started again"; else not_ok "agent restarts"; fi
wait "$ping_pid"
sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$PW_TMP/ping.out")
recv=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$PW_TMP/ping.out")
check_eq "ping every 10 ms across the restart: received = sent ($sent)" "$recv" "$sent"
check_eq "endpoints survive the restart" "$(endpoint_ips n1)" "$before"
grep -q 'reus' "$PW_TMP/n1/agent.log" && ok "restart reused the pinned maps" || not_ok "agent log does not mention reusing pinned maps"
check "traffic still flows after the restart" in_ns "${PW_PREFIX}-a" ping -c 1 -W 2 "${PW_POD_IP[b]}"

# A reload that changes node.uplink to an interface that does not exist:
# the running agent keeps working, but applied.json and the log say that the
# change waits for a restart and that the restart will fail.
cfg=$PW_TMP/n1/config.json applied=/run/podwire/${PW_NODE_INST[n1]}/applied.json
set_uplink() { # IFNAME: edits the config, waits until the agent has read it
	local before i
	before=$(cat "$applied")
	jq --arg u "$1" '.node.uplink = $u' "$cfg" > "$cfg.tmp" && mv "$cfg.tmp" "$cfg"
	for i in $(seq 100); do
		[ "$(cat "$applied")" != "$before" ] && return 0
		sleep 0.05
	done
	return 1
}
check "agent reads a config with node.uplink nosuch0" set_uplink nosuch0
check_eq "applied.json: ok false" "$(jq -r .ok "$applied")" false
check "applied.json: error names node.uplink, the restart and that it will fail" \
	grep -q 'node.uplink: interface "nosuch0" does not exist: the change waits for a restart of podwired, and that restart will fail' \
	<<<"$(jq -r .error "$applied")"
check_eq "applied.json: restartPending names node.uplink" "$(jq -r .restartPending "$applied")" node.uplink
check_eq "applied.json: services still applied" "$(jq -r .servicesOk "$applied")" true
check "agent log says so too" grep -q 'error: node.uplink: interface "nosuch0" does not exist.*restart will fail' \
	"$PW_TMP/n1/agent.log"
check "traffic still flows on the running uplink" in_ns "${PW_PREFIX}-a" ping -c 1 -W 2 "${PW_POD_IP[b]}"
agent_stop n1
if agent_start n1 >/dev/null; then not_ok "restart with node.uplink nosuch0 fails, as announced"
else ok "restart with node.uplink nosuch0 fails, as announced"; fi
jq '.node.uplink = "eth0"' "$cfg" > "$cfg.tmp" && mv "$cfg.tmp" "$cfg"
if agent_start n1; then ok "agent starts again with node.uplink eth0"; else not_ok "agent starts again with node.uplink eth0"; fi
check_eq "applied.json after the restart: ok, nothing pending" "$(jq -r '"\(.ok) \(.restartPending)"' "$applied")" "true "
[ "$PW_FAILED" = 0 ]
