#!/usr/bin/env bash
# make bench: pod-to-pod TCP request/response (1 byte, one connection),
# connection-per-request and single-stream throughput, for podwire and, in the
# same run, for the baselines:
#   veth    two namespaces joined by a plain veth pair (the ceiling)
#   bridge  a Linux bridge with the containernetworking-plugins bridge + host-local
#   flannel-vxlan  across nodes: Flannel's VXLAN backend (bridge, kernel VXLAN
#           device, static FDB/neighbour entries, kernel routes)
#   tc-bare two pods behind veths, a tc program that only rewrites MACs and
#           calls bpf_redirect_peer (test/bench/bare_redirect.bpf.c): the
#           ceiling of any veth + tc datapath, podwire's included
# Client and server share one CPU (taskset): on a 2-core VM cross-CPU wake-ups
# cost more than any datapath and would drown the difference.
set -u
cd "$(dirname "$0")/../.."
export PW_PREFIX=${PW_PREFIX:-pwbench}
. test/e2e/lib.sh
pw_init
SECS=${BENCH_SECONDS:-5}
CPU=${BENCH_CPU:-1}
PERF="$BUILD/test/bench/pwperf"
# Single-stream throughput swings by 10-20% from one 5 s run to the next on
# this VM (the copies to and from user space are most of it, and they
# share the memory bus with everything else): the median of BENCH_GBIT_RUNS.
TPUT_ROUNDS=${BENCH_GBIT_RUNS:-3}
declare -A RES

measure() { # LABEL CLIENT_NS SERVER_NS SERVER_IP
	local label=$1 cns=$2 sns=$3 sip=$4 spid ipid
	[ -n "${BENCH_HOLD:-}" ] && { hold "$cns" "$sns" "$sip"; return; }
	# nsenter directly, not in_ns: $! must be the server itself, not a subshell.
	nsenter --net="/run/netns/$sns" taskset -c "$CPU" "$PERF" server 7100 & spid=$!
	nsenter --net="/run/netns/$sns" taskset -c "$CPU" iperf3 -s -p 7101 >/dev/null 2>&1 & ipid=$!
	sleep 0.3
	RES[$label,rr]=$(in_ns "$cns" taskset -c "$CPU" "$PERF" rr "$sip" 7100 "$SECS" | awk '{print $2}')
	RES[$label,crr]=$(in_ns "$cns" taskset -c "$CPU" "$PERF" crr "$sip" 7100 "$SECS" | awk '{print $2}')
	RES[$label,tput]=$(for ((r = 0; r < TPUT_ROUNDS; r++)); do pw_iperf_gbit "$cns" "$sip" "$SECS" "$CPU"; done |
		pw_median)
	kill "$spid" "$ipid" 2>/dev/null; wait "$spid" "$ipid" 2>/dev/null
}

# BENCH_HOLD=PATH (test/bench/tput.sh): instead of measuring, serve iperf3
# in the setup, say where in PATH.ready and keep the setup up until
# PATH.done appears (at most 30 minutes), so that another script can
# measure several setups at once, interleaved.
hold() { # CLIENT_NS SERVER_NS SERVER_IP
	local ipid t=0
	nsenter --net="/run/netns/$2" taskset -c "$CPU" iperf3 -s -p 7101 >/dev/null 2>&1 & ipid=$!
	echo "$1 $2 $3" > "$BENCH_HOLD.ready"
	while [ ! -e "$BENCH_HOLD.done" ] && [ $t -lt 3600 ]; do sleep 0.5; t=$((t + 1)); done
	kill "$ipid" 2>/dev/null; wait "$ipid" 2>/dev/null
}

veth_baseline() {
	ip netns add "${PW_PREFIX}-va"; ip netns add "${PW_PREFIX}-vb"
	ip link add veth0 netns "${PW_PREFIX}-va" type veth peer name veth0 netns "${PW_PREFIX}-vb"
	in_ns "${PW_PREFIX}-va" ip addr add 10.250.0.1/24 dev veth0
	in_ns "${PW_PREFIX}-vb" ip addr add 10.250.0.2/24 dev veth0
	for n in va vb; do in_ns "${PW_PREFIX}-$n" ip link set veth0 up; in_ns "${PW_PREFIX}-$n" ip link set lo up; done
	measure veth "${PW_PREFIX}-va" "${PW_PREFIX}-vb" 10.250.0.2
}

