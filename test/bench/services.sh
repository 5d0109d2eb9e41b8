#!/usr/bin/env bash
# make bench, services (issue 4): connection-per-request (CRR/s) and
# established request/response (RR/s) rates from a pod to a ClusterIP with 1,
# 1,000 and 10,000 services installed, and the time to install them, for
# podwire and, in the same run, for kube-proxy's data planes:
#   iptables-nft     kube-proxy --proxy-mode=iptables rules, loaded with iptables-nft-restore
#   iptables-legacy  the same rules through iptables-legacy-restore
#   nftables         kube-proxy --proxy-mode=nftables ruleset, loaded with nft -f
#
# The kube-proxy setups run on a node namespace with the containernetworking
# bridge + host-local plugins (as run.sh's bridge baseline) and two pods. A
# pod's packet to a VIP is not on the bridge subnet, so the pod sends it to its
# gateway (the node): PREROUTING nat in the node namespace DNATs it, then it is
# routed back out of the bridge to the server pod. The server's reply to the
# client is bridged (same subnet), and is reverse-translated only because the
# bridge hands bridged IPv4 to netfilter (br_netfilter, built into this kernel
# and on by default per namespace: net.bridge.bridge-nf-call-iptables=1) - the
# same dependency kubeadm checks for on every node with a bridge CNI.
#
# Rules are generated as kube-proxy writes them (pkg/proxy/iptables/proxier.go,
# pkg/proxy/nftables/proxier.go): for iptables KUBE-SERVICES -> per-service
# KUBE-SVC-* -> statistic --mode random --probability -> per-endpoint KUBE-SEP-*
# doing DNAT, KUBE-MARK-MASQ / KUBE-POSTROUTING, the filter KUBE-FORWARD /
# KUBE-PROXY-FIREWALL chains and their jumps from the built-in chains; for
# nftables the `service-ips` verdict map keyed by ip . protocol . port jumping to
# per-service chains that pick an endpoint chain with `numgen random mod N vmap`.
# Every service has 2 endpoints (10,000 services = 20,000 endpoints, as the
# podwire target). The measured service's endpoints are the server pod on two
# ports (two pwperf servers), the others' are unused addresses.
#
# Where the measured service sits in KUBE-SERVICES matters to iptables (a
# linear list; kube-proxy writes services in Go map order, i.e. at random):
# BENCH_SVC_POS=middle (default: the average connection), first or last.
#
# Each (setup, count) gets fresh namespaces, so every load is into an empty
# ruleset and no conntrack state carries over. Load time: wall clock of one
# iptables-*-restore / nft -f of the whole ruleset; for podwire, the apply time
# the agent logs ("services: applied ... in X ms", the map writes), with the
# time from renaming the new config into place to the last and the measured
# services' frontends being in pw_services printed below the table (that one
# includes the agent's 100 ms reload debounce and the config parse).
#
# podwire is measured on three paths of the same node, in the same run, at
# every count (issue 12): a pod whose connect() the socket LB translates (the
# default for pods: "podwire-socklb"), a pod opted out of it (CNI_ARGS
# PODWIRE_SOCKET_LB=false: "podwire", the per-packet path, what the
# kube-proxy setups are compared with) and direct pod-to-pod to the server's
# address ("direct"). The three alternate over BENCH_SOCKLB_ROUNDS rounds
# (default 5) and each figure is the median of its rounds, so that load from
# elsewhere on the machine falls on all three alike (on a loaded machine: more,
# shorter rounds, e.g. BENCH_SECONDS=2 BENCH_SOCKLB_ROUNDS=11); the socket-LB
# table gives their ratios to direct.
#
# Knobs: BENCH_SECONDS (per figure, default 5), BENCH_CPU (default 1),
# BENCH_SVC_COUNTS (default "1 1000 10000"), BENCH_SVC_SETUPS (default all four),
# BENCH_SVC_POS, BENCH_SOCKLB_ROUNDS, BENCH_RT, BENCH_SVC_PREFIX (netns prefix, default
# pwbench-svc). Client and server share one CPU, as in run.sh.
# The socket-LB comparison alone:
#   BENCH_SVC_SETUPS=podwire BENCH_SVC_COUNTS="1 10000" bash test/bench/services.sh
set -u
cd "$(dirname "$0")/../.."
export PW_PREFIX=${BENCH_SVC_PREFIX:-pwbench-svc}
. test/e2e/lib.sh
pw_init
SECS=${BENCH_SECONDS:-5}
CPU=${BENCH_CPU:-1}
read -r -a COUNTS <<<"${BENCH_SVC_COUNTS:-1 1000 10000}"
read -r -a SETUPS <<<"${BENCH_SVC_SETUPS:-podwire iptables-nft iptables-legacy nftables}"
POS=${BENCH_SVC_POS:-middle}
ROUNDS=${BENCH_SOCKLB_ROUNDS:-5}
# BENCH_RT=1: client and servers run SCHED_FIFO (chrt -f 1). On a machine
# other work keeps busy, a ping-pong under the normal scheduler waits for the
# CPU at every wake-up and the figures measure that queue, not the datapath;
# a real-time task is woken at once. (The kernel's RT throttling still leaves
# 5% of the CPU to everything else.)
RT=(); [ "${BENCH_RT:-0}" = 0 ] || RT=(chrt -f 1)
PERF="$BUILD/test/bench/pwperf"
KP_SUBNET=10.253.0.0/24      # the bridge node's pods
KP_CLUSTER_CIDR=10.253.0.0/16 # kube-proxy --cluster-cidr (masquerade anything else)
SVC_PORT=80
declare -A RES
SERVER_PIDS=()

