#!/usr/bin/env bash
# Runs inside the vmtest guest (from guest.sh): one node with one pod, built
# with the e2e helpers, to record what the suites do not print: the attach
# mode the agent chose (node.json) and the verifier's instruction count of
# every program it loaded (bpf_prog_info.verified_insns, via progstat).
# usage: BUILD=... probe.sh OUTDIR   writes OUTDIR/attach, pod_attach, pod_device, progs.tsv, net.txt
# (the agent runs with PW_AGENT_ARGS from guest.sh: --pod-device auto)
set -u
out=$1
PW_PREFIX=pwvm-$$
. "$(dirname "$0")/../test/e2e/lib.sh"
pw_init

node_up n1 192.168.1.11 10.244.1.0/27 || { echo "probe: agent did not start"; exit 1; }
pod_add n1 a || { echo "probe: cnitool add failed"; exit 1; }
inst=${PW_NODE_INST[n1]}

# "attach" is the uplink's mode (probed: tcx where the kernel has it);
# "podAttach" the pod veths' (tc unless the agent is told --pod-attach tcx).
jq -r '.attach // "unknown"' "/run/podwire/$inst/node.json" > "$out/attach" || exit 1
jq -r '.podAttach // "unknown"' "/run/podwire/$inst/node.json" > "$out/pod_attach" || exit 1
# "podDevice": what --pod-device auto chose (netkit where the kernel has it).
jq -r '.podDevice // "veth"' "/run/podwire/$inst/node.json" > "$out/pod_device" || exit 1
# Every program in the guest is ours (nothing else loads BPF there); the pod
# object is shared by all pods, so a name appears once per object. bpftool
# does not print verified_insns: progstat (vmtest/tools/progstat.c) does.
"$BUILD/vmtest/progstat" > "$out/progs.raw" && sort -u "$out/progs.raw" > "$out/progs.tsv" || exit 1
rm -f "$out/progs.raw"
{
	echo "# bpftool net show, node namespace"
	in_ns "${PW_PREFIX}-n1" bpftool net show
	echo "# tc filter show dev eth0 ingress, node namespace"
	in_ns "${PW_PREFIX}-n1" tc filter show dev eth0 ingress
} > "$out/net.txt" 2>&1
echo "probe: attach=$(cat "$out/attach") podAttach=$(cat "$out/pod_attach") podDevice=$(cat "$out/pod_device"), $(wc -l < "$out/progs.tsv") programs"
