# shellcheck shell=bash
# Sourced by scripts/k8s/cluster.sh: the cluster's certificates and kubeconfigs,
# made with openssl in $PWK_DIR/pki. One CA signs everything: the API server's
# serving certificate, every client (admin, controller-manager, scheduler, each
# kubelet, the API server towards kubelets, podwired, kube-proxy) and each
# kubelet's serving certificate. The service-account key pair signs pod tokens.

PKI=$PWK_DIR/pki

pki_ca() {
	openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key" 2>/dev/null
	openssl req -new -x509 -key "$PKI/ca.key" -subj "/CN=podwire-k8s-$CLUSTER-ca" -days 3650 \
		-out "$PKI/ca.crt" 2>/dev/null
}

# pki_cert NAME SUBJECT USAGE [SAN]: NAME.key and NAME.crt signed by the CA;
# USAGE is clientAuth, serverAuth or both ("clientAuth,serverAuth").
pki_cert() {
	local name=$1 subj=$2 usage=$3 san=${4:-}
	openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
	openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
	{
		echo "basicConstraints=CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=$usage"
		[ -n "$san" ] && echo "subjectAltName=$san"
	} > "$PKI/$name.ext"
	openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
		-days 3650 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
	rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

# pki_kubeconfig NAME SERVER: NAME.kubeconfig for the client certificate NAME,
# everything inline so that the file alone is the identity.
pki_kubeconfig() {
	local name=$1 server=$2
	cat > "$PKI/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $CLUSTER
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$name.crt")
    client-key-data: $(base64 -w0 "$PKI/$name.key")
contexts:
- name: $name@$CLUSTER
  context:
    cluster: $CLUSTER
    user: $name
current-context: $name@$CLUSTER
EOF
}

# pki_all ROOT_API_PORT: everything the control plane and the nodes need.
pki_all() {
	local root_port=$1 n in_fabric="https://127.0.0.1:$PWK_API_PORT"
	local on_fabric="https://$PWK_API_IP:$PWK_API_PORT"
	mkdir -p "$PKI"
	pki_ca
	openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
	openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
	pki_cert apiserver "/CN=kube-apiserver" serverAuth \
		"IP:127.0.0.1,IP:$PWK_API_IP,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
	pki_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
	pki_cert admin "/O=system:masters/CN=kubernetes-admin" clientAuth
	pki_cert controller-manager "/CN=system:kube-controller-manager" clientAuth
	pki_cert scheduler "/CN=system:kube-scheduler" clientAuth
	pki_cert podwire "/CN=system:podwire" clientAuth
	# The bridge baseline's kube-proxy: bound to system:node-proxier by the API server's bootstrap RBAC.
	pki_cert kube-proxy "/CN=system:kube-proxy" clientAuth
	pki_kubeconfig admin "https://127.0.0.1:$root_port"
	pki_kubeconfig controller-manager "$in_fabric"
	pki_kubeconfig scheduler "$in_fabric"
	pki_kubeconfig podwire "$on_fabric"
	pki_kubeconfig kube-proxy "$on_fabric"
	for n in $(pwk_node_nums); do pki_node "$n"; done
}

# pki_node N: node N's kubelet client and serving certificates and kubeconfig
# (also for a node added to a running cluster).
pki_node() {
	local node ip; node=$(pwk_node_name "$1") ip=$(pwk_node_ip "$1")
	pki_cert "$node" "/O=system:nodes/CN=system:node:$node" clientAuth
	pki_cert "$node-serving" "/CN=$node" serverAuth "IP:$ip,DNS:$node"
	pki_kubeconfig "$node" "https://$PWK_API_IP:$PWK_API_PORT"
}
