#!/usr/bin/env bash
# The Kubernetes API client (userspace/lib/kube*.c) against a real etcd and
# kube-apiserver on 127.0.0.1, through build/test/k8s/kwatch (one informer
# printing its handler calls): kubeconfigs with inline client certificates,
# certificate files and bearer tokens; a list of 1200 ConfigMaps read in
# pages of 500, every object reported once; ADDED/MODIFIED/DELETED as
# upsert/remove; bookmarks and the re-watches after short watch timeouts
# report nothing; a refused token is said clearly and retried with backoff;
# with the API server down the informer backs off (no busy loop) and
# reports nothing removed, and resumes when it is back; changes made while
# it was away plus an etcd compaction make its re-watch get 410 Gone, and
# the relist then reports the current state (objects deleted meanwhile are
# left out). A stop in the middle of a watch is prompt.
set -u
PW_PREFIX=${PW_PREFIX:-pwt-kube-$$}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apiserver_lib.sh"
KWATCH_PID=
trap 'ka_stop_pid "$KWATCH_PID"; ka_cleanup; pw_cleanup' EXIT
trap 'exit 130' INT TERM

ka_need_binaries etcd etcdctl kube-apiserver kubectl
KWATCH=$BUILD/test/k8s/kwatch
[ -x "$KWATCH" ] || { not_ok "kwatch built: $KWATCH missing (make)"; exit 1; }

D=$KA_DIR
TOKEN=$KA_TOKEN
etcdctl() { ETCDCTL_API=3 "$PW_K8S_BIN/etcdctl" --endpoints "127.0.0.1:$ETCD_PORT" "$@"; }
# The PKI, and a CA that signed nothing of this API server.
pki() {
	ka_pki && cd "$D" &&
	openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt -days 1 -subj "/CN=pwt-other-ca"
}

pki >"$D/pki.log" 2>&1 || { not_ok "test PKI made with openssl: $(tail -3 "$D/pki.log")"; exit 1; }
ka_etcd_start || { not_ok "etcd starts: $(tail -5 "$D/etcd.log")"; exit 1; }
ok "etcd $("$PW_K8S_BIN/etcd" --version | head -1 | awk '{print $3}') on 127.0.0.1:$ETCD_PORT"
PORT=$(free_port)
t0=$(date +%s)
ka_apiserver_start "$PORT" || { not_ok "kube-apiserver starts: $(tail -5 "$D/apiserver.log")"; exit 1; }
ok "kube-apiserver on 127.0.0.1:$PORT ready in $(($(date +%s) - t0)) s"

CA_DATA=$(base64 -w0 < "$D/ca.crt")
ka_kubeconfig "$D/kc-inline" "$PORT" \
	"    client-certificate-data: $(base64 -w0 < "$D/certs/admin.crt")
    client-key-data: $(base64 -w0 < "$D/certs/admin.key")" "certificate-authority-data: $CA_DATA"
ka_kubeconfig "$D/kc-files" "$PORT" \
	"    client-certificate: certs/admin.crt
    client-key: $D/certs/admin.key" "certificate-authority: ca.crt"
echo "$TOKEN" > "$D/token"
ka_kubeconfig "$D/kc-token" "$PORT" "    tokenFile: token" "certificate-authority: ca.crt"
ka_kubeconfig "$D/kc-badtoken" "$PORT" "    token: not-$TOKEN" "certificate-authority-data: $CA_DATA"
ka_kubeconfig "$D/kc-insecure" "$PORT" "    token: $TOKEN" "insecure-skip-tls-verify: true"
ka_kubeconfig "$D/kc-otherca" "$PORT" "    token: $TOKEN" "certificate-authority: other-ca.crt"

kc() { "$PW_K8S_BIN/kubectl" --kubeconfig "$D/kc-inline" --server "https://127.0.0.1:$PORT" "$@"; }
kc create namespace pwt >/dev/null || { not_ok "namespace pwt created"; exit 1; }

