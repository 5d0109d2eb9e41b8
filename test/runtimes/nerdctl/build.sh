#!/usr/bin/env bash
# build.sh: builds nerdctl, the containerd client test_runtime_nerdctl.sh drives,
# at the version this module's go.mod pins (go.sum checks every module), into
# a cache outside the tree; prints the binary's path. Cached: a second run
# only checks the version. `go install pkg@version` of nerdctl is refused by
# the module proxy here, while `go mod download` + `go build` of the pinned
# module works, hence this scratch module.
set -euo pipefail
cd "$(dirname "$0")"
version=$(awk '$1 == "require" && $2 == "github.com/containerd/nerdctl" {print $3}' go.mod)
[ -n "$version" ] || { echo "nerdctl/build.sh: no nerdctl version in go.mod" >&2; exit 1; }
cache=${NERDCTL_CACHE:-/var/cache/podwire}/nerdctl-$version
bin=$cache/nerdctl
if ! { [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qx "nerdctl version ${version#v}"; }; then
	command -v go >/dev/null || { echo "nerdctl/build.sh: go not found (Go toolchain needed to build nerdctl)" >&2; exit 1; }
	mkdir -p "$cache"
	GOFLAGS=-mod=readonly GOTOOLCHAIN=local go mod download
	GOFLAGS=-mod=readonly GOTOOLCHAIN=local CGO_ENABLED=0 \
		go build -trimpath -o "$bin.tmp" github.com/containerd/nerdctl/cmd/nerdctl
	mv "$bin.tmp" "$bin"
fi
echo "$bin"
