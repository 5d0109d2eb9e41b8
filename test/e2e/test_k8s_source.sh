#!/usr/bin/env bash
# The agent's Kubernetes source against a real etcd and kube-apiserver on
# 127.0.0.1 (relayed into the node's network namespace through a unix
# socket): no kubelet and no controller manager, so the test plays their
# part through the API itself -- it registers Nodes (spec.podCIDR, the
# InternalIP) and writes EndpointSlices by hand. Checked: the agent waits
# for its node's podCIDR and says why; the conflist appears only once the
# datapath is loaded, and cnitool adds pods through it; other Nodes become
# peers and go again; a Service with a named targetPort, multi-port, TCP
# and UDP on one port, NodePort, ClientIP affinity land in the maps with
# their backends, and real traffic from a pod to the ClusterIP reaches the
# backend pod; a slice change reaches the maps (time measured); headless
# and ExternalName Services stay out; a restart keeps every service and
# catches up with a deletion made while it was down; an API server that
# goes away removes nothing; --uninstall removes the conflist.
set -u
PW_PREFIX=${PW_PREFIX:-pwt-k8s-$$}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apiserver_lib.sh"
trap 'ka_cleanup; pw_cleanup' EXIT
trap 'exit 130' INT TERM
ensure_bpffs

ka_need_binaries etcd kube-apiserver
D=$KA_DIR
TOKEN=$KA_TOKEN

api() { # METHOD PATH [JSON]: one API call, the answer on stdout; fails on a non-2xx status
	local ct=application/json
	[ "$1" = PATCH ] && ct=application/merge-patch+json
	curl -sf --cacert "$D/ca.crt" -H "Authorization: Bearer $TOKEN" -H "Content-Type: $ct" \
		-X "$1" "https://127.0.0.1:$API_PORT$2" ${3:+--data "$3"}
}

node_json() { # NAME IP [PODCIDR]
	local cidr=""
	[ -n "${3:-}" ] && cidr="\"podCIDR\": \"$3\", \"podCIDRs\": [\"$3\"]"
	echo "{\"apiVersion\": \"v1\", \"kind\": \"Node\", \"metadata\": {\"name\": \"$1\"}, \"spec\": {$cidr},
	       \"status\": {\"addresses\": [{\"type\": \"InternalIP\", \"address\": \"$2\"}, {\"type\": \"Hostname\", \"address\": \"$1\"}]}}"
}

slice_json() { # NAME SERVICE PORTS_JSON ENDPOINTS_JSON
	echo "{\"apiVersion\": \"discovery.k8s.io/v1\", \"kind\": \"EndpointSlice\",
	       \"metadata\": {\"name\": \"$1\", \"namespace\": \"default\", \"labels\": {\"kubernetes.io/service-name\": \"$2\"}},
	       \"addressType\": \"IPv4\", \"ports\": $3, \"endpoints\": $4}"
}
ep() { echo "{\"addresses\": [\"$1\"], \"conditions\": {\"ready\": ${2:-true}}}"; }

NODE=node1
INST=${PW_PREFIX}-$NODE
NS=${PW_PREFIX}-$NODE
ctl() { "$BUILD/podwirectl" --instance "$INST" -o json "$@"; }
# svc_backends VIP PORT PROTO: "ip:port ..." of a frontend in the maps, sorted; "absent" if none
svc_backends() {
	ctl services | jq -r --arg v "$1" --argjson p "$2" --arg pr "$3" \
		'[.[] | select(.vip == $v and .port == $p and .protocol == $pr)] |
		 if length == 0 then "absent" else (.[0].backends | map("\(.ip):\(.port)") | sort | join(" ")) end'
}
svc_field() { # VIP PORT PROTO FIELD
	ctl services | jq -r --arg v "$1" --argjson p "$2" --arg pr "$3" --arg f "$4" \
		'.[] | select(.vip == $v and .port == $p and .protocol == $pr) | .[$f]'
}
wait_for() { # SECONDS COMMAND...: polls every 20 ms until the command succeeds
	local end=$((SECONDS + $1)); shift
	while ! "$@"; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.02
	done
}
backends_are() { [ "$(svc_backends "$1" "$2" "$3")" = "$4" ]; }
log_has() { grep -q -- "$1" "$D/agent.log"; }

