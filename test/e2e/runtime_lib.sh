# Shared by test_runtime_podman.sh and test_runtime_nerdctl.sh: a real
# container runtime as the CNI client of one test node's podwire.
#
# The runtime runs inside the node's network namespace (so the containers'
# host veths land there and the node's agent serves them) and inside a
# private mount namespace held by one long-lived process, the "holder". Every
# runtime command enters both with `nsenter -t HOLDER -m -n`. In that mount
# namespace, and only there:
#   /usr/lib/cni   is a directory holding podwire and Debian's plugins:
#                  the runtimes' default plugin path, so a runtime process that
#                  lost its environment (podman's cleanup, run by conmon)
#                  still finds the plugin, as on a real node;
#   /var/lib       is a tmpfs, /var/lib/cni (libcni's cache) bound to
#                  $RT_DIR/cni-cache so the test can read what is cached;
#   /run           is a tmpfs but for /run/podwire (the agent's state, which
#                  the plugin reads): runc's state, podman's netns files,
#                  containerd's sockets stay in the test;
#   /var/tmp, /dev/shm  are tmpfs (image unpacking, podman's lock segment).
# Containers get cgroups under $RT_CGROUP in every hierarchy; rt_cleanup
# kills what is left in them and removes them. Nothing outside the test's
# namespaces, its tmp directory and that cgroup is touched.
#
# Needs lib.sh sourced first and a node up (node_up).

RT_HOLDER=
RT_CGROUP=/${PW_PREFIX}-rt
RT_DIR=$PW_TMP/rt
RT_IMAGE=localhost/pwbusybox:1

