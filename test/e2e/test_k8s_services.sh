#!/usr/bin/env bash
# Services on a real Kubernetes cluster with podwire as its kube-proxy
# replacement (no kube-proxy): a ClusterIP Service spreads connections over
# pods on all three nodes; scaling its Deployment up adds backends and down
# removes them (no new connection reaches a deleted pod once the client's node
# dropped it; the EndpointSlice -> map delay printed); a named targetPort
# resolved per pod; a multi-port Service and one port on TCP and UDP; a UDP
# Service; ClientIP session affinity with a timeout; a Service without
# endpoints refused at once; NodePort from the fabric host that is not a node,
# to every node (a local backend sees the host's address).
#   ROUTING=native|vxlan (default native)
#   PWK_SVC_REC=DIR keeps the scale-down recordings (k8s_slicemap.py's input) in DIR
set -u
cd "$(dirname "$0")/../.." || exit 1
export CLUSTER=${CLUSTER:-pwkt}
ROUTING=${ROUTING:-native}
. test/e2e/k8s_lib.sh
k8s_init

t_start=$(date +%s)
if ! k8s_up --routing "$ROUTING"; then
	not_ok "cluster up ($ROUTING): scripts/k8s/cluster.sh up failed"
	exit 1
fi
ok "cluster up: $PWK_NODES nodes Ready (podwire, routing $ROUTING, no kube-proxy)"
k8s_ns_create

# ---- the workload --------------------------------------------------------------
# web: netexec (HTTP 8080 named "http", UDP 8081) and porter (9001 TCP and UDP,
# 9002 TCP, each answering its own name), spread over the nodes. alt: one
# netexec whose "http" is 8090. client-N: a netexec pinned to node N, from which
# the checks dial (/dial makes one new connection per try).
WEB_REPLICAS=6
# A deleted web pod keeps serving this long (as a well-behaved server drains):
# a connection the datapath still sent it would be answered, and seen.
WEB_DRAIN=6
kn apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: $WEB_REPLICAS
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, tier: named}}
    spec:
      terminationGracePeriodSeconds: 8
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,
         labelSelector: {matchLabels: {app: web}}}
      containers:
      - name: netexec
        image: $PWK_IMAGE_AGNHOST
        imagePullPolicy: Never
        args: [netexec, --http-port=8080, --udp-port=8081, --delay-shutdown=$WEB_DRAIN]
        ports:
        - {name: http, containerPort: 8080, protocol: TCP}
        - {name: udp, containerPort: 8081, protocol: UDP}
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 1
      - name: porter
        image: $PWK_IMAGE_AGNHOST
        imagePullPolicy: Never
        args: [porter]
        env:
        - {name: SERVE_PORT_9001, value: tcp9001}
        - {name: SERVE_PORT_9002, value: tcp9002}
        - {name: SERVE_UDP_PORT_9001, value: udp9001}
---
apiVersion: v1
kind: Pod
metadata: {name: alt, labels: {tier: named}}
spec:
  nodeName: $(k8s_node_name 3)
  terminationGracePeriodSeconds: 1
  containers:
  - name: netexec
    image: $PWK_IMAGE_AGNHOST
    imagePullPolicy: Never
    args: [netexec, --http-port=8090, --udp-port=8091]
    ports: [{name: http, containerPort: 8090, protocol: TCP}]
    readinessProbe:
      httpGet: {path: /healthz, port: 8090}
      periodSeconds: 1
EOF
for n in $(pwk_node_nums); do
	kn apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: client-$n, labels: {role: client, pin: node$n}}
spec:
  nodeName: $(k8s_node_name "$n")
  terminationGracePeriodSeconds: 1
  containers:
  - name: netexec
    image: $PWK_IMAGE_AGNHOST
    imagePullPolicy: Never
    args: [netexec, --http-port=8080, --udp-port=8081]
    ports: [{name: http, containerPort: 8080, protocol: TCP}]
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
EOF
done

