#!/usr/bin/env bash
# Builds the local control plane from Go module sources, once per version:
#   kubeplane  etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kubectl (one multicall binary)
#   helm       from helm.sh/helm/v3, in its own module (it requires its own k8s.io/* versions)
# Binaries are cached outside the repo under $VO_CACHE/<name>-<version>/ so only the first run on
# a machine pays the build. Prints the directory holding the binaries on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${VO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vector-operator}"
# Keyed by the contents (never the paths) of what decides the build, so every clone shares it.
bin="$cache/bin-k8s-$KUBERNETES_VERSION-helm-$HELM_VERSION-$(cat "$here/go.sum" "$here/helm/go.sum" "$here/kubeplane/main.go" | sha256sum | cut -c1-12)"

# The Go checksum database (sum.golang.org) is not reachable from every build machine. The go.sum
# files committed next to each go.mod are what verify every downloaded module: -mod=readonly makes
# a module whose hash is missing from go.sum, or differs from it, a hard error.
export GOSUMDB=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local CGO_ENABLED=0

if [[ -x "$bin/kubeplane" && -x "$bin/helm" ]]; then
  echo "$bin"
  exit 0
fi

major="${KUBERNETES_VERSION#v}"; major="${major%%.*}"
minor="${KUBERNETES_VERSION#v*.}"; minor="${minor%%.*}"
now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$now"
done

mkdir -p "$bin.tmp"
start=$SECONDS
echo ">>> building Kubernetes $KUBERNETES_VERSION control plane + kubectl from module sources" \
     "(first time on this machine: about 7-10 min on 2 cores, module downloads included; cached afterwards in $bin)" >&2
(cd "$here" && go build -trimpath -ldflags "-s -w $k8s_ldflags" -o "$bin.tmp/kubeplane" ./kubeplane)
echo ">>> kubeplane built in $((SECONDS - start)) s" >&2

start=$SECONDS
echo ">>> building helm $HELM_VERSION from module sources" >&2
helm_ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
helm_ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
helm_ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
(cd "$here/helm" && go build -trimpath -ldflags "-s -w $helm_ldflags" -o "$bin.tmp/helm" helm.sh/helm/v3/cmd/helm)
echo ">>> helm built in $((SECONDS - start)) s" >&2

rm -rf "$bin" && mv "$bin.tmp" "$bin"
echo "$bin"