# ---- the services -----------------------------------------------------------
# Service i (0-based): VIP 10.96.(1 + i/250).(1 + i%250), TCP port 80, endpoints
# 10.254.x.y:8080 (2i and 2i+1), except the measured one (index T), whose
# endpoints are SIP:7100 and SIP:7102.
target_index() { # N
	case $POS in
	first) echo 0 ;;
	last) echo $(($1 - 1)) ;;
	*) echo $(($1 / 2)) ;;
	esac
}
vip_of() { echo "10.96.$((1 + $1 / 250)).$((1 + $1 % 250))"; }

# Shared by the generators: vip(i), ep(i, k) -> "ip port".
AWK_LIB='
function vip(i) { return "10.96." (1 + int(i / 250)) "." (1 + i % 250) }
function epip(i, k,   j) { if (i == T) return SIP; j = 2 * i + k; return "10.254." int(j / 250) "." (1 + j % 250) }
function epport(i, k) { if (i == T) return k ? 7102 : 7100; return 8080 }
function b32(n, w,   s, c) { s = ""; for (c = 0; c < w; c++) { s = substr(A32, n % 32 + 1, 1) s; n = int(n / 32) } return s }
BEGIN { A32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" }
'

# kube-proxy --proxy-mode=iptables, one full iptables-restore input. Chain
# names are 16 base32 characters like kube-proxy's hashes (unique per service
# / endpoint, not the real hash: names do not change the matching cost).
gen_iptables() { # N T SIP
	awk -v N="$1" -v T="$2" -v SIP="$3" -v CC="$KP_CLUSTER_CIDR" -v P="$SVC_PORT" "$AWK_LIB"'
	function svc(i) { return "KUBE-SVC-PWBENCHSVCAA" b32(i, 4) }   # 9 + 16 chars
	function sep(i, k) { return "KUBE-SEP-PWBENCHSEP" b32(2 * i + k, 6) }
	BEGIN {
		print "*mangle"
		print ":KUBE-PROXY-CANARY - [0:0]"
		print "COMMIT"
		print "*filter"
		print ":INPUT ACCEPT [0:0]"; print ":FORWARD ACCEPT [0:0]"; print ":OUTPUT ACCEPT [0:0]"
		print ":KUBE-PROXY-CANARY - [0:0]"
		print ":KUBE-SERVICES - [0:0]"; print ":KUBE-EXTERNAL-SERVICES - [0:0]"
		print ":KUBE-FORWARD - [0:0]"; print ":KUBE-NODEPORTS - [0:0]"; print ":KUBE-PROXY-FIREWALL - [0:0]"
		print "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL"
		print "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS"
		print "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES"
		print "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL"
		print "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD"
		print "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
		print "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES"
		print "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL"
		print "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
		print "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"
		print "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT"
		print "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
		print "COMMIT"
		print "*nat"
		print ":PREROUTING ACCEPT [0:0]"; print ":INPUT ACCEPT [0:0]"; print ":OUTPUT ACCEPT [0:0]"; print ":POSTROUTING ACCEPT [0:0]"
		print ":KUBE-PROXY-CANARY - [0:0]"
		print ":KUBE-SERVICES - [0:0]"; print ":KUBE-NODEPORTS - [0:0]"
		print ":KUBE-POSTROUTING - [0:0]"; print ":KUBE-MARK-MASQ - [0:0]"
		for (i = 0; i < N; i++) { print ":" svc(i) " - [0:0]"; print ":" sep(i, 0) " - [0:0]"; print ":" sep(i, 1) " - [0:0]" }
		print "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
		print "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
		print "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING"
		print "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"
		print "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000"
		print "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully"
		print "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000"
		for (i = 0; i < N; i++) {
			name = "bench/svc" i ":p" P
			print "-A KUBE-SERVICES -m comment --comment \"" name " cluster IP\" -m tcp -p tcp -d " vip(i) " --dport " P " -j " svc(i)
			print "-A " svc(i) " -m comment --comment \"" name " cluster IP\" -m tcp -p tcp -d " vip(i) " --dport " P " ! -s " CC " -j KUBE-MARK-MASQ"
			print "-A " svc(i) " -m comment --comment \"" name " -> " epip(i, 0) ":" epport(i, 0) "\" -m statistic --mode random --probability 0.5000000000 -j " sep(i, 0)
			print "-A " svc(i) " -m comment --comment \"" name " -> " epip(i, 1) ":" epport(i, 1) "\" -j " sep(i, 1)
			for (k = 0; k < 2; k++) {
				print "-A " sep(i, k) " -m comment --comment " name " -s " epip(i, k) " -j KUBE-MARK-MASQ"
				print "-A " sep(i, k) " -m comment --comment " name " -m tcp -p tcp -j DNAT --to-destination " epip(i, k) ":" epport(i, k)
			}
		}
		print "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"
		print "COMMIT"
	}'
}

# kube-proxy --proxy-mode=nftables, one nft -f transaction: the base ruleset
# of pkg/proxy/nftables (table ip kube-proxy) plus, per service, a service
# chain (masquerade check, numgen vmap over endpoint chains), one chain per
# endpoint (hairpin masquerade check, dnat) and the cluster-ips / service-ips
# elements.
gen_nft() { # N T SIP NODE_IP
	awk -v N="$1" -v T="$2" -v SIP="$3" -v NODEIP="$4" -v CC="$KP_CLUSTER_CIDR" -v P="$SVC_PORT" "$AWK_LIB"'
	function svc(i) { return "service-" b32(i, 8) "-bench/svc" i "/tcp/p" P }
	function ep(i, k) { return "endpoint-" b32(2 * i + k, 8) "-bench/svc" i "/tcp/p" P "__" epip(i, k) "/" epport(i, k) }
	BEGIN {
		t = "ip kube-proxy"
		print "add table " t " { comment \"rules for kube-proxy\" ; }"
		print "add set " t " cluster-ips { type ipv4_addr ; comment \"Active ClusterIPs\" ; }"
		print "add set " t " nodeport-ips { type ipv4_addr ; comment \"IPs that accept NodePort traffic\" ; }"
		print "add map " t " firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"destinations that are subject to LoadBalancerSourceRanges\" ; }"
		print "add map " t " no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to service nodeports with no endpoints\" ; }"
		print "add map " t " no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ; }"
		print "add map " t " service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }"
		print "add map " t " service-nodeports { type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ; }"
		print "add chain " t " cluster-ips-check"
		print "add chain " t " filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }"
		print "add chain " t " filter-output-pre-dnat { type filter hook output priority -110 ; }"
		print "add chain " t " filter-forward { type filter hook forward priority 0 ; }"
		print "add chain " t " filter-input { type filter hook input priority 0 ; }"
		print "add chain " t " filter-output { type filter hook output priority 0 ; }"
		print "add chain " t " firewall-check"
		print "add chain " t " mark-for-masquerade"
		print "add chain " t " masquerading"
		print "add chain " t " nat-output { type nat hook output priority -100 ; }"
		print "add chain " t " nat-postrouting { type nat hook postrouting priority 100 ; }"
		print "add chain " t " nat-prerouting { type nat hook prerouting priority -100 ; }"
		print "add chain " t " nodeport-endpoints-check"
		print "add chain " t " reject-chain { comment \"helper for @no-endpoint-services / @no-endpoint-nodeports\" ; }"
		print "add chain " t " services"
		print "add chain " t " service-endpoints-check"
		print "add rule " t " cluster-ips-check ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\""
		print "add rule " t " cluster-ips-check ip daddr { 10.96.0.0/12 } drop comment \"Drop traffic to unallocated ClusterIPs\""
		print "add rule " t " filter-prerouting-pre-dnat ct state new jump firewall-check"
		print "add rule " t " filter-forward ct state new jump service-endpoints-check"
		print "add rule " t " filter-forward ct state new jump cluster-ips-check"
		print "add rule " t " filter-input ct state new jump nodeport-endpoints-check"
		print "add rule " t " filter-input ct state new jump service-endpoints-check"
		print "add rule " t " filter-output ct state new jump service-endpoints-check"
		print "add rule " t " filter-output-pre-dnat ct state new jump firewall-check"
		print "add rule " t " filter-output ct state new jump cluster-ips-check"
		print "add rule " t " firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips"
		print "add rule " t " mark-for-masquerade mark set mark or 0x4000"
		print "add rule " t " masquerading mark and 0x4000 == 0 return"
		print "add rule " t " masquerading mark set mark xor 0x4000"
		print "add rule " t " masquerading masquerade fully-random"
		print "add rule " t " nat-output jump services"
		print "add rule " t " nat-postrouting jump masquerading"
		print "add rule " t " nat-prerouting jump services"
		print "add rule " t " nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports"
		print "add rule " t " reject-chain reject"
		print "add rule " t " services ip daddr . meta l4proto . th dport vmap @service-ips"
		print "add rule " t " services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"
		print "add element " t " nodeport-ips { " NODEIP " }"
		print "add rule " t " service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services"
		for (i = 0; i < N; i++) {
			# a chain must exist before a rule (or element) of the same transaction jumps to it
			for (k = 0; k < 2; k++) {
				e = ep(i, k)
				print "add chain " t " " e
				print "add rule " t " " e " ip saddr " epip(i, k) " jump mark-for-masquerade"
				print "add rule " t " " e " meta l4proto tcp dnat to " epip(i, k) ":" epport(i, k)
			}
			s = svc(i)
			print "add chain " t " " s
			print "add rule " t " " s " ip daddr " vip(i) " ip saddr != " CC " jump mark-for-masquerade"
			print "add rule " t " " s " numgen random mod 2 vmap { 0 : goto " ep(i, 0) " , 1 : goto " ep(i, 1) " }"
			print "add element " t " cluster-ips { " vip(i) " }"
			print "add element " t " service-ips { " vip(i) " . tcp . " P " : goto " s " }"
		}
	}'
}

# podwire: the config's "services" array (docs/config.md).
gen_podwire_services() { # N T SIP
	awk -v N="$1" -v T="$2" -v SIP="$3" -v P="$SVC_PORT" "$AWK_LIB"'
	BEGIN {
		printf "["
		for (i = 0; i < N; i++)
			printf "%s\n  {\"name\": \"svc%d\", \"vip\": \"%s\", \"port\": %d, \"protocol\": \"tcp\", \"backends\": [{\"ip\": \"%s\", \"port\": %d}, {\"ip\": \"%s\", \"port\": %d}]}", \
				i ? "," : "", i, vip(i), P, epip(i, 0), epport(i, 0), epip(i, 1), epport(i, 1)
		print "]"
	}'
}

# ---- measuring ----------------------------------------------------------------
now_ns() { date +%s%N; }
ms_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.0f", (b - a) / 1e6 }'; }

# One process serves both ports: connections to the service, whichever
# endpoint they get, and direct ones to 7100 wake the same server.
servers_start() { # NS: the two endpoints of the measured service
	# nsenter directly, not in_ns: $! must be the server itself, not a subshell.
	nsenter --net="/run/netns/$1" "${RT[@]}" taskset -c "$CPU" "$PERF" server 7100 7102 &
	SERVER_PIDS+=($!) PW_BG_PIDS+=($!)   # pw_cleanup kills it if the run is interrupted
	wait_listen "${1#"${PW_PREFIX}"-}" 7100 tcp
	wait_listen "${1#"${PW_PREFIX}"-}" 7102 tcp
}

servers_stop() {
	[ ${#SERVER_PIDS[@]} -gt 0 ] || return 0
	kill "${SERVER_PIDS[@]}" 2>/dev/null; wait "${SERVER_PIDS[@]}" 2>/dev/null
	SERVER_PIDS=()
}

# One connect + 1-byte exchange: the service answers at all.
reachable() { # CLIENT_NS IP PORT
	in_ns "$1" timeout 3 "$PERF" crr "$2" "$3" 0.05 >/dev/null 2>&1
}

measure_rates() { # KEY CLIENT_NS IP PORT
	RES[$1,rr]=$(in_ns "$2" "${RT[@]}" taskset -c "$CPU" "$PERF" rr "$3" "$4" "$SECS" | awk '{print $2}')
	RES[$1,crr]=$(in_ns "$2" "${RT[@]}" taskset -c "$CPU" "$PERF" crr "$3" "$4" "$SECS" | awk '{print $2}')
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)) }'; }

# podwire's three paths at N services, alternating over ROUNDS rounds; each
# figure is the median of its rounds (RES[KEY,N,rr|crr]).
measure_paths() { # N VIP
	local n=$1 vip=$2 r key cns ip port paths=(direct podwire-socklb podwire)
	local -A got=()
	for r in $(seq 0 $((ROUNDS - 1))); do
		# each round starts with the next path: none is always first after a pause
		for key in "${paths[@]:r % 3}" "${paths[@]:0:r % 3}"; do
			case $key in
			direct) cns=${PW_PREFIX}-c ip=${PW_POD_IP[s]} port=7100 ;;
			podwire-socklb) cns=${PW_PREFIX}-c ip=$vip port=$SVC_PORT ;;
			podwire) cns=${PW_PREFIX}-o ip=$vip port=$SVC_PORT ;;
			esac
			measure_rates "round" "$cns" "$ip" "$port"
			got[$key,rr]+=" ${RES[round,rr]}" got[$key,crr]+=" ${RES[round,crr]}"
		done
	done
	for key in "${paths[@]}"; do
		RES[$key,$n,rr]=$(median <<<"${got[$key,rr]}")
		RES[$key,$n,crr]=$(median <<<"${got[$key,crr]}")
		echo "# $key at $n service(s): RR/s$(tr -s ' ' <<<"${got[$key,rr]}"), CRR/s$(tr -s ' ' <<<"${got[$key,crr]}")" >&2
	done
}