AFFINITY_TIMEOUT=2
svc() { # NAME SELECTOR PORTS_YAML [EXTRA_SPEC_YAML]: a Service
	kn apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: $1}
spec:
  selector: $2
  ports: $3
${4:-}
EOF
}
svc web '{app: web}' '[{name: http, port: 80, targetPort: 8080, protocol: TCP}]'
svc named '{tier: named}' '[{name: http, port: 80, targetPort: http, protocol: TCP}]'
svc multi '{app: web}' '[{name: a, port: 81, targetPort: 9001, protocol: TCP},
          {name: b, port: 82, targetPort: 9002, protocol: TCP},
          {name: a-udp, port: 81, targetPort: 9001, protocol: UDP}]'
svc web-udp '{app: web}' '[{name: dns, port: 53, targetPort: 8081, protocol: UDP}]'
svc sticky '{app: web}' '[{name: http, port: 80, targetPort: 8080, protocol: TCP}]' \
	"  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: $AFFINITY_TIMEOUT}}"
svc empty '{app: nothing-has-this-label}' '[{name: http, port: 80, targetPort: 8080, protocol: TCP}]'
svc web-np '{app: web}' '[{name: http, port: 80, targetPort: 8080, protocol: TCP}]' '  type: NodePort'
svc pin1-np '{pin: node1}' '[{name: http, port: 8080, targetPort: 8080, protocol: TCP}]' '  type: NodePort'
svc pin1-local '{pin: node1}' '[{name: http, port: 8080, targetPort: 8080, protocol: TCP}]' \
	"  type: LoadBalancer
  externalTrafficPolicy: Local"   # (healthCheckNodePort is given to LoadBalancer Services only)
svc web-itp '{app: web}' '[{name: http, port: 80, targetPort: 8080, protocol: TCP}]' '  internalTrafficPolicy: Local'

pods_ready() { kn wait --for=condition=Ready pod --all --timeout="$1s" >/dev/null 2>&1; }
if k8s_rollout web 180 && pods_ready 120; then
	ok "Deployment web ($WEB_REPLICAS pods), pod alt and 3 client pods Ready"
else
	not_ok "pods not Ready: $(kn get pods -o wide --no-headers 2>&1 | awk '{print $1, $3}' | tr '\n' ' ')"
	exit 1
fi

declare -A node_of=() ip_of=()    # pod name -> node number, pod IP
refresh_pods() {
	local name ip node
	node_of=() ip_of=()
	while read -r name ip node; do
		node_of[$name]=$(k8s_node_num "$node") ip_of[$name]=$ip
	done < <(kn get pods -o jsonpath='{range .items[*]}{.metadata.name} {.status.podIP} {.spec.nodeName}{"\n"}{end}')
}
refresh_pods
web_pods() { k8s_pods app=web | awk '{print $1}'; }
vip() { kn get svc "$1" -o jsonpath='{.spec.clusterIP}'; }
nodeport() { kn get svc "$1" -o jsonpath='{.spec.ports[0].nodePort}'; }

# dial CLIENT_NODE HOST PORT PROTO REQUEST TRIES: client-N opens TRIES new
# connections (tcp: HTTP GET /REQUEST; udp: REQUEST as a datagram) and prints
# netexec's JSON: {"responses": [...], "errors": [...]}.
dial() {
	local c=$1 host=$2 port=$3 proto=$4 req=$5 tries=$6
	[ "$proto" = tcp ] && proto=http
	k8s_node_exec "$c" curl -s -m 30 \
		"http://${ip_of[client-$c]}:8080/dial?request=$req&protocol=$proto&host=$host&port=$port&tries=$tries"
}
responses() { jq -r '.responses[]?' 2>/dev/null; }
errors_of() { jq -r '(.errors // [])[]' 2>/dev/null | sort | uniq -c | sed 's/^ *//' | head -3 | tr '\n' ';'; }
# nodes_of: the nodes (numbers, sorted, unique) of the pod names on stdin
nodes_of() { local p; while read -r p; do echo "${node_of[$p]:-?}"; done | sort -u | tr '\n' ' ' | sed 's/ $//'; }
all_nodes=$(pwk_node_nums | tr '\n' ' ' | sed 's/ $//')

