#!/usr/bin/env bash
# CNI ADD/DEL latency of the podwire plugin: N pods (default 100) added one
# after the other into a node netns with a real podwired, then deleted.
# Each figure is the wall time of one plugin execution (fork + exec + the
# verb), measured from inside the node netns with bash's EPOCHREALTIME.
# Baseline in the same run: exec of /bin/true (the process-spawn floor).
#   usage: BUILD=build [ATTACH_MODE=tcx|tc] bash test/bench/cni_latency.sh [N]
# ATTACH_MODE forces the agent's attach mode (default: what the kernel has);
# POD_ATTACH=tcx|tc is passed as --pod-attach (default: the agent's, tc).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BUILD=$(cd "$BUILD" && pwd)
N=${1:-100}
P=pwt-cb
NODE=$P-node
TMP=$(mktemp -d /tmp/$P.XXXXXX)
AGENT_PID=

cleanup() {
	[ -n "$AGENT_PID" ] && kill -TERM "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
	ip netns list | grep -q "^$NODE\b" &&
		nsenter --net="/run/netns/$NODE" "$BUILD/podwired" --instance "$NODE" --uninstall >/dev/null 2>&1
	rm -rf "/sys/fs/bpf/podwire/$NODE" "/run/podwire/$NODE"
	for ns in $(ip netns list | awk '{print $1}' | grep "^$P-"); do ip netns del "$ns"; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

ip netns add "$NODE"
nsenter --net="/run/netns/$NODE" sh -c \
	'ip link set lo up; ip link add eth0 type veth peer name eth0peer;
	 ip addr add 192.168.1.11/24 dev eth0; ip link set eth0 up; ip link set eth0peer up'
cat >"$TMP/node.json" <<JSON
{"node": {"name": "bench", "ip": "192.168.1.11", "uplink": "eth0", "podCIDR": "10.244.0.0/20"},
 "cluster": {"podCIDR": "10.244.0.0/16", "serviceCIDR": "10.96.0.0/12", "routing": "native", "masquerade": true}}
JSON
nsenter --net="/run/netns/$NODE" env PODWIRE_ATTACH_MODE="${ATTACH_MODE:-}" \
	"$BUILD/podwired" --instance "$NODE" --config "$TMP/node.json" ${POD_ATTACH:+--pod-attach "$POD_ATTACH"} >"$TMP/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 100); do
	grep -q ready "$TMP/agent.log" 2>/dev/null && break
	sleep 0.1
done
grep -q ready "$TMP/agent.log" || { cat "$TMP/agent.log"; exit 1; }
for i in $(seq "$N"); do ip netns add "$P-p$i"; done

# The timed loop runs inside the node netns: one bash, N plugin executions.
nsenter --net="/run/netns/$NODE" env PLUGIN="$BUILD/podwire" N="$N" P="$P" INST="$NODE" TMP="$TMP" bash -c '
	conf="{\"cniVersion\":\"1.0.0\",\"name\":\"podwire\",\"type\":\"podwire\",\"instance\":\"$INST\"}"
	us() { local s=${EPOCHREALTIME/./}; echo "$s"; }
	for i in $(seq "$N"); do
		t0=$(us); /bin/true; t1=$(us); echo $((t1 - t0)) >>"$TMP/base"
	done
	for verb in ADD DEL; do
		for i in $(seq "$N"); do
			t0=$(us)
			CNI_COMMAND=$verb CNI_CONTAINERID=bench$i CNI_IFNAME=eth0 CNI_NETNS=/run/netns/$P-p$i \
				"$PLUGIN" <<<"$conf" >"$TMP/out" || { echo "$verb $i failed: $(cat "$TMP/out")"; exit 1; }
			t1=$(us)
			echo $((t1 - t0)) >>"$TMP/$verb"
		done
	done
' || exit 1

pct() { # FILE PERCENT -> value in ms (nearest rank)
	sort -n "$1" | awk -v p="$2" '{v[NR]=$1} END {i=int((p/100)*NR + 0.999999); if (i<1) i=1; printf "%.2f", v[i]/1000}'
}
echo "attach mode: node $(jq -r .attach "/run/podwire/$NODE/node.json" 2>/dev/null), pods $(jq -r .podAttach "/run/podwire/$NODE/node.json" 2>/dev/null)"
printf '%-22s %8s %8s %8s\n' "n=$N" p50_ms p99_ms max_ms
for f in base ADD DEL; do
	name=$f; [ "$f" = base ] && name="exec /bin/true"
	printf '%-22s %8s %8s %8s\n' "$name" "$(pct "$TMP/$f" 50)" "$(pct "$TMP/$f" 99)" "$(pct "$TMP/$f" 100)"
done
