//go:build tools

// Package tools pins SeaweedFS's `weed` command as a dependency of this module so that
// `go build github.com/seaweedfs/seaweedfs/weed` builds it at the version in go.mod.
package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