# Forward conntrack entries of the per-packet path from SRC to DST.
ct_flows() { # INST SRC DST
	bpftool -j map dump pinned "/sys/fs/bpf/podwire/$1/pw_ct" 2>/dev/null |
		jq --arg s "$2" --arg d "$3" '[.[] | .formatted.key | select(.dir == 0 and
			(.saddr | map(tostring) | join(".")) == $s and (.daddr | map(tostring) | join(".")) == $d)] | length'
}

# The two service paths really differ: the socket-LB pod's connection to the
# VIP leaves no per-packet conntrack entry, the opted-out pod's does (else
# the table would compare a path with itself).
paths_distinct() { # INST VIP
	local got
	reachable "${PW_PREFIX}-c" "$2" "$SVC_PORT" && reachable "${PW_PREFIX}-o" "$2" "$SVC_PORT" ||
		{ echo "# podwire: $2:$SVC_PORT does not answer both client pods" >&2; return 1; }
	got=$(ct_flows "$1" "${PW_POD_IP[c]}" "$2")
	[ "$got" = 0 ] || { echo "# podwire: the socket-LB pod has $got per-packet conntrack entries to $2" >&2; return 1; }
	got=$(ct_flows "$1" "${PW_POD_IP[o]}" "$2")
	[ "${got:-0}" -gt 0 ] || { echo "# podwire: the opted-out pod has no per-packet conntrack entry to $2" >&2; return 1; }
}

