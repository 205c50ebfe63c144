#!/usr/bin/env bash
# Builds the Dockerfile's base image, docker.io/library/debian:bookworm-slim, locally from Debian's
# own packages, and stores it in buildah's local storage under exactly that name, so that
# `buildah build --pull=never` finds it without reaching a container registry (this machine can
# reach deb.debian.org but not docker.io). Does nothing when an image of that name is already there.
#
# How it matches the official image: the official debian:bookworm-slim is a debootstrap
# --variant=minbase of bookworm (debuerreotype), "slimmed" by a dpkg configuration that leaves out
# documentation, man pages and translations, with a few apt settings for containers. This script
# does the same with mmdebstrap --variant=minbase (Essential: yes + Priority: required + apt), then
# writes the same configuration files the official image carries:
#   /etc/dpkg/dpkg.cfg.d/docker             the slim path-excludes (also applied to later installs)
#   /etc/apt/apt.conf.d/docker-clean        no .deb or package cache kept after apt-get install
#   /etc/apt/apt.conf.d/docker-no-languages, docker-gzip-indexes, docker-autoremove-suggests
#   /etc/apt/sources.list.d/debian.sources  bookworm, bookworm-updates, bookworm-security (deb822)
#   /usr/sbin/policy-rc.d                   no service starts during apt-get install
# and the image configuration: CMD ["bash"], the usual PATH. Packages come from the live
# deb.debian.org (the latest bookworm point release), not from a snapshot, so the image is close
# to, not bit-for-bit, the official image of the same day: 77.6 MB here (buildah images), with the
# same package set (minbase, merged /usr, usr-is-merged, no perl beyond perl-base) and the same
# apt/dpkg configuration; about 20 s on 2 cores.
#
# How it gets into buildah's storage (buildah 1.28 has no `import`): `buildah from scratch` makes an
# empty working container, `buildah mount` gives its root directory, mmdebstrap bootstraps into that
# directory, `buildah config` sets CMD/ENV and `buildah commit` writes the image; the working
# container is removed afterwards, also on failure.
#
# Usage: devenv/image/base.sh [IMAGE]   (root; needs buildah and mmdebstrap: devenv/system-packages.sh)
set -euo pipefail

image=${1:-docker.io/library/debian:bookworm-slim}
suite=bookworm
mirror=http://deb.debian.org/debian
security=http://deb.debian.org/debian-security

if buildah inspect --type image "$image" >/dev/null 2>&1; then
  echo ">>> base image $image is already in buildah's storage"
  exit 0
fi
for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run devenv/system-packages.sh" >&2; exit 1; }
done
[[ $(id -u) -eq 0 ]] || { echo "$0 runs as root (mmdebstrap into buildah's root-owned storage)" >&2; exit 1; }

echo ">>> building $image from Debian's packages (mmdebstrap --variant=minbase $suite)"
start=$SECONDS
ctr=$(buildah from scratch)
trap 'buildah umount "$ctr" >/dev/null 2>&1 || true; buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
rootfs=$(buildah mount "$ctr")

# The slim excludes, as --dpkgopt so that mmdebstrap applies them to the bootstrap itself (its
# extract step as well as dpkg); the customize hook then keeps them, as the official image does, in
# /etc/dpkg/dpkg.cfg.d/docker (for the Dockerfile's apt-get installs) instead of mmdebstrap's file.
slim=(
  'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright'
  'path-exclude=/usr/share/groff/*' 'path-exclude=/usr/share/info/*' 'path-exclude=/usr/share/linda/*'
  'path-exclude=/usr/share/lintian/overrides/*'
  'path-exclude=/usr/share/locale/*' 'path-include=/usr/share/locale/locale.alias'
  'path-exclude=/usr/share/man/*'
)
dpkgopts=()
for option in "${slim[@]}"; do dpkgopts+=(--dpkgopt="$option"); done
dpkg_docker=$(printf '%s\n' '# This is the "slim" variant of the Debian base image.' \
  '# Many files which are normally unnecessary in containers are excluded,' \
  '# and this configuration file keeps them that way.' "${slim[@]/=/ }")

# The merged-usr hook sets /bin, /lib, /sbin up as links into /usr before the essential packages
# are unpacked and installs Debian's usr-is-merged, as debootstrap does for the official image;
# without it apt satisfies init-system-helpers' usrmerge | usr-is-merged with usrmerge, which
# pulls in perl (about 50 MB) that the official image does not have.
mmdebstrap --mode=root --variant=minbase --format=directory "${dpkgopts[@]}" \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --customize-hook='rm -f "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap" && cat > "$1/etc/dpkg/dpkg.cfg.d/docker" <<EOF
'"$dpkg_docker"'
EOF' \
  --customize-hook='cd "$1" && rm -f etc/apt/sources.list && mkdir -p etc/apt/sources.list.d && cat > etc/apt/sources.list.d/debian.sources <<EOF
Types: deb
URIs: '"$mirror"'
Suites: '"$suite $suite"'-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: '"$security"'
Suites: '"$suite"'-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF' \
  --customize-hook='cd "$1/etc/apt/apt.conf.d" && cat > docker-clean <<EOF
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
printf "%s\n" "Acquire::Languages \"none\";" > docker-no-languages
printf "%s\n" "Acquire::GzipIndexes \"true\";" > docker-gzip-indexes
printf "%s\n" "Apt::AutoRemove::SuggestsImportant \"false\";" > docker-autoremove-suggests
printf "%s\n" "#!/bin/sh" "exit 101" > "$1/usr/sbin/policy-rc.d" && chmod 0755 "$1/usr/sbin/policy-rc.d"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb "$1"/var/log/*.log "$1"/tmp/* "$1"/root/.cache' \
  "$suite" "$rootfs" \
  "deb $mirror $suite main" "deb $mirror $suite-updates main" "deb $security $suite-security main"

buildah config --cmd '["bash"]' \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --created-by "devenv/image/base.sh: mmdebstrap --variant=minbase $suite" "$ctr"
buildah umount "$ctr" >/dev/null
buildah commit --quiet --rm "$ctr" "$image" >/dev/null
trap - EXIT
echo ">>> $image built in $((SECONDS - start)) s: $(buildah images --format '{{.Size}}' "$image")"
