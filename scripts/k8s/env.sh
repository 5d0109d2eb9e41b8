# shellcheck shell=bash disable=SC2034
# Sourced (never run) by scripts/k8s/*.sh, test/e2e/k8s_lib.sh and the demo:
# the names and addresses of one real-Kubernetes cluster on this machine.
#
#   CLUSTER        cluster name (default pwk): prefix of its network namespaces,
#                  Kubernetes node names and cgroups, so that two clusters
#                  (a test and a demo) never share anything
#   PWK_STATE      parent of every cluster's state dir (default /var/lib/podwire-k8s)
#   PWK_DIR        this cluster's state dir: certificates, kubeconfigs, etcd data,
#                  per-node containerd/kubelet trees, logs, pid files
#   PWK_NODES      node count (default 3)
#
# Layout: a fabric namespace ($CLUSTER-fabric) holds the bridge br0 (192.168.1.2,
# where the control plane answers), node N is namespace $CLUSTER-nodeN with eth0
# 192.168.1.1N on that bridge, $CLUSTER-host (192.168.1.100) is a host on the
# fabric that is not a node. kubectl in the root namespace reaches the API server
# on 127.0.0.1:$(cat $PWK_DIR/api-port) through a relay.

CLUSTER=${CLUSTER:-pwk}
PWK_STATE=${PWK_STATE:-/var/lib/podwire-k8s}
PWK_DIR=$PWK_STATE/$CLUSTER
PWK_NODES=${PWK_NODES:-3}
PWK_FABRIC=$CLUSTER-fabric
PWK_HOST=$CLUSTER-host
PWK_API_IP=192.168.1.2          # the API server's fabric address (its advertise address)
PWK_API_PORT=6443               # in the fabric namespace; the root namespace gets a free port
PWK_HOST_IP=192.168.1.100
PWK_BLACKHOLE_GW=192.168.1.254  # nodes' default gateway: an address nobody holds
PWK_POD_CIDR=10.244.0.0/16
PWK_SVC_CIDR=10.96.0.0/12
PWK_DNS_IP=10.96.0.10
PWK_IMAGE_PAUSE=${PWK_IMAGE_PAUSE:-registry.k8s.io/pause:3.10.2}
PWK_IMAGE_AGNHOST=${PWK_IMAGE_AGNHOST:-registry.k8s.io/e2e-test-images/agnhost:2.66.1}
export CLUSTER PWK_STATE PWK_DIR PWK_NODES

pwk_node_name() { echo "$CLUSTER-node$1"; }          # N -> Kubernetes node name = netns name
pwk_node_ip()   { echo "192.168.1.1$1"; }            # N -> node address on the fabric
pwk_node_nums() { seq 1 "$PWK_NODES"; }
pwk_kubeconfig() { echo "$PWK_DIR/pki/admin.kubeconfig"; }

# The tools: Kubernetes binaries (and Debian's etcd) from `make k8s-deps`'s cache,
# found first on PATH; containerd, runc and the CNI plugins are Debian's.
if [ -f "$(dirname "${BASH_SOURCE[0]}")/../k8s-env.sh" ]; then
	# shellcheck source=../k8s-env.sh
	. "$(dirname "${BASH_SOURCE[0]}")/../k8s-env.sh"
else
	K8S_VERSION=v1.37.2
	PW_K8S_CACHE=${PW_K8S_CACHE:-/var/cache/podwire/k8s-$K8S_VERSION}
	PW_K8S_BIN=$PW_K8S_CACHE/bin PW_K8S_IMAGES=$PW_K8S_CACHE/images
fi
case ":$PATH:" in *":$PW_K8S_BIN:"*) ;; *) PATH=$PW_K8S_BIN:$PATH ;; esac
export PATH

pwk_node_dir() { echo "$PWK_DIR/node$1"; }
# The pid of the process that holds node N's mount namespace (and sits in its netns).
pwk_holder() { cat "$PWK_DIR/node$1/pid/holder" 2>/dev/null; }
# pwk_in_node N CMD...: runs CMD in node N's network and mount namespaces, where
# /var/lib/kubelet, /run/containerd, /etc/cni/net.d, /sys/fs/bpf... are the node's.
pwk_in_node() {
	local n=$1 h; shift
	h=$(pwk_holder "$n")
	[ -n "$h" ] || { echo "node$n of cluster $CLUSTER is not up" >&2; return 1; }
	nsenter -t "$h" -m -n "$@"
}

# kubectl as the cluster's admin (from the root namespace, through the relay).
pwk_kubectl() { kubectl --kubeconfig "$PWK_DIR/pki/admin.kubeconfig" "$@"; }
# The Pod CIDR of node N, once the controller-manager has allocated it.
pwk_node_podcidr() {
	pwk_kubectl get node "$(pwk_node_name "$1")" -o jsonpath='{.spec.podCIDR}' 2>/dev/null
}
