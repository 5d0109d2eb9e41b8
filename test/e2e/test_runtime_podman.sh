#!/usr/bin/env bash
# podman 4.3 (Debian's, CNI backend) as podwire's CNI client: on one node, two
# busybox containers (image built locally, no registry) ping each other and
# talk TCP, the server seeing the client's container IP; `podman run --ip`
# gets the address asked for (--mac-address its MAC); after stop (whose DEL comes from conmon's
# `podman container cleanup`, not from the podman command) and rm nothing is
# left: no veth, endpoint, reservation, pin, libcni cache entry, netns file
# or cgroup. See runtime_lib.sh for how podman is kept inside the test.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/runtime_lib.sh"
pw_init

command -v podman >/dev/null || { not_ok "podman installed (make deps)"; exit 1; }

# Every setting is a flag, not containers.conf: podman hands its flags on to
# the cleanup command conmon runs when a container stops, not its environment.
PODMAN=(podman --root "$RT_DIR/root" --runroot "$RT_DIR/runroot" --tmpdir "$RT_DIR/libpod"
	--storage-driver vfs --network-backend cni --network-config-dir "$RT_DIR/net.d"
	--cgroup-manager cgroupfs --events-backend file --runtime runc)
pm() { rt_in env TMPDIR="$RT_DIR/tmp" timeout 60 "${PODMAN[@]}" "$@"; }

rt_cleanup() {
	[ -n "$RT_HOLDER" ] && pm rm -f -t 0 -a >/dev/null 2>&1
	rt_holder_down
	rt_cgroup_cleanup
}
trap 'rt_cleanup; pw_cleanup' EXIT

t0=$(date +%s.%N)
lan_up
node_up n1 192.168.1.11 10.244.1.0/24 || { not_ok "agent starts"; exit 1; }
rt_holder_up n1 || { not_ok "podman's mount namespace"; exit 1; }
rt_conflist n1
mkdir -p "$RT_DIR/tmp"
rt_image "$RT_DIR/busybox.tar" || { not_ok "busybox image built"; exit 1; }
out=$(pm load -i "$RT_DIR/busybox.tar" 2>&1)
check_eq "podman load of the local busybox image" "$(pm images --format '{{.Repository}}:{{.Tag}}' 2>&1)" "$RT_IMAGE" ||
	log "$out"

# podman asks runc for open-file and process limits of 1048576, above this
# machine's hard limits, which only CAP_SYS_RESOURCE (absent here) may raise:
# ask for modest ones (busybox needs few). busybox ping needs a raw socket,
# a capability podman 4 no longer grants by default.
NOFILE=4096:4096 NPROC=4096:4096
# Each container serves 8080: on a connection busybox nc runs netstat inside
# the container, so the client reads the server's own view of the socket.
run_ctr() { # NAME [podman run flags...]
	local name=$1; shift
	pm run -d --name "$name" --network podwire --cgroup-parent "$RT_CGROUP" \
		--ulimit nofile="$NOFILE" --ulimit nproc="$NPROC" --cap-add NET_RAW "$@" \
		"$RT_IMAGE" nc -ll -p 8080 -e netstat -tn
}
ctr_ip() { pm inspect -f '{{.NetworkSettings.Networks.podwire.IPAddress}}' "$1" 2>/dev/null; }

declare -A IP
for c in a b; do
	if run_ctr "$c" >"$RT_DIR/run-$c.out" 2>&1; then
		IP[$c]=$(ctr_ip "$c")
		ok "podman run $c -> ${IP[$c]}"
	else
		not_ok "podman run $c: $(tail -n 3 "$RT_DIR/run-$c.out" | tr '\n' ' ')"
	fi
done
t_up=$(date +%s.%N)
rt_log_dead pm a b
rt_check_endpoints n1 "${IP[a]:-}" "${IP[b]:-}"
check_eq "container a's eth0 holds the address podman reports" \
	"$(pm exec a ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}')" "${IP[a]:-}/32"

rt_check_both_ways pm a "${IP[a]:-}" b "${IP[b]:-}"

# --ip and --mac-address: podman sends CNI_ARGS IP=<addr>;MAC=<mac> and, the
# conflist declaring the capabilities, runtimeConfig ips and mac.
want=10.244.1.77 mac=02:aa:bb:cc:dd:ee
if run_ctr c --ip "$want" --mac-address "$mac" >"$RT_DIR/run-c.out" 2>&1; then
	IP[c]=$(ctr_ip c)
	check_eq "podman run --ip $want: podman reports the address" "${IP[c]}" "$want"
	check_eq "podman run --ip $want: the container's eth0 holds it" \
		"$(pm exec c ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}')" "$want/32"
	check_eq "podman run --mac-address $mac: the container's eth0 has it" \
		"$(pm exec c cat /sys/class/net/eth0/address 2>/dev/null)" "$mac"
else
	not_ok "podman run --ip $want --mac-address $mac: $(tail -n 3 "$RT_DIR/run-c.out" | tr '\n' ' ')"
fi

# What podman sent: ADD with its own netns file, the plugin's log says.
adds=$(rt_cni_calls | grep -c '^ADD [0-9a-f]\{64\}/eth0 netns /run/netns/netns-')
check_eq "podman's ADDs: one per container, CNI_NETNS a podman netns file" "$adds" 3

# stop: podman tells conmon, whose `podman container cleanup` (flags only, no
# environment) runs the DEL; the veths go before rm is ever run.
check "podman stop a b c" pm stop -t 1 a b c
gone=0
for _ in $(seq 50); do   # only a DEL releases a reservation
	[ "$(ls "/run/podwire/${PW_NODE_INST[n1]}/ipam" | grep -c '^[0-9]')" = 0 ] && { gone=1; break; }
	sleep 0.1
done
check_eq "after stop, conmon's cleanup has DELeted every container (no reservation)" "$gone" 1
dels=$(rt_cni_calls | grep -c '^DEL [0-9a-f]\{64\}/eth0 netns /run/netns/netns-')
check_eq "one DEL per stopped container, with the netns still named" "$dels" "$adds"
check "podman rm a b c" pm rm a b c
rt_check_nothing_left n1 "podman stop+rm"
check_eq "podman's netns files are gone" "$(rt_in ls /run/netns | wc -l)" 0
log "podman sent: $(rt_cni_calls | awk '{print $1, ($4 == "-" ? "no-netns" : "netns")}' | sort | uniq -c | tr -s ' \n' ' ')"

rt_finish "$t0" "$t_up" "node+image+2 containers"

[ "$PW_FAILED" = 0 ]