# ---- 1200 ConfigMaps, listed in pages of 500 --------------------------------
N=1200
gen_list() { # FROM TO: a v1 List of ConfigMaps cm-FROM..cm-TO
	local i
	printf '{"apiVersion":"v1","kind":"List","items":['
	for i in $(seq -f '%04g' "$1" "$2"); do
		[ "$i" = "$(printf '%04d' "$1")" ] || printf ','
		printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-%s","namespace":"pwt"},"data":{"i":"%s"}}' "$i" "$i"
	done
	printf ']}'
}
t0=$(date +%s)
creators=()
for part in "1 400" "401 800" "801 1200"; do
	gen_list $part > "$D/list-${part%% *}.json"
	kc create -f "$D/list-${part%% *}.json" >/dev/null 2>"$D/create-${part%% *}.err" &
	creators+=($!)
done
wait "${creators[@]}"
have=$(kc get configmaps -n pwt -o name | grep -c '^configmap/cm-')
check_eq "$N ConfigMaps created through kubectl ($(($(date +%s) - t0)) s)" "$have" "$N"

W=$D/kwatch.out WE=$D/kwatch.err
wait_for() { # SECONDS PATTERN FILE [FROM]: waits until a line of FILE (from line FROM) matches
	local i
	for i in $(seq $(($1 * 10))); do
		tail -n "+${4:-1}" "$3" 2>/dev/null | grep -qE "$2" && return 0
		sleep 0.1
	done
	return 1
}
KWATCH_WATCH_TIMEOUT=4 PW_LOG_LEVEL=debug "$KWATCH" "$D/kc-inline" /api/v1/namespaces/pwt/configmaps \
	>"$W" 2>"$WE" &
KWATCH_PID=$!
wait_for 30 '^synced$' "$W" || { not_ok "kwatch synced: $(tail -3 "$WE")"; exit 1; }
ok "informer synced (inline client certificate and CA data)"
first=$(sed -n '/^relist_begin$/,/^relist_end$/p' "$W")
check_eq "first relist: relist_begin, $N upserts, relist_end" \
	"$(grep -c '^upsert ' <<<"$first") $(head -1 <<<"$first") $(tail -1 <<<"$first")" "$N relist_begin relist_end"
check_eq "every ConfigMap reported exactly once" \
	"$(grep '^upsert ' <<<"$first" | awk '{print $2}' | sort -u | grep -c '^pwt/cm-')" "$N"
check "list read in 3 pages of at most 500" grep -q "listed $N objects in 3 pages" "$WE"
re=$(grep -n '^relist_end$' "$W" | head -1 | cut -d: -f1)
sy=$(grep -n '^synced$' "$W" | head -1 | cut -d: -f1)
[ "$re" -lt "$sy" ] && ok "synced after the first relist_end" || not_ok "synced after the first relist_end: lines $re, $sy"

# ---- watch events ------------------------------------------------------------
kc create configmap ev1 -n pwt --from-literal=a=1 >/dev/null
wait_for 10 '^upsert pwt/ev1 ' "$W" && ok "ADDED reported as upsert" || not_ok "ADDED reported as upsert"
kc patch configmap ev1 -n pwt -p '{"data":{"a":"2"}}' >/dev/null
rv=$(kc get configmap ev1 -n pwt -o jsonpath='{.metadata.resourceVersion}')
wait_for 10 "^upsert pwt/ev1 rv=$rv\$" "$W" && ok "MODIFIED reported as upsert with the new resourceVersion" ||
	not_ok "MODIFIED reported as upsert: no 'upsert pwt/ev1 rv=$rv'"
kc delete configmap ev1 -n pwt >/dev/null
wait_for 10 '^remove pwt/ev1 ' "$W" && ok "DELETED reported as remove" || not_ok "DELETED reported as remove"

# ---- bookmarks and re-watches report nothing ---------------------------------
lines=$(wc -l < "$W")
wait_for 15 'bookmark at resourceVersion' "$WE" && ok "bookmarks arrive (allowWatchBookmarks)" ||
	not_ok "bookmarks arrive: none in 15 s"
watches=$(grep -c 'watching from resourceVersion' "$WE")
sleep 10
rewatches=$(($(grep -c 'watching from resourceVersion' "$WE") - watches))
check_eq "bookmarks and $rewatches re-watches in 10 s (4 s watch timeouts) report nothing" "$(wc -l < "$W")" "$lines"
[ "$rewatches" -ge 2 ] && ok "watch re-started when the server ends it ($rewatches times in 10 s)" ||
	not_ok "re-watches: $rewatches in 10 s with 4 s watch timeouts"
