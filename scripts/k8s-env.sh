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
PW_K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl
	etcd etcdctl e2e.test ginkgo agnhost coredns)
