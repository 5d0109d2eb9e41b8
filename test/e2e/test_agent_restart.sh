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
[ "$PW_FAILED" = 0 ]
