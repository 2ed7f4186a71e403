#!/usr/bin/env bash
# Installs everything lifeboat needs to build, test and benchmark, from Debian packages.
# Idempotent: packages already present are skipped by apt-get; safe to run again.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git
  libssl-dev libzstd-dev nlohmann-json3-dev libfmt-dev libcli11-dev libyaml-cpp-dev tzdata
  libsqlite3-dev python3-prometheus-client
  libgtest-dev libgmock-dev libbenchmark-dev
  postgresql-15 postgresql-contrib libpq-dev
  python3 python3-psycopg2 procps psmisc util-linux strace
  libcurl4-openssl-dev
  radosgw ceph-mon ceph-osd ceph-common python3-boto3 curl iproute2 openssl
)
# The dashboard test drives a headless browser; LIFEBOAT_NO_BROWSER=1 leaves it out (the
# test then reports itself skipped).
if [ "${LIFEBOAT_NO_BROWSER:-0}" != 1 ]; then
  PKGS+=(chromium fonts-dejavu-core)
fi
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
  # A mirror that drops a connection is retried rather than failing the whole run.
  for attempt in 1 2 3; do
    if $SUDO apt-get install -y -qq --no-install-recommends -o Acquire::Retries=3 "${missing[@]}"; then
      break
    fi
    [ "$attempt" = 3 ] && exit 1
    sleep 10
    $SUDO apt-get update -qq || true
  done
fi
# The Debian postgresql package starts a cluster of its own; lifeboat's tests never use it.
echo "install-deps: ok"
