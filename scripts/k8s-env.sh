# Sourced (never run) by scripts/k8s-deps.sh and the real-cluster scripts: where
# the Kubernetes test cluster's binaries and images live. The cache sits outside
# the tree so that only a fresh machine pays for the build (docs/kubernetes.md).
#
#   PW_K8S_CACHE   cache root (override to move it)
#   PW_K8S_BIN     $PW_K8S_CACHE/bin: the binaries in PW_K8S_BINARIES below
#                  (containerd and runc are Debian's, in /usr/bin)
#   PW_K8S_IMAGES  $PW_K8S_CACHE/images: docker-archive tars for
#                  `ctr -n k8s.io images import`
#   K8S_VERSION    the Kubernetes release everything is built from

K8S_VERSION=v1.37.2
PW_K8S_CACHE=${PW_K8S_CACHE:-/var/cache/podwire/k8s-$K8S_VERSION}
PW_K8S_BIN=$PW_K8S_CACHE/bin
PW_K8S_IMAGES=$PW_K8S_CACHE/images
export K8S_VERSION PW_K8S_CACHE PW_K8S_BIN PW_K8S_IMAGES

# Binaries scripts/k8s-deps.sh puts in $PW_K8S_BIN.
PW_K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
	etcd etcdctl e2e.test ginkgo agnhost coredns)

# The images scripts/k8s-deps.sh builds, as $PW_K8S_IMAGES/<name>.tar. Their
# names are those of k8s.io/kubernetes/test/utils/image/manifest.go at v1.37.2
# (the e2e specs ask for these with IfNotPresent, so nothing is pulled), CoreDNS
# as kubeadm v1.37.2 names it, and podwire's own test image (the agnhost tar
# carries that second name).
PW_K8S_IMAGE_TARS=(pause agnhost glibc-dns-testing busybox nginx coredns)
PW_K8S_PAUSE_IMAGE=registry.k8s.io/pause:3.10.2
PW_K8S_AGNHOST_IMAGE=registry.k8s.io/e2e-test-images/agnhost:2.66.1
PW_K8S_GLIBC_DNS_IMAGE=registry.k8s.io/e2e-test-images/glibc-dns-testing:2.1.1
PW_K8S_BUSYBOX_IMAGE=registry.k8s.io/e2e-test-images/busybox:1.37.0-2
PW_K8S_NGINX_IMAGE=registry.k8s.io/e2e-test-images/nginx:1.27.0-2
PW_K8S_COREDNS_IMAGE=registry.k8s.io/coredns/coredns:v1.14.6
PW_K8S_TEST_IMAGE=docker.io/podwire/test:local
export PW_K8S_PAUSE_IMAGE PW_K8S_AGNHOST_IMAGE PW_K8S_GLIBC_DNS_IMAGE PW_K8S_BUSYBOX_IMAGE \
	PW_K8S_NGINX_IMAGE PW_K8S_COREDNS_IMAGE PW_K8S_TEST_IMAGE

# pw_k8s_image_tars: the image tars' paths, one a line, for
# `ctr -n k8s.io images import`.
pw_k8s_image_tars() {
	local name
	for name in "${PW_K8S_IMAGE_TARS[@]}"; do
		printf '%s/%s.tar\n' "$PW_K8S_IMAGES" "$name"
	done
}
