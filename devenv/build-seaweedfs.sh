#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (an Apache-2.0, S3-compatible object store: master, volume, filer and
# S3 gateway in one binary) from its Go module, for the tests' real S3 server
# (localcluster/s3_server.py). Its own module in seaweedfs/ pins the version; kept apart from
# build.sh so that changing SeaweedFS never rebuilds the Kubernetes binaries, and the reverse.
# The binary is cached outside the repo under $VO_CACHE/seaweedfs-<hash>/ so only the first run on
# a machine pays the build. Prints the directory holding `weed` on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

cache="${VO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vector-operator}"
# Keyed by the contents (never the paths) of what decides the build, so every clone shares it.
bin="$cache/seaweedfs-$(cat "$here/seaweedfs/go.sum" "$here/seaweedfs/tools.go" | sha256sum | cut -c1-12)"

# The Go checksum database (sum.golang.org) is not reachable from every build machine. The go.sum
# committed next to go.mod is what verifies every downloaded module: -mod=readonly makes a module
# whose hash is missing from go.sum, or differs from it, a hard error.
export GOSUMDB=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local CGO_ENABLED=0

if [[ -x "$bin/weed" ]]; then
  echo "$bin"
  exit 0
fi

version="$(sed -n 's/^require github.com\/seaweedfs\/seaweedfs //p' "$here/seaweedfs/go.mod")"
mkdir -p "$bin.tmp"
start=$SECONDS
echo ">>> building SeaweedFS ($version) from module sources" \
     "(first time on this machine: about 5-10 min on 2 cores, module downloads included; cached afterwards in $bin)" >&2
(cd "$here/seaweedfs" && go build -trimpath -ldflags "-s -w -X github.com/seaweedfs/seaweedfs/weed/util/version.COMMIT=${version##*-}" \
  -o "$bin.tmp/weed" github.com/seaweedfs/seaweedfs/weed)
echo ">>> weed built in $((SECONDS - start)) s" >&2

rm -rf "$bin" && mv "$bin.tmp" "$bin"
echo "$bin"