# map_backends NODE VIP PORT PROTO: "ip:port ..." of the frontend's active
# backends in node N's datapath, sorted ("absent" without the frontend).
ctl() { local n=$1; shift; k8s_node_exec "$n" "$PWK_DIR/bin/podwirectl" --instance "$(k8s_node_name "$n")" "$@"; }
map_backends() {
	ctl "$1" -o json services | jq -r --arg v "$2" --argjson p "$3" --arg pr "$4" \
		'[.[] | select(.vip == $v and .port == $p and .protocol == $pr)] |
		 if length == 0 then "absent" else
		 (.[0].backends | map(select(.state == "active") | "\(.ip):\(.port)") | sort | join(" ")) end'
}
maps_are() { # VIP PORT PROTO WANT: every node's map holds exactly WANT
	local n
	for n in $(pwk_node_nums); do [ "$(map_backends "$n" "$1" "$2" "$3")" = "$4" ] || return 1; done
}
# want_backends PORT POD...: "ip:port ..." sorted, as map_backends prints it
want_backends() {
	local port=$1 p; shift
	for p in "$@"; do echo "${ip_of[$p]}:$port"; done | sorted_words
}
sorted_words() { LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//'; }   # as jq sorts
check_maps() { # NAME VIP PORT PROTO WANT: waits up to 10 s for every node's map
	local name=$1 n got=""
	if k8s_wait 10 maps_are "$2" "$3" "$4" "$5"; then ok "$name"; return; fi
	for n in $(pwk_node_nums); do got+=" node$n: $(map_backends "$n" "$2" "$3" "$4");"; done
	not_ok "$name: want '$5', got$got"
}

WEB=$(vip web)
mapfile -t web < <(web_pods)
check_maps "every node's map holds web's $WEB_REPLICAS ready pods for $WEB:80/tcp" "$WEB" 80 tcp \
	"$(want_backends 8080 "${web[@]}")"

# ---- 1. a ClusterIP Service spreads over pods on all nodes -----------------------
for c in $(pwk_node_nums); do dial "$c" "$WEB" 80 tcp hostname 30 > "$PW_TMP/spread-$c.json"; done
got=$(cat "$PW_TMP"/spread-*.json | responses | grep -c .)
bad=$(cat "$PW_TMP"/spread-*.json | responses | while read -r p; do [ -n "${node_of[$p]:-}" ] && [[ $p == web-* ]] || echo "$p"; done | sort -u | tr '\n' ' ')
check_eq "ClusterIP web: 90 connections from clients on the 3 nodes all answered by web pods" \
	"$got ${bad:-only-web}" "90 only-web"
check_eq "ClusterIP web: the answers come from pods on every node" \
	"$(cat "$PW_TMP"/spread-*.json | responses | nodes_of)" "$all_nodes"
log "web: $(cat "$PW_TMP"/spread-*.json | responses | sort -u | grep -c .) of $WEB_REPLICAS pods answered 90 connections"
# Pods use the socket LB by default: kubelet's ADD listed each client pod's
# netns in its node's pw_sock_netns (without the opt-out flag), so their
# connect() went straight to a backend and the per-packet path, which would
# have made a conntrack entry per connection, never saw web's address.
sock_lb_pods() { # N: IPs of the pods node N's socket LB acts for, sorted
	k8s_node_exec "$1" bpftool -j map dump pinned "/sys/fs/bpf/podwire/$(k8s_node_name "$1")/pw_sock_netns" |
		jq -r '.[].formatted.value | select(.flags % 2 == 0) | .ip | map(tostring) | join(".")' | sort
}
ct_to() { # N VIP: node N's forward conntrack entries to VIP
	ctl "$1" -o json ct | jq --arg v "$2" '[.[] | select(.direction == "forward" and .dst == $v)] | length'
}
wrong=""
for c in $(pwk_node_nums); do
	grep -qx "${ip_of[client-$c]}" <<<"$(sock_lb_pods "$c")" || wrong+=" client-$c not in node$c's pw_sock_netns;"
	[ "$(ct_to "$c" "$WEB")" = 0 ] || wrong+=" node$c: $(ct_to "$c" "$WEB") conntrack entries to $WEB;"
done
check_eq "socket LB for pods: each client pod is in its node's pw_sock_netns and its 30 connections to $WEB left no conntrack entry" \
	"${wrong:-none}" none

# ---- 3. a named targetPort, resolved per pod -----------------------------------
NAMED=$(vip named)
check_maps "named targetPort 'http': every node's map holds web pods on 8080 and alt on 8090" "$NAMED" 80 tcp \
	"$( (for p in "${web[@]}"; do echo "${ip_of[$p]}:8080"; done; echo "${ip_of[alt]}:8090") | sorted_words)"
dial 1 "$NAMED" 80 tcp hostname 60 > "$PW_TMP/named.json"
check_eq "named targetPort: 60 connections all answered, alt (its http is 8090) among them" \
	"$(responses < "$PW_TMP/named.json" | grep -c .) $(responses < "$PW_TMP/named.json" | grep -cx alt | sed 's/^[1-9][0-9]*$/seen/')" \
	"60 seen"

# ---- 4. a multi-port Service, one port on TCP and UDP -----------------------------
MULTI=$(vip multi)
check_eq "multi-port: $MULTI:81/tcp reaches container port 9001/tcp" \
	"$(dial 2 "$MULTI" 81 tcp x 5 | responses | sort -u | tr '\n' ' ')" "tcp9001 "
check_eq "multi-port: $MULTI:82/tcp reaches container port 9002/tcp" \
	"$(dial 2 "$MULTI" 82 tcp x 5 | responses | sort -u | tr '\n' ' ')" "tcp9002 "
check_eq "multi-port: $MULTI:81/udp (the same port on UDP) reaches container port 9001/udp" \
	"$(dial 2 "$MULTI" 81 udp x 5 | responses | sort -u | tr '\n' ' ')" "udp9001 "

# ---- 5. a UDP Service -------------------------------------------------------------
UDPVIP=$(vip web-udp)
dial 3 "$UDPVIP" 53 udp hostname 30 > "$PW_TMP/udp.json"
check_eq "UDP Service $UDPVIP:53 -> 8081: 30 datagrams from new sockets all answered by web pods" \
	"$(responses < "$PW_TMP/udp.json" | grep -c '^web-') $(errors_of < "$PW_TMP/udp.json")" "30 "
check_eq "UDP Service: the answers come from pods on every node" \
	"$(responses < "$PW_TMP/udp.json" | nodes_of)" "$all_nodes"

# ---- 6. sessionAffinity: ClientIP, with its timeout ---------------------------------
STICKY=$(vip sticky)
aff_ok() { # every node's map: the frontend with its affinity timeout
	local n
	for n in $(pwk_node_nums); do
		[ "$(ctl "$n" -o json services | jq -r --arg v "$STICKY" '.[] | select(.vip == $v) | .affinityTimeoutSeconds')" = "$AFFINITY_TIMEOUT" ] || return 1
	done
}
check "ClientIP affinity: every node's map holds sticky with affinityTimeoutSeconds $AFFINITY_TIMEOUT" k8s_wait 10 aff_ok
firsts=()
for round in 1 2 3 4 5; do
	r=$(dial 1 "$STICKY" 80 tcp hostname 15 | responses)
	hosts=$(sort -u <<<"$r" | grep -c .)
	if [ "$(grep -c . <<<"$r")" != 15 ] || [ "$hosts" != 1 ]; then
		not_ok "ClientIP affinity: round $round: 15 connections from client-1 reached $hosts backends: $(sort <<<"$r" | uniq -c | tr '\n' ' ')"
		break
	fi
	firsts+=("$(head -1 <<<"$r")")
	[ "$round" = 1 ] && ok "ClientIP affinity: 15 connections from one client all reach one backend (${firsts[0]})"
	# after the timeout without traffic, the client is free to land elsewhere
	[ "$(printf '%s\n' "${firsts[@]}" | sort -u | grep -c .)" -gt 1 ] && break
	sleep $((AFFINITY_TIMEOUT + 1))
done
check_eq "ClientIP affinity expires after ${AFFINITY_TIMEOUT}s idle: a later round lands on another backend (rounds: ${firsts[*]})" \
	"$([ "$(printf '%s\n' "${firsts[@]}" | sort -u | grep -c .)" -gt 1 ] && echo moved)" moved
dial 1 "$WEB" 80 tcp hostname 20 > "$PW_TMP/nonsticky.json"
check "without affinity the same client spreads (web: 20 connections, >1 backend)" \
	test "$(responses < "$PW_TMP/nonsticky.json" | sort -u | grep -c .)" -gt 1

# ---- 7. a Service without endpoints: refused at once ------------------------------
EMPTY=$(vip empty)
check_maps "Service empty: every node's map holds $EMPTY:80/tcp with no backend" "$EMPTY" 80 tcp ""
t=$(k8s_node_exec 1 curl -s -o "$PW_TMP/empty.json" -w '%{time_total}' -m 30 \
	"http://${ip_of[client-1]}:8080/dial?request=hostname&protocol=http&host=$EMPTY&port=80&tries=1")
err=$(jq -r '.errors[0] // "no error"' "$PW_TMP/empty.json" 2>/dev/null)
if grep -q 'connection refused' <<<"$err" && awk -v t="$t" 'BEGIN {exit !(t < 1)}'; then
	ok "Service without endpoints: connect refused (RST) in ${t}s"
else
	not_ok "Service without endpoints: want 'connection refused' well under 1 s, got '$err' after ${t}s"
fi

# ---- 8. NodePort from the fabric host to every node ---------------------------------
NP=$(nodeport web-np)
for n in $(pwk_node_nums); do
	r=$(for _ in $(seq 9); do k8s_host_exec curl -s -m 5 "http://$(k8s_node_ip "$n"):$NP/hostname"; echo; done)
	check_eq "NodePort $(k8s_node_ip "$n"):$NP from $PWK_HOST_IP: 9 connections all answered by web pods" \
		"$(grep -c '^web-' <<<"$r")" 9
	cat <<<"$r" >> "$PW_TMP/np.txt"
done
check_eq "NodePort: the answers come from pods on every node" "$(grep . "$PW_TMP/np.txt" | nodes_of)" "$all_nodes"
NP1=$(nodeport pin1-np)
for n in $(pwk_node_nums); do
	seen=$(k8s_host_exec curl -s -m 5 "http://$(k8s_node_ip "$n"):$NP1/clientip" | sed 's/:[0-9]*$//')
	if [ "$n" = 1 ]; then
		check_eq "NodePort to node1, backend local (client-1): it sees the host's address" "$seen" "$PWK_HOST_IP"
	else
		check_eq "NodePort to node$n, backend on node1: it answers, seeing node$n's address (SNAT)" "$seen" "$(k8s_node_ip "$n")"
	fi
done

# ---- 9. traffic policies: externalTrafficPolicy and internalTrafficPolicy Local ------
NPL=$(nodeport pin1-local)
HCP=$(kn get svc pin1-local -o jsonpath='{.spec.healthCheckNodePort}')
seen=$(k8s_host_exec curl -s -m 5 "http://$(k8s_node_ip 1):$NPL/clientip" | sed 's/:[0-9]*$//')
check_eq "externalTrafficPolicy Local: NodePort to node1 (the backend's node) keeps the client's address" \
	"$seen" "$PWK_HOST_IP"
for n in 2 3; do
	out=$(k8s_host_exec curl -s -m 5 "http://$(k8s_node_ip "$n"):$NPL/clientip" 2>&1; echo " rc=$?")
	check_eq "externalTrafficPolicy Local: NodePort to node$n (no local endpoint) is refused, never forwarded" \
		"${out##* }" "rc=7"
done
hc_of() { # N: "localEndpoints HTTP-status" of healthCheckNodePort on node N
	local out
	out=$(k8s_host_exec curl -s -m 5 -w '\n%{http_code}' "http://$(k8s_node_ip "$1"):$HCP/")
	echo "$(head -1 <<<"$out" | jq -r .localEndpoints 2>/dev/null) $(tail -1 <<<"$out")"
}
check_eq "healthCheckNodePort $HCP on node1: localEndpoints 1, 200" "$(hc_of 1)" "1 200"
check_eq "healthCheckNodePort $HCP on node2: localEndpoints 0, 503" "$(hc_of 2)" "0 503"
ITP=$(vip web-itp)
wrong=""
for c in $(pwk_node_nums); do
	got=$(dial "$c" "$ITP" 80 tcp hostname 15 | responses)
	[ "$(grep -c . <<<"$got")" = 15 ] && [ "$(nodes_of <<<"$got")" = "$c" ] ||
		wrong+=" client-$c: $(grep -c . <<<"$got") answers from nodes '$(nodes_of <<<"$got")';"
done
check_eq "internalTrafficPolicy Local: each node's client reaches only its own node's web pods (15 each)" \
	"${wrong:-none}" none

# ---- 10. socket load balancing: the node itself and hostNetwork pods ----------------
got=$(k8s_node_exec 1 curl -s -m 5 "http://$WEB:80/hostname")
check "socket LB: a process in node1's own namespace reaches ClusterIP $WEB:80 (answered by '$got')" \
	grep -q '^web-' <<<"$got"
got=$(k8s_node_exec 2 curl -s -m 5 "http://127.0.0.1:$NP/hostname")
check "socket LB: node2 reaches its node port on 127.0.0.1:$NP (answered by '$got')" grep -q '^web-' <<<"$got"
kn apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec:
  nodeName: $(k8s_node_name 3)
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: $PWK_IMAGE_AGNHOST, imagePullPolicy: Never, args: [pause]}
EOF
if kn wait --for=condition=Ready pod/hostnet --timeout=60s >/dev/null 2>&1; then
	check "socket LB: a hostNetwork pod on node3 connects to ClusterIP $WEB:80" \
		kn exec hostnet -- /agnhost connect "$WEB:80" --timeout 5s
