#!/usr/bin/env bash
# CNI conformance of the podwire plugin, driven directly (env vars + stdin,
# as a runtime does) against real agents: two node netns (pwt-cc-node with a
# /24 pod CIDR, pwt-cc-node2 with a /28 for pool exhaustion and churn), each
# running podwired. Checks results per spec version, error codes, locking,
# idempotent DEL, CHECK, GC, STATUS, and that failures and DEL leave nothing
# behind (veths, endpoint map entries, link pins, IPAM reservations).
#
# Processes enter namespaces with `nsenter --net`, not `ip netns exec`, which
# remounts /sys and would hide the bpffs pins.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BUILD=$(cd "$BUILD" && pwd)
PLUGIN=$BUILD/podwire
AGENT=$BUILD/podwired
P=pwt-cc                                   # prefix of every netns / instance
TMP=$(mktemp -d /tmp/pwt-cc.XXXXXX)
FAILED=0
declare -A AGENT_PID

ok()     { echo "ok - $*"; }
not_ok() { FAILED=$((FAILED + 1)); echo "not ok - $*"; }
expect() { # name, condition-command...
	local name=$1; shift
	if "$@" >/dev/null 2>&1; then ok "$name"; else not_ok "$name: failed: $*"; fi
}
expect_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: got '$2', want '$3'"; fi; }

not() { ! "$@"; }
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }

