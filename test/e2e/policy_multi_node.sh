# NetworkPolicy across two nodes in routing mode $MODE: sourced by
# test_policy_multi_node_native.sh and test_policy_multi_node_vxlan.sh.
# Each node's config carries the same model (remote pods with their IPs,
# as the Kubernetes source will give them); ingress is decided on the
# destination's node, egress on the source's, replies pass on both.
set -u
. "$(dirname "$0")/lib.sh"
pw_init

lan_up
for n in 1 2; do
	node_up "node$n" "192.168.1.1$n" "10.244.$n.0/24" "$MODE" "$(seed_peers_json node$n)" ||
		{ not_ok "agent of node$n starts ($MODE)"; exit 1; }
done
declare -A POD_NS=([client]=prod [other]=dev [web]=prod [peer]=prod)
declare -A POD_AT=([client]=node1 [other]=node1 [web]=node2 [peer]=node2)
for pod in client other web peer; do
	pod_add "${POD_AT[$pod]}" "$pod" CNI_ARGS="K8S_POD_NAMESPACE=${POD_NS[$pod]};K8S_POD_NAME=$pod" ||
		not_ok "cnitool add $pod on ${POD_AT[$pod]}"
	for port in 80 81; do
		bg_in_ns "${PW_PREFIX}-$pod" socat TCP-LISTEN:$port,fork,reuseaddr SYSTEM:"echo $pod"
	done
done
for pod in client other web peer; do wait_listen "$pod" 81 tcp; done

pods_json() {
	local pod sep="" out="["
	for pod in client other web peer; do
		local app=client
		[ "$pod" = web ] && app=web
		out+="$sep{\"namespace\": \"${POD_NS[$pod]}\", \"name\": \"$pod\", \"labels\": {\"app\": \"$app\"}, \"ip\": \"${PW_POD_IP[$pod]}\"}"
		sep=", "
	done
	echo "$out]"
}
PODS_JSON=$(pods_json)

# set_policy JSON: the same model into both nodes' configs; waits for both agents.
set_policy() {
	local n cfg applied before i
	for n in node1 node2; do
		cfg="$PW_TMP/$n/config.json" applied="/run/podwire/${PW_NODE_INST[$n]}/applied.json"
		before=$(cat "$applied" 2>/dev/null)
		jq --argjson p "$1" --argjson pods "$PODS_JSON" '.networkPolicies = $p | .pods = $pods |
			.namespaces = [{"name": "prod"}, {"name": "dev"}]' "$cfg" > "$cfg.tmp" && mv "$cfg.tmp" "$cfg"
		for i in $(seq 100); do
			[ "$(cat "$applied" 2>/dev/null)" != "$before" ] && break
			sleep 0.05
		done
	done
}

probe() { # FROM TO PORT: Y when answered by TO
	local got
	got=$(in_ns "${PW_PREFIX}-$1" timeout 3 socat -T2 - TCP:"${PW_POD_IP[$2]}":"$3",connect-timeout=1.5 </dev/null 2>/dev/null)
	[ "$got" = "$2" ] && echo Y || echo N
}

CELLS="client:web:80 client:web:81 other:web:80 web:client:80 peer:web:80 peer:client:80"
# probe_as WANT FROM TO PORT: probe, asked up to 3 times while the answer
# is not WANT. A slow machine (a TCG guest) can miss one connect timeout;
# a leak cannot hide this way: a denied flow answering Y stays Y.
probe_as() {
	local want=$1 got try
	shift
	for try in 1 2 3; do
		got=$(probe "$@")
		[ "$got" = "$want" ] && break
	done
	echo "$got"
}

matrix() { # STEP EXPECTED...
	local step=$1 cell from to port i=0
	shift
	local -a want=("$@")
	for cell in $CELLS; do
		IFS=: read -r from to port <<<"$cell"
		check_eq "$MODE, $step: $from(${POD_AT[$from]}) -> $to(${POD_AT[$to]}):$port" \
			"$(probe_as "${want[$i]}" "$from" "$to" "$port")" "${want[$i]}"
		i=$((i + 1))
	done
}

matrix "no policy" Y Y Y Y Y Y
DENY='{"metadata": {"namespace": "prod", "name": "default-deny"}, "spec": {"podSelector": {}}}'
WEB='{"metadata": {"namespace": "prod", "name": "web-from-client"}, "spec": {
	"podSelector": {"matchLabels": {"app": "web"}},
	"ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}], "ports": [{"port": 80}]}]}}'
set_policy "[$DENY, $WEB]"
matrix "default-deny ingress in prod + web from app=client:80" Y N N N Y N
NOEG='{"metadata": {"namespace": "prod", "name": "client-no-egress"}, "spec": {
	"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]}}'
set_policy "[$DENY, $WEB, $NOEG]"
matrix "+ no egress for prod app=client" N N N N N N
set_policy "[]"
matrix "policies removed" Y Y Y Y Y Y

for pod in client other web peer; do pod_del "$pod" >/dev/null 2>&1; PW_POD_NODE[$pod]=; done
PODS_JSON='[]'
set_policy "[]"
for n in node1 node2; do
	pins=/sys/fs/bpf/podwire/${PW_NODE_INST[$n]}
	check_eq "$MODE, $n: pods and policies deleted: policy maps empty" \
		"$(bpftool -j map dump pinned "$pins/pw_pol_ids" | jq length) $(bpftool -j map dump pinned "$pins/pw_pol_ep" | pol_ep_count) $(bpftool -j map dump pinned "$pins/pw_policy" | jq length)" "0 0 0"
done
exit $((PW_FAILED > 0))
