# shellcheck shell=bash
# Shared by the real-Kubernetes tests and the Kubernetes demo: a cluster made by
# scripts/k8s/cluster.sh (control plane, three kubelet nodes with containerd and
# podwired), kubectl as its admin, waits, and ways into nodes and pods.
# Sourcing it also sources test/e2e/lib.sh (ok / not_ok / check / check_eq / log).
#
#   CLUSTER     cluster name (default pwkt for tests; the demo uses pwk): the
#               prefix of its network namespaces, node names and cgroups
#   K8S_NS      the Kubernetes namespace the test works in (default $CLUSTER-test)

CLUSTER=${CLUSTER:-pwkt}
K8S_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8S_CLUSTER_SH=$K8S_LIB_DIR/../../scripts/k8s/cluster.sh
# shellcheck source=lib.sh
. "$K8S_LIB_DIR/lib.sh"
# shellcheck source=../../scripts/k8s/env.sh
. "$K8S_LIB_DIR/../../scripts/k8s/env.sh"
K8S_NS=${K8S_NS:-$CLUSTER-test}

k() { pwk_kubectl "$@"; }                       # kubectl as the cluster's admin
kn() { pwk_kubectl -n "$K8S_NS" "$@"; }         # ... in the test's namespace

k8s_up() { bash "$K8S_CLUSTER_SH" up "$@"; }    # [--routing R] [--cni C]
k8s_cni_up() { bash "$K8S_CLUSTER_SH" cni-up; }
k8s_down() { bash "$K8S_CLUSTER_SH" down; }
k8s_status() { bash "$K8S_CLUSTER_SH" status; }

# k8s_init: the test's cleanup tears the cluster down, pass or fail (KEEP=1 keeps it).
k8s_init() {
	pw_init
	trap 'k8s_cleanup' EXIT
}
k8s_cleanup() {
	if [ "${KEEP:-0}" = 1 ]; then
		log "KEEP=1: cluster $CLUSTER left running; scripts/k8s/cluster.sh down (CLUSTER=$CLUSTER) removes it"
	else
		k8s_down >/dev/null 2>&1
	fi
	pw_cleanup
}

# k8s_wait TIMEOUT_S CMD...: polls CMD every 0.2 s until it succeeds.
k8s_wait() {
	local t=$1 _; shift
	for _ in $(seq $((t * 5))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

k8s_node_name() { pwk_node_name "$@"; }
k8s_node_ip() { pwk_node_ip "$@"; }
# k8s_node_exec N CMD...: CMD in node N's network and mount namespaces.
k8s_node_exec() { pwk_in_node "$@"; }
# k8s_node_num NODE_NAME: its number N ($CLUSTER-nodeN)
k8s_node_num() { local name=$1; echo "${name##*-node}"; }
# k8s_host_exec CMD...: CMD on the fabric host that is not a node ($PWK_HOST_IP).
k8s_host_exec() { nsenter --net="/run/netns/$PWK_HOST" "$@"; }
# k8s_pod_exec POD CMD...: CMD in the pod's first container (kubectl exec).
k8s_pod_exec() { local pod=$1; shift; kn exec "$pod" -- "$@"; }

k8s_ns_create() { k create namespace "$K8S_NS" >/dev/null; }

# k8s_netexec_deployment NAME REPLICAS: agnhost netexec pods (HTTP on 8080,
# UDP on 8081), spread evenly over the nodes (maxSkew 1 per hostname).
k8s_netexec_deployment() {
	local name=$1 replicas=$2
	kn apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $name}
spec:
  replicas: $replicas
  selector: {matchLabels: {app: $name}}
  template:
    metadata: {labels: {app: $name}}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,
         labelSelector: {matchLabels: {app: $name}}}
      containers:
      - name: netexec
        image: $PWK_IMAGE_AGNHOST
        imagePullPolicy: Never
        args: [netexec, --http-port=8080, --udp-port=8081]
        ports:
        - {name: http, containerPort: 8080, protocol: TCP}
        - {name: udp, containerPort: 8081, protocol: UDP}
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 1
EOF
}

# k8s_rollout NAME TIMEOUT_S: waits until the Deployment's pods are all available.
k8s_rollout() { kn rollout status "deployment/$1" --timeout="${2:-120}s" >/dev/null; }

# k8s_pods LABEL_SELECTOR: "name ip node" per Running pod, sorted by node then name.
k8s_pods() {
	kn get pods -l "$1" -o jsonpath='{range .items[*]}{.metadata.name} {.status.podIP} {.spec.nodeName} {.status.phase}{"\n"}{end}' |
		awk '$4 == "Running" && $2 != "" {print $1, $2, $3}' | sort -k3,3 -k1,1
}

# k8s_endpoints SERVICE: the ready endpoint addresses of its EndpointSlices, one per line
k8s_endpoints() {
	kn get endpointslices -l "kubernetes.io/service-name=$1" \
		-o jsonpath='{range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]}{"\n"}{end}'
}
k8s_endpoints_are() { [ "$(k8s_endpoints "$1" | grep -c .)" = "$2" ]; }   # SERVICE COUNT

# k8s_dial FROM_NODE_NUM FROM_IP TO_IP PROTO: asks the netexec pod FROM_IP to
# dial TO_IP (tcp: HTTP /clientip on 8080; udp: "clientip" on 8081) and prints
# the address TO saw, without its port. The request to FROM_IP comes from FROM's node.
k8s_dial() {
	local node=$1 from=$2 to=$3 proto=$4 port=8080
	[ "$proto" = udp ] && port=8081
	[ "$proto" = tcp ] && proto=http
	k8s_node_exec "$node" curl -s -m 10 \
		"http://$from:8080/dial?request=clientip&protocol=$proto&host=$to&port=$port&tries=1" |
		jq -r '.responses[0] // empty' 2>/dev/null | sed 's/:[0-9]*$//'
}

# k8s_ip_in_cidr IP CIDR: true when IP lies in CIDR
k8s_ip_in_cidr() {
	python3 -c 'import ipaddress, sys; sys.exit(ipaddress.ip_address(sys.argv[1]) not in ipaddress.ip_network(sys.argv[2]))' "$1" "$2"
}

# k8s_leftovers: what of cluster $CLUSTER is still on the machine (nothing when clean).
k8s_leftovers() {
	local h
	ip netns list | awk '{print $1}' | grep "^$CLUSTER-" | sed 's/^/netns /'
	for h in /sys/fs/cgroup/*/; do
		ls -d "$h$CLUSTER"-node* 2>/dev/null | sed 's/^/cgroup /'
	done
	grep -F "$PWK_DIR" /proc/self/mountinfo | awk '{print "mount " $5}'
	[ -e "$PWK_DIR" ] && echo "dir $PWK_DIR"
	ls -d /sys/fs/bpf/podwire/"$CLUSTER"-* 2>/dev/null | sed 's/^/pin /'
	# (the pattern from a file: a grep naming it on its command line would find itself)
	grep -lsF -f <(echo "$PWK_DIR") /proc/[0-9]*/cmdline 2>/dev/null |
		while read -r f; do p=${f#/proc/}; p=${p%/cmdline}; echo "process $p $(tr '\0' ' ' < "$f" | cut -c1-80)"; done
	return 0
}
