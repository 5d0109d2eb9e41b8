# Shared by the end-to-end tests and the demo: nodes and pods as network
# namespaces, a real podwired per node, pods added by cnitool (the CNI
# project's own client) through the conflist, checks that print
# "ok - name" / "not ok - name: why".
#
# Processes enter a node or pod with `nsenter --net`, not `ip netns exec`:
# the latter remounts /sys in a private mount namespace, which hides the
# bpffs at /sys/fs/bpf, so pins made there would be invisible to everyone else.

BUILD=${BUILD:-build}
BUILD=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && cd "$BUILD" 2>/dev/null && pwd || echo "$BUILD")
PW_PREFIX=${PW_PREFIX:-pwt-$$}
PW_TMP=$(mktemp -d "/tmp/${PW_PREFIX}.XXXXXX")
PW_FAILED=0
PW_NODES=()
PW_PODS=()
PW_BG_PIDS=()
declare -A PW_AGENT_PID PW_POD_NODE PW_POD_IP PW_NODE_INST PW_HOST_IP

ok()     { echo "ok - $*"; }
not_ok() { PW_FAILED=$((PW_FAILED + 1)); echo "not ok - $*"; }
check()  { # name, command...: ok when the command succeeds
	local name=$1; shift
	if "$@" >/dev/null 2>&1; then ok "$name"; else not_ok "$name: command failed: $*"; fi
}
check_eq() { # name, got, want
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: got '$2', want '$3'"; fi
}
log() { echo "# $*"; }

in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }

# A / B as "0.97x" (DIGITS decimals, 2 by default), "-" when either is missing.
pw_ratio() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN { if (a > 0 && b > 0) printf "%.*fx", d, a / b; else print "-" }'; }

# Single-stream iperf3 throughput in Gbit/s (2 decimals) from namespace NS
# to an iperf3 server on SERVER_IP:7101, pinned to CPU.
pw_iperf_gbit() { # NS SERVER_IP SECONDS CPU
	nsenter --net="/run/netns/$1" taskset -c "$4" iperf3 -c "$2" -p 7101 -t "$3" -J 2>/dev/null |
		jq '.end.sum_received.bits_per_second / 1e9 | . * 100 | round / 100'
}

# The median of the numbers on stdin (spaces or newlines), 0 for none.
pw_median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{v[NR] = $1} END {print (NR ? v[int((NR + 1) / 2)] : 0)}'; }

# ns_del NS...: kills what still runs inside each namespace, then deletes it
# (a process would otherwise outlive its namespace and keep the netns alive).
ns_del() {
	local ns pids
	for ns in "$@"; do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		[ -n "$pids" ] && kill $pids 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	return 0
}

# bg_in_ns NS CMD...: a long-running process in NS, killed by pw_cleanup.
bg_in_ns() {
	local ns=$1; shift
	nsenter --net="/run/netns/$ns" "$@" &
	PW_BG_PIDS+=($!)
}

ensure_bpffs() {
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
}

# A LAN bridge in its own namespace joins the nodes, as a switch would.
lan_up() {
	ip netns add "${PW_PREFIX}-lan"
	in_ns "${PW_PREFIX}-lan" ip link add br0 type bridge
	in_ns "${PW_PREFIX}-lan" ip link set br0 up
}

lan_port() { # NS NAME: plugs NS's eth0 into the LAN bridge
	ip link add "l-$2" netns "${PW_PREFIX}-lan" type veth peer name eth0 netns "$1"
	in_ns "${PW_PREFIX}-lan" ip link set "l-$2" master br0 up
}

# ext_up NAME IP: a host on the LAN standing for the world outside the
# cluster; it has no route to any pod CIDR.
ext_up() {
	local ns="${PW_PREFIX}-$1"
	ip netns add "$ns"
	in_ns "$ns" ip link set lo up
	lan_port "$ns" "$1"
	in_ns "$ns" ip addr add "$2/24" dev eth0
	in_ns "$ns" ip link set eth0 up
	PW_HOST_IP[$1]=$2
}