# ---- kube-proxy on a bridge node ----------------------------------------------
KP_NODE="${PW_PREFIX}-node"

bridge_node_up() { # sets KP_CLIENT_IP KP_SERVER_IP
	local out p
	rm -rf "$PW_TMP/bridge"; mkdir -p "$PW_TMP/bridge/net.d"
	cat > "$PW_TMP/bridge/net.d/10-bridge.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "bridge",
 "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
              "ipam": {"type": "host-local", "subnet": "$KP_SUBNET", "dataDir": "$PW_TMP/bridge/ipam",
                       "routes": [{"dst": "0.0.0.0/0"}]}}]}
JSON
	ip netns add "$KP_NODE"
	in_ns "$KP_NODE" ip link set lo up
	in_ns "$KP_NODE" sysctl -qw net.ipv4.ip_forward=1
	# The server's replies are bridged: without this they skip conntrack's
	# reverse NAT and the client gets them from the pod IP, not the VIP (checked).
	in_ns "$KP_NODE" sysctl -qw net.bridge.bridge-nf-call-iptables=1 ||
		{ echo "# br_netfilter is not available: kube-proxy with a bridge CNI needs it" >&2; return 1; }
	for p in c s; do
		ip netns add "${PW_PREFIX}-$p"
		out=$(NETCONFPATH="$PW_TMP/bridge/net.d" CNI_PATH=/usr/lib/cni in_ns "$KP_NODE" \
			cnitool add bridge "/run/netns/${PW_PREFIX}-$p") || { echo "# cnitool add $p failed: $out"; return 1; }
		eval "KP_$p=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)"
	done
	KP_CLIENT_IP=$KP_c KP_SERVER_IP=$KP_s
	servers_start "${PW_PREFIX}-s"
}