else
	not_ok "hostNetwork pod hostnet not Ready"
fi

# ---- 2. scaling: backends follow the EndpointSlice ---------------------------------
# Recorders: the slice's ready set per watch event, each node's map per poll.
rec=$PW_TMP/rec
mkdir -p "$rec"
# (-o json: kubectl's jsonpath output with a filter ends the watch after the listing)
( echo "$BASHPID" > "$rec/watch.pid"
  exec kubectl --kubeconfig "$(pwk_kubeconfig)" -n "$K8S_NS" get endpointslices \
	-l kubernetes.io/service-name=web --watch -o json 2>/dev/null ) |
	jq --unbuffered -r '([.metadata.name] + [.endpoints[]? | select(.conditions.ready == true) | .addresses[0]]) | join(" ")' |
	while IFS= read -r l; do echo "$EPOCHREALTIME $l"; done > "$rec/slices.log" &
PW_BG_PIDS+=($!)
touch "$rec/polling"
loops=()
for n in $(pwk_node_nums); do
	# One loop inside the node (entering it costs more than a poll); a poll's
	# time is when podwirectl has returned, so a delay is never underestimated.
	k8s_node_exec "$n" bash -c 'while [ -e "$1/polling" ]; do
		out=$("$2" --instance "$3" -o json services 2>/dev/null | tr -d "\n\t")
		echo "$EPOCHREALTIME $out"
	done' poll "$rec" "$PWK_DIR/bin/podwirectl" "$(k8s_node_name "$n")" > "$rec/map-$n.log" &
	PW_BG_PIDS+=($!) loops+=($!)
