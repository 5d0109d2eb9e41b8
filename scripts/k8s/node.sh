# shellcheck shell=bash
# Sourced by scripts/k8s/cluster.sh: one Kubernetes node = a network namespace
# plus a private mount namespace, held by one long-lived process, in which the
# node's own directories are mounted over the paths containerd and kubelet
# hard-code whatever their flags say. The node's containerd, kubelet and podwired
# run inside both namespaces; the node's pods live in its cgroup subtree.
#
# Node N's state is $PWK_DIR/nodeN: the bind sources below, config/, log/, pid/.

# Directories of the node mounted over the machine's paths (source:target).
PWK_NODE_BINDS=(
	kubelet:/var/lib/kubelet
	log-pods:/var/log/pods
	log-containers:/var/log/containers
	containerd-run:/run/containerd
	containerd-lib:/var/lib/containerd
	cni-lib:/var/lib/cni
	cni-net.d:/etc/cni/net.d
	cni-bin:/opt/cni/bin
	podwire-run:/run/podwire
)
# The VM-wide sysctls kubelet sets at start (pkg/kubelet/cm setupKernelTunables)
# and the values it wants: the node sees files holding these values instead, so
# kubelet finds nothing to change and the shared machine is never touched.
PWK_NODE_SYSCTLS=(
	vm/overcommit_memory=1
	vm/panic_on_oom=0
	kernel/panic=10
	kernel/panic_on_oops=1
	kernel/keys/root_maxkeys=1000000
	kernel/keys/root_maxbytes=25000000
)

pwk_log() {
	printf '# [%s %5.1fs] %s\n' "$CLUSTER" \
		"$(awk -v t0="${PWK_T0:-0}" -v t="$(date +%s.%N)" 'BEGIN { print (t0 > 0 ? t - t0 : 0) }')" "$*" >&2
}

# pwk_spawn PIDFILE LOGFILE CMD...: a daemon detached from the caller (its own
# session, no inherited stdout: a caller capturing output must not wait for it).
pwk_spawn() {
	local pidfile=$1 logfile=$2; shift 2
	setsid "$@" </dev/null >>"$logfile" 2>&1 &
	echo $! > "$pidfile"
}

# Node N's mount namespace ("mnt:[inode]", "" when the node was never up), as
# recorded when its holder started: teardown finds containerd and the rest by
# it even if the holder is gone.
pwk_node_mntns() { cat "$(pwk_node_dir "$1")/mntns" 2>/dev/null; }