cleanup() {
	local node pid ns
	for node in "${!AGENT_PID[@]}"; do
		pid=${AGENT_PID[$node]}
		[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	for node in node node2; do
		ip netns list | grep -q "^$P-$node\b" &&
			in_ns "$P-$node" "$AGENT" --instance "$P-$node" --uninstall >/dev/null 2>&1
		rm -rf "/sys/fs/bpf/podwire/$P-$node" "/run/podwire/$P-$node"
	done
	rm -rf "/run/podwire/$P-absent"
	for ns in $(ip netns list | awk '{print $1}' | grep "^$P-"); do
		ip netns del "$ns"
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in jq bpftool nsenter; do
	command -v $tool >/dev/null || { not_ok "tool $tool present"; exit 1; }
done
[ -x "$PLUGIN" ] && [ -x "$AGENT" ] || { not_ok "binaries built: $PLUGIN, $AGENT"; exit 1; }
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

# ---- setup ------------------------------------------------------------------

node_up() { # NAME NODE_IP PODCIDR [ATTACH_MODE]
	local name=$1 ns=$P-$1 i
	ip netns add "$ns"
	in_ns "$ns" ip link set lo up
	# A veth as the uplink (this kernel has no dummy driver); its peer stays
	# in the node, so nothing leaves the namespace.
	in_ns "$ns" ip link add eth0 type veth peer name eth0peer
	in_ns "$ns" ip addr add "$2/24" dev eth0
	in_ns "$ns" ip link set eth0 up
	in_ns "$ns" ip link set eth0peer up
	cat > "$TMP/$name.json" <<JSON
{"node": {"name": "$name", "ip": "$2", "uplink": "eth0", "podCIDR": "$3"},
 "cluster": {"podCIDR": "10.244.0.0/16", "serviceCIDR": "10.96.0.0/12", "routing": "native", "masquerade": true}}
JSON
	# nsenter and env exec: $! is the agent itself (a backgrounded shell
	# function would give the PID of a subshell, and kill would miss it).
	nsenter --net="/run/netns/$ns" env PODWIRE_ATTACH_MODE="${4:-}" "$AGENT" --instance "$ns" \
		--config "$TMP/$name.json" ${5:-} >"$TMP/$name-agent.log" 2>&1 &
	AGENT_PID[$name]=$!
	for i in $(seq 100); do
		[ -f "/run/podwire/$ns/node.json" ] && [ -e "/sys/fs/bpf/podwire/$ns/progs/pod_ingress" ] &&
			grep -q ready "$TMP/$name-agent.log" && return 0
		kill -0 "${AGENT_PID[$name]}" 2>/dev/null || break
		sleep 0.1
	done
	sed 's/^/# agent: /' "$TMP/$name-agent.log"
	return 1
}

# The first node attaches pods with tcx (--pod-attach tcx), the second with
# cls_bpf on a node forced to tc: both pod attach paths are exercised.
node_up node 192.168.1.11 10.244.1.0/24 "" "--pod-attach tcx" && ok "agent for $P-node is up" ||
	{ not_ok "agent for $P-node is up"; exit 1; }
# node2 uses the legacy clsact/cls_bpf attachment (no link pins).
node_up node2 192.168.1.12 10.244.2.0/28 tc && ok "agent for $P-node2 is up" ||
	{ not_ok "agent for $P-node2 is up"; exit 1; }

# conf VERSION [INSTANCE] [EXTRA_JSON_MEMBERS]
conf() {
	printf '{"cniVersion":"%s","name":"podwire","type":"podwire","instance":"%s","logFile":"%s","logLevel":"debug"%s}' \
		"$1" "${2:-$P-node}" "$TMP/cni.log" "${3:+,$3}"
}

# cni NODE VERB CONTAINERID IFNAME NETNS CONF: runs the plugin inside the
# node as a runtime would; "-" leaves a variable unset. Sets OUT and RC.
# CNI_ARGS comes from $ARGS when set.
cni() {
	local node=$1 verb=$2 cid=$3 ifn=$4 netns=$5 cfg=$6 envs=(CNI_COMMAND="$2" CNI_PATH="$BUILD")
	[ -z "${ARGS:-}" ] || envs+=(CNI_ARGS="$ARGS")
	[ "$cid" = - ] || envs+=(CNI_CONTAINERID="$cid")
	[ "$ifn" = - ] || envs+=(CNI_IFNAME="$ifn")
	[ "$netns" = - ] || envs+=(CNI_NETNS="$netns")
	OUT=$(printf '%s' "$cfg" | in_ns "$P-$node" env -i PATH="$PATH" "${envs[@]}" "$PLUGIN" 2>/dev/null)
	RC=$?
}
code() { jq -r '.code // empty' <<<"$OUT" 2>/dev/null; }
msg()  { jq -r '.msg // empty' <<<"$OUT" 2>/dev/null; }

pod_ns() { ip netns add "$P-$1" && echo "/run/netns/$P-$1"; }
add() { # NODE POD [VERSION]: pod netns + ADD with ifname eth0; sets IP
	local ns
	ns=$(pod_ns "$2") || return 1
	cni "$1" ADD "$2" eth0 "$ns" "$(conf "${3:-1.0.0}" "$P-$1")"
	IP=$(jq -r '.ips[0].address // empty' <<<"$OUT" 2>/dev/null | cut -d/ -f1)
	[ "$RC" = 0 ] && [ -n "$IP" ]
}
del() { cni "$1" DEL "$2" eth0 "/run/netns/$P-$2" "$(conf 1.0.0 "$P-$1")"; }

host_if() { # CONTAINERID IFNAME -> pw + 12 hex of FNV-1a-64("cid/ifname")
	python3 -c 'import sys
h=0xcbf29ce484222325
for b in (sys.argv[1]+"/"+sys.argv[2]).encode():
    h=((h^b)*0x100000001b3)&0xffffffffffffffff
print("pw%012x" % (h & 0xffffffffffff))' "$1" "$2"
}
n_veths()  { in_ns "$P-$1" ip -o link show | grep -c ': pw[0-9a-f]\{12\}@'; }
n_eps()    { bpftool -j map dump pinned "/sys/fs/bpf/podwire/$P-$1/pw_endpoints" | jq length; }
n_epifx()  { bpftool -j map dump pinned "/sys/fs/bpf/podwire/$P-$1/pw_ep_ifindex" | jq length; }
n_pins()   { ls "/sys/fs/bpf/podwire/$P-$1/links" 2>/dev/null | grep -c '^pw'; }
n_resv()   { ls "/run/podwire/$P-$1/ipam" 2>/dev/null | grep -c '^[0-9]'; }
ep_has()   { # NODE IP: pw_endpoints has IP
	bpftool -j map dump pinned "/sys/fs/bpf/podwire/$P-$1/pw_endpoints" |
		jq -e --arg ip "$2" 'map(select(.formatted.key.addr | map(tostring) | join(".") == $ip)) | length == 1' >/dev/null
}
# Nothing of any attachment left on a node.
expect_clean() { # NAME NODE
	local v e x p r
	v=$(n_veths "$2"); e=$(n_eps "$2"); x=$(n_epifx "$2"); p=$(n_pins "$2"); r=$(n_resv "$2")
	expect_eq "$1" "veths=$v eps=$e epifx=$x pins=$p resv=$r" "veths=0 eps=0 epifx=0 pins=0 resv=0"
}

# ---- VERSION and input errors --------------------------------------------------

OUT=$(env -i CNI_COMMAND=VERSION "$PLUGIN" </dev/null); RC=$?
expect_eq "VERSION without stdin or other env succeeds" "$RC" 0
expect_eq "VERSION lists 0.4.0, 1.0.0, 1.1.0" "$(jq -c .supportedVersions <<<"$OUT")" '["0.4.0","1.0.0","1.1.0"]'
OUT=$(echo '{"cniVersion":"0.4.0"}' | env -i CNI_COMMAND=VERSION "$PLUGIN"); RC=$?
expect_eq "VERSION answers in the version asked" "$RC/$(jq -r .cniVersion <<<"$OUT")" "0/0.4.0"

NS1=$(pod_ns p1)
cni node ADD c-bad eth0 "$NS1" '{"cniVersion": "1.0.0", "name": '
expect_eq "invalid JSON -> exit 1, code 6" "$RC/$(code)" "1/6"
cni node ADD c-bad eth0 "$NS1" '{"cniVersion":"0.3.1","name":"podwire","type":"podwire"}'
expect_eq "cniVersion 0.3.1 -> code 1" "$RC/$(code)" "1/1"
cni node ADD c-bad eth0 "$NS1" '{"cniVersion":"9.9.9","name":"podwire","type":"podwire"}'
expect_eq "unknown cniVersion -> code 1" "$RC/$(code)" "1/1"
cni node ADD c-bad eth0 "$NS1" '{"cniVersion":"1.0.0","name":"podwire","mtu":"big"}'
expect_eq "ill-typed mtu -> code 7" "$RC/$(code)" "1/7"
for var in CNI_CONTAINERID CNI_IFNAME CNI_NETNS; do
	case $var in
	CNI_CONTAINERID) cni node ADD - eth0 "$NS1" "$(conf 1.0.0)" ;;
	CNI_IFNAME)      cni node ADD c-bad - "$NS1" "$(conf 1.0.0)" ;;
	CNI_NETNS)       cni node ADD c-bad eth0 - "$(conf 1.0.0)" ;;
	esac
	expect_eq "missing $var -> code 4" "$RC/$(code)" "1/4"
	expect "missing $var: msg names it" grep -q "$var" <<<"$(msg)"