# Two pods whose host-side veths carry only bare_redirect.bpf.c, compiled
# here with their ifindexes and MACs as constants.
tc_bare_baseline() {
	local h="${PW_PREFIX}-th" p obj="$PW_TMP/bare_redirect.bpf.o"
	addr() { in_ns "$1" ip -j link show "$2" | jq -r '.[0].address'; }
	bytes() { addr "$1" "$2" | sed 's/^/0x/; s/:/,0x/g'; }
	ip netns add "$h"
	for p in a b; do
		ip netns add "${PW_PREFIX}-t$p"
		in_ns "$h" ip link add "h$p" type veth peer name eth0 netns "${PW_PREFIX}-t$p"
		in_ns "$h" ip link set "h$p" up
		in_ns "${PW_PREFIX}-t$p" ip link set eth0 up; in_ns "${PW_PREFIX}-t$p" ip link set lo up
	done
	in_ns "${PW_PREFIX}-ta" ip addr add 10.253.0.1/32 dev eth0; in_ns "${PW_PREFIX}-ta" ip route add 10.253.0.2 dev eth0
	in_ns "${PW_PREFIX}-tb" ip addr add 10.253.0.2/32 dev eth0; in_ns "${PW_PREFIX}-tb" ip route add 10.253.0.1 dev eth0
	in_ns "${PW_PREFIX}-ta" ip neigh add 10.253.0.2 lladdr "$(addr "$h" ha)" dev eth0
	in_ns "${PW_PREFIX}-tb" ip neigh add 10.253.0.1 lladdr "$(addr "$h" hb)" dev eth0
	clang -O2 -g -target bpf -I"/usr/include/$(gcc -print-multiarch)" \
		-DA_IF="$(in_ns "$h" ip -j link show ha | jq '.[0].ifindex')" \
		-DB_IF="$(in_ns "$h" ip -j link show hb | jq '.[0].ifindex')" \
		-DA_MAC="$(bytes "${PW_PREFIX}-ta" eth0)" -DB_MAC="$(bytes "${PW_PREFIX}-tb" eth0)" \
		-DHA_MAC="$(bytes "$h" ha)" -DHB_MAC="$(bytes "$h" hb)" \
		-c test/bench/bare_redirect.bpf.c -o "$obj" || { echo "tc-bare: compile failed"; return 1; }
	for p in a b; do
		in_ns "$h" tc qdisc add dev "h$p" clsact
		in_ns "$h" tc filter add dev "h$p" ingress bpf direct-action obj "$obj" sec tc ||
			{ echo "tc-bare: attach failed"; return 1; }
	done
	measure tc-bare "${PW_PREFIX}-ta" "${PW_PREFIX}-tb" 10.253.0.2
	ns_del "$h" "${PW_PREFIX}-ta" "${PW_PREFIX}-tb"
}

bridge_baseline() {
	local ns="${PW_PREFIX}-bridge" out ipa ipb
	mkdir -p "$PW_TMP/bridge/net.d"
	cat > "$PW_TMP/bridge/net.d/10-bridge.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "bridge",
 "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
              "ipam": {"type": "host-local", "subnet": "10.251.1.0/24", "dataDir": "$PW_TMP/bridge/ipam",
                       "routes": [{"dst": "0.0.0.0/0"}]}}]}
JSON
	ip netns add "$ns"; ip netns add "${PW_PREFIX}-ba"; ip netns add "${PW_PREFIX}-bb"
	in_ns "$ns" ip link set lo up
	for p in ba bb; do
		out=$(NETCONFPATH="$PW_TMP/bridge/net.d" CNI_PATH=/usr/lib/cni in_ns "$ns" cnitool add bridge "/run/netns/${PW_PREFIX}-$p")
		eval "ip_$p=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)"
	done
	measure bridge "${PW_PREFIX}-ba" "${PW_PREFIX}-bb" "$ip_bb"
	for p in ba bb; do
		NETCONFPATH="$PW_TMP/bridge/net.d" CNI_PATH=/usr/lib/cni in_ns "$ns" cnitool del bridge "/run/netns/${PW_PREFIX}-$p" >/dev/null 2>&1
	done
}

# Two nodes on a LAN, each a Linux bridge with bridge + host-local, and kernel
# routes between them: what a user would otherwise run across nodes.
bridge_cross_node() {
	local n out
	ip netns add "${PW_PREFIX}-lan"; in_ns "${PW_PREFIX}-lan" ip link add br0 type bridge; in_ns "${PW_PREFIX}-lan" ip link set br0 up
	for n in 1 2; do
		local ns="${PW_PREFIX}-bn$n"
		ip netns add "$ns"; in_ns "$ns" ip link set lo up
		lan_port "$ns" "bn$n"
		in_ns "$ns" ip addr add "192.168.2.1$n/24" dev eth0; in_ns "$ns" ip link set eth0 up
		in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1
		mkdir -p "$PW_TMP/bn$n/net.d"
		cat > "$PW_TMP/bn$n/net.d/10-bridge.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "bridge",
 "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
              "ipam": {"type": "host-local", "subnet": "10.252.$n.0/24", "dataDir": "$PW_TMP/bn$n/ipam",
                       "routes": [{"dst": "0.0.0.0/0"}]}}]}
