# shellcheck shell=bash
# Shared by test_kube_client.sh and test_k8s_source.sh: a real etcd and
# kube-apiserver on 127.0.0.1 (no kubelet, no controllers), with a test PKI
# made by openssl, everything in $KA_DIR (default $PW_TMP).
#
#   ka_need_binaries BIN...  fails the test (not_ok, exit 1) when one is missing
#   ka_pki                   CA (ca.crt), the API server's serving certificate for
#                            127.0.0.1/localhost, an admin client certificate
#                            (certs/admin.crt, system:masters), the service-account
#                            key pair
#   ka_etcd_start            ETCD_PORT, ETCD_PID; waits until etcd is healthy
#   ka_apiserver_start PORT  APISERVER_PID; waits until /readyz answers
#   ka_apiserver_stop        SIGTERM, SIGKILL when still there after 5 s
#   ka_apiserver_kill        SIGKILL (a graceful stop drains watches for a
#                            minute, and an API server that vanishes is the
#                            harder case for a client anyway)
#   ka_cleanup               the API server before etcd (without etcd its
#                            graceful shutdown takes minutes)
#   ka_kubeconfig FILE PORT USER-FIELDS CLUSTER-CA-FIELD
#   free_port                a TCP port nobody listens on, never handed out twice
#
# KA_TOKEN is a bearer token of system:masters (tokens.csv).
# Needs lib.sh sourced first.

if [ -f "$(dirname "${BASH_SOURCE[0]}")/../../scripts/k8s-env.sh" ]; then
	. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/k8s-env.sh"
else
	PW_K8S_BIN=${PW_K8S_BIN:-/var/cache/podwire/k8s-v1.37.2/bin}
fi
KA_DIR=${KA_DIR:-$PW_TMP}
KA_TOKEN=pwt-token-$RANDOM$RANDOM
ETCD_PID= APISERVER_PID= ETCD_PORT=

ka_need_binaries() {
	local b
	for b in "$@"; do
		if ! [ -x "$PW_K8S_BIN/$b" ]; then
			not_ok "Kubernetes binaries: $PW_K8S_BIN/$b is missing: run \`make k8s-deps\` first"
			exit 1
		fi
	done
}

KA_USED_PORTS=" "
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		case $KA_USED_PORTS in *" $p "*) continue ;; esac
		ss -Htln "sport = :$p" | grep -q . && continue
		KA_USED_PORTS+="$p "
		echo "$p"
		return
	done
}

ka_pki() {
	(
		cd "$KA_DIR" || exit 1
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj "/CN=pwt-kube-ca" &&
		openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" &&
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > apiserver.ext &&
		openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
			-extfile apiserver.ext -out apiserver.crt &&
		mkdir -p certs &&
		openssl req -newkey rsa:2048 -nodes -keyout certs/admin.key -out admin.csr \
			-subj "/O=system:masters/CN=pwt-admin" &&
		printf 'extendedKeyUsage=clientAuth\n' > client.ext &&
		openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
			-extfile client.ext -out certs/admin.crt &&
		openssl genrsa -out sa.key 2048 && openssl rsa -in sa.key -pubout -out sa.pub
	)
}

ka_etcd_start() {
	local peer i
	ETCD_PORT=$(free_port) peer=$(free_port)
	"$PW_K8S_BIN/etcd" --name pwt --data-dir "$KA_DIR/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
		--initial-cluster "pwt=http://127.0.0.1:$peer" >"$KA_DIR/etcd.log" 2>&1 &
	ETCD_PID=$!
	for i in $(seq 100); do
		curl -sf "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1 && return 0
		kill -0 "$ETCD_PID" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

ka_apiserver_start() { # PORT
	local port=$1 i
	echo "$KA_TOKEN,pwt-token-user,1001,system:masters" > "$KA_DIR/tokens.csv"
	"$PW_K8S_BIN/kube-apiserver" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
		--secure-port="$port" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
		--tls-cert-file="$KA_DIR/apiserver.crt" --tls-private-key-file="$KA_DIR/apiserver.key" \
		--client-ca-file="$KA_DIR/ca.crt" --token-auth-file="$KA_DIR/tokens.csv" \
		--service-account-key-file="$KA_DIR/sa.pub" --service-account-signing-key-file="$KA_DIR/sa.key" \
		--service-account-issuer=https://kubernetes.default.svc \
		--service-cluster-ip-range=10.96.0.0/12 --service-node-port-range=30000-32767 \
		--authorization-mode=RBAC --endpoint-reconciler-type=none --cert-dir="$KA_DIR/apiserver-certs" \
		>>"$KA_DIR/apiserver.log" 2>&1 &
	APISERVER_PID=$!
	for i in $(seq 300); do
		curl -sf --cacert "$KA_DIR/ca.crt" -H "Authorization: Bearer $KA_TOKEN" \
			"https://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
		kill -0 "$APISERVER_PID" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

ka_stop_pid() { # PID: SIGTERM, and SIGKILL when it is still there after 5 s
	local i
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

ka_apiserver_stop() { ka_stop_pid "$APISERVER_PID"; APISERVER_PID=; }
ka_apiserver_kill() {
	[ -n "$APISERVER_PID" ] || return 0
	kill -9 "$APISERVER_PID" 2>/dev/null
	wait "$APISERVER_PID" 2>/dev/null
	APISERVER_PID=
}

ka_cleanup() {
	ka_apiserver_kill
	ka_stop_pid "$ETCD_PID"
	ETCD_PID=
}

ka_kubeconfig() { # FILE PORT USER-FIELDS CLUSTER-CA-FIELD
	cat > "$1" <<EOF
apiVersion: v1
kind: Config
current-context: pwt
contexts:
- name: pwt
  context: {cluster: pwt, user: pwt}
clusters:
- name: pwt
  cluster:
    server: https://127.0.0.1:$2
    $4
users:
- name: pwt
  user:
$3
EOF
}