done
cni node ADD c-bad eth0 "$NS1" "$(conf 1.0.0 "$P-absent")"
expect_eq "ADD with no agent for the instance -> code 100" "$RC/$(code)" "1/100"
expect "agent-not-running msg names the instance" grep -q "instance $P-absent is not running" <<<"$(msg)"
expect_eq "failed ADDs left nothing" "$(n_veths node)/$(n_resv node)/$(n_eps node)" "0/0/0"

# ---- ADD in every spec version ----------------------------------------------------

for v in 0.4.0 1.0.0 1.1.0; do
	pod=v${v//./}
	add node "$pod" "$v"
	expect_eq "ADD $v succeeds" "$RC" 0
	expect_eq "ADD $v result carries cniVersion $v" "$(jq -r .cniVersion <<<"$OUT")" "$v"
	if [ "$v" = 0.4.0 ]; then
		expect_eq "0.4.0 result ips carry version 4" "$(jq -r '.ips[0].version' <<<"$OUT")" 4
	else
		expect_eq "$v result ips carry no version" "$(jq -r '.ips[0] | has("version")' <<<"$OUT")" false
	fi
	expect_eq "ADD $v result: address is IP/32 in the pod CIDR" \
		"$(jq -r '.ips[0].address' <<<"$OUT" | grep -c '^10\.244\.1\.[0-9]*/32$')" 1
	expect_eq "ADD $v result: gateway, pod interface, sandbox" \
		"$(jq -r '[.ips[0].gateway, .interfaces[.ips[0].interface].name, .interfaces[1].sandbox] | join(" ")' <<<"$OUT")" \
		"10.244.1.1 eth0 /run/netns/$P-$pod"
	expect_eq "ADD $v result: host veth named by hash" "$(jq -r '.interfaces[0].name' <<<"$OUT")" "$(host_if "$pod" eth0)"
done
POD_IP=$(in_ns "$P-v110" ip -4 -o addr show dev eth0 | awk '{print $4}')
expect "pod eth0 carries an IP/32 from the pod CIDR" grep -q '^10\.244\.1\.[0-9]*/32$' <<<"$POD_IP"
expect_eq "pod default route via the gateway" "$(in_ns "$P-v110" ip -4 route show default)" "default via 10.244.1.1 dev eth0 "
expect "pod has a scope link route to the gateway" grep -q '^10.244.1.1 dev eth0 scope link' <<<"$(in_ns "$P-v110" ip -4 route)"
expect_eq "pod eth0 and lo are up" "$(in_ns "$P-v110" ip -o link show up | grep -cE ': (lo|eth0)[:@]')" 2
expect_eq "pod eth0 has IPv6 disabled" "$(in_ns "$P-v110" cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6)" 1
# (not /sys/class/net: sysfs shows the netns of whoever mounted it)
expect_eq "pod eth0 MTU is the node's" "$(in_ns "$P-v110" ip -o link show eth0 | sed 's/.*mtu \([0-9]*\).*/\1/')" \
	"$(jq -r .mtu /run/podwire/$P-node/node.json)"
NSM=$(pod_ns pm)
cni node ADD pm eth0 "$NSM" "$(conf 1.1.0 "$P-node" '"mtu":1400')"
expect_eq "ADD with \"mtu\": 1400 -> both veth ends at 1400, result says so" \
	"$RC $(in_ns "$P-pm" ip -o link show eth0 | sed 's/.*mtu \([0-9]*\).*/\1/') $(in_ns "$P-node" ip -o link show "$(host_if pm eth0)" | sed 's/.*mtu \([0-9]*\).*/\1/') $(jq -r '.interfaces[1].mtu' <<<"$OUT")" \
	"0 1400 1400 1400"
del node pm
HOSTIF=$(host_if v110 eth0)
expect "host has a /32 route to the pod via its veth" \
	grep -q "^${POD_IP%/32} dev $HOSTIF scope link" <<<"$(in_ns "$P-node" ip -4 route)"
expect "endpoint map has the pod IP" ep_has node "${POD_IP%/32}"
HOSTIDX=$(in_ns "$P-node" ip -o link show "$HOSTIF" | cut -d: -f1)
expect_eq "pw_ep_ifindex has the host veth ifindex -> pod IP" \
	"$(bpftool -j map lookup pinned /sys/fs/bpf/podwire/$P-node/pw_ep_ifindex key $(printf '0x%02x 0x%02x 0x%02x 0x%02x' $((HOSTIDX & 255)) $((HOSTIDX >> 8 & 255)) 0 0) |
	   jq -r '.formatted.value.ip | map(tostring) | join(".")')" "${POD_IP%/32}"