AGENT_PID=
agent_run() { # starts podwired in Kubernetes mode in the node (does not wait)
	nsenter --net="/run/netns/$NS" "$BUILD/podwired" --instance "$INST" --kubeconfig "$D/kubeconfig" \
		--node-name "$NODE" --config "$D/k8s.json" --cni-conf-dir "$D/$NODE/net.d" --metrics-port 0 \
		--log-level debug >>"$D/agent.log" 2>&1 &
	AGENT_PID=$!
	PW_AGENT_PID[$NODE]=$AGENT_PID
}
agent_ready() { [ "$(grep -c 'ready$' "$D/agent.log")" -ge "$1" ]; }

# ---- the control plane ------------------------------------------------------
ka_pki >"$D/pki.log" 2>&1 || { not_ok "test PKI made with openssl: $(tail -3 "$D/pki.log")"; exit 1; }
ka_etcd_start || { not_ok "etcd starts: $(tail -5 "$D/etcd.log")"; exit 1; }
API_PORT=$(free_port)
ka_apiserver_start "$API_PORT" || { not_ok "etcd and kube-apiserver start: $(tail -5 "$D/apiserver.log")"; exit 1; }
ok "etcd and kube-apiserver on 127.0.0.1:$API_PORT"

# ---- the node: a network namespace, the API relayed to its 127.0.0.1:6443 ---
ip netns add "$NS"
PW_NODES+=("$NODE")
PW_NODE_INST[$NODE]=$INST
in_ns "$NS" ip link set lo up
in_ns "$NS" ip link add eth0 type veth peer name eth0p
in_ns "$NS" ip link set eth0p up
in_ns "$NS" ip addr add 192.168.1.11/24 dev eth0
in_ns "$NS" ip link set eth0 up
mkdir -p "$D/$NODE"
socat UNIX-LISTEN:"$D/api.sock",fork TCP:127.0.0.1:"$API_PORT" 2>/dev/null &
PW_BG_PIDS+=($!)
bg_in_ns "$NS" socat TCP-LISTEN:6443,bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:"$D/api.sock"
ka_kubeconfig "$D/kubeconfig" 6443 "    token: $TOKEN" "certificate-authority: ca.crt"
# Only what the API does not say; the uplink is found from the InternalIP.
echo '{"cluster": {"podCIDR": "10.244.0.0/16", "serviceCIDR": "10.96.0.0/12", "routing": "native"}}' > "$D/k8s.json"

# ---- waiting for the node's podCIDR, then ready, then the conflist ----------
api POST /api/v1/nodes "$(node_json "$NODE" 192.168.1.11)" >/dev/null
agent_run
if wait_for 15 log_has "waiting for node $NODE's spec.podCIDR (is kube-controller-manager running with --allocate-node-cidrs?)"; then
	ok "without spec.podCIDR the agent waits and says why"
else
	not_ok "agent says it waits for spec.podCIDR: $(tail -3 "$D/agent.log")"
fi
check "no conflist while the datapath is not loaded" test ! -e "$D/$NODE/net.d/10-podwire.conflist"
check "no datapath loaded meanwhile" test ! -e "/sys/fs/bpf/podwire/$INST/pw_services"
api PATCH "/api/v1/nodes/$NODE" '{"spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}}' >/dev/null
if wait_for 20 agent_ready 1; then
	ok "podCIDR set: the agent loads the datapath and is ready"
else
	not_ok "agent ready after the podCIDR: $(tail -5 "$D/agent.log")"
	exit 1
fi
check "log names the uplink found from the InternalIP" log_has "uplink eth0 (it holds the InternalIP 192.168.1.11)"
check "log says the lists are synced" log_has "kubernetes: synced:"
check_eq "conflist: cniVersion 1.0.0, podwire plugin of this instance" \
	"$(jq -c '[.cniVersion, .plugins[0].type, .plugins[0].instance]' "$D/$NODE/net.d/10-podwire.conflist" 2>&1)" \
	"[\"1.0.0\",\"podwire\",\"$INST\"]"
