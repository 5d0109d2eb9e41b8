#!/usr/bin/env bash
# A real Kubernetes cluster on this machine: etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler in a fabric network namespace,
# and PWK_NODES nodes (default 3), each a network namespace plus a private
# mount namespace with its own containerd, kubelet and podwired (the CNI and
# the kube-proxy replacement: there is no kube-proxy); with --cni bridge,
# Debian's bridge plugin and kube-proxy (iptables mode) instead (the
# baseline). Nothing of the shared machine changes: sysctls kubelet sets are
# faked inside the nodes' mount namespaces, cgroups are the nodes' own
# subtrees, all state is in $PWK_DIR.
#
#   scripts/k8s/cluster.sh up [--routing native|vxlan] [--cni podwire|bridge]
#   scripts/k8s/cluster.sh down       everything goes, also after a partial up
#   scripts/k8s/cluster.sh status     processes, nodes, pods, memory
#
# Environment: CLUSTER (name, default pwk), PWK_NODES, PWK_STATE (see env.sh);
#   CNI=podwire|bridge, ROUTING=native|vxlan (same as the flags);
#   PWK_DNS=0: no cluster DNS (CoreDNS, see dns.sh; default: up waits for it);
#   PWK_CNI_HOLD=1: stop after the kubelets registered, before any CNI config
#   exists (the nodes stay NotReady); `cluster.sh cni-up` continues.
#
# Changes to a running cluster (the resilience tests):
#   scripts/k8s/cluster.sh node-add N      a new node N (podwire only), until Ready
#   scripts/k8s/cluster.sh node-del N      node N goes away and its Node is deleted
#   scripts/k8s/cluster.sh podwired N stop [SIGNAL] | start
#   scripts/k8s/cluster.sh runtime N stop | start
#                 stop: kubelet, containerd, the shims and every pod process of
#                 node N die (SIGKILL) and its cgroups go, as in a power loss;
#                 podwired and the datapath stay. start: containerd and kubelet again
#   scripts/k8s/cluster.sh apiserver stop | start [FLAG...]
#                 stop is SIGKILL (a graceful stop drains watches for a minute);
#                 start adds FLAGs (e.g. --secure-port=6444, --watch-cache=false)
# kubectl: `kubectl --kubeconfig $PWK_DIR/pki/admin.kubeconfig` (printed by up).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=env.sh
. "$HERE/env.sh"
# shellcheck source=pki.sh
. "$HERE/pki.sh"
# shellcheck source=node.sh
. "$HERE/node.sh"
# shellcheck source=dns.sh
. "$HERE/dns.sh"
PWK_BUILD=${BUILD:-$ROOT/build}
case $PWK_BUILD in /*) ;; *) PWK_BUILD=$ROOT/$PWK_BUILD ;; esac
PWK_CNI=${CNI:-podwire}
PWK_ROUTING=${ROUTING:-native}
PWK_READY_TIMEOUT=${PWK_READY_TIMEOUT:-180}

die() { echo "cluster.sh: $*" >&2; exit 1; }

# ---- prerequisites ----------------------------------------------------------

check_prereqs() {
	local b missing=()
	for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
		command -v "$b" >/dev/null || missing+=("$b")
	done
	[ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]} (looked in $PW_K8S_BIN and PATH): run 'make k8s-deps'"
	for b in containerd containerd-shim-runc-v2 runc ctr socat openssl nsenter unshare; do
		command -v "$b" >/dev/null || missing+=("$b")
	done
	[ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: run 'make k8s-deps' (containerd, runc) or 'make deps'"
	for b in loopback bridge host-local portmap; do
		[ -x "/usr/lib/cni/$b" ] || die "missing /usr/lib/cni/$b: apt-get install containernetworking-plugins"
	done
	compgen -G "$PW_K8S_IMAGES/*.tar" >/dev/null || die "no images in $PW_K8S_IMAGES: run 'make k8s-deps'"
	case $PWK_ROUTING in native|vxlan) ;; *) die "--routing: '$PWK_ROUTING' is not native or vxlan" ;; esac
	case $PWK_CNI in
	podwire)
		[ -x "$PWK_BUILD/podwired" ] && [ -x "$PWK_BUILD/podwire" ] || die "no $PWK_BUILD/podwired or podwire: run 'make'"
		"$PWK_BUILD/podwired" --help 2>&1 | grep -q -- --kubeconfig ||
			die "$PWK_BUILD/podwired has no Kubernetes mode (--kubeconfig); CNI=bridge runs Debian's bridge plugin instead"
		;;
	bridge)
		command -v kube-proxy >/dev/null || die "missing kube-proxy (looked in $PW_K8S_BIN and PATH): run 'make k8s-deps'"
		command -v iptables >/dev/null || die "missing iptables (kube-proxy's): apt-get install iptables" ;;
	*) die "--cni: '$PWK_CNI' is not podwire or bridge" ;;
	esac
	[ "$(id -u)" = 0 ] || die "needs root"
}

# ---- fabric and control plane ----------------------------------------------

# A free TCP port on the root namespace's loopback for the API relay.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

fabric_up() {
	ip netns add "$PWK_FABRIC"
	ip -n "$PWK_FABRIC" link set lo up
	ip -n "$PWK_FABRIC" link add br0 type bridge
	ip -n "$PWK_FABRIC" addr add "$PWK_API_IP/24" dev br0
	ip -n "$PWK_FABRIC" link set br0 up
	# A host on the fabric that is not a node (NodePort clients); no route to pods.
	ip netns add "$PWK_HOST"
	ip -n "$PWK_HOST" link set lo up
	ip link add host netns "$PWK_FABRIC" type veth peer name eth0 netns "$PWK_HOST"
	ip -n "$PWK_FABRIC" link set host master br0 up
	ip -n "$PWK_HOST" addr add "$PWK_HOST_IP/24" dev eth0
	ip -n "$PWK_HOST" link set eth0 up
}

in_fabric_spawn() { # NAME CMD...: a control-plane daemon in the fabric namespace
	local name=$1; shift
	pwk_spawn "$PWK_DIR/pid/$name" "$PWK_DIR/log/$name.log" nsenter --net="/run/netns/$PWK_FABRIC" "$@"
}

wait_for() { # WHAT TIMEOUT_S CMD...: polls CMD every 0.1 s
	local what=$1 t=$2 _; shift 2
	for _ in $(seq $((t * 10))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "# $what: not ready after ${t}s" >&2
	return 1
}

etcd_up() {
	in_fabric_spawn etcd etcd --name "$CLUSTER" --data-dir "$PWK_DIR/etcd" \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster "$CLUSTER=http://127.0.0.1:2380" --initial-cluster-state new
	wait_for etcd 20 nsenter --net="/run/netns/$PWK_FABRIC" curl -sf http://127.0.0.1:2379/health ||
		{ tail -20 "$PWK_DIR/log/etcd.log" >&2; return 1; }
}

# The API server listens on every address of the fabric namespace: 127.0.0.1
# for the controller-manager and scheduler, 192.168.1.2 for nodes and pods (its
# advertise address, so the `kubernetes` Service's endpoint is routable), and it
# reaches the kubelets on their InternalIPs.
apiserver_up() {
	in_fabric_spawn kube-apiserver kube-apiserver \
		--etcd-servers=http://127.0.0.1:2379 \
		--bind-address=0.0.0.0 --secure-port="$PWK_API_PORT" --advertise-address="$PWK_API_IP" \
		--tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
		--client-ca-file="$PKI/ca.crt" \
		--kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
		--kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority="$PKI/ca.crt" \
		--kubelet-preferred-address-types=InternalIP \
		--service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-cluster-ip-range="$PWK_SVC_CIDR" \
		--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
		--allow-privileged=true --profiling=false "$@"
}

# kubectl in the root namespace reaches the API server through two socats
# joined by a unix socket (a process cannot listen in another netns).
api_relay_up() {
	local port=$1
	in_fabric_spawn relay-fabric socat UNIX-LISTEN:"$PWK_DIR/api.sock",fork,unlink-early \
		TCP:127.0.0.1:"$PWK_API_PORT"
	wait_for "relay socket" 5 test -S "$PWK_DIR/api.sock"
	pwk_spawn "$PWK_DIR/pid/relay-root" "$PWK_DIR/log/relay-root.log" \
		socat TCP-LISTEN:"$port",bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:"$PWK_DIR/api.sock"
}

# podwired's identity: read-only access to what it turns into datapath state.
podwire_rbac() {
	pwk_kubectl apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: podwire}
rules:
- apiGroups: [""]
  resources: [nodes, services, endpoints, pods, namespaces]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: podwire}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: podwire}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:podwire"}
EOF
}

controllers_up() {
	in_fabric_spawn kube-controller-manager kube-controller-manager \
		--kubeconfig="$PKI/controller-manager.kubeconfig" \
		--authentication-kubeconfig="$PKI/controller-manager.kubeconfig" \
		--authorization-kubeconfig="$PKI/controller-manager.kubeconfig" \
		--bind-address=127.0.0.1 --leader-elect=false \
		--allocate-node-cidrs --cluster-cidr="$PWK_POD_CIDR" --node-cidr-mask-size=24 \
		--service-cluster-ip-range="$PWK_SVC_CIDR" \
		--service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
		--cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
		--use-service-account-credentials=true
	in_fabric_spawn kube-scheduler kube-scheduler \
		--kubeconfig="$PKI/scheduler.kubeconfig" \
		--authentication-kubeconfig="$PKI/scheduler.kubeconfig" \
		--authorization-kubeconfig="$PKI/scheduler.kubeconfig" \
		--bind-address=127.0.0.1 --leader-elect=false
}

control_plane_up() {
	local port=$1
	etcd_up || return 1
	apiserver_up
	api_relay_up "$port"
	wait_for kube-apiserver 60 pwk_kubectl get --raw=/readyz ||
		{ tail -20 "$PWK_DIR/log/kube-apiserver.log" >&2; return 1; }
	pwk_log "control plane: API server ready"
	podwire_rbac || return 1
	controllers_up
}

# ---- nodes ------------------------------------------------------------------

nodes_up() {
	local n pids=() rc=0
	pwk_mountpoints
	for n in $(pwk_node_nums); do
		mkdir -p "$(pwk_node_dir "$n")/log"
		( set -e; node_up "$n" ) >"$(pwk_node_dir "$n")/log/up.log" 2>&1 &
		pids+=($!)
	done
	for n in $(pwk_node_nums); do
		wait "${pids[$((n - 1))]}" || { rc=1; echo "# node$n failed to come up:" >&2; sed 's/^/#   /' "$(pwk_node_dir "$n")/log/up.log" >&2; }
	done
	return $rc
}

nodes_registered() {
	[ "$(pwk_kubectl get nodes -o name 2>/dev/null | wc -l)" = "$PWK_NODES" ]
}

all_podcidrs() {
	local n
	for n in $(pwk_node_nums); do [ -n "$(pwk_node_podcidr "$n")" ] || return 1; done
}

cni_up() {
	local n
	case $(cat "$PWK_DIR/cni") in
	podwire)
		for n in $(pwk_node_nums); do node_podwired_up "$n"; done
		wait_for "pod CIDRs" 30 all_podcidrs || return 1
		pwk_fabric_routes ;;
	bridge)
		wait_for "pod CIDRs" 30 all_podcidrs || return 1
		for n in $(pwk_node_nums); do node_bridge_up "$n" || return 1; done
		pwk_bridge_routes
		for n in $(pwk_node_nums); do node_kube_proxy_up "$n"; done ;;
	esac
}

nodes_ready() {
	[ "$(pwk_kubectl get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null |
		grep -c True)" = "$PWK_NODES" ]
}

# ---- up / down / status -----------------------------------------------------

cluster_up() {
	local port
	while [ $# -gt 0 ]; do
		case $1 in
		--routing) PWK_ROUTING=${2:-}; shift 2 ;;
		--cni) PWK_CNI=${2:-}; shift 2 ;;
		*) die "up: unknown argument '$1'" ;;
		esac
	done
	check_prereqs
	PWK_T0=$(date +%s.%N)
	cluster_down >/dev/null 2>&1     # leftovers of a cluster of the same name
	mkdir -p "$PWK_DIR/pid" "$PWK_DIR/log" "$PWK_DIR/bin"
	echo "$PWK_CNI" > "$PWK_DIR/cni"
	echo "$PWK_ROUTING" > "$PWK_DIR/routing"
	if [ "$PWK_CNI" = podwire ]; then cp "$PWK_BUILD/podwired" "$PWK_BUILD/podwirectl" "$PWK_DIR/bin/"; fi
	port=$(free_port)
	echo "$port" > "$PWK_DIR/api-port"
	pki_all "$port"
	pwk_log "certificates made; API relay on 127.0.0.1:$port"
	fabric_up || return 1
	control_plane_up "$port" || return 1
	nodes_up || return 1
	wait_for "node registration" "${PWK_REGISTER_TIMEOUT:-120}" nodes_registered || return 1
	pwk_log "$PWK_NODES kubelets registered"
	if [ "${PWK_CNI_HOLD:-0}" = 1 ]; then
		pwk_log "PWK_CNI_HOLD=1: no CNI config yet, nodes stay NotReady ('cluster.sh cni-up' continues)"
		return 0
	fi
	cluster_cni_up
}

cluster_cni_up() {
	cni_up || return 1
	pwk_log "CNI: $(cat "$PWK_DIR/cni") ($(cat "$PWK_DIR/routing") routing for podwire)"
	wait_for "nodes Ready" "$PWK_READY_TIMEOUT" nodes_ready || { pwk_kubectl get nodes -o wide >&2; return 1; }
	pwk_log "$PWK_NODES nodes Ready"
	if [ "${PWK_DNS:-1}" = 1 ]; then
		dns_up || return 1
		wait_for "CoreDNS Ready" 90 dns_ready ||
			{ pwk_kubectl -n kube-system get pods -o wide >&2; return 1; }
		pwk_log "cluster DNS: CoreDNS Ready behind kube-dns $PWK_DNS_IP"
	fi
	echo "# kubectl --kubeconfig $(pwk_kubeconfig) get nodes" >&2
}

cluster_down() {
	local n p
	PWK_T0=${PWK_T0:-$(date +%s.%N)}
	# Every node there is, whatever PWK_NODES says now.
	for n in $( { ip netns list | awk -v p="$CLUSTER-node" 'index($1, p) == 1 {print substr($1, length(p) + 1)}'
		ls -d "$PWK_DIR"/node* 2>/dev/null | sed 's/.*node//'; } | sort -un); do
		node_down "$n" &
	done
	wait
	for p in kube-scheduler kube-controller-manager kube-apiserver etcd relay-fabric relay-root; do
		pwk_kill_pidfile "$PWK_DIR/pid/$p"
	done
	# Whatever else runs in the fabric (a daemon whose pid file was lost).
	ip netns pids "$PWK_FABRIC" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns pids "$PWK_HOST" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$PWK_FABRIC" 2>/dev/null
	ip netns del "$PWK_HOST" 2>/dev/null
	if grep -q " $PWK_DIR" /proc/self/mountinfo; then
		echo "# mounts under $PWK_DIR remain in the root mount namespace; not removing it" >&2
		return 1
	fi
	rm -rf "$PWK_DIR"
	# The last cluster gone: the mount points up created on the machine go too.
	if [ -d "$PWK_STATE" ] && [ -z "$(find "$PWK_STATE" -mindepth 1 -maxdepth 1 -type d)" ]; then
		[ -f "$PWK_STATE/created-dirs" ] && sort -ru "$PWK_STATE/created-dirs" | xargs -r rmdir 2>/dev/null
		rm -f "$PWK_STATE/created-dirs"
		rmdir "$PWK_STATE" 2>/dev/null
	fi
	pwk_log "down"
	return 0
}

# pwk_rss_kb PID...: their summed resident set size in KiB
pwk_rss_kb() {
	[ $# -gt 0 ] || { echo 0; return; }
	ps -o rss= -p "$(IFS=,; echo "$*")" 2>/dev/null | awk '{s += $1} END {print s + 0}'
}

cluster_status() {
	local n p pids total=0 kb
	[ -d "$PWK_DIR" ] || { echo "cluster $CLUSTER: not up"; return 1; }
	echo "cluster $CLUSTER: CNI $(cat "$PWK_DIR/cni"), routing $(cat "$PWK_DIR/routing"), state $PWK_DIR"
	echo "kubectl --kubeconfig $(pwk_kubeconfig)"
	printf '%-26s %8s\n' COMPONENT RSS_MiB
	for p in etcd kube-apiserver kube-controller-manager kube-scheduler relay-fabric relay-root; do
		kb=$(pwk_rss_kb "$(cat "$PWK_DIR/pid/$p" 2>/dev/null)")
		total=$((total + kb)); printf '%-26s %8d\n' "$p" $((kb / 1024))
	done
	for n in $(pwk_node_nums); do
		for p in containerd kubelet podwired kube-proxy; do
			[ -f "$(pwk_node_dir "$n")/pid/$p" ] || continue
			kb=$(pwk_rss_kb "$(cat "$(pwk_node_dir "$n")/pid/$p")")
			total=$((total + kb)); printf '%-26s %8d\n' "node$n/$p" $((kb / 1024))
		done
		# shims and the pods' processes
		pids=()
		for p in $(pwk_pids_in_mntns "$(pwk_node_mntns "$n")"); do
			[[ "$(cat "/proc/$p/comm" 2>/dev/null)" = containerd-shim* ]] && pids+=("$p")
		done
		mapfile -t -O ${#pids[@]} pids < <(find "/sys/fs/cgroup/memory/$(pwk_cgroup_name "$n")" -name cgroup.procs -exec cat {} + 2>/dev/null)
		kb=$(pwk_rss_kb "${pids[@]}")
		total=$((total + kb)); printf '%-26s %8d\n' "node$n/shims+pods" $((kb / 1024))
	done
	printf '%-26s %8d\n' total $((total / 1024))
	pwk_kubectl get nodes -o wide 2>&1
}

# ---- changes to a running cluster --------------------------------------------

pwk_wait_exit() { # PID: until that process is gone (5 s at most)
	local _
	[ -n "$1" ] || return 0
	for _ in $(seq 100); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

pwk_stop_pidfile() { # FILE [SIGNAL]: signals the process FILE names and waits until it is gone
	local pid; pid=$(pwk_pidfile_pid "$1")
	pwk_kill_pidfile "$@"
	pwk_wait_exit "$pid"
}

node_is_ready() {
	[ "$(pwk_kubectl get node "$(pwk_node_name "$1")" \
		-o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

cluster_node_add() {
	local n=${1:-} nd
	[[ $n =~ ^[1-9]$ ]] || die "node-add: node number 1-9 expected, got '$n'"
	[ -z "$(pwk_holder "$n")" ] || die "node-add: node$n is up already"
	[ "$(cat "$PWK_DIR/cni")" = podwire ] || die "node-add: only with --cni podwire (bridge routes are static)"
	nd=$(pwk_node_dir "$n")
	mkdir -p "$nd/log"
	pki_node "$n"
	if ! ( set -e; node_up "$n" ) >"$nd/log/up.log" 2>&1; then
		sed 's/^/#   /' "$nd/log/up.log" >&2
		die "node-add: node$n failed to come up"
	fi
	PWK_ROUTING=$(cat "$PWK_DIR/routing") node_podwired_up "$n"
	# A wall-clock limit: on a loaded machine each kubectl takes a while.
	local deadline=$((SECONDS + PWK_READY_TIMEOUT))
	until node_is_ready "$n"; do
		# kubelet gives up at once on some errors (inotify instances used up
		# on a machine running several clusters): say so instead of waiting.
		[ -n "$(pwk_pidfile_pid "$nd/pid/kubelet")" ] || {
			grep '^[EF]' "$nd/log/kubelet.log" | tail -3 >&2
			die "node-add: node$n's kubelet exited"
		}
		[ $SECONDS -lt $deadline ] || {
			pwk_kubectl get node "$(pwk_node_name "$n")" -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.message}{"\n"}{end}' >&2
			tail -5 "$nd/log/podwired.log" >&2
			die "node-add: node$n not Ready after ${PWK_READY_TIMEOUT}s"
		}
		sleep 0.5
	done
	pwk_fabric_route "$n" || die "node-add: node$n has no podCIDR"
	pwk_log "node$n added and Ready"
}

cluster_node_del() {
	local n=${1:-}
	[[ $n =~ ^[1-9]$ ]] || die "node-del: node number 1-9 expected, got '$n'"
	ip -n "$PWK_FABRIC" route del "$(pwk_node_podcidr "$n")" 2>/dev/null
	node_down "$n"
	pwk_kubectl delete node "$(pwk_node_name "$n")" --wait=false >/dev/null || die "node-del: deleting Node $(pwk_node_name "$n") failed"
	pwk_log "node$n gone, its Node deleted"
}

cluster_podwired() {
	local n=${1:-} nd; nd=$(pwk_node_dir "$n")
	[ -n "$(pwk_holder "$n")" ] || die "podwired: node$n is not up"
	case ${2:-} in
	stop) pwk_stop_pidfile "$nd/pid/podwired" "${3:-TERM}" || die "podwired: node$n's agent did not exit" ;;
	start) PWK_ROUTING=$(cat "$PWK_DIR/routing") node_podwired_up "$n" ;;
	*) die "podwired: N stop [SIGNAL] | N start" ;;
	esac
}

# The processes of a node a power loss takes, except podwired (whose pinned
# datapath would not survive a real reboot either: not what this is for).
node_runtime_stop() {
	local n=$1 nd p; nd=$(pwk_node_dir "$1")
	pwk_stop_pidfile "$nd/pid/kubelet"
	pwk_stop_pidfile "$nd/pid/containerd"
	for p in $(pwk_pids_in_mntns "$(pwk_node_mntns "$n")"); do
		[[ "$(cat "/proc/$p/comm" 2>/dev/null)" = containerd-shim* ]] && kill -9 "$p" 2>/dev/null
	done
	node_cgroup_remove "$n" && node_cgroup_create "$n"
}

cluster_runtime() {
	local n=${1:-}
	[ -n "$(pwk_holder "$n")" ] || die "runtime: node$n is not up"
	case ${2:-} in
	stop) node_runtime_stop "$n" ;;
	start) node_containerd_up "$n" && node_kubelet_up "$n" ;;
	*) die "runtime: N stop | N start" ;;
	esac
}

apiserver_ready() { # PORT: /readyz answers in the fabric
	nsenter --net="/run/netns/$PWK_FABRIC" curl -skf "https://127.0.0.1:$1/readyz"
}

cluster_apiserver() {
	local a port=$PWK_API_PORT
	case ${1:-} in
	stop) pwk_stop_pidfile "$PWK_DIR/pid/kube-apiserver" KILL || die "apiserver: did not exit" ;;
	start)
		shift
		for a in "$@"; do case $a in --secure-port=*) port=${a#*=} ;; esac; done
		apiserver_up "$@"
		wait_for kube-apiserver 90 apiserver_ready "$port" ||
			{ tail -20 "$PWK_DIR/log/kube-apiserver.log" >&2; return 1; } ;;
	*) die "apiserver: stop | start [FLAG...]" ;;
	esac
}

case ${1:-} in
up) shift; cluster_up "$@" ;;
node-add) cluster_node_add "${2:-}" ;;
node-del) cluster_node_del "${2:-}" ;;
podwired) shift; cluster_podwired "$@" ;;
runtime) shift; cluster_runtime "$@" ;;
apiserver) shift; cluster_apiserver "$@" ;;
cni-up) cluster_cni_up ;;
down) cluster_down ;;
status) cluster_status ;;
*) echo "usage: $0 up [--routing native|vxlan] [--cni podwire|bridge] | cni-up | down | status" \
	"| node-add N | node-del N | podwired N stop [SIGNAL]|start | runtime N stop|start | apiserver stop|start [FLAG...]" >&2; exit 2 ;;
esac