expect "tcx link pinned for the host veth" test -e "/sys/fs/bpf/podwire/$P-node/links/$HOSTIF"
expect "pod reaches the node IP through the datapath" in_ns "$P-v110" ping -c1 -W2 -q 192.168.1.11

# ---- CHECK -------------------------------------------------------------------------

cni node CHECK v110 eth0 "/run/netns/$P-v110" "$(conf 1.1.0)"
expect_eq "CHECK of a healthy pod succeeds with no output" "$RC/$OUT" "0/"
in_ns "$P-v110" ip addr flush dev eth0
cni node CHECK v110 eth0 "/run/netns/$P-v110" "$(conf 1.1.0)"
expect_eq "CHECK after the pod IP is flushed fails with code 106" "$RC/$(code)" "1/106"

# ---- duplicate ADD, own netns ----------------------------------------------------------

FIRST_IP=$(in_ns "$P-v100" ip -4 -o addr show dev eth0 | awk '{print $4}')
cni node ADD v100 eth0 "/run/netns/$P-v100" "$(conf 1.0.0)"
expect_eq "ADD of an existing (container, ifname) -> code 102" "$RC/$(code)" "1/102"
cni node CHECK v100 eth0 "/run/netns/$P-v100" "$(conf 1.0.0)"
expect_eq "the first attachment is intact (CHECK ok)" "$RC" 0
expect_eq "the first attachment kept its IP" "$(in_ns "$P-v100" ip -4 -o addr show dev eth0 | awk '{print $4}')" "$FIRST_IP"