check_eq "conflist: podwire alone, serving hostPort itself (portMappings capability, no portmap chained)" \
	"$(jq -c '[(.plugins | length), .plugins[0].capabilities.portMappings]' "$D/$NODE/net.d/10-podwire.conflist" 2>&1)" \
	"[1,true]"
check_eq "node.json: pod CIDR from spec.podCIDR" \
	"$(jq -r .podCIDR "/run/podwire/$INST/node.json" 2>&1)" "10.244.1.0/24"

# ---- peers follow Nodes -------------------------------------------------------
api POST /api/v1/nodes "$(node_json node2 192.168.1.12 10.244.2.0/24)" >/dev/null
api POST /api/v1/nodes "$(node_json node3 192.168.1.13)" >/dev/null   # no podCIDR yet: no peer
peers() { ctl peers | jq -r 'map("\(.podCIDR)@\(.nodeIP)") | sort | join(" ")'; }
peers_are() { [ "$(peers)" = "$1" ]; }
if wait_for 5 peers_are "10.244.2.0/24@192.168.1.12"; then ok "Node node2 becomes a peer (node3 has no podCIDR)"
else not_ok "peers: $(peers)"; fi
api PATCH /api/v1/nodes/node3 '{"spec": {"podCIDR": "10.244.3.0/24"}}' >/dev/null
if wait_for 5 peers_are "10.244.2.0/24@192.168.1.12 10.244.3.0/24@192.168.1.13"; then ok "node3's podCIDR arrives: a peer"
else not_ok "peers after node3's podCIDR: $(peers)"; fi
api DELETE /api/v1/nodes/node2 >/dev/null
if wait_for 5 peers_are "10.244.3.0/24@192.168.1.13"; then ok "Node node2 deleted: its peer entry goes"
else not_ok "peers after deleting node2: $(peers)"; fi
check "kernel route to node3's pod CIDR" in_ns "$NS" ip route show 10.244.3.0/24 proto 112 | grep -q "via 192.168.1.13"

# ---- pods through the agent's conflist --------------------------------------
for p in client server; do
	if pod_add "$NODE" "$p"; then ok "cnitool add $p through the agent's conflist -> ${PW_POD_IP[$p]}"
	else not_ok "cnitool add $p"; fi
done
SRV=${PW_POD_IP[server]:-}

# ---- services ---------------------------------------------------------------
api POST /api/v1/namespaces/default/services '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
  "spec": {"type": "NodePort", "clusterIP": "10.96.0.50", "sessionAffinity": "ClientIP",
           "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
           "ports": [{"name": "http", "port": 80, "targetPort": "web", "nodePort": 30080},
                     {"name": "metrics", "port": 9090, "targetPort": 9100}]}}' >/dev/null
api POST /apis/discovery.k8s.io/v1/namespaces/default/endpointslices \
	"$(slice_json web-a web '[{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics", "port": 9100, "protocol": "TCP"}]' \
	   "[$(ep "$SRV"), $(ep 10.244.3.7)]")" >/dev/null
api POST /api/v1/namespaces/default/services '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns"},
  "spec": {"clusterIP": "10.96.0.53", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                                {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}' >/dev/null
api POST /apis/discovery.k8s.io/v1/namespaces/default/endpointslices \
	"$(slice_json dns-a dns '[{"name": "dns", "port": 5353, "protocol": "UDP"}, {"name": "dns-tcp", "port": 5354, "protocol": "TCP"}]' \
	   "[$(ep 10.244.1.200)]")" >/dev/null
api POST /api/v1/namespaces/default/services '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "headless"},
  "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}' >/dev/null
api POST /api/v1/namespaces/default/services '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
  "spec": {"type": "ExternalName", "externalName": "example.com"}}' >/dev/null

if wait_for 5 backends_are 10.96.0.50 80 tcp "$(printf '%s\n' "$SRV:8080" 10.244.3.7:8080 | sort | xargs)"; then
	ok "named targetPort: backends on the slice's http port"
else
	not_ok "web:http backends: $(svc_backends 10.96.0.50 80 tcp)"