# narrow_path_up MTU: the world beyond a router. The router "rtr" sits on
# the LAN at 192.168.1.1; behind it the host "far" (203.0.113.2), which
# the router reaches only through MTU bytes. far keeps MTU 1500 and so
# announces a full-size MSS: only path MTU discovery can find the limit.
# Nodes need a route to 203.0.113.0/24 via 192.168.1.1.
narrow_path_up() {
	local r="${PW_PREFIX}-rtr" f="${PW_PREFIX}-far"
	ip netns add "$r"; ip netns add "$f"
	in_ns "$r" ip link set lo up; in_ns "$f" ip link set lo up
	lan_port "$r" rtr
	in_ns "$r" ip addr add 192.168.1.1/24 dev eth0
	in_ns "$r" ip link set eth0 up
	in_ns "$r" ip link add eth1 mtu "$1" type veth peer name eth0 netns "$f"
	in_ns "$r" ip addr add 203.0.113.1/24 dev eth1
	in_ns "$r" ip link set eth1 up
	in_ns "$r" sysctl -qw net.ipv4.ip_forward=1
	in_ns "$f" ip addr add 203.0.113.2/24 dev eth0
	in_ns "$f" ip link set eth0 up
	in_ns "$f" ip route add default via 203.0.113.1
}

# peers_json NAME: the seeds' cluster as seen from node NAME (every other node)
seed_peers_json() {
	local self=$1 n sep="" out="["
	for n in 1 2 3; do
		[ "node$n" = "$self" ] && continue
		out+="$sep{\"name\": \"node$n\", \"ip\": \"192.168.1.1$n\", \"podCIDR\": \"10.244.$n.0/24\"}"
		sep=", "
	done
	echo "$out]"
}

# node_up NAME IP/24 PODCIDR [ROUTING] [PEERS_JSON]
node_up() {
	local name=$1 ip=$2 podcidr=$3 routing=${4:-native} peers=${5:-[]}
	local ns="${PW_PREFIX}-$name" inst="${PW_PREFIX}-$name"
	ip netns add "$ns"
	PW_NODES+=("$name")
	PW_NODE_INST[$name]=$inst
	in_ns "$ns" ip link set lo up
	if ip netns list | grep -q "^${PW_PREFIX}-lan"; then
		lan_port "$ns" "$name"
	else
		in_ns "$ns" ip link add eth0 type veth peer name eth0p   # no dummy driver on every kernel
		in_ns "$ns" ip link set eth0p up
	fi
	in_ns "$ns" ip addr add "$ip/24" dev eth0
	in_ns "$ns" ip link set eth0 up
	mkdir -p "$PW_TMP/$name/net.d"
	cat > "$PW_TMP/$name/config.json" <<JSON
{
  "node":    {"name": "$name", "ip": "$ip", "uplink": "eth0", "podCIDR": "$podcidr"},
  "cluster": {"podCIDR": "10.244.0.0/16", "serviceCIDR": "10.96.0.0/12", "routing": "$routing", "masquerade": true},
  "peers":   $peers
}
JSON
	cat > "$PW_TMP/$name/net.d/10-podwire.conflist" <<JSON
{"cniVersion": "1.1.0", "name": "podwire",
 "plugins": [{"type": "podwire", "instance": "$inst", "logFile": "$PW_TMP/$name/cni.log", "logLevel": "debug",
              "capabilities": {"ips": true, "mac": true}}]}
JSON
	agent_start "$name"
}

agent_start() { # NAME: starts podwired in the node and waits until it has published node.json
	local name=$1 inst=${PW_NODE_INST[$1]} i skip
	touch "$PW_TMP/$name/agent.log"
	skip=$(wc -l < "$PW_TMP/$name/agent.log")
	# nsenter itself, not the in_ns function: $! must be the agent, not a subshell.
	# PW_AGENT_ARGS: extra podwired flags (word-split), e.g. "--metrics-port 9966".
	# shellcheck disable=SC2086
	nsenter --net="/run/netns/${PW_PREFIX}-$name" "$BUILD/podwired" --instance "$inst" \
		--config "$PW_TMP/$name/config.json" ${PW_AGENT_ARGS:-} >>"$PW_TMP/$name/agent.log" 2>&1 &
	PW_AGENT_PID[$name]=$!
	for i in $(seq 150); do
		tail -n +"$((skip + 1))" "$PW_TMP/$name/agent.log" | grep -q 'ready' && return 0
		kill -0 "${PW_AGENT_PID[$name]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "# agent of $name did not come up:"; sed 's/^/#   /' "$PW_TMP/$name/agent.log"
	return 1
}