before="$(n_veths node)/$(n_resv node)/$(n_eps node)"
cni node ADD c-own eth0 "/run/netns/$P-node" "$(conf 1.0.0)"
expect_eq "ADD into the plugin's own netns -> code 105" "$RC/$(code)" "1/105"
cni node ADD c-own eth0 "/tmp" "$(conf 1.0.0)"
expect_eq "ADD into a path that is no netns -> code 105" "$RC/$(code)" "1/105"
expect_eq "refused ADDs left nothing" "$(n_veths node)/$(n_resv node)/$(n_eps node)" "$before"

# A failure after the veth exists must undo everything: the pod netns already
# has a route to the gateway, so adding ours fails midway.
NSF=$(pod_ns pf)
in_ns "$P-pf" ip link set lo up
in_ns "$P-pf" ip route add 10.244.1.1/32 dev lo
counts() { echo "$(n_veths node)/$(n_resv node)/$(n_eps node)/$(n_epifx node)/$(n_pins node)"; }
before5=$(counts)
cni node ADD pf eth0 "$NSF" "$(conf 1.0.0)"
expect_eq "ADD failing midway (pod route exists) -> code 103" "$RC/$(code)" "1/103"
expect_eq "midway failure rolled back veth, reservation, map entries, pins" \
	"$(counts)" "$before5"
expect "midway failure: no eth0 left in the pod" not in_ns "$P-pf" ip link show eth0
cni node ADD pl lo "$NSF" "$(conf 1.0.0)"
expect_eq "ADD with CNI_IFNAME already taken in the pod -> code 102" "$RC/$(code)" "1/102"
expect_eq "taken ifname: nothing left" "$(n_veths node)/$(n_resv node)/$(n_eps node)" "$before"

# ---- DEL ---------------------------------------------------------------------------------

for v in 040 100 110; do
	del node "v$v"; expect_eq "DEL v$v succeeds" "$RC" 0
done
del node v100; expect_eq "second DEL succeeds" "$RC" 0
expect_clean "after DEL nothing is left" node

add node pe; cni node DEL pe eth0 - "$(conf 1.0.0)"
expect_eq "DEL without CNI_NETNS succeeds" "$RC" 0
expect_clean "DEL without CNI_NETNS cleaned everything" node
add node pe2; cni node DEL pe2 eth0 "" "$(conf 1.0.0)"
expect_eq "DEL with empty CNI_NETNS succeeds" "$RC" 0
expect_clean "DEL with empty CNI_NETNS cleaned everything" node

add node ps
ip netns del "$P-ps"                      # the pod end, and with it the host end, vanish
sleep 0.2
expect_eq "stale pod: map entry still there before DEL" "$(n_eps node)" 1
del node ps
expect_eq "DEL with a stale CNI_NETNS succeeds" "$RC" 0
expect_clean "DEL with a stale netns cleaned map entries, pin and reservation" node
cni node DEL never eth0 "/run/netns/$P-nope" "$(conf 1.1.0)"
expect_eq "DEL of an unknown container succeeds" "$RC" 0

# ---- concurrency -----------------------------------------------------------------------------

for i in $(seq 16); do ip netns add "$P-cc$i"; done
jobs_=()   # only these: a bare `wait` would also wait for the agents
for i in $(seq 16); do
	( printf '%s' "$(conf 1.0.0)" | in_ns "$P-node" env -i CNI_COMMAND=ADD CNI_CONTAINERID="cc$i" \
		CNI_IFNAME=eth0 CNI_NETNS="/run/netns/$P-cc$i" "$PLUGIN" >"$TMP/cc$i.out" 2>/dev/null
	  echo $? >"$TMP/cc$i.rc" ) &
	jobs_+=($!)
done
wait "${jobs_[@]}"
okc=0; for i in $(seq 16); do [ "$(cat "$TMP/cc$i.rc")" = 0 ] && okc=$((okc + 1)); done
expect_eq "16 concurrent ADDs succeed" "$okc" 16
expect_eq "16 concurrent ADDs got 16 distinct IPs" \
	"$(cat "$TMP"/cc*.out | jq -r '.ips[0].address' | sort -u | grep -c /32)" 16