fi
check_eq "multi-port: the metrics port's backends" "$(svc_backends 10.96.0.50 9090 tcp)" \
	"$(printf '%s\n' "$SRV:9100" 10.244.3.7:9100 | sort | xargs)"
check_eq "NodePort 30080" "$(svc_field 10.96.0.50 80 tcp nodePort)" 30080
check_eq "ClientIP affinity 600 s" "$(svc_field 10.96.0.50 80 tcp affinityTimeoutSeconds)" 600
name_is() { [ "$(svc_field 10.96.0.50 80 tcp name)" = "$1" ]; }
# The agent publishes the names it applies at most once a second.
if wait_for 3 name_is "default/web:http/tcp"; then ok "podwirectl names it namespace/name:port/proto"
else not_ok "name in podwirectl: $(svc_field 10.96.0.50 80 tcp name)"; fi
check_eq "UDP 53" "$(svc_backends 10.96.0.53 53 udp)" "10.244.1.200:5353"

# podwirectl cannot edit what the API owns: refused at once, saying why.
pub=/run/podwire/$INST/kubernetes.json
for verb in "add default/web2:http/tcp --vip 10.96.0.60 --port 80 --backend 10.244.1.5:80" "del default/web:http/tcp"; do
	t0=$(date +%s%N)
	# shellcheck disable=SC2086
	out=$(timeout 4 "$BUILD/podwirectl" --instance "$INST" service $verb 2>&1); rc=$?
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	check_eq "podwirectl service ${verb%% *} in Kubernetes mode: exit 1 in $ms ms (< 1000)" \
		"$rc $((ms < 1000))" "1 1"
	if grep -q "runs in Kubernetes mode (--kubeconfig): services come from the Kubernetes API.*kubectl" <<<"$out"; then
		ok "podwirectl service ${verb%% *}: the message names Kubernetes mode and kubectl"
	else
		not_ok "podwirectl service ${verb%% *}: message: $out"
	fi
done
# (The agent rewrites the file itself as the API changes: judge by content.)
check_eq "refused edits wrote nothing: web2 absent, web:http present, no lock file" \
	"$(jq -r '[.services[].name] | [index("default/web2:http/tcp"), (index("default/web:http/tcp") != null)] | map(tostring) | join(" ")' "$pub") $(test -e "$pub.lock" && echo lock)" \
	"null true "
check_eq "podwirectl service list still works in Kubernetes mode" \
	"$(ctl service list | jq -r '.[] | select(.name == "default/web:http/tcp") | .vip')" 10.96.0.50
check_eq "TCP 53 beside it" "$(svc_backends 10.96.0.53 53 tcp)" "10.244.1.200:5354"
check_eq "only web, dns and nothing of headless/ExternalName (kubernetes has no endpoints: a frontend)" \
	"$(ctl services | jq -r 'map(.vip) | unique | join(" ")')" "10.96.0.1 10.96.0.50 10.96.0.53"

# Real traffic: the client pod reaches the server pod through the ClusterIP.
serve() { # a TCP server in the server pod on 8080 answering with the peer address
	nsenter --net="/run/netns/${PW_PREFIX}-server" timeout 10 socat -T5 TCP-LISTEN:8080,reuseaddr \
		SYSTEM:'echo $SOCAT_PEERADDR' &
	SERVE_PID=$!
	wait_listen server 8080 tcp
}
api PATCH /apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-a \
	"{\"endpoints\": [$(ep "$SRV")]}" >/dev/null
wait_for 5 backends_are 10.96.0.50 80 tcp "$SRV:8080"
serve
seen=$(in_ns "${PW_PREFIX}-client" timeout 5 socat -T3 - TCP:10.96.0.50:80 </dev/null 2>/dev/null)
wait "$SERVE_PID" 2>/dev/null
check_eq "client pod -> ClusterIP 10.96.0.50:80 -> server pod; it sees the client's IP" "$seen" "${PW_POD_IP[client]:-?}"

# ---- a slice change reaches the maps ----------------------------------------
t0=$(date +%s%N)
api PATCH /apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-a \
	"{\"endpoints\": [$(ep "$SRV"), $(ep 10.244.3.8)]}" >/dev/null
