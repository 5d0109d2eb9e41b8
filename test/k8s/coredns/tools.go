//go:build tools

// Package tools names what scripts/k8s-deps.sh builds from this module, so
// that `go mod tidy` keeps its dependency graph pinned in go.sum.
package tools

import _ "github.com/coredns/coredns"