# The cgroup hierarchies of this machine: every mounted v1 controller (and the
# named/unified ones, which only teardown has to look at).
pwk_cgroup_hierarchies() {
	local d
	for d in /sys/fs/cgroup/*/; do
		[ -f "$d/cgroup.procs" ] && echo "${d%/}"
	done
}
pwk_cgroup_name() { echo "$CLUSTER-node$1"; }

# kubelet's cgroupRoot must exist in every v1 controller before it starts;
# cpuset needs its cpus/mems filled or nothing can join it.
node_cgroup_create() {
	local cg h; cg=$(pwk_cgroup_name "$1")
	for h in $(pwk_cgroup_hierarchies); do
		mkdir -p "$h/$cg"
		if [ -f "$h/cpuset.cpus" ]; then
			cat "$h/cpuset.cpus" > "$h/$cg/cpuset.cpus"
			cat "$h/cpuset.mems" > "$h/$cg/cpuset.mems"
		fi
	done
}

# Kills whatever still runs in node N's cgroup subtree (the pods' processes),
# then removes the subtree deepest first, in every hierarchy.
node_cgroup_remove() {
	local cg h _ left; cg=$(pwk_cgroup_name "$1")
	for _ in $(seq 50); do
		left=0
		for h in $(pwk_cgroup_hierarchies); do
			[ -d "$h/$cg" ] || continue
			# shellcheck disable=SC2038 # cgroup.procs holds pids, one per line
			find "$h/$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
			find "$h/$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
			[ -d "$h/$cg" ] && left=1
		done
		[ "$left" = 0 ] && return 0
		sleep 0.1
	done
	echo "# cgroup $cg could not be removed everywhere" >&2
	return 1
}

# The node's network: eth0 on the fabric bridge, a default route towards an
# address nobody holds (a connect() to a ClusterIP without endpoints must be
# refused by the datapath, not fail with "network unreachable" in the stack).
node_net_up() {
	local n=$1 ns; ns=$(pwk_node_name "$1")
	ip netns add "$ns"
	ip link add "node$n" netns "$PWK_FABRIC" type veth peer name eth0 netns "$ns"
	ip -n "$PWK_FABRIC" link set "node$n" master br0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$(pwk_node_ip "$n")/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via "$PWK_BLACKHOLE_GW"
	nsenter --net="/run/netns/$ns" sysctl -qw net.ipv4.ip_forward=1
}

# Starts the holder: a process in the node's netns and a new private mount
# namespace, in which the node's mounts are made.
node_holder_up() {
	local n=$1 nd ns _ h; nd=$(pwk_node_dir "$1") ns=$(pwk_node_name "$1")
	pwk_spawn "$nd/pid/holder" /dev/null nsenter --net="/run/netns/$ns" \
		unshare --mount --propagation private sleep infinity
	h=$(pwk_holder "$n")
	for _ in $(seq 100); do
		if [ "$(readlink "/proc/$h/ns/mnt" 2>/dev/null)" != "$(readlink /proc/self/ns/mnt)" ] &&
			[ "$(cat "/proc/$h/comm" 2>/dev/null)" = sleep ]; then
			readlink "/proc/$h/ns/mnt" > "$nd/mntns"
			return 0
		fi
		sleep 0.02
	done
	echo "# node$n: the namespace holder did not start" >&2
	return 1
}

# Mount points the node mounts over must exist on the machine; the ones this
# script creates are recorded so that the last cluster's teardown removes them.
pwk_mountpoints() {
	local b dir
	for b in "${PWK_NODE_BINDS[@]}"; do
		dir=${b#*:}
		[ -d "$dir" ] && continue
		mkdir -p "$dir"
		echo "$dir" >> "$PWK_STATE/created-dirs"
	done
}

node_mounts() {
	local n=$1 nd b s cur; nd=$(pwk_node_dir "$1")
	{
		echo "set -e"
		for b in "${PWK_NODE_BINDS[@]}"; do
			mkdir -p "$nd/${b%%:*}"
			echo "mount --bind '$nd/${b%%:*}' '${b#*:}'"
		done
		# The copies of the machine's netns handles would keep other tests'
		# namespaces alive as long as this node lives: drop them.
		echo 'for f in /run/netns/*; do umount -l "$f" 2>/dev/null || true; done'
		echo 'umount -l /run/netns 2>/dev/null || true'
		echo 'mount -t tmpfs -o mode=0755 tmpfs /run/netns'
		echo 'mount -t bpf bpf /sys/fs/bpf'
		mkdir -p "$nd/sysctl"
		for s in "${PWK_NODE_SYSCTLS[@]}"; do
			cur=${s%%=*}
			echo "${s#*=}" > "$nd/sysctl/${cur//\//.}"
			echo "mount --bind '$nd/sysctl/${cur//\//.}' '/proc/sys/$cur'"
		done
	} > "$nd/config/mounts.sh"
	pwk_in_node "$n" bash "$nd/config/mounts.sh"
}

# The node's CNI bin dir: podwire (copied, so a rebuild does not change a
# running cluster) and Debian's plugins (containerd runs loopback for every pod).
node_cni_bin() {
	local nd p; nd=$(pwk_node_dir "$1")
	for p in loopback bridge host-local portmap; do
		cp /usr/lib/cni/$p "$nd/cni-bin/"
	done
	[ -x "$PWK_BUILD/podwire" ] && cp "$PWK_BUILD/podwire" "$nd/cni-bin/"
	return 0
}

node_containerd_config() {
	local nd; nd=$(pwk_node_dir "$1")
	cat > "$nd/config/containerd.toml" <<EOF
# containerd of node $1 of cluster $CLUSTER; /var/lib/containerd, /run/containerd,
# /opt/cni/bin and /etc/cni/net.d are the node's own (private mount namespace).
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "$nd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PWK_IMAGE_PAUSE"
  # No CAP_SYS_RESOURCE here: without this runc fails with
  # "can't get final child's PID from pipe" when asked to lower oom_score_adj.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
EOF
}

node_containerd_up() {
	local n=$1 nd _; nd=$(pwk_node_dir "$1")
	node_containerd_config "$n"
	pwk_spawn "$nd/pid/containerd" "$nd/log/containerd.log" \
		nsenter -t "$(pwk_holder "$n")" -m -n containerd --config "$nd/config/containerd.toml"
	for _ in $(seq 200); do
		pwk_in_node "$n" ctr -a /run/containerd/containerd.sock version >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "# node$n: containerd did not answer; its log:" >&2; tail -20 "$nd/log/containerd.log" >&2
	return 1
}

# Every image of the cache, under the names the tests use (there is no registry).
node_images() {
	local n=$1 t nd; nd=$(pwk_node_dir "$1")
	for t in "$PW_K8S_IMAGES"/*.tar; do
		[ -f "$t" ] || continue
		pwk_in_node "$n" ctr -a /run/containerd/containerd.sock -n k8s.io images import "$t" \
			>>"$nd/log/images.log" 2>&1 || { echo "# node$n: importing $t failed" >&2; return 1; }
	done
}

node_kubelet_config() {
	local n=$1 nd node; nd=$(pwk_node_dir "$1") node=$(pwk_node_name "$1")
	: > "$nd/config/resolv.conf"   # pods with dnsPolicy Default get no upstream: there is none
	cat > "$nd/config/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 on this machine: allowed explicitly, cgroupfs driver (no systemd),
# and a cgroup subtree of the node's own, created beforehand in every controller.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$(pwk_cgroup_name "$n")
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
tlsCertFile: $PKI/$node-serving.crt
tlsPrivateKeyFile: $PKI/$node-serving.key
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
clusterDNS: [$PWK_DNS_IP]
clusterDomain: cluster.local
resolvConf: $nd/config/resolv.conf
failSwapOn: false
# A shared test machine: never garbage-collect images (there is no registry to
# pull them back from) and never evict for disk or memory pressure.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%"}
serializeImagePulls: false
protectKernelDefaults: false
nodeStatusUpdateFrequency: 4s
maxPods: 110
EOF
}

node_kubelet_up() {
	local n=$1 nd node; nd=$(pwk_node_dir "$1") node=$(pwk_node_name "$1")
	node_kubelet_config "$n"
	pwk_spawn "$nd/pid/kubelet" "$nd/log/kubelet.log" \
		nsenter -t "$(pwk_holder "$n")" -m -n kubelet --config "$nd/config/kubelet.yaml" \
		--kubeconfig "$PKI/$node.kubeconfig" --hostname-override "$node" --node-ip "$(pwk_node_ip "$n")" --v=1
}

# Everything of node N up to a running kubelet (which registers the Node,
# NotReady until a CNI config appears) and the images in its containerd.
node_up() {
	local n=$1 nd; nd=$(pwk_node_dir "$1")
	mkdir -p "$nd/config" "$nd/log" "$nd/pid" "$nd/opt"
	node_net_up "$n"
	node_cgroup_create "$n"
	node_holder_up "$n"
	node_mounts "$n"
	node_cni_bin "$n"
	node_containerd_up "$n"
	# kubelet registers while the images load: the Node stays NotReady (no
	# CNI config yet), so nothing is scheduled on it before they are there.
	node_kubelet_up "$n"
	node_images "$n"
	pwk_log "node$n: containerd and kubelet up, images imported"
}

# ---- CNI: podwired (the product) or Debian's bridge (the baseline) ----------

node_podwired_up() {
	local n=$1 nd node; nd=$(pwk_node_dir "$1") node=$(pwk_node_name "$1")
	cat > "$nd/config/podwire.json" <<EOF
{
  "node":    {"uplink": "eth0"},
  "cluster": {"podCIDR": "$PWK_POD_CIDR", "serviceCIDR": "$PWK_SVC_CIDR", "routing": "$PWK_ROUTING", "masquerade": true}
}
EOF
	pwk_spawn "$nd/pid/podwired" "$nd/log/podwired.log" \
		nsenter -t "$(pwk_holder "$n")" -m -n "$PWK_DIR/bin/podwired" --instance "$node" \
		--kubeconfig "$PKI/podwire.kubeconfig" --node-name "$node" --config "$nd/config/podwire.json" \
		--cni-conf-dir /etc/cni/net.d
}

# Bridge mode: Debian's bridge + host-local on the node's Pod CIDR, and static
# routes to the other nodes' Pod CIDRs (in each node and in the fabric, where
# the API server answers pods).
node_bridge_up() {
	local n=$1 nd cidr gw; nd=$(pwk_node_dir "$1")
	cidr=$(pwk_node_podcidr "$n")
	[ -n "$cidr" ] || { echo "# node$n has no podCIDR" >&2; return 1; }
	gw=${cidr%.0/*}.1
	cat > "$nd/cni-net.d/.10-bridge.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "bridge",
 "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
              "ipam": {"type": "host-local", "ranges": [[{"subnet": "$cidr", "gateway": "$gw"}]],
                       "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF
	mv "$nd/cni-net.d/.10-bridge.conflist" "$nd/cni-net.d/10-bridge.conflist"
}

# The control plane is not on a node: the fabric routes each node's Pod CIDR
# to that node, as a network whose router knows the pod CIDRs does (in VXLAN
# mode too: only node-to-node pod traffic needs the overlay). That is how the
# API server reaches pods (its pods/proxy, services/proxy, webhooks).
pwk_fabric_route() { # N
	local cidr; cidr=$(pwk_node_podcidr "$1")
	[ -n "$cidr" ] || { echo "# node$1 has no podCIDR" >&2; return 1; }
	ip -n "$PWK_FABRIC" route replace "$cidr" via "$(pwk_node_ip "$1")"
}
pwk_fabric_routes() {
	local m
	for m in $(pwk_node_nums); do pwk_fabric_route "$m" || return 1; done
}

# Bridge mode's kube-proxy (iptables mode) in the node's namespaces. Nothing
# of the shared machine may change: conntrack maxPerCore/min 0 and the TCP
# timeouts 0 make it leave every nf_conntrack sysctl alone (nf_conntrack_max
# is machine-wide), NodePorts on the node IP only spare route_localnet; its
# rules live in the node's netns. br_netfilter is built into
# this kernel and on by default in every namespace: replies bridged between
# two pods of a node are reverse-translated without loading anything.
node_kube_proxy_up() {
	local n=$1 nd node; nd=$(pwk_node_dir "$1") node=$(pwk_node_name "$1")
	cat > "$nd/config/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $PKI/kube-proxy.kubeconfig}
hostnameOverride: $node
mode: iptables
clusterCIDR: $PWK_POD_CIDR
bindAddress: $(pwk_node_ip "$n")
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
# The node IP only: no NodePort on 127.0.0.1, so no route_localnet either.
nodePortAddresses: [primary]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
	pwk_spawn "$nd/pid/kube-proxy" "$nd/log/kube-proxy.log" \
		nsenter -t "$(pwk_holder "$n")" -m -n kube-proxy --config "$nd/config/kube-proxy.yaml" --v=1
}

pwk_bridge_routes() {
	local n m cidr
	pwk_fabric_routes || return 1
	for m in $(pwk_node_nums); do
		cidr=$(pwk_node_podcidr "$m")
		for n in $(pwk_node_nums); do
			[ "$n" = "$m" ] && continue
			ip -n "$(pwk_node_name "$n")" route replace "$cidr" via "$(pwk_node_ip "$m")"
		done
	done
}

# ---- teardown ---------------------------------------------------------------

# pwk_pidfile_pid FILE: the pid FILE names if that process is still ours: its
# command line names this cluster's state dir (every daemon's does), so a pid
# the kernel gave to someone else since is left alone.
pwk_pidfile_pid() {
	local pid; pid=$(cat "$1" 2>/dev/null)
	[ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$PWK_DIR" && echo "$pid"
}

# pwk_kill_pidfile FILE [SIGNAL]: signals (default KILL) the process FILE names, if ours.
pwk_kill_pidfile() {
	local pid; pid=$(pwk_pidfile_pid "$1")
	[ -n "$pid" ] && kill "-${2:-KILL}" "$pid" 2>/dev/null
	[ "${2:-KILL}" = KILL ] && rm -f "$1"
	return 0
}

# pwk_pids_in_mntns MNT_NS_LINK: the pids of every process in that mount
# namespace (one ls for all: a readlink per process would fork hundreds of times).
pwk_pids_in_mntns() {
	[ -n "$1" ] || return 0
	ls -l /proc/[0-9]*/ns/mnt 2>/dev/null | awk -v m="$1" '$NF == m { split($(NF-2), a, "/"); print a[3] }'
}