# rt_holder_up NODE: the holder, in NODE's netns; waits until its mounts are made.
rt_holder_up() {
	local node=$1 i
	mkdir -p "$RT_DIR/cni-bin" "$RT_DIR/cni-cache" "$RT_DIR/net.d"
	# Debian's plugins (nerdctl insists on finding bridge for its default
	# network) as hard links when the file system allows, podwire copied.
	cp -l /usr/lib/cni/* "$RT_DIR/cni-bin/" 2>/dev/null || cp /usr/lib/cni/* "$RT_DIR/cni-bin/"
	cp "$BUILD/podwire" "$RT_DIR/cni-bin/"
	# shellcheck disable=SC2016
	nsenter --net="/run/netns/${PW_PREFIX}-$node" unshare --mount --propagation private \
		sh -c 'set -e
			mkdir "$1/run-podwire"
			mount --bind /run/podwire "$1/run-podwire"
			mount -t tmpfs pwt-rt /run
			mkdir /run/podwire /run/netns
			mount --move "$1/run-podwire" /run/podwire
			mount -t tmpfs pwt-rt /var/lib && mkdir /var/lib/cni
			mount --bind "$1/cni-cache" /var/lib/cni
			mount --bind "$1/cni-bin" /usr/lib/cni
			mount -t tmpfs pwt-rt /var/tmp
			mount -t tmpfs pwt-rt /dev/shm
			exec sleep infinity' rt-holder "$RT_DIR" &
	RT_HOLDER=$!
	for i in $(seq 50); do
		[ "$(cat "/proc/$RT_HOLDER/comm" 2>/dev/null)" = sleep ] && return 0
		kill -0 "$RT_HOLDER" 2>/dev/null || break
		sleep 0.1
	done
	echo "# the runtime's mount namespace did not come up"
	return 1
}

rt_in() { nsenter -t "$RT_HOLDER" -m -n "$@"; }

# rt_conflist NODE: podwire's conflist for NODE's instance, as the runtime
# reads it; like examples/10-podwire.conflist it declares the ips and mac
# capabilities, so runtimes pass a requested address in runtimeConfig too.
rt_conflist() {
	local node=$1
	cat > "$RT_DIR/net.d/10-podwire.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "podwire",
 "plugins": [{"type": "podwire", "instance": "${PW_NODE_INST[$node]}",
              "logFile": "$RT_DIR/cni.log", "logLevel": "debug",
              "capabilities": {"ips": true, "mac": true}}]}
JSON
}

rt_image() { # OUT.tar: the busybox image (test/runtimes/busybox-image.sh)
	bash "$(dirname "${BASH_SOURCE[0]}")/../runtimes/busybox-image.sh" "$1"
}

# rt_seen_source (a filter): the server container listens on 8080 with
# busybox nc, which on connect runs netstat in the server; fed what the
# client read (the server's own socket table), prints the remote address of
# the server's socket on 8080: the source the server saw.
rt_seen_source() {
	awk '$4 ~ /:8080$/ && $6 == "ESTABLISHED" || $4 ~ /:8080$/ && $6 == "CLOSE_WAIT" {print $5; exit}' |
		sed 's/^::ffff://; s/:[0-9]*$//'
}

# The checks both runtimes' tests make the same way. CLI is the test's
# function running its runtime (pm, nerdctl): `CLI exec|inspect|logs ...`.

# rt_log_dead CLI NAME...: a server container that is not running says why.
rt_log_dead() {
	local cli=$1 c st
	shift
	for c in "$@"; do
		st=$("$cli" inspect -f '{{.State.Status}}' "$c" 2>/dev/null)
		[ "$st" = running ] || log "$c is ${st:-missing}: $("$cli" logs "$c" 2>&1 | tail -n 3 | tr '\n' ' ')"
	done
}

# rt_check_endpoints NODE IP...: NODE's endpoints map lists exactly these.
rt_check_endpoints() {
	local node=$1
	shift
	check_eq "endpoints map lists both containers" "$(endpoint_ips "$node" | tr '\n' ' ')" \
		"$(printf '%s\n' "$@" | sort | tr '\n' ' ')"
}

# rt_check_both_ways CLI A IP_A B IP_B: ping A -> B and B -> A, and TCP each
# way to the other's 8080, where the server's socket must see the client's
# container IP (rt_seen_source).
rt_check_both_ways() {
	local cli=$1 from to to_ip from_ip out seen dir
	set -- "$2" "$3" "$4" "$5"
	for dir in 1 2; do
		if [ "$dir" = 1 ]; then from=$1 from_ip=$2 to=$3 to_ip=$4
		else from=$3 from_ip=$4 to=$1 to_ip=$2; fi
		if out=$("$cli" exec "$from" ping -c 2 -W 2 "$to_ip" 2>&1); then ok "ping $from -> $to (exec in the container)"
		else not_ok "ping $from -> $to (exec in the container): $(tail -n 2 <<<"$out" | tr '\n' ' ')"; fi
		for _ in 1 2 3 4 5 6 7 8 9 10; do   # the server may still be starting
			seen=$("$cli" exec "$from" nc -w 3 "$to_ip" 8080 </dev/null 2>/dev/null | rt_seen_source)
			[ -n "$seen" ] && break
			sleep 0.2
		done
		check_eq "tcp $from -> $to: the server's socket sees $from's container IP" "$seen" "${from_ip:-(no container)}"
	done
}

# rt_finish T0 T_UP WHAT: the runtime stopped (the test's rt_cleanup), no
# cgroup left; logs how long WHAT took to come up and the whole test.
rt_finish() {
	local t1
	rt_cleanup
	check_eq "no cgroup of the test left" "$(rt_leftover_cgroups)" ""
	t1=$(date +%s.%N)
	log "timing: $3 up $(awk "BEGIN {printf \"%.1f\", $2 - $1}") s, whole test $(awk "BEGIN {printf \"%.1f\", $t1 - $1}") s"
}

# What stop and rm must leave behind: nothing of the container on the node.
rt_check_nothing_left() { # NODE LABEL
	local node=$1 label=$2 inst=${PW_NODE_INST[$1]}
	check_eq "$label: no endpoint left in the map" "$(endpoint_ips "$node" | wc -l)" 0
	check_eq "$label: no pod veth left on the node" \
		"$(in_ns "${PW_PREFIX}-$node" ip -o link show | awk -F': ' '{print $2}' | grep -c '^pw')" 0
	check_eq "$label: no IPAM reservation left" "$(ls "/run/podwire/$inst/ipam" | grep -c '^[0-9]')" 0
	check_eq "$label: no per-pod link pin left" \
		"$(ls "/sys/fs/bpf/podwire/$inst/links" 2>/dev/null | grep -vEc '^(uplink|uplink_egress|overlay|overlay_egress|sock_[a-z0-9]+)$')" 0
	check_eq "$label: libcni cache holds no attachment" \
		"$(find "$RT_DIR/cni-cache" -type f | sed "s|$RT_DIR/cni-cache/||" | tr '\n' ' ')" ""
}

# The plugin's log lines for one verb: "VERB CID/IFNAME netns NETNS instance I".
rt_cni_calls() {
	sed -n 's/^podwire: debug: \(\(ADD\|DEL\|CHECK\|GC\|STATUS\) .* netns [^ ]*\) instance .*/\1/p' "$RT_DIR/cni.log" 2>/dev/null
}

# rt_cgroup_cleanup: kills whatever still runs in the test's cgroups (a
# container the runtime did not stop) and removes them, in every hierarchy.
rt_cgroup_cleanup() {
	local h d pids
	for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		d=${h%/}$RT_CGROUP
		[ -d "$d" ] || continue
		pids=$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null)
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
	done
	for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		d=${h%/}$RT_CGROUP
		[ -d "$d" ] || continue
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
			[ -d "$d" ] || break
			sleep 0.2
		done
	done
	return 0
}

rt_holder_down() {
	[ -n "$RT_HOLDER" ] || return 0
	kill "$RT_HOLDER" 2>/dev/null
	wait "$RT_HOLDER" 2>/dev/null
	RT_HOLDER=
}

# rt_leftover_cgroups: the test's cgroups still present anywhere (should print nothing).
rt_leftover_cgroups() {
	local h
	for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		[ -d "${h%/}$RT_CGROUP" ] && echo "${h%/}$RT_CGROUP"
	done
	return 0
}
