//go:build tools

// The programs this module builds; the build tag keeps the file out of every
// build, it only pins the programs' modules in go.mod and go.sum.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