# Kills every process in node N's mount namespace (containerd, its shims,
# podwired, kubelet, the holder): none of them belongs to anything else.
node_kill_mntns() {
	local pids _ mnt; mnt=$(pwk_node_mntns "$1")
	for _ in $(seq 20); do
		pids=$(pwk_pids_in_mntns "$mnt")
		[ -n "$pids" ] || return 0
		kill -9 $pids 2>/dev/null
		sleep 0.05
	done
}

node_down() {
	local n=$1 nd ns node; nd=$(pwk_node_dir "$1") ns=$(pwk_node_name "$1") node=$(pwk_node_name "$1")
	if [ -n "$(pwk_node_mntns "$n")" ]; then
		# kubelet first, so that nothing restarts what goes next.
		pwk_kill_pidfile "$nd/pid/kubelet"
		pwk_kill_pidfile "$nd/pid/kube-proxy"
		if [ -f "$nd/pid/podwired" ]; then
			pwk_kill_pidfile "$nd/pid/podwired" TERM
			sleep 0.2
			pwk_kill_pidfile "$nd/pid/podwired"
			[ -x "$PWK_DIR/bin/podwired" ] && pwk_in_node "$n" "$PWK_DIR/bin/podwired" --instance "$node" \
				--uninstall >>"$nd/log/podwired.log" 2>&1
		fi
	fi
	node_cgroup_remove "$n"      # the pods' processes
	node_kill_mntns "$n"         # containerd, shims, the holder: the mount namespace goes with them
	rm -f "$nd/pid/holder" "$nd/mntns"
	node_cgroup_remove "$n"      # anything a dying shim left behind
	ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	return 0
}
