#!/usr/bin/env bash
# Kubernetes' own conformance tests for networking on the podwire cluster:
# the `[sig-network] ... [Conformance]` specs of e2e.test v1.37.2 (built by
# `make k8s-deps` from the pinned module, with the images it names built
# locally under those names), run by ginkgo with 3 processes against a
# 3-node cluster whose CNI and kube-proxy replacement is podwire, and CoreDNS
# as its DNS. One "ok"/"not ok" line per spec, then the count.
#
# Skipped, each for one reason (the README lists them too):
#   [Serial], [Disruptive]  they reconfigure or break the whole cluster (run alone, not in CI)
#   [Slow], [Flaky]         upstream marks them so; not part of the conformance gate here
#   [Feature:...]           optional features outside the conformance profile
#   LoadBalancer, [Provider] need a cloud provider: there is none on this machine
#   IPv6, dual-stack        podwire is IPv4-only
#   SCTP                    the datapath parses TCP, UDP and ICMP only
#
#   ROUTING=native|vxlan (default native); FOCUS / SKIP override the regexps;
#   PROCS (default 3) ginkgo processes.
# run-timeout: 1500
set -u
cd "$(dirname "$0")/../.." || exit 1
export CLUSTER=${CLUSTER:-pwkc}
ROUTING=${ROUTING:-native}
PROCS=${PROCS:-3}
FOCUS=${FOCUS:-'\[sig-network\].*\[Conformance\]'}
SKIP=${SKIP:-'\[Serial\]|\[Disruptive\]|\[Flaky\]|\[Slow\]|\[Feature:|LoadBalancer|\[Provider|IPv6|[Dd]ual-[Ss]tack|SCTP'}
. test/e2e/k8s_lib.sh
k8s_init

if ! k8s_up --routing "$ROUTING" --cni podwire; then
	not_ok "cluster up ($ROUTING) for the conformance run"
	exit 1
fi
ok "3-node podwire cluster ($ROUTING routing) with CoreDNS up, no kube-proxy"

report=$PW_TMP/conformance
mkdir -p "$report"
t0=$(date +%s)
# ginkgo's own output goes to a log (hundreds of KiB); the JUnit report is
# what this test reads. e2e.test writes into its working directory: a scratch one.
( cd "$report" && ginkgo --procs="$PROCS" --timeout=40m --no-color \
	--focus="$FOCUS" --skip="$SKIP" --junit-report="$report/junit.xml" \
	"$PW_K8S_BIN/e2e.test" -- \
	--kubeconfig="$(pwk_kubeconfig)" --provider=skeleton --num-nodes="$PWK_NODES" \
	--report-dir="$report" --e2e-output-dir="$report" --dump-logs-on-failure=false \
	--allowed-not-ready-nodes=0 ) >"$report/ginkgo.log" 2>&1
rc=$?
secs=$(( $(date +%s) - t0 ))

# One line per spec from the JUnit report (a spec ginkgo skipped is not listed).
results=$(python3 - "$report/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception as e:
    print("ERROR junit report unreadable: %s" % e); sys.exit(0)
for tc in root.iter("testcase"):
    name = tc.get("name", "")
    if "[sig-network]" not in name:
        continue
    name = name.replace("[It] ", "").split(" [sig-network,")[0]
    if tc.find("skipped") is not None:
        continue
    bad = tc.find("failure") if tc.find("failure") is not None else tc.find("error")
    if bad is None:
        print("PASS %s" % name)
    else:
        msg = (bad.get("message") or bad.text or "").strip().splitlines()
        print("FAIL %s: %s" % (name, msg[0][:200] if msg else "failed"))
PY
)
npass=$(grep -c '^PASS ' <<<"$results")
nfail=$(grep -c '^FAIL \|^ERROR ' <<<"$results")
while IFS= read -r line; do
	case $line in
	PASS\ *) ok "conformance: ${line#PASS }" ;;
	FAIL\ *|ERROR\ *) not_ok "conformance: ${line#* }" ;;
	esac
done <<<"$results"
log "conformance: $npass passed, $nfail failed of $((npass + nfail)) specs in ${secs}s (ginkgo exit $rc, $PROCS procs, $ROUTING routing)"
if [ "$nfail" != 0 ] || [ "$rc" != 0 ]; then
	log "ginkgo's summary:"; grep -A30 'Summarizing\|Ran [0-9]* of' "$report/ginkgo.log" | head -60 | sed 's/^/#   /'
	mkdir -p "${PW_KEEP_DIR:-/tmp}/podwire-conformance-$CLUSTER" && cp "$report/ginkgo.log" "$report/junit.xml" "${PW_KEEP_DIR:-/tmp}/podwire-conformance-$CLUSTER/" 2>/dev/null &&
		log "ginkgo log kept in ${PW_KEEP_DIR:-/tmp}/podwire-conformance-$CLUSTER/"
fi
# The suite's count is a result of its own: 47 specs expected (kubernetes.md).
check_eq "conformance ran every expected spec" "$((npass + nfail))" "${EXPECT_SPECS:-47}"