# A re-watch starts from the newest bookmark seen before it (a later one
# may arrive while the test samples, so any bookmark's version will do).
bms=$(sed -n 's/.*bookmark at resourceVersion \([0-9]*\)$/\1/p' "$WE" | sort -u)
bm_rewatch=$(for v in $bms; do grep -q "watching from resourceVersion $v for" "$WE" && echo "$v"; done | tail -1)
[ -n "$bm_rewatch" ] && ok "re-watch from a bookmark's resourceVersion ($bm_rewatch)" ||
	not_ok "no re-watch from any bookmark's resourceVersion ($(echo $bms))"
check_eq "no relist while the watches stay valid" "$(grep -c '^relist_begin$' "$W")" 1

# ---- other credentials ------------------------------------------------------
for k in kc-files kc-token kc-insecure; do
	out=$("$KWATCH" "$D/$k" /api/v1/namespaces/pwt/configmaps 3 2>"$D/$k.err")
	check_eq "$k: list through $(sed -n 's/^    \(client-certificate\|tokenFile\|token\|insecure-skip-tls-verify\).*/\1/p' "$D/$k" | head -1)" \
		"$(grep -c '^upsert ' <<<"$out") $(grep -c '^synced$' <<<"$out")" "$N 1"
done
out=$("$KWATCH" "$D/kc-badtoken" /api/v1/namespaces/pwt/configmaps 4 2>"$D/bad.err")
check "refused token: 401 said clearly" grep -q 'HTTP 401.*credentials were refused' "$D/bad.err"
attempts=$(grep -c 'retrying in' "$D/bad.err")
[ "$attempts" -ge 2 ] && [ "$attempts" -le 4 ] && ok "refused token: $attempts attempts in 4 s (backoff)" ||
	not_ok "refused token: $attempts attempts in 4 s, want 2-4"
check_eq "refused token: nothing reported, never synced" "$(grep -cv '^stopped in' <<<"$out")" 0

out=$("$KWATCH" "$D/kc-otherca" /api/v1/namespaces/pwt/configmaps 2 2>"$D/otherca.err")
check "server certificate from another CA refused (TLS verification on)" grep -q 'SSL certificate problem' "$D/otherca.err"
check_eq "server certificate from another CA: nothing reported" "$(grep -cv '^stopped in' <<<"$out")" 0

# ---- one-shot GET ------------------------------------------------------------
out=$("$KWATCH" -g "$D/kc-inline" /version 2>&1)
check_eq "GET /version: 200 and the server's version" \
	"$(head -1 <<<"$out") $(tail -1 <<<"$out" | jq -r .gitVersion)" "status 200 $("$PW_K8S_BIN/kube-apiserver" --version | awk '{print $2}')"
out=$("$KWATCH" -g "$D/kc-token" /api/v1/namespaces/pwt/configmaps/cm-0005 2>&1)
check_eq "GET one ConfigMap with a token" "$(head -1 <<<"$out") $(sed -n 2p <<<"$out" | jq -r .data.i)" "status 200 0005"
out=$("$KWATCH" -g "$D/kc-inline" /api/v1/namespaces/pwt/configmaps/nope 2>"$D/get404.err")
check_eq "GET of a missing object: 404 with its Status" "$(head -1 <<<"$out") $(sed -n 2p <<<"$out" | jq -r .reason)" "status 404 NotFound"
check "GET of a missing object: message says so" grep -q 'HTTP 404: configmaps "nope" not found' "$D/get404.err"

# ---- API server down: back off, report nothing, resume -----------------------
lines=$(wc -l < "$W")
errs=$(grep -c 'retrying in' "$WE")
ka_apiserver_stop
sleep 12
attempts=$(($(grep -c 'retrying in' "$WE") - errs))
[ "$attempts" -ge 2 ] && [ "$attempts" -le 6 ] && ok "API server down 12 s: $attempts attempts (backoff, no busy loop)" ||
	not_ok "API server down 12 s: $attempts attempts, want 2-6: $(grep 'retrying in' "$WE" | tail -3)"
