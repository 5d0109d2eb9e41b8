//go:build tools

// Package tools pins nerdctl, the containerd client the runtime e2e test
// drives, at the version go.mod requires; scripts/build-nerdctl.sh builds it.
// The build tag keeps this file out of every build: it exists so that
// `go mod tidy` records nerdctl's whole dependency graph in go.sum.
package tools

import _ "github.com/containerd/nerdctl/cmd/nerdctl"