done
sleep 1
since=$EPOCHREALTIME

kn scale deployment web --replicas 9 >/dev/null
if k8s_rollout web 120; then
	mapfile -t web < <(web_pods)
	refresh_pods
	check_maps "scale 6 -> 9: every node's map holds the 9 ready pods" "$WEB" 80 tcp "$(want_backends 8080 "${web[@]}")"
else
	not_ok "scale 6 -> 9: rollout did not finish: $(kn get pods -l app=web --no-headers | awk '{print $1, $3}' | tr '\n' ' ')"
fi

# While scaling down, every client opens connections in a loop.
for c in $(pwk_node_nums); do
	# (in the node, as the pollers; the time is taken before the connection)
	k8s_node_exec "$c" bash -c 'while [ -e "$1/polling" ]; do
		t=$EPOCHREALTIME
		echo "$t $(curl -s -m 10 "$2" | tr -d "\n")"
	done' conns "$rec" "http://${ip_of[client-$c]}:8080/dial?request=hostname&protocol=http&host=$WEB&port=80&tries=1" \
		> "$rec/conns-$c.log" &
	PW_BG_PIDS+=($!) loops+=($!)
done
sleep 1
before=$(web_pods)
kn scale deployment web --replicas 3 >/dev/null
gone_all() { [ "$(web_pods | grep -c .)" = 3 ] && [ "$(kn get pods -l app=web --no-headers 2>/dev/null | grep -c .)" = 3 ]; }
k8s_wait 60 gone_all || not_ok "scale 9 -> 3: pods still there after 60 s: $(kn get pods -l app=web --no-headers | awk '{print $1, $3}' | tr '\n' ' ')"
mapfile -t web < <(web_pods)
check_maps "scale 9 -> 3: every node's map holds only the 3 pods left" "$WEB" 80 tcp "$(want_backends 8080 "${web[@]}")"
sleep 1
rm -f "$rec/polling"
wait "${loops[@]}"
kill "$(cat "$rec/watch.pid")" 2>/dev/null
deleted=$(comm -23 <(sort <<<"$before") <(printf '%s\n' "${web[@]}" | sort) |
	while read -r p; do printf '%s=%s,' "$p" "${ip_of[$p]}"; done)