expect_eq "16 endpoints in the map" "$(n_eps node)" 16
jobs_=()
for i in $(seq 16); do
	( cni node DEL "cc$i" eth0 "/run/netns/$P-cc$i" "$(conf 1.0.0)"; echo "$RC" >"$TMP/ccd$i.rc" ) &
	jobs_+=($!)
done
wait "${jobs_[@]}"
expect_eq "16 concurrent DELs succeed" "$(cat "$TMP"/ccd*.rc | grep -c '^0$')" 16
expect_clean "after concurrent DELs nothing is left" node

# ---- small pool (/28: 13 usable): churn and exhaustion ------------------------------------------

churn_ok=0
ip netns add "$P-churn"
for i in $(seq 32); do
	cni node2 ADD "churn$i" eth0 "/run/netns/$P-churn" "$(conf 1.0.0 "$P-node2")"
	[ "$RC" = 0 ] || { echo "# churn ADD $i: $OUT"; continue; }
	cni node2 DEL "churn$i" eth0 "/run/netns/$P-churn" "$(conf 1.0.0 "$P-node2")"
	[ "$RC" = 0 ] && churn_ok=$((churn_ok + 1))
done
expect_eq "ADD/DEL churn of twice the /28 pool never exhausts it" "$churn_ok" 32
expect_clean "churn left nothing" node2

cni node2 STATUS - - - "$(conf 1.1.0 "$P-node2")"
expect_eq "STATUS with a free pool and the agent up -> 0, no output" "$RC/$OUT" "0/"
filled=0
for i in $(seq 13); do add node2 "x$i" && filled=$((filled + 1)); done
expect_eq "13 ADDs fill the /28" "$filled" 13
expect_eq "node2 publishes attach mode tc" "$(jq -r .attach /run/podwire/$P-node2/node.json)" tc
expect "tc mode: cls_bpf filter on the host veth's ingress" \
	grep -q 'bpf.*direct-action' <<<"$(in_ns "$P-node2" tc filter show dev "$(host_if x1 eth0)" ingress)"
expect "tc mode: pod reaches its node" in_ns "$P-x1" ping -c1 -W2 -q 192.168.1.12
add node2 x14
expect_eq "ADD on an exhausted pool -> code 101" "$RC/$(code)" "1/101"
expect_eq "exhaustion left nothing half-made" \
	"veths=$(n_veths node2) eps=$(n_eps node2) pins=$(n_pins node2) resv=$(n_resv node2)" \
	"veths=13 eps=13 pins=0 resv=13"
expect "exhaustion: no host veth for the refused pod" \
	test -z "$(in_ns "$P-node2" ip -o link show "$(host_if x14 eth0)" 2>/dev/null)"
cni node2 STATUS - - - "$(conf 1.1.0 "$P-node2")"
expect_eq "STATUS on an exhausted pool -> code 50" "$RC/$(code)" "1/50"
for i in $(seq 14); do del node2 "x$i"; done
expect_clean "DEL of a full pool left nothing" node2

# ---- CNI_ARGS: the pod's namespace and name ------------------------------------------------------

NSA=$(pod_ns argsa)
for bad in "K8S_POD_NAMESPACE=Kube_System" "K8S_POD_NAME=web\"0" "IgnoreUnknown=1;K8S_POD_NAMESPACE=a.b" "garbage"; do
	ARGS=$bad cni node ADD argsa eth0 "$NSA" "$(conf 1.0.0)"
	expect_eq "ADD with CNI_ARGS '$bad' -> code 4" "$RC/$(code)" "1/4"
done
expect "bad CNI_ARGS: msg names the key and the rule" grep -q 'K8S_POD_NAMESPACE.*DNS-1123 label' \
	<<<"$(ARGS="K8S_POD_NAMESPACE=Bad" cni node ADD argsa eth0 "$NSA" "$(conf 1.0.0)"; msg)"
expect_clean "ADDs with bad CNI_ARGS left nothing" node
ARGS="K8S_POD_UID=1;IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-7db6d8ff4d-abcde;K8S_POD_INFRA_CONTAINER_ID=argsa;FOO=bar" \
	cni node ADD argsa eth0 "$NSA" "$(conf 1.0.0)"