bridge_node_down() {
	local p
	servers_stop
	for p in c s; do
		NETCONFPATH="$PW_TMP/bridge/net.d" CNI_PATH=/usr/lib/cni in_ns "$KP_NODE" \
			cnitool del bridge "/run/netns/${PW_PREFIX}-$p" >/dev/null 2>&1
		ip netns del "${PW_PREFIX}-$p" 2>/dev/null
	done
	ip netns del "$KP_NODE" 2>/dev/null
	return 0
}

kp_load() { # SETUP FILE: prints the load time in ms, fails if the loader did
	local t0 rc
	t0=$(now_ns)
	case $1 in
	iptables-nft) in_ns "$KP_NODE" iptables-nft-restore < "$2" ;;
	iptables-legacy) in_ns "$KP_NODE" iptables-legacy-restore < "$2" ;;
	nftables) in_ns "$KP_NODE" nft -f "$2" ;;
	esac
	rc=$?
	ms_since "$t0"
	return $rc
}

kube_proxy_setup() { # SETUP
	local setup=$1 n t file vip load
	for n in "${COUNTS[@]}"; do
		bridge_node_up || { bridge_node_down; return 1; }
		t=$(target_index "$n"); vip=$(vip_of "$t")
		file="$PW_TMP/rules-$setup-$n"
		if [ "$setup" = nftables ]; then
			gen_nft "$n" "$t" "$KP_SERVER_IP" "${KP_SUBNET%.0/*}.1" > "$file"
		else
			gen_iptables "$n" "$t" "$KP_SERVER_IP" > "$file"
		fi
		echo "# $setup: loading $n service(s) ($(wc -l < "$file") lines)" >&2
		if ! load=$(kp_load "$setup" "$file"); then
			echo "# $setup: loading $n services failed" >&2
			bridge_node_down; continue
		fi
		RES[$setup,$n,load]=$load
		if reachable "${PW_PREFIX}-c" "$vip" "$SVC_PORT"; then
			measure_rates "$setup,$n" "${PW_PREFIX}-c" "$vip" "$SVC_PORT"
		else
			echo "# $setup: $vip:$SVC_PORT does not answer with $n services" >&2
		fi
		bridge_node_down
	done
}