python3 test/e2e/k8s_slicemap.py "$rec" "$WEB" 80 "$since" "$deleted" > "$rec/report" 2>&1
[ -n "${PWK_SVC_REC:-}" ] && cp -r "$rec" "$PWK_SVC_REC"   # (for a look at the recordings)
grep '^#' "$rec/report"
val() { sed -n "s/^$1=//p" "$rec/report"; }
check "slice->map measured: $(val samples) samples over $(val changes) EndpointSlice changes" \
	test "$(val samples || echo 0)" -gt 0
check_eq "scale down: no connection reached any of the $(tr ',' '\n' <<<"$deleted" | grep -c .) deleted (still serving) pods once the client's node had dropped it ($(val conns) connections, $(val between_slice_and_map) reached one between its slice change and the map's)" \
	"$(val violations)" none
check_eq "scale down: every connection made meanwhile was answered (deleted pods drain ${WEB_DRAIN}s)" \
	"$(val errors) failed: $(grep -h errors "$rec"/conns-*.log | head -2 | cut -c1-160 | tr '\n' ' ')" "0 failed: "

# ---- teardown ----------------------------------------------------------------------
log "checks took $(( $(date +%s) - t_start ))s"
[ "${KEEP:-0}" = 1 ] && exit 0
k8s_down >/dev/null 2>&1
left=$(k8s_leftovers)
check_eq "nothing of the cluster left (netns, cgroups, mounts, pins, processes, state)" "${left:-nothing}" nothing
exit 0