IP=$(jq -r '.ips[0].address // empty' <<<"$OUT" 2>/dev/null | cut -d/ -f1)
expect_eq "ADD with containerd's CNI_ARGS (and an unknown key) succeeds" "$RC" 0
expect_eq "the reservation records namespace and pod name" "$(cat "/run/podwire/$P-node/ipam/$IP" | tr '\n' ' ')" \
	"argsa eth0 kube-system coredns-7db6d8ff4d-abcde "
ARGS="garbage" cni node DEL argsa eth0 "$NSA" "$(conf 1.0.0)"
expect_eq "DEL ignores CNI_ARGS (garbage included) and succeeds" "$RC" 0
expect_clean "DEL after a named ADD left nothing" node

# ---- requested IP and MAC (runtimeConfig capabilities, CNI_ARGS), a second interface ----------------

NQ1=$(pod_ns rq1); NQ2=$(pod_ns rq2); NQ3=$(pod_ns rq3)
pod_mac() { in_ns "$P-$1" ip -j link show "${2:-eth0}" | jq -r '.[0].address'; }
pod_addr() { in_ns "$P-$1" ip -j -4 addr show "${2:-eth0}" | jq -r '.[0].addr_info[0].local // empty'; }
cni node ADD rq1 eth0 "$NQ1" "$(conf 1.1.0 "$P-node" '"runtimeConfig":{"ips":["10.244.1.77/24"],"mac":"02:aa:bb:cc:dd:ee"}')"
expect_eq "ADD with runtimeConfig ips and mac succeeds" "$RC" 0
expect_eq "result: the requested address and MAC" \
	"$(jq -r '"\(.ips[0].address) \(.interfaces[1].mac)"' <<<"$OUT")" "10.244.1.77/32 02:aa:bb:cc:dd:ee"
expect_eq "pod eth0 has the requested address and MAC" "$(pod_addr rq1) $(pod_mac rq1)" "10.244.1.77 02:aa:bb:cc:dd:ee"
expect "the endpoint entry is the requested address" ep_has node 10.244.1.77
ARGS="IgnoreUnknown=1;IP=10.244.1.78;MAC=02:aa:bb:cc:dd:ef" cni node ADD rq2 eth0 "$NQ2" "$(conf 1.0.0)"
expect_eq "ADD with CNI_ARGS IP= and MAC= (podman --ip --mac-address) succeeds" "$RC" 0
expect_eq "pod eth0 has the CNI_ARGS address and MAC" "$(pod_addr rq2) $(pod_mac rq2)" "10.244.1.78 02:aa:bb:cc:dd:ef"
before="$(n_veths node)/$(n_resv node)/$(n_eps node)"
ARGS="IP=10.244.1.77" cni node ADD rq3 eth0 "$NQ3" "$(conf 1.0.0)"
expect_eq "requested IP held by another pod -> code 108" "$RC/$(code)" "1/108"
expect "code 108 msg says it is held" grep -q "requested IP 10.244.1.77 is held by another attachment" <<<"$(msg)"
for want in 10.244.9.9 10.244.1.1 10.244.1.255 10.244.1.0; do
	cni node ADD rq3 eth0 "$NQ3" "$(conf 1.1.0 "$P-node" "\"runtimeConfig\":{\"ips\":[\"$want/24\"]}")"
	expect_eq "requested IP $want (outside, gateway, broadcast, network) -> code 108" "$RC/$(code)" "1/108"
