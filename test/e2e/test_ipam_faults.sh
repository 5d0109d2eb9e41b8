#!/usr/bin/env bash
# IPAM crash safety (issue 11 item 2): the CNI plugin is killed (SIGKILL,
# injected by strace) at every system call of an ADD, one run per call, and
# a GC with an empty cni.dev/valid-attachments follows each run. After every
# GC nothing may be left: no reservation (empty or whole), no temporary file,
# no veth, no endpoint map entry, no link pin. At the end every address of
# the pool is handed out again.
#
# The kill points come from a trace of one normal ADD: step i is the k-th
# call of syscall S, and `strace -e inject=S:signal=KILL:when=k` kills the
# plugin on entry to exactly that call (strace counts calls per syscall).
set -u
. "$(dirname "$0")/lib.sh"
pw_init
PLUGIN=$BUILD/podwire

command -v strace >/dev/null || { not_ok "strace present (make deps)"; exit 1; }
# tcx attachment (the default on this kernel): the link pin is among what a
# killed ADD can leave behind.
node_up n1 192.168.1.11 10.244.1.0/28 || { not_ok "agent starts"; exit 1; }
ok "agent starts (pod CIDR 10.244.1.0/28: 13 pod addresses)"
inst=${PW_NODE_INST[n1]}
node_ns=${PW_PREFIX}-n1
ipam=/run/podwire/$inst/ipam
pod_ns=${PW_PREFIX}-fp
ip netns add "$pod_ns"

conf() { # VERSION [EXTRA_JSON_MEMBERS]
	printf '{"cniVersion":"%s","name":"podwire","type":"podwire","instance":"%s","logFile":"%s","logLevel":"debug"%s}' \
		"$1" "$inst" "$PW_TMP/cni.log" "${2:+,$2}"
}
run_plugin() { # VERB CONTAINERID [strace options...]: the plugin in the node, as a runtime runs it
	local verb=$1 cid=$2
	shift 2
	conf 1.1.0 '"cni.dev/valid-attachments":[]' |
		in_ns "$node_ns" env -i PATH="$PATH" CNI_COMMAND="$verb" CNI_CONTAINERID="$cid" CNI_IFNAME=eth0 \
			CNI_NETNS="/run/netns/${POD_NS:-$pod_ns}" CNI_PATH="$BUILD" \
			CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=fault-$cid" "$@"
}
gc() { conf 1.1.0 '"cni.dev/valid-attachments":[]' | in_ns "$node_ns" env -i CNI_COMMAND=GC CNI_PATH="$BUILD" "$PLUGIN"; }

# What any attachment could leave: files in the IPAM dir other than the lock
# and the round-robin position, host veths, endpoint entries, link pins.
leftovers() {
	local f left=""
	for f in "$ipam"/* "$ipam"/.[!.]*; do
		[ -e "$f" ] || continue
		case ${f##*/} in lock|last) continue ;; esac
		left+=" ${f##*/}($(stat -c %s "$f")B)"
	done
	n=$(in_ns "$node_ns" ip -o link show | grep -c ': pw[0-9a-f]\{12\}@')
	[ "$n" = 0 ] || left+=" veths=$n"
	n=$(bpftool -j map dump pinned "/sys/fs/bpf/podwire/$inst/pw_endpoints" | jq length)
	[ "$n" = 0 ] || left+=" pw_endpoints=$n"
	n=$(bpftool -j map dump pinned "/sys/fs/bpf/podwire/$inst/pw_ep_ifindex" | jq length)
	[ "$n" = 0 ] || left+=" pw_ep_ifindex=$n"
	n=$(ls "/sys/fs/bpf/podwire/$inst/links" 2>/dev/null | grep -c '^pw')
	[ "$n" = 0 ] || left+=" pins=$n"
	echo "${left# }"
}

# ---- the trace of one normal ADD ----------------------------------------------------------
out=$(run_plugin ADD trace strace -qq -o "$PW_TMP/add.trace" "$PLUGIN")
check_eq "traced ADD succeeds" "$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)" 10.244.1.2
gc >/dev/null
check_eq "GC after the traced ADD leaves nothing" "$(leftovers)" ""
# "name(args) = ret" -> name; resumed/unfinished lines do not occur (one thread).
mapfile -t calls < <(grep -oE '^[a-z0-9_]+\(' "$PW_TMP/add.trace" | tr -d '(')
check "the ADD made system calls (${#calls[@]})" test "${#calls[@]}" -gt 50

# ---- kill at each step, then GC ------------------------------------------------------------
declare -A seen
killed=0 completed=0 first_bad="" bad=0
for ((i = 0; i < ${#calls[@]}; i++)); do
	s=${calls[$i]}
	seen[$s]=$(( ${seen[$s]:-0} + 1 ))
	case $s in execve|exit_group) continue ;; esac   # before the plugin runs / after it is done
	run_plugin ADD "k$i" strace -qq -o /dev/null -e trace="$s" -e inject="$s:signal=KILL:when=${seen[$s]}" \
		"$PLUGIN" >/dev/null 2>&1
	rc=$?
	if [ "$rc" = 137 ]; then killed=$((killed + 1)); else completed=$((completed + 1)); fi
	gc_out=$(gc); gc_rc=$?
	left=$(leftovers)
	if [ "$gc_rc" != 0 ] || [ -n "$left" ]; then
		bad=$((bad + 1))
		[ -n "$first_bad" ] || first_bad="kill at step $i ($s #${seen[$s]}): GC rc=$gc_rc $gc_out; left: $left"
		# Start the next step clean, so one leak is not counted again.
		rm -f "$ipam"/[0-9]* "$ipam"/.[!.]*
		gc >/dev/null
	fi
done
log "$killed runs killed, $completed ran to the end (the call did not recur)"
check "most runs were killed (the kill points match the trace)" test "$killed" -gt $(( ${#calls[@]} * 3 / 4 ))
if [ "$bad" = 0 ]; then
	ok "kill at each of ${#calls[@]} steps of ADD, then GC: nothing left every time"
else
	not_ok "kill at each step of ADD, then GC: $bad of ${#calls[@]} runs left something; first: $first_bad"
fi

# ---- every address comes back ------------------------------------------------------------
ips=()
for i in $(seq 13); do
	ip netns add "$pod_ns$i"
	out=$(POD_NS=$pod_ns$i run_plugin ADD "full$i" "$PLUGIN")
	a=$(jq -r '.ips[0].address // empty' <<<"$out" 2>/dev/null)
	[ -n "$a" ] && ips+=("$a")
done
check_eq "all 13 addresses of the /28 can be handed out again" "${#ips[@]}" 13
ip netns add "${pod_ns}14"
out=$(POD_NS=${pod_ns}14 run_plugin ADD full14 "$PLUGIN")
check_eq "the 14th ADD finds the pool exhausted (code 101)" "$(jq -r .code <<<"$out")" 101
gc >/dev/null
check_eq "GC releases them all" "$(leftovers)" ""

[ "$PW_FAILED" = 0 ] || { echo "# plugin log:"; tail -n 30 "$PW_TMP/cni.log" | sed 's/^/#   /'; }
exit 0