# The reference line: pod to pod over the same bridge, no rules, same run.
bridge_reference() {
	bridge_node_up || { bridge_node_down; return 1; }
	measure_rates bridge "${PW_PREFIX}-c" "$KP_SERVER_IP" 7100
	bridge_node_down
}

# ---- podwire ------------------------------------------------------------------
podwire_landed() {
	grep -q pw_services bpf/lib/maps.h 2>/dev/null && [ -f bpf/lib/lb.h ] && [ -x "$BUILD/podwired" ]
}

# NODE's config.json (node_up wrote it) with SERVICES_FILE as its "services",
# prepared beside it; podwire_write_services then renames it over, as an editor
# would (lib.sh's set_services passes the array as an argument: too long here).
podwire_prepare_services() { # NODE SERVICES_FILE
	local cfg="$PW_TMP/$1/config.json"
	jq --slurpfile s "$2" '.services = $s[0]' "$cfg" > "$cfg.new"
}
podwire_write_services() { mv "$PW_TMP/$1/config.json.new" "$PW_TMP/$1/config.json"; }

frontend_present() { # INST VIP: the VIP's TCP port-80 ClusterIP frontend is in pw_services
	local a b c d
	IFS=. read -r a b c d <<<"$2"
	bpftool map lookup pinned "/sys/fs/bpf/podwire/$1/pw_services" \
		key $a $b $c $d $((SVC_PORT & 255)) $((SVC_PORT >> 8)) 6 0 >/dev/null 2>&1
}

# The apply time the agent logs, in ms ("services: applied N service(s), B
# backend(s) in 12.34 ms: ..."; userspace/agent/reconcile.c).
agent_apply_ms() { # LOGFILE SKIP_LINES
	tail -n +"$(($2 + 1))" "$1" | grep 'services: applied' | sed -nE 's/.* in ([0-9.]+) ?ms.*/\1/p' | tail -n1
}