if wait_for 5 backends_are 10.96.0.50 80 tcp "$(printf '%s\n' "$SRV:8080" 10.244.3.8:8080 | sort | xargs)"; then
	ok "EndpointSlice change in the maps after $(( ($(date +%s%N) - t0) / 1000000 )) ms (API call and polling included)"
else
	not_ok "slice change: $(svc_backends 10.96.0.50 80 tcp)"
fi
api PATCH /apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-a \
	"{\"endpoints\": [$(ep "$SRV" false), {\"addresses\": [\"10.244.3.8\"], \"conditions\": {\"ready\": false, \"serving\": true, \"terminating\": true}}]}" >/dev/null
if wait_for 5 backends_are 10.96.0.50 80 tcp "10.244.3.8:8080"; then ok "no ready endpoint: the serving terminating one"
else not_ok "terminating fallback: $(svc_backends 10.96.0.50 80 tcp)"; fi
api POST /apis/discovery.k8s.io/v1/namespaces/default/endpointslices \
	"$(slice_json web-b web '[{"name": "http", "port": 8080, "protocol": "TCP"}]' "[$(ep "$SRV")]")" >/dev/null
if wait_for 5 backends_are 10.96.0.50 80 tcp "$SRV:8080"; then ok "a second slice with a ready endpoint wins"
else not_ok "two slices: $(svc_backends 10.96.0.50 80 tcp)"; fi

# ---- restart: services kept, a deletion made while down caught up ----------
agent_stop "$NODE"
check "agent stopped: the web frontend stays in the maps" backends_are 10.96.0.50 80 tcp "$SRV:8080"
api DELETE /api/v1/namespaces/default/services/dns >/dev/null
agent_run
if wait_for 20 agent_ready 2; then ok "agent restarted"; else not_ok "agent restart: $(tail -5 "$D/agent.log")"; fi
check_eq "web kept across the restart" "$(svc_backends 10.96.0.50 80 tcp)" "$SRV:8080"
if wait_for 5 backends_are 10.96.0.53 53 udp absent; then ok "dns, deleted while the agent was down, is gone"
else not_ok "dns after restart: $(svc_backends 10.96.0.53 53 udp)"; fi

# ---- API server away: nothing removed ---------------------------------------
# Killed, not stopped: an API server that vanishes is the harder case for the agent.
ka_apiserver_kill
sleep 2
check "API server down: the agent runs on" kill -0 "$AGENT_PID"
check_eq "API server down: web still in the maps" "$(svc_backends 10.96.0.50 80 tcp)" "$SRV:8080"
check_eq "API server down: peer node3 kept" "$(peers)" "10.244.3.0/24@192.168.1.13"
ka_apiserver_start "$API_PORT" || not_ok "kube-apiserver restarts"
api DELETE /apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-b >/dev/null
if wait_for 40 backends_are 10.96.0.50 80 tcp "10.244.3.8:8080"; then ok "API server back: the watch resumes (slice web-b deleted)"
else not_ok "after the API server restart: $(svc_backends 10.96.0.50 80 tcp)"; fi

# ---- uninstall removes the conflist ------------------------------------------
for p in client server; do pod_del "$p" >/dev/null 2>&1; ns_del "${PW_PREFIX}-$p"; done
PW_PODS=()
agent_stop "$NODE"
in_ns "$NS" "$BUILD/podwired" --instance "$INST" --uninstall >/dev/null 2>&1
check "--uninstall removes the conflist" test ! -e "$D/$NODE/net.d/10-podwire.conflist"
check_eq "--uninstall removes the peer routes (proto 112)" "$(in_ns "$NS" ip -4 route show proto 112)" ""
check_eq "--uninstall removes the peers' managed neighbour entries on the uplink" \
	"$(in_ns "$NS" ip -4 neigh show dev eth0 | grep -E 'managed|PERMANENT')" ""
grep -E 'error|warning' "$D/agent.log" | grep -v 'API server\|connect\|refused\|retry\|backoff' | sed 's/^/# agent: /' | head -10
exit $((PW_FAILED > 0))
