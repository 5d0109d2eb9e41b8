#!/usr/bin/env bash
# The test cluster's images (scripts/k8s-deps.sh) import into containerd and
# do what the cluster and the e2e specs use them for. A containerd of the
# test's own (root, state and socket under the test's temp dir, CRI off) is
# started and stopped here; containers share a network namespace the test
# creates and deletes. Needs `make k8s-deps` first.
cd "$(dirname "$0")/../.."
. test/e2e/lib.sh
. scripts/k8s-env.sh

CTRD=$PW_TMP/containerd
CTR=(ctr -a "$CTRD/containerd.sock" -n k8s.io)
NETNS=${PW_PREFIX}-img
OUT=$PW_TMP/out
CTRD_PID=

ctrd_start() {
	mkdir -p "$CTRD"
	cat >"$CTRD/config.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD/containerd.sock"
[ttrpc]
  address = "$CTRD/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
	containerd -c "$CTRD/config.toml" >"$CTRD/log" 2>&1 &
	CTRD_PID=$!
	local i
	for i in $(seq 50); do
		"${CTR[@]}" version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "# containerd did not start:"; sed 's/^/#   /' "$CTRD/log"
	return 1
}

# Containers, then containerd, then whatever it left mounted, then the
# namespaces and temp dir (pw_cleanup).
images_cleanup() {
	local c m
	if [ -n "$CTRD_PID" ]; then
		for c in $("${CTR[@]}" containers ls -q 2>/dev/null); do
			"${CTR[@]}" tasks kill -s SIGKILL "$c" >/dev/null 2>&1
			"${CTR[@]}" tasks rm -f "$c" >/dev/null 2>&1
			"${CTR[@]}" containers rm "$c" >/dev/null 2>&1
		done
		kill "$CTRD_PID" 2>/dev/null
		wait "$CTRD_PID" 2>/dev/null
	fi
	for m in $(awk -v d="$CTRD" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	pw_cleanup
}

run_detached() { # ID IMAGE ARGS...: in the test's netns, /out mounted
	local id=$1 img=$2; shift 2
	"${CTR[@]}" run -d --with-ns "network:/run/netns/$NETNS" \
		--mount "type=bind,src=$OUT,dst=/out,options=rbind:rw" "$@" "$img" "$id" "${RUN_ARGS[@]}" >/dev/null
}

run_once() { # IMAGE ID ARGS...: runs to completion (output goes to /out files:
	# ctr can lose the output of very short commands)
	local img=$1 id=$2; shift 2
	timeout 60 "${CTR[@]}" run --rm --with-ns "network:/run/netns/$NETNS" \
		--mount "type=bind,src=$OUT,dst=/out,options=rbind:rw" "$img" "$id" "$@" </dev/null >/dev/null 2>&1
}

exec_in() { # ID ARGS...
	local id=$1; shift
	timeout 60 "${CTR[@]}" tasks exec --exec-id "e$RANDOM" "$id" "$@" </dev/null >/dev/null 2>&1
}

task_pid() { "${CTR[@]}" tasks ls 2>/dev/null | awk -v id="$1" '$1 == id {print $2}'; }

wait_file() { # FILE: waits up to 10 s for it to be non-empty
	local i
	for i in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

wait_http() { # URL: from inside the agnhost container, up to 10 s
	local i
	for i in $(seq 20); do
		exec_in pw-agnhost sh -c "curl -sf -o /dev/null '$1'" && return 0
		sleep 0.5
	done
	return 1
}

test_import() {
	local tar name
	for name in "${PW_K8S_IMAGE_TARS[@]}"; do
		tar=$PW_K8S_IMAGES/$name.tar
		if "${CTR[@]}" images import "$tar" >/dev/null 2>&1; then ok "import $name.tar"
		else not_ok "import $name.tar: ctr images import failed"; fi
	done
	local want have
	have=$("${CTR[@]}" images ls -q)
	for want in "$PW_K8S_PAUSE_IMAGE" "$PW_K8S_AGNHOST_IMAGE" "$PW_K8S_GLIBC_DNS_IMAGE" "$PW_K8S_BUSYBOX_IMAGE" \
		"$PW_K8S_NGINX_IMAGE" "$PW_K8S_COREDNS_IMAGE" "$PW_K8S_TEST_IMAGE"; do
		if grep -qxF "$want" <<<"$have"; then ok "image name $want"; else not_ok "image name $want: not among: $have"; fi
	done
}

# pause: PID 1 of its container, reaps an orphan handed to it, exits 0 on SIGTERM.
test_pause() {
	"${CTR[@]}" run --rm "$PW_K8S_PAUSE_IMAGE" pw-pause </dev/null >/dev/null 2>&1 &
	local runner=$! pid i orphan state rc
	for i in $(seq 50); do pid=$(task_pid pw-pause); [ -n "$pid" ] && break; sleep 0.1; done
	[ -n "$pid" ] || { not_ok "pause runs"; return; }
	ok "pause runs"
	# A shell in pause's PID namespace leaves a short sleep behind: it is
	# re-parented to pause, which must collect it when it exits.
	nsenter -t "$pid" -p -- /bin/sh -c 'sleep 1 & echo $!' >"$PW_TMP/orphan"
	sleep 0.3
	orphan=$(ps -o pid= --ppid "$pid" | tr -d ' ' | head -n1)
	if [ -n "$orphan" ]; then ok "pause adopts an orphan"; else not_ok "pause adopts an orphan: pause has no child"; fi
	sleep 1.2
	state=$(ps -o stat= --ppid "$pid" | tr -d ' ')
	check_eq "pause reaps the orphan (no zombie left)" "$state" ""
	"${CTR[@]}" tasks kill -s SIGTERM pw-pause >/dev/null 2>&1
	rc=timeout
	for i in $(seq 50); do
		kill -0 "$runner" 2>/dev/null || { wait "$runner"; rc=$?; break; }
		sleep 0.1
	done
	check_eq "pause exits 0 on SIGTERM" "$rc" 0
}

test_busybox() {
	run_once "$PW_K8S_BUSYBOX_IMAGE" pw-busybox sh -c 'echo podwire-$((6 * 7)) > /out/busybox'
	check_eq "busybox image runs its sh" "$(cat "$OUT/busybox" 2>/dev/null)" podwire-42
}

# agnhost as the e2e specs use it: netexec serving HTTP and UDP, and the
# tools they run inside it (curl, GNU wget -T, OpenBSD nc -u, dash as sh).
test_agnhost() {
	RUN_ARGS=(netexec --http-port=8080 --udp-port=8081)
	run_detached pw-agnhost "$PW_K8S_AGNHOST_IMAGE" || { not_ok "agnhost netexec starts"; return; }
	if wait_http http://127.0.0.1:8080/healthz; then ok "agnhost netexec serves HTTP"
	else not_ok "agnhost netexec serves HTTP: no answer on 8080"; return; fi
	exec_in pw-agnhost sh -c 'curl -s http://127.0.0.1:8080/clientip > /out/clientip'
	if grep -qE '^127\.0\.0\.1:[0-9]+$' "$OUT/clientip"; then ok "agnhost /clientip shows the caller's ip:port"
	else not_ok "agnhost /clientip shows the caller's ip:port: got '$(cat "$OUT/clientip")'"; fi
	exec_in pw-agnhost sh -c 'curl -s http://127.0.0.1:8080/hostname > /out/hostname'
	exec_in pw-agnhost sh -c 'wget -q -O - -T 1 http://127.0.0.1:8080/hostname > /out/wget'
	check_eq "agnhost image: wget -q -O - -T 1 works" "$(cat "$OUT/wget")" "$(cat "$OUT/hostname")"
	exec_in pw-agnhost sh -c 'echo hostName | nc -v -u -w 2 127.0.0.1 8081 > /out/nc 2>/out/nc.err'
	check_eq "agnhost image: nc -v -u reaches netexec's UDP port" "$(cat "$OUT/nc")" "$(cat "$OUT/hostname")"
	# Debian's busybox shell would run its own nc whatever PATH says.
	exec_in pw-agnhost sh -c 'nc -h > /out/nch 2>&1'
	if grep -q 'OpenBSD netcat' "$OUT/nch"; then ok "agnhost image: sh runs OpenBSD nc from PATH"
	else not_ok "agnhost image: sh runs OpenBSD nc from PATH: got '$(head -n1 "$OUT/nch")'"; fi
}

# nginx serves its page on port 80 (the endpoints specs run it as a backend).
test_nginx() {
	RUN_ARGS=()
	run_detached pw-nginx "$PW_K8S_NGINX_IMAGE" || { not_ok "nginx starts"; return; }
	if wait_http http://127.0.0.1:80/; then
		exec_in pw-agnhost sh -c 'curl -s http://127.0.0.1:80/ > /out/nginx'
		if grep -q 'Welcome to nginx' "$OUT/nginx"; then ok "nginx serves its page on port 80"
		else not_ok "nginx serves its page on port 80: got '$(head -c 200 "$OUT/nginx")'"; fi
	else
		not_ok "nginx serves its page on port 80: no answer"
	fi
}

# CoreDNS answers from a Corefile; glibc-dns-testing's dig and getent (and
# agnhost's dig) ask it, as the DNS specs' probe loops do.
test_dns() {
	mkdir -p "$PW_TMP/coredns"
	printf '.:1053 {\n\thosts {\n\t\t10.1.2.3 probe.podwire.test\n\t}\n}\n' >"$PW_TMP/coredns/Corefile"
	RUN_ARGS=(-conf /etc/coredns/Corefile)
	run_detached pw-coredns "$PW_K8S_COREDNS_IMAGE" \
		--mount "type=bind,src=$PW_TMP/coredns,dst=/etc/coredns,options=rbind:ro" || { not_ok "coredns starts"; return; }
	local i
	for i in $(seq 20); do
		exec_in pw-agnhost sh -c 'dig +short +time=1 +tries=1 @127.0.0.1 -p 1053 probe.podwire.test > /out/dig-agnhost'
		[ -s "$OUT/dig-agnhost" ] && break
		sleep 0.5
	done
	check_eq "coredns answers; agnhost's dig asks it" "$(cat "$OUT/dig-agnhost")" 10.1.2.3
	run_once "$PW_K8S_GLIBC_DNS_IMAGE" pw-glibc sh -c \
		'dig +short +tcp @127.0.0.1 -p 1053 probe.podwire.test > /out/dig-glibc; getent hosts localhost > /out/getent; seq 1 3 | tr -d "\n" > /out/seq'
	check_eq "glibc-dns-testing: dig over TCP" "$(cat "$OUT/dig-glibc" 2>/dev/null)" 10.1.2.3
	check_eq "glibc-dns-testing: getent hosts" "$(awk '{print $1}' "$OUT/getent" 2>/dev/null)" 127.0.0.1
	check_eq "glibc-dns-testing: seq" "$(cat "$OUT/seq" 2>/dev/null)" 123
}

pw_init
trap images_cleanup EXIT
for name in "${PW_K8S_IMAGE_TARS[@]}"; do
	[ -f "$PW_K8S_IMAGES/$name.tar" ] || { not_ok "image tars: $PW_K8S_IMAGES/$name.tar missing (make k8s-deps)"; exit 1; }
done
mkdir -p "$OUT"
ip netns add "$NETNS"
in_ns "$NETNS" ip link set lo up
ctrd_start || { not_ok "throwaway containerd starts"; exit 1; }
test_import
test_pause
test_busybox
test_agnhost
test_nginx
test_dns
[ "$PW_FAILED" = 0 ]