JSON
		ip netns add "${PW_PREFIX}-bp$n"
		out=$(NETCONFPATH="$PW_TMP/bn$n/net.d" CNI_PATH=/usr/lib/cni in_ns "$ns" cnitool add bridge "/run/netns/${PW_PREFIX}-bp$n")
		eval "ip_bp$n=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)"
	done
	in_ns "${PW_PREFIX}-bn1" ip route add 10.252.2.0/24 via 192.168.2.12
	in_ns "${PW_PREFIX}-bn2" ip route add 10.252.1.0/24 via 192.168.2.11
	measure bridge-x "${PW_PREFIX}-bp1" "${PW_PREFIX}-bp2" "$ip_bp2"
	for n in 1 2; do
		NETCONFPATH="$PW_TMP/bn$n/net.d" CNI_PATH=/usr/lib/cni in_ns "${PW_PREFIX}-bn$n" \
			cnitool del bridge "/run/netns/${PW_PREFIX}-bp$n" >/dev/null 2>&1
		ip netns del "${PW_PREFIX}-bn$n"; ip netns del "${PW_PREFIX}-bp$n"
	done
	ip netns del "${PW_PREFIX}-lan"
}

# What Flannel's VXLAN backend builds on each node: pods on a bridge (cni0,
# MTU 1450), a kernel VXLAN device flannel.1 (VNI 1, port 8472, no learning)
# holding the node's subnet .0/32, and per other node a route to its pod
# subnet via its flannel.1 address (onlink), a permanent neighbour entry for
# that address and an FDB entry sending its MAC to the node's IP.
flannel_cross_node() {
	local n m out mac
	lan_up
	for n in 1 2; do
		local ns="${PW_PREFIX}-fn$n"
		ip netns add "$ns"; in_ns "$ns" ip link set lo up
		lan_port "$ns" "fn$n"
		in_ns "$ns" ip addr add "192.168.3.1$n/24" dev eth0; in_ns "$ns" ip link set eth0 up
		in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1
		in_ns "$ns" ip link add flannel.1 type vxlan id 1 local "192.168.3.1$n" dev eth0 dstport 8472 nolearning
		in_ns "$ns" ip link set flannel.1 mtu 1450 up
		in_ns "$ns" ip addr add "10.254.$n.0/32" dev flannel.1
		mkdir -p "$PW_TMP/fn$n/net.d"
		cat > "$PW_TMP/fn$n/net.d/10-flannel.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "cbr0",
 "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "mtu": 1450,
              "hairpinMode": true,
              "ipam": {"type": "host-local", "subnet": "10.254.$n.0/24", "dataDir": "$PW_TMP/fn$n/ipam",
                       "routes": [{"dst": "0.0.0.0/0"}]}}]}
JSON
		ip netns add "${PW_PREFIX}-fp$n"
		out=$(NETCONFPATH="$PW_TMP/fn$n/net.d" CNI_PATH=/usr/lib/cni in_ns "$ns" cnitool add cbr0 "/run/netns/${PW_PREFIX}-fp$n")
		eval "ip_fp$n=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)"
	done
	for n in 1 2; do
		m=$((3 - n))
		mac=$(in_ns "${PW_PREFIX}-fn$m" ip -j link show flannel.1 | jq -r '.[0].address')
		in_ns "${PW_PREFIX}-fn$n" ip neigh add "10.254.$m.0" lladdr "$mac" dev flannel.1 nud permanent
		in_ns "${PW_PREFIX}-fn$n" bridge fdb append "$mac" dev flannel.1 dst "192.168.3.1$m"
		in_ns "${PW_PREFIX}-fn$n" ip route add "10.254.$m.0/24" via "10.254.$m.0" dev flannel.1 onlink
	done
	measure flannel-vxlan "${PW_PREFIX}-fp1" "${PW_PREFIX}-fp2" "$ip_fp2"
	for n in 1 2; do
		NETCONFPATH="$PW_TMP/fn$n/net.d" CNI_PATH=/usr/lib/cni in_ns "${PW_PREFIX}-fn$n" \
			cnitool del cbr0 "/run/netns/${PW_PREFIX}-fp$n" >/dev/null 2>&1
		ip netns del "${PW_PREFIX}-fn$n"; ip netns del "${PW_PREFIX}-fp$n"
	done
	ip netns del "${PW_PREFIX}-lan"
}

podwire_cross_node() { # MODE
	local mode=$1 n
	lan_up
	for n in 1 2 3; do
		node_up "x$mode$n" "192.168.1.1$n" "10.244.$n.0/24" "$mode" "$(seed_peers_json "node$n")" >/dev/null ||
			{ echo "podwire $mode node did not start"; return 1; }
	done
	pod_add "x${mode}1" "x${mode}p1" && pod_add "x${mode}2" "x${mode}p2" || return 1
	measure "podwire-$mode" "${PW_PREFIX}-x${mode}p1" "${PW_PREFIX}-x${mode}p2" "${PW_POD_IP[x${mode}p2]}"
	pw_cleanup_nodes
}