agent_stop() { # NAME: SIGTERM, wait
	local pid=${PW_AGENT_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	PW_AGENT_PID[$1]=
}

cni() { # NODE VERB POD [extra env...]: runs cnitool in the node, as kubelet's runtime would
	local node=$1 verb=$2 pod=$3; shift 3
	env NETCONFPATH="$PW_TMP/$node/net.d" CNI_PATH="$BUILD" "$@" \
		nsenter --net="/run/netns/${PW_PREFIX}-$node" cnitool "$verb" podwire "/run/netns/${PW_PREFIX}-$pod"
}

pod_add() { # NODE POD [extra env...]: creates the pod netns and ADDs it; sets PW_POD_IP[POD]
	local node=$1 pod=$2 out
	shift 2
	ip netns add "${PW_PREFIX}-$pod"
	PW_PODS+=("$pod")
	PW_POD_NODE[$pod]=$node
	out=$(cni "$node" add "$pod" "$@") || { echo "# cnitool add $pod failed: $out"; return 1; }
	PW_POD_IP[$pod]=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)
	[ -n "${PW_POD_IP[$pod]}" ] && [ "${PW_POD_IP[$pod]}" != null ]
}

pod_del() { # POD
	cni "${PW_POD_NODE[$1]}" del "$1"
}

# set_services NODE JSON_ARRAY: replaces the services of NODE's config (the
# agent watches the file) and waits until the agent has applied it.
set_services() {
	local node=$1 svcs=$2 cfg="$PW_TMP/$1/config.json" i before
	local applied="/run/podwire/${PW_NODE_INST[$1]}/applied.json"
	before=$(cat "$applied" 2>/dev/null)
	jq --argjson s "$svcs" '.services = $s' "$cfg" > "$cfg.tmp" && mv "$cfg.tmp" "$cfg"
	# The agent records the digest of every config it applies: wait for a new one.
	for i in $(seq 100); do
		[ "$(cat "$applied" 2>/dev/null)" != "$before" ] && return 0
		sleep 0.05
	done
	echo "# agent of $node did not apply the new services within 5 s"
	return 1
}

# tcp_peer_seen FROM TO [PORT]: a TCP exchange from pod FROM to pod TO; prints
# the source address the server saw (the server answers with it).
tcp_peer_seen() {
	local from=$1 to=$2 port=${3:-7001} srv
	local dst=${PW_POD_IP[$to]:-${PW_HOST_IP[$to]:-}}
	nsenter --net="/run/netns/${PW_PREFIX}-$to" timeout 30 socat -T5 TCP-LISTEN:"$port",reuseaddr \
		SYSTEM:'echo $SOCAT_PEERADDR' &
	srv=$!
	wait_listen "$to" "$port" tcp
	in_ns "${PW_PREFIX}-$from" timeout 5 socat -T3 - TCP:"$dst":"$port" </dev/null 2>/dev/null
	wait "$srv" 2>/dev/null
}

udp_peer_seen() { # FROM TO [PORT]: same over UDP (request, reply with the seen source)
	local from=$1 to=$2 port=${3:-7002} srv try seen
	local dst=${PW_POD_IP[$to]:-${PW_HOST_IP[$to]:-}}
	# The child reads the datagram before answering: one that exits unread
	# makes socat fail on a broken pipe before it relays the answer.
	nsenter --net="/run/netns/${PW_PREFIX}-$to" timeout 8 socat -T6 UDP-RECVFROM:"$port",reuseaddr,fork \
		SYSTEM:'read -r _; echo $SOCAT_PEERADDR' &
	srv=$!
	wait_listen "$to" "$port" udp
	# UDP may lose a datagram (e.g. the first one while a neighbour resolves): retry like any UDP client.
	# A refused datagram (server not bound yet under load) fails at once: space the tries.
	for try in 1 2 3 4; do
		seen=$(echo hi | in_ns "${PW_PREFIX}-$from" timeout 3 socat -T1 - UDP:"$dst":"$port" 2>/dev/null)
		[ -n "$seen" ] && break
		sleep 0.3
	done
	kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null
	echo "$seen"
}