podwire_setup() {
	local n t vip last skip t0 ms svcfile logged inst
	for n in "${COUNTS[@]}"; do
		node_up pw 192.168.1.11 10.244.1.0/24 >/dev/null || { echo "# podwire node did not start" >&2; pw_cleanup_nodes; return 1; }
		pod_add pw c && pod_add pw s && pod_add pw o CNI_ARGS="IgnoreUnknown=1;PODWIRE_SOCKET_LB=false" ||
			{ echo "# podwire pods not added" >&2; pw_cleanup_nodes; return 1; }
		inst=${PW_NODE_INST[pw]}
		servers_start "${PW_PREFIX}-s"
		t=$(target_index "$n"); vip=$(vip_of "$t"); last=$(vip_of $((n - 1)))
		svcfile="$PW_TMP/services-$n.json"
		gen_podwire_services "$n" "$t" "${PW_POD_IP[s]}" > "$svcfile"
		podwire_prepare_services pw "$svcfile" || { servers_stop; pw_cleanup_nodes; return 1; }
		skip=$(wc -l < "$PW_TMP/pw/agent.log")
		t0=$(now_ns)
		podwire_write_services pw
		# Up to 15 s, polling every 20 ms: bpftool in a tight loop would take
		# the CPU the agent is applying with.
		while ! { frontend_present "$inst" "$last" && frontend_present "$inst" "$vip"; }; do
			[ "$(ms_since "$t0")" -lt 15000 ] || break
			sleep 0.02
			if grep -q 'are not applied' "$PW_TMP/pw/agent.log"; then
				echo "# podwire: SKIPPED - the agent has no service maps: $(grep -m1 'are not applied' "$PW_TMP/pw/agent.log")" >&2
				servers_stop; pw_cleanup_nodes; return 1
			fi
		done
		ms=$(ms_since "$t0")
		if frontend_present "$inst" "$last" && frontend_present "$inst" "$vip"; then
			logged=$(agent_apply_ms "$PW_TMP/pw/agent.log" "$skip")
			if [ -n "$logged" ]; then
				RES[podwire,$n,load]=$logged
				RES[podwire,$n,load_note]="$logged ms as the agent logs the apply; config file renamed -> frontend in the map: $ms ms (100 ms reload debounce + config parse + apply)"
			else
				RES[podwire,$n,load]=$ms
				RES[podwire,$n,load_note]="config file renamed -> frontend in the map, incl. the 100 ms reload debounce (the agent logged no apply time)"
			fi
			echo "# podwire: $n service(s) in the map after $ms ms${logged:+ (agent: $logged ms)}" >&2
			if paths_distinct "$inst" "$vip"; then
				measure_paths "$n" "$vip"
			else
				echo "# podwire: not measured with $n services" >&2
			fi
		else
			echo "# podwire: $n services not in pw_services after $ms ms" >&2
		fi
		servers_stop
		pw_cleanup_nodes
	done
}

# ---- the table ------------------------------------------------------------------

table() {
	local s n base own
	echo
	echo "ClusterIP from a pod, 2 endpoints per service, measured service at position '$POS'"
	echo "(${SECS}s per figure, client+server on CPU $CPU; ratios: vs iptables-nft at the same count, vs the setup's own 1-service figure)"
	printf '%-16s %8s %9s %10s %9s %9s %10s %10s\n' setup services "CRR/s" "vs ipt-nft" "vs own-1" "RR/s" "vs ipt-nft" "load ms"
	local rows=()
	for s in "${SETUPS[@]}"; do
		rows+=("$s")
		[ "$s" != podwire ] || rows+=(podwire-socklb)   # measured with it, same load
	done
	for s in "${rows[@]}"; do
		for n in "${COUNTS[@]}"; do
			base=iptables-nft,$n own=$s,${COUNTS[0]}
			printf '%-16s %8s %9s %10s %9s %9s %10s %10s\n' "$s" "$n" \
				"${RES[$s,$n,crr]:--}" "$(pw_ratio "${RES[$s,$n,crr]:-0}" "${RES[$base,crr]:-0}")" \
				"$(pw_ratio "${RES[$s,$n,crr]:-0}" "${RES[$own,crr]:-0}")" \
				"${RES[$s,$n,rr]:--}" "$(pw_ratio "${RES[$s,$n,rr]:-0}" "${RES[$base,rr]:-0}")" \
				"${RES[$s,$n,load]:-${RES[podwire,$n,load]:--}}"
		done
	done
	printf '%-16s %8s %9s %10s %9s %9s %10s %10s\n' "bridge pod-pod" "-" "${RES[bridge,crr]:--}" "" "" "${RES[bridge,rr]:--}" "" ""
	for n in "${COUNTS[@]}"; do
		[ -n "${RES[podwire,$n,load_note]:-}" ] && echo "podwire load at $n: ${RES[podwire,$n,load_note]}"
	done
	n=${COUNTS[-1]}
	[ -n "${RES[podwire,$n,crr]:-}" ] || return 0
	echo
	echo "issue 4 targets at $n services (podwire: the per-packet path):"
	target "podwire CRR vs its own ${COUNTS[0]}-service CRR" "$(pw_ratio "${RES[podwire,$n,crr]}" "${RES[podwire,${COUNTS[0]},crr]:-0}")" 0.9
	target "podwire CRR vs iptables-nft CRR" "$(pw_ratio "${RES[podwire,$n,crr]}" "${RES[iptables-nft,$n,crr]:-0}")" 2.5
	target "podwire RR through the VIP vs bridge pod-to-pod RR" "$(pw_ratio "${RES[podwire,$n,rr]:-0}" "${RES[bridge,rr]:-0}")" 1.0
	awk -v ms="${RES[podwire,$n,load]:-}" -v n="$n" 'BEGIN {
		printf "  %-52s %10s  (target < 100 ms) %s\n", "podwire load of " n " services", (ms == "" ? "-" : ms " ms"),
			(ms == "" ? "-" : (ms + 0 < 100 ? "met" : "MISSED")) }'
	return 0
}