check_eq "API server down: nothing reported (no remove)" "$(wc -l < "$W")" "$lines"
grep 'retrying in' "$WE" | tail -3 | sed 's/^/# /'
ka_apiserver_start "$PORT" || { not_ok "kube-apiserver restarts: $(tail -5 "$D/apiserver.log")"; exit 1; }
kc create configmap back1 -n pwt --from-literal=a=1 >/dev/null
t0=$(date +%s)
wait_for 45 '^upsert pwt/back1 ' "$W" && ok "resumed $(($(date +%s) - t0)) s after the API server came back" ||
	not_ok "resumed after the API server came back: no upsert of back1 in 45 s"
check_eq "API server restart: nothing removed" "$(sed -n "$((lines + 1)),\$p" "$W" | grep -c '^remove ')" 0

# ---- 410 Gone: changes while away, etcd compacted, relist -------------------
lines=$(wc -l < "$W")
ka_apiserver_stop
PORT2=$(free_port)
ka_apiserver_start "$PORT2" || { not_ok "second kube-apiserver starts"; exit 1; }
kc2() { "$PW_K8S_BIN/kubectl" --kubeconfig "$D/kc-inline" --server "https://127.0.0.1:$PORT2" "$@"; }
kc2 delete configmap -n pwt cm-0001 cm-0002 cm-0003 >/dev/null
kc2 create configmap -n pwt new1 --from-literal=a=1 >/dev/null
kc2 patch configmap cm-0100 -n pwt -p '{"data":{"i":"changed"}}' >/dev/null
rv100=$(kc2 get configmap cm-0100 -n pwt -o jsonpath='{.metadata.resourceVersion}')
ka_apiserver_stop
rev=$(etcdctl endpoint status -w json | jq -r '.[0].Status.header.revision')
etcdctl compact --physical "$rev" >/dev/null && ok "etcd compacted at revision $rev while the informer was away" ||
	not_ok "etcd compacted at revision $rev"
check_eq "changes on another API server port not seen by the informer" "$(wc -l < "$W")" "$lines"
ka_apiserver_start "$PORT" || { not_ok "kube-apiserver restarts after compaction"; exit 1; }
t0=$(date +%s)
if wait_for 60 '^relist_end$' "$W" $((lines + 1)); then
	ok "relisted $(($(date +%s) - t0)) s after the API server came back"
else
	not_ok "relist after 410: no relist_end in 60 s: $(grep -E 'gone|retrying' "$WE" | tail -3)"
fi
check "410 Gone seen on the re-watch" grep -qE 'is gone \(.*(410|too old)' "$WE"
grep -E 'is gone' "$WE" | tail -1 | sed 's/^/# /'
last=$(sed -n "$((lines + 1)),\$p" "$W" | sed -n '/^relist_begin$/,/^relist_end$/p')
check_eq "relist reports the current state: $N - 3 deleted + back1 + new1" \
	"$(grep -c '^upsert ' <<<"$last")" "$((N - 3 + 2))"
check_eq "objects deleted meanwhile left out of the relist (the consumer drops them)" \
	"$(grep -cE '^upsert pwt/cm-000[123] ' <<<"$last")" 0
check "object created meanwhile in the relist" grep -q '^upsert pwt/new1 ' <<<"$last"
check "object modified meanwhile in the relist at its new resourceVersion" grep -q "^upsert pwt/cm-0100 rv=$rv100\$" <<<"$last"
check_eq "no remove reported across the outage" "$(sed -n "$((lines + 1)),\$p" "$W" | grep -c '^remove ')" 0
kc create configmap after410 -n pwt --from-literal=a=1 >/dev/null
wait_for 15 '^upsert pwt/after410 ' "$W" && ok "watch continues after the relist" ||
	not_ok "watch continues after the relist"

# ---- prompt stop in the middle of a watch ---------------------------------------
"$KWATCH" "$D/kc-inline" /api/v1/namespaces/pwt/configmaps 3 >"$D/stop.out" 2>&1
ms=$(sed -n 's/^stopped in \([0-9]*\) ms$/\1/p' "$D/stop.out")
[ -n "$ms" ] && [ "$ms" -lt 1000 ] && ok "stop during a 5-minute watch takes $ms ms" ||
	not_ok "stop during a watch: '$ms' ms, want < 1000"
kill -TERM "$KWATCH_PID"
wait "$KWATCH_PID"
KWATCH_PID=
check "kwatch ends on SIGTERM" grep -q '^stopped in' "$W"
exit 0