podwire_same_node() {
	node_up n1 192.168.1.11 10.244.1.0/24 >/dev/null || { echo "podwire node did not start"; return 1; }
	pod_add n1 a && pod_add n1 b || return 1
	measure podwire "${PW_PREFIX}-a" "${PW_PREFIX}-b" "${PW_POD_IP[b]}"
}


table() { # TITLE BASELINE SETUPS...
	local title=$1 base=$2 s; shift 2
	echo; echo "$title (${SECS}s per figure, Gbit/s the median of $TPUT_ROUNDS, client+server on CPU $CPU)"
	printf '%-16s %10s %8s %10s %8s %8s %8s\n' setup "RR/s" "vs $base" "CRR/s" "vs $base" "Gbit/s" "vs $base"
	for s in "$@"; do
		printf '%-16s %10s %8s %10s %8s %8s %8s\n' "$s" \
			"${RES[$s,rr]:--}" "$(pw_ratio "${RES[$s,rr]:-0}" "${RES[$base,rr]:-0}")" \
			"${RES[$s,crr]:--}" "$(pw_ratio "${RES[$s,crr]:-0}" "${RES[$base,crr]:-0}")" \
			"${RES[$s,tput]:--}" "$(pw_ratio "${RES[$s,tput]:-0}" "${RES[$base,tput]:-0}")"
	done
}

# BENCH_ONLY: the setups to measure (default all), e.g.
# BENCH_ONLY="podwire-native flannel-vxlan podwire-vxlan" BENCH_SERVICES=0 BENCH_POLICY=0
want() { [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }
want veth && veth_baseline
want tc-bare && tc_bare_baseline
want bridge && bridge_baseline
want podwire && { podwire_same_node; pw_cleanup_nodes; }
want bridge-x && bridge_cross_node
want flannel-vxlan && flannel_cross_node
want podwire-native && podwire_cross_node native
want podwire-vxlan && podwire_cross_node vxlan

table "pod-to-pod, same node" veth veth tc-bare bridge podwire
echo "podwire vs tc-bare (what podwire's own work costs): RR $(pw_ratio "${RES[podwire,rr]:-0}" "${RES[tc-bare,rr]:-0}"), CRR $(pw_ratio "${RES[podwire,crr]:-0}" "${RES[tc-bare,crr]:-0}")"
table "pod-to-pod, across nodes" bridge-x bridge-x podwire-native flannel-vxlan podwire-vxlan
echo
echo "podwire-vxlan vs podwire-native: RR $(pw_ratio "${RES[podwire-vxlan,rr]:-0}" "${RES[podwire-native,rr]:-0}"), CRR $(pw_ratio "${RES[podwire-vxlan,crr]:-0}" "${RES[podwire-native,crr]:-0}"), throughput $(pw_ratio "${RES[podwire-vxlan,tput]:-0}" "${RES[podwire-native,tput]:-0}")"
echo "podwire-vxlan vs flannel-vxlan: RR $(pw_ratio "${RES[podwire-vxlan,rr]:-0}" "${RES[flannel-vxlan,rr]:-0}"), CRR $(pw_ratio "${RES[podwire-vxlan,crr]:-0}" "${RES[flannel-vxlan,crr]:-0}"), throughput $(pw_ratio "${RES[podwire-vxlan,tput]:-0}" "${RES[flannel-vxlan,tput]:-0}")"

# Throughput across nodes again, the setups held up at once and measured
# interleaved (tput.sh): the figure the VXLAN targets are read from.
# BENCH_TPUT=0 skips it.
[ -n "${BENCH_HOLD:-}" ] || [ "${BENCH_TPUT:-1}" = 0 ] || BUILD="$BUILD" bash test/bench/tput.sh

# Services: ClusterIP CRR/RR at 1 / 1,000 / 10,000 services and load times,
# podwire beside kube-proxy's iptables (nft and legacy) and nftables modes.
# BENCH_SERVICES=0 skips them (they take a few minutes).
[ "${BENCH_SERVICES:-1}" = 0 ] || BUILD="$BUILD" bash test/bench/services.sh

# NetworkPolicy: RR/CRR with no model and 0, 100, 1,000 of 1,000 policies
# selecting the measured pod, then apply and change times over 10,000 pods
# and per-packet cost (policy_cost; docs/policy.md). BENCH_POLICY=0 skips it;
# alone: bash test/bench/policy.sh.
[ "${BENCH_POLICY:-1}" = 0 ] || BUILD="$BUILD" bash test/bench/policy.sh