target() { # WHAT RATIO(e.g. 1.23x) MIN
	awk -v w="$1" -v r="$2" -v min="$3" 'BEGIN {
		v = r; sub(/x$/, "", v)
		printf "  %-52s %10s  (target >= %gx) %s\n", w, r, min, (r == "-" ? "-" : (v + 0 >= min ? "met" : "MISSED")) }'
}

# issue 12: the socket LB beside the per-packet path and direct pod-to-pod.
socklb_table() {
	local n key label first=${COUNTS[0]} last=${COUNTS[-1]}
	[ -n "${RES[direct,$first,crr]:-}${RES[direct,$last,crr]:-}" ] || return 0
	echo
	echo "ClusterIP from a pod on podwire: socket LB, per-packet path, direct pod-to-pod"
	echo "(same node and run; ${SECS}s per figure, median of $ROUNDS alternating rounds, client+server on CPU $CPU${RT[0]:+, SCHED_FIFO})"
	printf '%-16s %8s %9s %10s %9s %10s\n' path services "CRR/s" "vs direct" "RR/s" "vs direct"
	for n in "${COUNTS[@]}"; do
		for key in direct podwire-socklb podwire; do
			case $key in podwire) label=podwire-perpkt ;; *) label=$key ;; esac
			printf '%-16s %8s %9s %10s %9s %10s\n' "$label" "$n" \
				"${RES[$key,$n,crr]:--}" "$(pw_ratio "${RES[$key,$n,crr]:-0}" "${RES[direct,$n,crr]:-0}")" \
				"${RES[$key,$n,rr]:--}" "$(pw_ratio "${RES[$key,$n,rr]:-0}" "${RES[direct,$n,rr]:-0}")"
		done
	done
	echo
	echo "issue 12 targets (socket LB):"
	for n in "${COUNTS[@]}"; do
		target "socket-LB CRR vs direct pod-to-pod CRR, $n svc" "$(pw_ratio "${RES[podwire-socklb,$n,crr]:-0}" "${RES[direct,$n,crr]:-0}" 3)" 0.95
	done
	target "socket-LB CRR at $last vs at $first service(s)" "$(pw_ratio "${RES[podwire-socklb,$last,crr]:-0}" "${RES[podwire-socklb,$first,crr]:-0}" 3)" 0.95
	for n in "${COUNTS[@]}"; do
		target "socket-LB RR vs direct pod-to-pod RR, $n svc" "$(pw_ratio "${RES[podwire-socklb,$n,rr]:-0}" "${RES[direct,$n,rr]:-0}" 3)" 0.95
	done
	return 0
}

# ---- run ------------------------------------------------------------------------
main() {
	local s
	for s in "${SETUPS[@]}"; do
		case $s in
		iptables-nft) command -v iptables-nft-restore >/dev/null || { echo "# iptables-nft-restore missing (make deps)"; exit 1; } ;;
		iptables-legacy) command -v iptables-legacy-restore >/dev/null || { echo "# iptables-legacy-restore missing (make deps)"; exit 1; } ;;
		nftables) command -v nft >/dev/null || { echo "# nft missing (make deps)"; exit 1; } ;;
		esac
	done
	bridge_reference
	for s in "${SETUPS[@]}"; do
		case $s in
		podwire)
			if podwire_landed; then
				podwire_setup
			else
				echo "# podwire: SKIPPED - the service datapath has not landed (no pw_services in bpf/lib/maps.h or no bpf/lib/lb.h)" >&2
			fi ;;
		*) kube_proxy_setup "$s" ;;
		esac
	done
	table
	socklb_table
}

# Everything above is definitions: bash has read the whole file before main runs,
# so editing the script during a (long) run cannot derail it.
main "$@"; exit