done
expect "code 108 msg names the pod CIDR" grep -q "is not a pod address of the pod CIDR 10.244.1.0/24" <<<"$(msg)"
ARGS="MAC=01:00:5e:00:00:01" cni node ADD rq3 eth0 "$NQ3" "$(conf 1.0.0)"
expect_eq "multicast CNI_ARGS MAC -> code 4" "$RC/$(code)" "1/4"
cni node ADD rq3 eth0 "$NQ3" "$(conf 1.1.0 "$P-node" '"runtimeConfig":{"mac":"ff:ff:ff:ff:ff:ff"}')"
expect_eq "broadcast runtimeConfig.mac -> code 7" "$RC/$(code)" "1/7"
cni node DEL rq3 eth0 "$NQ3" "$(conf 1.1.0 "$P-node" '"runtimeConfig":{"mac":"ff:ff:ff:ff:ff:ff"}')"
expect_eq "DEL with that runtimeConfig still succeeds" "$RC" 0
ARGS="IP=10.244.1.90" cni node ADD rq3 eth0 "$NQ3" "$(conf 1.1.0 "$P-node" '"runtimeConfig":{"ips":["10.244.1.91/24"]}')"
expect_eq "runtimeConfig.ips and CNI_ARGS IP disagree -> code 7" "$RC/$(code)" "1/7"
cni node ADD rq1 eth1 "$NQ1" "$(conf 1.0.0)"
expect_eq "second ADD of a container with another ifname -> code 109" "$RC/$(code)" "1/109"
expect "code 109 msg names the interface it has" grep -q "container rq1 is already attached as eth0 (IP 10.244.1.77)" <<<"$(msg)"
expect_eq "refused requests made nothing (veths/reservations/endpoints)" \
	"$(n_veths node)/$(n_resv node)/$(n_eps node)" "$before"
expect "no eth1 in the pod" not in_ns "$P-rq1" ip link show eth1
cni node CHECK rq1 eth0 "$NQ1" "$(conf 1.0.0)"
expect_eq "the first interface is untouched (CHECK ok)" "$RC" 0
for p in rq1 rq2; do cni node DEL "$p" eth0 "/run/netns/$P-$p" "$(conf 1.0.0)"; done
expect_clean "DEL of the requested-address pods left nothing" node

# ---- GC ------------------------------------------------------------------------------------------

add node ga; add node gb; GB_IP=$IP; add node gc
cni node GC - - - "$(conf 1.1.0 "$P-node" '"cni.dev/valid-attachments":[{"containerID":"ga","ifname":"eth0"},{"containerID":"gc","ifname":"eth0"}]')"
expect_eq "GC succeeds" "$RC" 0
expect_eq "GC freed the one attachment not listed" \
	"veths=$(n_veths node) eps=$(n_eps node) pins=$(n_pins node) resv=$(n_resv node)" "veths=2 eps=2 pins=2 resv=2"
expect "GC released gb's endpoint" not ep_has node "$GB_IP"
cni node CHECK ga eth0 "/run/netns/$P-ga" "$(conf 1.1.0)"; a=$RC
cni node CHECK gc eth0 "/run/netns/$P-gc" "$(conf 1.1.0)"
expect_eq "GC kept the listed attachments (CHECK ok)" "$a/$RC" "0/0"
cni node GC - - - "$(conf 1.0.0 "$P-node" '"cni.dev/valid-attachments":[]')"
expect_eq "GC with cniVersion 1.0.0 -> code 1" "$RC/$(code)" "1/1"
cni node GC - - - "$(conf 1.1.0 "$P-node" '"cni.dev/valid-attachments":[]')"
expect_eq "GC with an empty list succeeds" "$RC" 0
expect_clean "GC with an empty list released everything" node

# ---- STATUS -----------------------------------------------------------------------------------------

cni node STATUS - - - "$(conf 1.1.0)"
expect_eq "STATUS ready -> 0" "$RC/$OUT" "0/"
cni node STATUS - - - "$(conf 1.0.0)"
expect_eq "STATUS with cniVersion 1.0.0 -> code 1" "$RC/$(code)" "1/1"
cni node STATUS - - - "$(conf 1.1.0 "$P-absent")"
expect_eq "STATUS for an instance without agent -> code 50" "$RC/$(code)" "1/50"
kill -TERM "${AGENT_PID[node]}" 2>/dev/null; wait "${AGENT_PID[node]}" 2>/dev/null; AGENT_PID[node]=
in_ns "$P-node" "$AGENT" --instance "$P-node" --uninstall >"$TMP/uninstall.log" 2>&1 ||
	sed 's/^/# uninstall: /' "$TMP/uninstall.log"
cni node STATUS - - - "$(conf 1.1.0)"
expect_eq "STATUS after the agent's pins are removed -> code 50" "$RC/$(code)" "1/50"
cni node DEL gone eth0 - "$(conf 1.1.0)"
expect_eq "DEL with the agent gone still succeeds" "$RC" 0

[ "$FAILED" = 0 ] || { echo "# plugin log:"; tail -n 40 "$TMP/cni.log" | sed 's/^/#   /'; }
exit 0
