#!/usr/bin/env bash
# make image: builds the Dockerfile with buildah (no Docker daemon, nothing pulled from a registry)
# into buildah's local storage as ghcr.io/vectors-aios/vector-operator:<version>, the version read
# from operator/vector_operator/__init__.py (DEFAULT_WORKER_IMAGE's tag, so the two stay in step).
#
#   1. the base image (the Dockerfile's BASE_IMAGE default) is built from Debian's packages when
#      buildah's storage does not have it: devenv/image/base.sh;
#   2. buildah build --isolation chroot --layers --pull=never: every stage's layers are cached, so an
#      unchanged rebuild takes seconds and a source change rebuilds only the package's layers;
#   3. the host's pip cache is mounted into the build (PIP_CACHE_DIR build argument), so a machine
#      that already installed .venv does not download torch again, and a later build reuses what
#      this one downloaded; the host's CA bundle is mounted and given to pip (PIP_CERT) so that pip
#      trusts what the host's pip trusts (a TLS-intercepting proxy's CA, for instance).
#
# Environment: IMAGE (the tag), TORCH_INDEX_URL (e.g. https://download.pytorch.org/whl/cpu for the
# CPU-only torch), EXPORT_MODELS (see the Dockerfile), PIP_INDEX_URL / PIP_EXTRA_INDEX_URL (passed
# on when set), BUILDAH_ARGS (more buildah build options). Runs as root (buildah's root storage).
set -euo pipefail
cd "$(dirname "$0")/../.."

version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' operator/vector_operator/__init__.py)
[[ -n $version ]] || { echo "no __version__ in operator/vector_operator/__init__.py" >&2; exit 1; }
image=${IMAGE:-ghcr.io/vectors-aios/vector-operator:$version}
base=$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile)

for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run make system-packages" >&2; exit 1; }
done
[[ $(id -u) -eq 0 ]] || { echo "$0 runs as root (buildah's root storage, mmdebstrap)" >&2; exit 1; }

start=$SECONDS
devenv/image/base.sh "$base"

args=(--isolation chroot --layers --pull=never --force-rm -f Dockerfile -t "$image"
      --build-arg "VERSION=$version")
pip_cache=${PIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pip}  # where the host's pip caches
mkdir -p "$pip_cache"
args+=(--volume "$pip_cache:/var/cache/host-pip" --build-arg PIP_CACHE_DIR=/var/cache/host-pip)
ca_bundle=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
if [[ -f $ca_bundle ]]; then
  args+=(--volume "$ca_bundle:/run/host-ca-certificates.crt:ro"
         --build-arg PIP_CERT=/run/host-ca-certificates.crt)
fi
for name in TORCH_INDEX_URL EXPORT_MODELS PIP_INDEX_URL PIP_EXTRA_INDEX_URL; do
  [[ -v $name ]] && args+=(--build-arg "$name=${!name}")
done
# shellcheck disable=SC2206 # BUILDAH_ARGS is a list of options, split on purpose
args+=(${BUILDAH_ARGS:-})

echo ">>> buildah build ${args[*]} ."
buildah build "${args[@]}" .

echo ">>> $image built in $((SECONDS - start)) s"
buildah images --format '{{.Name}}:{{.Tag}}  {{.ID}}  {{.Size}}  created {{.CreatedAt}}' "$image"
storage=$(buildah info --format '{{.store.GraphRoot}}')
echo ">>> buildah's storage $storage: $(du -sh "$storage" | cut -f1) (the base, this image, the layer cache" \
  "of this and earlier builds; \`buildah rmi --prune\` drops every untagged image, the cache included)"
