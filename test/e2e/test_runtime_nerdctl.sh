#!/usr/bin/env bash
# containerd (Debian's 1.6) driven by nerdctl (built from the Go module proxy
# at the version test/runtimes/nerdctl/go.mod pins) as podwire's CNI client:
# a private containerd in one node's namespaces, two busybox containers
# (image built locally, no registry) ping each other and talk TCP, the server
# seeing the client's container IP; `--ip` is honoured; stop and rm leave nothing behind: no veth,
# endpoint, reservation, pin, libcni cache entry or cgroup. nerdctl calls CNI
# from its OCI hooks (`nerdctl internal oci-hook`, run by runc), with
# CNI_NETNS=/proc/<pid>/ns/net. See runtime_lib.sh for the namespaces.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/runtime_lib.sh"
pw_init

command -v containerd >/dev/null && command -v runc >/dev/null ||
	{ not_ok "containerd and runc installed (make deps)"; exit 1; }
NERDCTL=$(bash "$(dirname "$0")/../runtimes/nerdctl/build.sh") || { not_ok "nerdctl built (make deps)"; exit 1; }

CD=$RT_DIR/containerd
CD_PID=
nerdctl() {
	rt_in timeout 60 "$NERDCTL" --address "$CD/containerd.sock" --namespace pwt --data-root "$RT_DIR/nerdctl" \
		--cni-path /usr/lib/cni --cni-netconfpath "$RT_DIR/net.d" --snapshotter native \
		--cgroup-manager cgroupfs "$@"
}

# A containerd of the test's own: its root, state and sockets in the tmp dir,
# only what nerdctl needs (no CRI, no /opt plugin directory).
containerd_up() {
	local i
	mkdir -p "$CD"
	cat > "$CD/config.toml" <<TOML
version = 2
root = "$CD/root"
state = "$CD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$CD/containerd.sock"
[ttrpc]
  address = "$CD/containerd.sock.ttrpc"
[debug]
  address = "$CD/debug.sock"
TOML
	rt_in containerd --config "$CD/config.toml" >"$CD/log" 2>&1 &
	CD_PID=$!
	for i in $(seq 100); do
		nerdctl version >/dev/null 2>&1 && return 0
		kill -0 "$CD_PID" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 5 "$CD/log" | sed 's/^/# /'
	return 1
}

containerd_down() {
	[ -n "$CD_PID" ] || return 0
	kill -TERM "$CD_PID" 2>/dev/null
	wait "$CD_PID" 2>/dev/null
	CD_PID=
}

rt_cleanup() {
	[ -n "$CD_PID" ] && nerdctl rm -f $(nerdctl ps -aq 2>/dev/null) >/dev/null 2>&1
	containerd_down
	rt_holder_down
	rt_cgroup_cleanup
}
trap 'rt_cleanup; pw_cleanup' EXIT

t0=$(date +%s.%N)
lan_up
node_up n1 192.168.1.11 10.244.1.0/24 || { not_ok "agent starts"; exit 1; }
rt_holder_up n1 || { not_ok "the runtime's mount namespace"; exit 1; }
rt_conflist n1
containerd_up || { not_ok "containerd starts"; exit 1; }
ok "containerd $(containerd --version | awk '{print $3}') and nerdctl $("$NERDCTL" --version | awk '{print $3}') up"
rt_image "$RT_DIR/busybox.tar" || { not_ok "busybox image built"; exit 1; }
out=$(nerdctl load -i "$RT_DIR/busybox.tar" 2>&1)
check_eq "nerdctl load of the local busybox image" \
	"$(nerdctl images --format '{{.Repository}}:{{.Tag}}' 2>&1)" "$RT_IMAGE" || log "$out"

# Each container serves 8080: on a connection busybox nc runs netstat inside
# the container, so the client reads the server's own view of the socket.
# Names are not hex: nerdctl takes a name that prefixes a container ID for the ID.
declare -A IP CID
for c in pa pb; do
	if CID[$c]=$(nerdctl run -d --name "$c" --network podwire --cgroup-parent "$RT_CGROUP" \
		"$RT_IMAGE" nc -ll -p 8080 -e netstat -tn 2>"$RT_DIR/run-$c.err"); then
		IP[$c]=$(nerdctl exec "$c" ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
		ok "nerdctl run $c -> ${IP[$c]}"
	else
		not_ok "nerdctl run $c: $(tail -n 3 "$RT_DIR/run-$c.err" | tr '\n' ' ')"
	fi
done
t_up=$(date +%s.%N)
rt_log_dead nerdctl pa pb
rt_check_endpoints n1 "${IP[pa]:-}" "${IP[pb]:-}"

rt_check_both_ways nerdctl pa "${IP[pa]:-}" pb "${IP[pb]:-}"

# --ip: nerdctl sends CNI_ARGS IgnoreUnknown=1;IP=<addr>. (Its --mac-address
# is refused for any network type but bridge and macvlan, before CNI.)
want=10.244.1.78
if nerdctl run -d --name pc --network podwire --cgroup-parent "$RT_CGROUP" --ip "$want" \
	"$RT_IMAGE" sleep 600 >/dev/null 2>"$RT_DIR/run-pc.err"; then
	check_eq "nerdctl run --ip $want: the container's eth0 holds it" \
		"$(nerdctl exec pc ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}')" "$want/32"
else
	not_ok "nerdctl run --ip $want: $(tail -n 3 "$RT_DIR/run-pc.err" | tr '\n' ' ')"
fi

# What nerdctl sent: its createRuntime hook's ADD names the task's netns by pid.
adds=$(rt_cni_calls | grep -c '^ADD pwt-[0-9a-f]\{64\}/eth0 netns /proc/[0-9]*/ns/net$')
check_eq "nerdctl's ADDs: one per container, CNI_NETNS /proc/<pid>/ns/net, containerID <namespace>-<id>" "$adds" 3

# nerdctl's DEL comes from its postStop hook, which runc runs when the task
# is deleted: at rm, not at stop. In between, the container's netns died
# with its process (and the host veth with it); the reservation and the
# endpoint entries wait for that DEL.
check "nerdctl stop pa pb pc" nerdctl stop -t 1 pa pb pc
log "after stop: $(rt_cni_calls | grep -c '^DEL') DELs, $(ls "/run/podwire/${PW_NODE_INST[n1]}/ipam" | grep -c '^[0-9]') reservations, $(in_ns "${PW_PREFIX}-n1" ip -o link show | grep -c ': pw') pod veths"
check "nerdctl rm pa pb pc" nerdctl rm pa pb pc
dels=$(rt_cni_calls | grep -c '^DEL pwt-[0-9a-f]\{64\}/eth0 netns $')
check_eq "one DEL per container, CNI_NETNS empty" "$dels" 3
rt_check_nothing_left n1 "nerdctl stop+rm"
log "nerdctl sent, in order: $(rt_cni_calls | awk '{print $1, ($4 == "-" ? "no-netns" : $4)}' |
	sed 's|/proc/[0-9]*/ns/net|/proc/PID/ns/net|' | tr '\n' ',' | sed 's/,$//')"

rt_finish "$t0" "$t_up" "node+containerd+image+2 containers"

[ "$PW_FAILED" = 0 ]