# tcp_transfer_intact FROM TO DST PORT BYTES: BYTES of random data over one TCP
# connection from namespace FROM to DST:PORT, served in namespace TO (socat);
# succeeds when they arrive byte for byte.
tcp_transfer_intact() {
	local from=$1 to=$2 dst=$3 port=$4 bytes=$5 srv f=$PW_TMP/transfer-$1-$2-$4
	head -c "$bytes" /dev/urandom > "$f"
	nsenter --net="/run/netns/${PW_PREFIX}-$to" timeout 20 socat -u TCP-LISTEN:"$port",reuseaddr \
		OPEN:"$f.rx",creat,trunc &
	srv=$!
	wait_listen "$to" "$port" tcp
	in_ns "${PW_PREFIX}-$from" timeout 20 socat -u OPEN:"$f" TCP:"$dst":"$port"
	wait "$srv"
	[ -s "$f.rx" ] && cmp -s "$f" "$f.rx"
}

wait_listen() { # POD PORT tcp|udp
	local i flag=-lnt
	[ "$3" = udp ] && flag=-lnu
	# Up to ~10 s: a listener's start (nsenter, timeout, socat) can take
	# seconds in a TCG guest of the kernel matrix.
	for i in $(seq 200); do
		in_ns "${PW_PREFIX}-$1" ss "$flag" | grep -q ":$2 " && return 0
		sleep 0.05
	done
}

endpoint_ips() { # NODE: pod IPs in the node's pw_endpoints map, sorted, one per line
	bpftool -j map dump pinned "/sys/fs/bpf/podwire/${PW_NODE_INST[$1]}/pw_endpoints" 2>/dev/null |
		jq -r '.[] | .formatted.key.addr // .key.addr | map(tostring) | join(".")' 2>/dev/null | sort
}

# pw_pol_ep is an array of pod slots (the address's low 16 bits, include/
# podwire/abi.h): a slot polices the pod it names.
pol_ep_has() { # PIN_DIR IP: IP's slot names IP and polices it
	local a b c d
	IFS=. read -r a b c d <<<"$2"
	bpftool -j map lookup pinned "$1/pw_pol_ep" key "$d" "$c" 0 0 2>/dev/null |
		jq -e --arg ip "$2" '.formatted.value | .flags != 0 and (.ip | map(tostring) | join(".")) == $ip' >/dev/null
}
pol_ep_count() { # < bpftool -j dump of pw_pol_ep: the occupied slots (policed pods)
	jq '[.[] | select(.formatted.value.flags != 0)] | length'
}

# Pods (DEL through the plugin) and nodes (agent stopped, uninstalled), and their namespaces.
pw_cleanup_nodes() {
	local n p
	for p in "${PW_PODS[@]}"; do
		[ -n "${PW_POD_NODE[$p]:-}" ] && pod_del "$p" >/dev/null 2>&1
		ns_del "${PW_PREFIX}-$p"
	done
	for n in "${PW_NODES[@]}"; do
		agent_stop "$n"
		in_ns "${PW_PREFIX}-$n" "$BUILD/podwired" --instance "${PW_NODE_INST[$n]}" --uninstall >/dev/null 2>&1
		rm -rf "/sys/fs/bpf/podwire/${PW_NODE_INST[$n]}" "/run/podwire/${PW_NODE_INST[$n]}"
		ns_del "${PW_PREFIX}-$n"
	done
	PW_PODS=() PW_NODES=()
	ns_del "${PW_PREFIX}-lan"
	return 0
}

# Everything a test made goes, pass or fail.
pw_cleanup() {
	local p
	[ ${#PW_BG_PIDS[@]} -gt 0 ] && kill "${PW_BG_PIDS[@]}" 2>/dev/null
	pw_cleanup_nodes
	ns_del $(ip netns list | awk '{print $1}' | grep "^${PW_PREFIX}-")
	rm -rf "$PW_TMP"
}

pw_init() {
	trap pw_cleanup EXIT
	trap 'exit 130' INT TERM
	ensure_bpffs
}
