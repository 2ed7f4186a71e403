#!/usr/bin/env bash
# Installs everything lifeboat needs to build, test and benchmark, from Debian packages.
# Idempotent: packages already present are skipped by apt-get; safe to run again.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git
  libssl-dev libzstd-dev nlohmann-json3-dev libfmt-dev libcli11-dev libyaml-cpp-dev tzdata
  libgtest-dev libgmock-dev libbenchmark-dev
  postgresql-15 postgresql-contrib libpq-dev
  python3 python3-psycopg2 procps psmisc util-linux strace
  libcurl4-openssl-dev
  radosgw ceph-mon ceph-osd ceph-common python3-boto3 curl iproute2 openssl
)
if [ "${LIFEBOAT_BENCH:-0}" = 1 ]; then
  PKGS+=(restic hyperfine time pgbackrest)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The Debian postgresql package starts a cluster of its own; lifeboat's tests never use it.
echo "install-deps: ok"
