#!/usr/bin/env bash
# Debian's packages the test suite runs besides the repository's own builds: a PostgreSQL server
# (the SQL sources' tests start one on 127.0.0.1) and Prometheus with promtool (the alert rules run
# through promtool; a real Prometheus scrapes the operator in the operations e2e). Installs only
# what is missing, once per machine. The tests start their own servers on 127.0.0.1 and free ports,
# so a service the packages start themselves (on a host with systemd) is neither used nor in the way.
# make image builds the container image with buildah (no Docker daemon; --isolation chroot) from a
# base that mmdebstrap bootstraps from Debian's packages (devenv/image/): both installed here too.
set -euo pipefail

missing=()
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
{ command -v prometheus && command -v promtool; } >/dev/null || missing+=(prometheus)
command -v buildah >/dev/null || missing+=(buildah)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
# The node agent's image tests build a tiny image from a static busybox (Debian's busybox is dynamic).
[[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
(( ${#missing[@]} )) || exit 0

echo ">>> installing ${missing[*]} from Debian's packages (once per machine)"
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
