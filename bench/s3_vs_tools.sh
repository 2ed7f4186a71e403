#!/usr/bin/env bash
# Full backups to S3 (a real Ceph RGW on loopback) beside the same to a local path, and
# beside pgBackRest's and restic's S3 support against the same gateway, in one run.
# Never run in CI: it needs root (runuser, drop_caches), minutes and gigabytes of RAM.
#
# Usage: bench/s3_vs_tools.sh [--datasets pgbench,tree] [--scale 100] [--size-mib 1024]
#          [--runs 3] [--tools LIST] [--workdir /tmp/lb-s3bench] [--memstore-mib 8192]
#          [--no-count] [--reuse-data] [--quiet-wait 10]
# Env:   LIFEBOAT  lifeboat binary (default ./build/lifeboat, relative to the repo root)
#        PG_BIN    PostgreSQL programs (default /usr/lib/postgresql/15/bin)
#
# Data sets: pgbench (`pgbench -i -s SCALE` in a PostgreSQL 15 cluster, initdb
# --data-checksums) and tree (bench/gen_tree.py --size-mib SIZE, the tree of
# bench/files_vs_restic.sh). Tools (columns; --tools picks some):
#   lb-local       lifeboat to a local path                 (both data sets)
#   lb-s3          lifeboat to s3://lifeboat/... over http   (both)
#   lb-s3tls       lifeboat to the gateway's https endpoint (ca=) (both)
#   restic-local   restic 0.14 to a local path               (tree)
#   restic-s3      restic to s3:http://...                   (both; pgbench: the data
#                  directory as plain files, not a consistent PostgreSQL backup)
#   restic-s3tls   restic to s3:https://... --cacert         (tree)
#   pgbr-local     pgBackRest 2.45 to a local path           (pgbench)
#   pgbr-s3tls     pgBackRest to the https endpoint (its S3 driver speaks TLS only)
# Settings, the same class everywhere: zstd level 3 (lifeboat's default; pgBackRest
# compress-type=zst at its default level 3; restic repository v2, compression auto, which
# is zstd "default" = level 3), 2 workers (lifeboat --threads 2, pgBackRest
# process-max=2, restic on 2 cores), encryption on (lifeboat always, pgBackRest
# aes-256-cbc, restic always). lifeboat opens its repositories with a key file (no
# password stretching); restic pays ~0.1 s of scrypt per command.
#
# Before each timed step the script waits up to --quiet-wait seconds for the machine to be
# idle (< 0.3 busy cores), then goes on regardless; other work shows in "others' CPU".
# Each run (--runs, default 3; the tool order is reversed on even runs) starts a fresh
# gateway (tests/s3/rgw.py serve --tls: monitor, memstore OSD, radosgw with an http and an
# https endpoint, self-signed certificate) and gives every tool a fresh repository. Before
# each timed step the page caches are dropped (the source is read from disk; memstore is
# RAM). Per step: wall time and peak RSS (GNU time), the tool's CPU, the gateway's CPU
# (radosgw + ceph-osd), the requests the gateway served (its perf counter rgw.req, and the
# beast access log by kind) and the bytes stored (du -sb, or the sizes of the objects under
# the repository's prefix). pgbench steps include archiving the WAL of the backup with the
# same tool to the same target (archive_command), as both tools wait for it.
# Then one more run (unless --no-count) sends the http S3 tools through
# tests/s3/fault_proxy.py in pass mode and reads its /stats: the request count as a proxy
# sees it (cross-check of the gateway's counter) and the wall time through the proxy.
#
# Output: markdown on stdout and in WORKDIR/results.md; raw values in WORKDIR/raw.tsv;
# command output in WORKDIR/logs/.
set -uo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATASETS_ARG=pgbench,tree
SCALE=100
SIZE_MIB=1024
RUNS=3
TOOLS_ARG=lb-local,lb-s3,lb-s3tls,restic-local,restic-s3,restic-s3tls,pgbr-local,pgbr-s3tls
WORKDIR=/tmp/lb-s3bench
MEMSTORE_MIB=8192
COUNT=1
REUSE=0
QUIET_WAIT=10
SEED=1

usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "s3_vs_tools: ERROR: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --datasets) DATASETS_ARG=${2:?}; shift 2 ;;
    --scale) SCALE=${2:?}; shift 2 ;;
    --size-mib) SIZE_MIB=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --tools) TOOLS_ARG=${2:?}; shift 2 ;;
    --workdir) WORKDIR=${2:?}; shift 2 ;;
    --memstore-mib) MEMSTORE_MIB=${2:?}; shift 2 ;;
    --no-count) COUNT=0; shift ;;
    --reuse-data) REUSE=1; shift ;;
    --quiet-wait) QUIET_WAIT=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
for n in "$SCALE" "$SIZE_MIB" "$RUNS" "$MEMSTORE_MIB"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "numeric options must be positive integers (got '$n')"
done
[[ $QUIET_WAIT =~ ^[0-9]+$ ]] || die "--quiet-wait must be a number of seconds"
IFS=, read -r -a DATASETS <<< "$DATASETS_ARG"
IFS=, read -r -a TOOLS <<< "$TOOLS_ARG"
for d in "${DATASETS[@]}"; do [[ $d == pgbench || $d == tree ]] || die "unknown data set '$d'"; done
ALL_TOOLS=" lb-local lb-s3 lb-s3tls restic-local restic-s3 restic-s3tls pgbr-local pgbr-s3tls "
for t in "${TOOLS[@]}"; do [[ $ALL_TOOLS == *" $t "* ]] || die "unknown tool '$t'"; done

(( EUID == 0 )) || die "run as root (PostgreSQL and its tools run as 'postgres' via runuser; drop_caches)"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
LIFEBOAT=${LIFEBOAT:-./build/lifeboat}
[[ $LIFEBOAT = /* ]] || LIFEBOAT="$REPO_ROOT/${LIFEBOAT#./}"
[[ -x $LIFEBOAT ]] || die "lifeboat binary not found at $LIFEBOAT (build it, or set LIFEBOAT=...)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (apt-get install time)"
for p in restic pgbackrest python3 openssl curl ceph radosgw; do
  command -v "$p" >/dev/null || die "$p not found (LIFEBOAT_BENCH=1 bash scripts/install-deps.sh)"
done
if [[ " ${DATASETS[*]} " == *" pgbench "* ]]; then
  [[ -x $PG_BIN/initdb ]] || die "no PostgreSQL programs in $PG_BIN (apt-get install postgresql-15)"
  id postgres >/dev/null 2>&1 || die "no 'postgres' user (apt-get install postgresql-15)"
fi
RGW_PY="$REPO_ROOT/tests/s3/rgw.py"
PROXY_PY="$REPO_ROOT/tests/s3/fault_proxy.py"
HELPER="$REPO_ROOT/bench/s3_bench_helper.py"
export PATH="$PG_BIN:$PATH"
# Only the gateway's keys, set below; nothing from the caller's environment or profile (the
# PostgreSQL server started here, and so archive_command, inherits this environment).
for v in $(compgen -e | grep '^AWS_'); do unset "$v"; done
unset RESTIC_PASSWORD RESTIC_REPOSITORY RESTIC_PASSWORD_FILE LIFEBOAT_REPO LIFEBOAT_PASSWORD \
  LIFEBOAT_PASSWORD_FILE LIFEBOAT_KEY_FILE PGHOST PGPORT PGUSER PGDATABASE 2>/dev/null

# ---------------------------------------------------------------- memory and work dir
avail_ram_mib=$(awk '/MemAvailable/ {printf "%d", $2 / 1024}' /proc/meminfo)
need_ram_mib=$((MEMSTORE_MIB + 2048))
if (( avail_ram_mib < need_ram_mib )); then
  die "only ${avail_ram_mib} MiB of RAM available; the gateway's memstore (--memstore-mib $MEMSTORE_MIB) plus ~2 GiB for the rest needs ${need_ram_mib} MiB (use a smaller --memstore-mib with a smaller --scale/--size-mib)"
fi
MARK=.s3_vs_tools
if [[ -e $WORKDIR && ! -e $WORKDIR/$MARK ]] && [[ -n $(ls -A "$WORKDIR" 2>/dev/null) ]]; then
  die "$WORKDIR is not empty and was not made by this script; choose another --workdir"
fi
mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd -P)
[[ $WORKDIR != / ]] || die "refusing to use / as the work dir"
touch "$WORKDIR/$MARK"
DATA="$WORKDIR/pgdata"; TREE="$WORKDIR/tree"
[[ -f $DATA/postmaster.pid ]] && runuser -u postgres -- pg_ctl -D "$DATA" stop -m immediate -w >/dev/null 2>&1
# Everything but the data sets (kept with --reuse-data when their markers match).
find "$WORKDIR" -mindepth 1 -maxdepth 1 ! -name "$MARK" ! -name pgdata ! -name pgdata.marker \
  ! -name tree ! -name tree.marker -exec rm -rf {} +
LOGDIR="$WORKDIR/logs"; SECRETS="$WORKDIR/secrets"; REPOS="$WORKDIR/repos"
RAW="$WORKDIR/raw.tsv"; RESULTS="$WORKDIR/results.md"; SOCK="$WORKDIR/sock"
mkdir -p "$LOGDIR" "$REPOS" "$SOCK" "$WORKDIR/bin"
install -d -m 700 "$SECRETS"
install -m 755 "$LIFEBOAT" "$WORKDIR/bin/lifeboat"   # unchanged by rebuilds during the run
LB="$WORKDIR/bin/lifeboat"
chown postgres:postgres "$REPOS" "$SOCK" "$SECRETS" "$LOGDIR" 2>/dev/null
chmod 711 "$WORKDIR"
chmod 700 "$SOCK"
printf 'dataset\ttool\trun\tmetric\tvalue\n' > "$RAW"

# ---------------------------------------------------------------- bookkeeping
declare -A V          # "dataset:tool:metric" -> space-separated values, one per run
declare -A ONE        # "dataset:tool:metric" -> a single value (count run, notes)
FAILS=()
RUN=0
rec() { V["$1:$2:$3"]+="$4 "; printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$RUN" "$3" "$4" >> "$RAW"; }
rec1() { ONE["$1:$2:$3"]=$4; printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$RUN" "$3" "$4" >> "$RAW"; }
fail() {  # fail DATASET TOOL WHAT LOGFILE
  local err; err=$(tail -n 8 "$4" 2>/dev/null | sed 's/^/    /')
  FAILS+=("**$1 $2** $3 failed (run $RUN, log $4)"$'\n'"$err")
  log "FAILED: $1 $2 $3 (see $4)"; [[ -n $err ]] && echo "$err" >&2
}

HZ=$(getconf CLK_TCK)
cpu_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }
LOADS=()
wait_quiet() {  # at most QUIET_WAIT s for < 0.3 busy cores
  local waited=0 b0 busy=0
  (( QUIET_WAIT > 0 )) || return 0
  while (( waited < QUIET_WAIT )); do
    b0=$(cpu_busy); sleep 2; waited=$((waited + 2))
    busy=$(awk -v a="$b0" -v b="$(cpu_busy)" -v hz="$HZ" 'BEGIN {printf "%.2f", (b - a) / hz / 2}')
    awk -v x="$busy" 'BEGIN {exit !(x < 0.3)}' && return 0
  done
  log "  machine still busy ($busy cores) after ${waited} s; going on"
}
DROP_OK=0; DROP_FAIL=0
drop_caches() {
  sync
  if (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then DROP_OK=$((DROP_OK + 1)); else DROP_FAIL=$((DROP_FAIL + 1)); fi
}
median() {
  tr ' ' '\n' <<< "$1" | grep . | sort -g |
    awk '{v[NR] = $1} END {if (NR == 0) exit 1; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# ---------------------------------------------------------------- cleanup
RGW_PID=""; PROXY_PID=""; PG_STARTED=0
stop_rgw() {
  if [[ -n $RGW_PID ]]; then
    kill -TERM "$RGW_PID" 2>/dev/null; wait "$RGW_PID" 2>/dev/null; RGW_PID=""
  fi
}
stop_proxy() {
  if [[ -n $PROXY_PID ]]; then
    kill -TERM "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; PROXY_PID=""
  fi
}
cleanup() {
  stop_proxy
  stop_rgw
  if (( PG_STARTED )); then
    runuser -u postgres -- pg_ctl -D "$DATA" stop -m fast -w -t 60 >/dev/null 2>&1
  fi
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------- the gateway
# start_rgw: a fresh gateway with buckets lifeboat, restic, pgbackrest; sets EP (http),
# TLS_EP, TLS_PORT, CA (a copy readable by postgres), RGW_DIR, RGW_LOG, RGW_ASOK, and the
# credentials: exported AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (environment only, never
# on a command line) and SECRETS/aws-credentials (mode 600, for archive_command).
start_rgw() {
  local out="$SECRETS/rgw-run$RUN.out" i line k v
  : > "$out"; chmod 600 "$out"
  python3 "$RGW_PY" serve --tls --memstore-mib "$MEMSTORE_MIB" \
    --bucket lifeboat --bucket restic --bucket pgbackrest > "$out" 2> "$LOGDIR/rgw-run$RUN.err" &
  RGW_PID=$!
  for ((i = 0; i < 1200; i++)); do
    grep -q '^# workdir' "$out" && break
    kill -0 "$RGW_PID" 2>/dev/null || { cat "$LOGDIR/rgw-run$RUN.err" >&2; die "rgw.py serve exited"; }
    sleep 0.1
  done
  grep -q '^# workdir' "$out" || die "the gateway did not start in 120 s (see $LOGDIR/rgw-run$RUN.err)"
  while read -r line; do
    [[ $line == export\ * ]] || continue
    line=${line#export }; k=${line%%=*}; v=${line#*=}
    case "$k" in
      AWS_ENDPOINT_URL) EP=$v ;;
      AWS_ACCESS_KEY_ID) export AWS_ACCESS_KEY_ID=$v ;;
      AWS_SECRET_ACCESS_KEY) export AWS_SECRET_ACCESS_KEY=$v ;;
      LIFEBOAT_TEST_S3_TLS_ENDPOINT) TLS_EP=$v ;;
      LIFEBOAT_TEST_S3_CA_FILE) install -m 644 "$v" "$SECRETS/ca.pem" ;;
    esac
  done < "$out"
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_PROFILE AWS_SESSION_TOKEN AWS_CA_BUNDLE
  CA="$SECRETS/ca.pem"; TLS_PORT=${TLS_EP##*:}
  RGW_DIR=$(awk '/^# workdir/ {print $3}' "$out" | tr -d ';')
  RGW_LOG="$RGW_DIR/log/client.rgw.a.log"; RGW_ASOK="$RGW_DIR/run/client.rgw.a.asok"
  ( umask 077
    printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
      "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > "$SECRETS/aws-credentials"
    : > "$SECRETS/aws-config" )
  chown postgres:postgres "$SECRETS/aws-credentials" "$SECRETS/aws-config" 2>/dev/null
  export AWS_SHARED_CREDENTIALS_FILE="$SECRETS/aws-credentials" AWS_CONFIG_FILE="$SECRETS/aws-config"
  log "gateway for run $RUN: $EP and $TLS_EP ($(sed -n 's/^# workdir [^;]*; //p' "$out"))"
}
server_pids() {  # radosgw and ceph-osd of the current gateway
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null < "$p/cmdline" | grep -q -- "-c $RGW_DIR/ceph.conf" || continue
    [[ $(cat "$p/comm" 2>/dev/null) == radosgw || $(cat "$p/comm" 2>/dev/null) == ceph-osd ]] && echo "${p#/proc/}"
  done
}
server_cpu() {  # CPU ticks of the gateway's radosgw and ceph-osd so far
  local p
  for p in $SERVER_PIDS; do sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}'; done |
    awk '{s += $1} END {print s + 0}'
}
rgw_req() { python3 "$HELPER" rgw-req --asok "$RGW_ASOK" 2>/dev/null || echo 0; }
log_size() { stat -c %s "$RGW_LOG" 2>/dev/null || echo 0; }

start_proxy() {
  local pf="$WORKDIR/proxy.json" i
  rm -f "$pf"
  python3 "$PROXY_PY" --upstream "$EP" --mode pass --port-file "$pf" > "$LOGDIR/proxy.out" 2>&1 &
  PROXY_PID=$!
  for ((i = 0; i < 100; i++)); do [[ -s $pf ]] && break; sleep 0.1; done
  [[ -s $pf ]] || die "fault_proxy.py did not start (see $LOGDIR/proxy.out)"
  PROXY_EP="http://127.0.0.1:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$pf")"
  PROXY_CTL="http://127.0.0.1:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control_port"])' "$pf")"
  log "proxy (mode pass) $PROXY_EP in front of $EP, control $PROXY_CTL"
}

# ---------------------------------------------------------------- data sets
if [[ " ${DATASETS[*]} " == *" tree "* ]]; then
  want="gen=$(sha256sum "$REPO_ROOT/bench/gen_tree.py" | cut -c1-16) size_mib=$SIZE_MIB seed=$SEED"
  if (( REUSE )) && [[ -d $TREE && $(cat "$WORKDIR/tree.marker" 2>/dev/null) == "$want" ]]; then
    log "reusing the tree $TREE ($want)"
  else
    log "generating the ${SIZE_MIB} MiB tree in $TREE"
    rm -f "$WORKDIR/tree.marker"
    python3 "$REPO_ROOT/bench/gen_tree.py" --out "$TREE" --size-mib "$SIZE_MIB" --seed "$SEED" --force \
      > "$LOGDIR/gen_tree.log" 2>&1 || die "gen_tree.py failed (see $LOGDIR/gen_tree.log)"
    echo "$want" > "$WORKDIR/tree.marker"
  fi
  TREE_FILES=$(find "$TREE" -type f | wc -l)
  TREE_BYTES=$(du -sb "$TREE" | cut -f1)
fi

PORT=""
as_pg() { runuser -u postgres -- "$@"; }
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d bench -c "$1"; }
set_archive_command() {
  q "ALTER SYSTEM SET archive_command = '${1//\'/\'\'}'" && q "SELECT pg_reload_conf()" >/dev/null
  sleep 1
}
ready_count() { q "SELECT count(*) FROM pg_ls_dir('pg_wal/archive_status') WHERE pg_ls_dir LIKE '%.ready'" 2>/dev/null; }
wait_archive_drained() {
  local i
  for ((i = 0; i < $1; i++)); do [[ $(ready_count) == 0 ]] && return 0; sleep 1; done
  return 1
}
if [[ " ${DATASETS[*]} " == *" pgbench "* ]]; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  want="scale=$SCALE"
  reuse=0
  (( REUSE )) && [[ -f $DATA/PG_VERSION && $(cat "$WORKDIR/pgdata.marker" 2>/dev/null) == "$want" ]] && reuse=1
  if (( ! reuse )); then
    rm -rf "$DATA" "$WORKDIR/pgdata.marker"
    install -d -o postgres -g postgres -m 700 "$DATA"
    as_pg initdb -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C --data-checksums \
      > "$LOGDIR/initdb.log" 2>&1 || die "initdb failed (see $LOGDIR/initdb.log)"
  fi
  sed -i '/^# s3_vs_tools begin/,/^# s3_vs_tools end/d' "$DATA/postgresql.conf"
  rm -f "$DATA/postgresql.auto.conf"; as_pg touch "$DATA/postgresql.auto.conf"
  cat >> "$DATA/postgresql.conf" <<EOF
# s3_vs_tools begin
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
shared_buffers = 256MB
max_wal_size = 2GB
wal_level = replica
archive_mode = on
archive_command = '/bin/true'
logging_collector = off
# s3_vs_tools end
EOF
  log "starting PostgreSQL on 127.0.0.1:$PORT"
  PG_STARTED=1
  as_pg pg_ctl -D "$DATA" -l "$LOGDIR/postgres.log" -w -t 120 start > /dev/null ||
    die "PostgreSQL did not start (see $LOGDIR/postgres.log)"
  if (( ! reuse )); then
    psql -X -q -h "$SOCK" -p "$PORT" -U postgres -d postgres -c "CREATE DATABASE bench" || die "CREATE DATABASE failed"
    log "loading pgbench -i -s $SCALE"
    t0=$(date +%s)
    pgbench -h "$SOCK" -p "$PORT" -U postgres -i -s "$SCALE" -I dtGvp -q bench > "$LOGDIR/load.log" 2>&1 ||
      die "pgbench -i failed (see $LOGDIR/load.log)"
    log "  loaded in $(( $(date +%s) - t0 )) s"
    echo "$want" > "$WORKDIR/pgdata.marker"
  fi
  q "VACUUM ANALYZE"; q "CHECKPOINT"
  PG_DB_BYTES=$(q "SELECT pg_database_size('bench')")
  PG_DATA_BYTES=$(du -sb --exclude=pg_wal "$DATA" | cut -f1)
  PG_FILES=$(find "$DATA" -path "$DATA/pg_wal" -prune -o -type f -print | wc -l)
  log "pgbench scale $SCALE: database $((PG_DB_BYTES >> 20)) MiB, data dir without pg_wal $((PG_DATA_BYTES >> 20)) MiB, $PG_FILES files"
fi

# ---------------------------------------------------------------- per-tool commands
# Each tool step: setup (unmeasured: repository, stanza), the timed command, then the
# bytes stored. S3 repositories live under the prefix "<dataset>-run<N>-<tool>" of the
# tool's bucket. ENDPOINT is the gateway's http endpoint, or the proxy's in the count run.
lb_url() {  # lb_url TOOL PREFIX
  case "$1" in
    lb-local) echo "$REPOS/$2" ;;
    lb-s3) echo "s3://lifeboat/$2?endpoint=$ENDPOINT" ;;
    lb-s3tls) echo "s3://lifeboat/$2?endpoint=$TLS_EP&ca=$CA" ;;
  esac
}
restic_repo() {
  case "$1" in
    restic-local) echo "$REPOS/$2" ;;
    restic-s3) echo "s3:$ENDPOINT/restic/$2" ;;
    restic-s3tls) echo "s3:$TLS_EP/restic/$2" ;;
  esac
}
pgbr_conf() {  # pgbr_conf TOOL PREFIX: writes the config (mode 600), prints its path
  local d="$REPOS/$2-pgbr" pass
  install -d -o postgres -g postgres -m 700 "$d" "$d/log" "$d/lock" "$d/spool"
  pass=$(head -c 24 /dev/urandom | base64)
  {
    echo "[global]"
    if [[ $1 == pgbr-local ]]; then
      echo "repo1-path=$d/repo"
    else
      echo "repo1-type=s3"
      echo "repo1-path=/$2"
      echo "repo1-s3-bucket=pgbackrest"
      # pgBackRest 2.45 matches the host name against the certificate's DNS names only
      # (not its IP addresses): "localhost" is one, when it resolves to 127.0.0.1 first.
      if [[ $(getent ahosts localhost | awk 'NR == 1 {print $1}') == 127.0.0.1 ]]; then
        echo "repo1-s3-endpoint=localhost"
        echo "repo1-storage-ca-file=$CA"
      else
        echo "repo1-s3-endpoint=127.0.0.1"
        echo "repo1-storage-verify-tls=n"
      fi
      echo "repo1-storage-port=$TLS_PORT"
      echo "repo1-s3-uri-style=path"
      echo "repo1-s3-region=us-east-1"
      echo "repo1-s3-key=$AWS_ACCESS_KEY_ID"
      echo "repo1-s3-key-secret=$AWS_SECRET_ACCESS_KEY"
    fi
    echo "repo1-retention-full=99"
    echo "repo1-cipher-type=aes-256-cbc"
    echo "repo1-cipher-pass=$pass"
    echo "compress-type=zst"
    echo "process-max=2"
    echo "start-fast=y"
    echo "archive-timeout=300"
    echo "log-path=$d/log"
    echo "lock-path=$d/lock"
    echo "spool-path=$d/spool"
    echo "log-level-console=warn"
    echo "log-level-file=info"
    echo
    echo "[bench]"
    echo "pg1-path=$DATA"
    echo "pg1-port=$PORT"
    echo "pg1-socket-path=$SOCK"
    echo "pg1-user=postgres"
  } > "$d/pgbackrest.conf"
  chown postgres:postgres "$d/pgbackrest.conf"; chmod 600 "$d/pgbackrest.conf"
  echo "$d/pgbackrest.conf"
}

# setup DATASET TOOL PREFIX: prepares the repository; sets CMD (the timed argv), AS_PG
# (1: run as postgres), ARCHIVE (archive_command for pgbench), BYTES_FN (how to size it).
setup() {
  local ds=$1 tool=$2 pfx=$3 url d lf="$LOGDIR/$1-$2-run$RUN-setup.log"
  CMD=(); AS_PG=0; ARCHIVE=/bin/true
  case "$tool" in
    lb-*)
      d="$REPOS/$pfx-lb"
      install -d -o postgres -g postgres -m 700 "$d" "$d/cache"
      (umask 077 && head -c 24 /dev/urandom | base64 > "$d/password")
      chown postgres:postgres "$d/password"
      url=$(lb_url "$tool" "$pfx")
      [[ $tool == lb-local ]] && url="$d/repo"
      as_pg env LIFEBOAT_CACHE_DIR="$d/cache" "$LB" --repo "$url" --password-file "$d/password" init \
        > "$lf" 2>&1 || return 1
      as_pg env LIFEBOAT_CACHE_DIR="$d/cache" "$LB" --repo "$url" --password-file "$d/password" \
        key add --generate-key-file "$d/key" >> "$lf" 2>&1 || return 1
      LB_REPO=$url; LB_DIR=$d
      local base=(env "LIFEBOAT_CACHE_DIR=$d/cache" "$LB" --repo "$url" --key-file "$d/key" --threads 2 --json)
      if [[ $ds == pgbench ]]; then
        AS_PG=1
        CMD=("${base[@]}" pg backup --type full --dbname "host=$SOCK port=$PORT user=postgres dbname=bench")
        ARCHIVE="AWS_SHARED_CREDENTIALS_FILE=$SECRETS/aws-credentials AWS_CONFIG_FILE=$SECRETS/aws-config LIFEBOAT_CACHE_DIR=$d/cache $LB --repo '$url' --key-file $d/key pg wal-push %p"
      else
        CMD=("${base[@]}" backup files "$TREE")
      fi ;;
    restic-*)
      d="$REPOS/$pfx-restic"
      mkdir -p "$d/cache"
      (umask 077 && head -c 24 /dev/urandom | base64 > "$d/password")
      RESTIC_ARGS=(-r "$(restic_repo "$tool" "$pfx")" --password-file "$d/password" --cache-dir "$d/cache")
      [[ $tool == restic-local ]] && RESTIC_ARGS[1]="$d/repo"
      [[ $tool == restic-s3tls ]] && RESTIC_ARGS+=(--cacert "$CA")
      restic "${RESTIC_ARGS[@]}" init --repository-version 2 > "$lf" 2>&1 || return 1
      RESTIC_DIR=$d
      if [[ $ds == pgbench ]]; then
        CMD=(restic "${RESTIC_ARGS[@]}" backup --exclude "$DATA/pg_wal" "$DATA")
      else
        CMD=(restic "${RESTIC_ARGS[@]}" backup "$TREE")
      fi ;;
    pgbr-*)
      PGBR_CONF=$(pgbr_conf "$tool" "$pfx")
      as_pg pgbackrest "--config=$PGBR_CONF" --stanza=bench stanza-create > "$lf" 2>&1 || return 1
      AS_PG=1
      CMD=(pgbackrest "--config=$PGBR_CONF" --stanza=bench --type=full backup)
      ARCHIVE="pgbackrest --config=$PGBR_CONF --stanza=bench archive-push %p" ;;
  esac
  return 0
}

stored_bytes() {  # stored_bytes TOOL PREFIX -> bytes in the repository
  local tool=$1 pfx=$2
  case "$tool" in
    lb-local) du -sb "$REPOS/$pfx-lb/repo" | cut -f1 ;;
    restic-local) du -sb "$REPOS/$pfx-restic/repo" | cut -f1 ;;
    pgbr-local) du -sb "$REPOS/$pfx-pgbr/repo" | cut -f1 ;;
    lb-s3*) python3 "$HELPER" bucket-bytes --endpoint "$EP" --bucket lifeboat --prefix "$pfx/" | cut -d' ' -f1 ;;
    restic-s3*) python3 "$HELPER" bucket-bytes --endpoint "$EP" --bucket restic --prefix "$pfx/" | cut -d' ' -f1 ;;
    pgbr-s3*) python3 "$HELPER" bucket-bytes --endpoint "$EP" --bucket pgbackrest --prefix "$pfx/" | cut -d' ' -f1 ;;
  esac
}

applies() {  # applies DATASET TOOL
  case "$1:$2" in
    tree:pgbr-*|pgbench:restic-local|pgbench:restic-s3tls) return 1 ;;
  esac
  return 0
}

# step DATASET TOOL: one full backup, measured.
step() {
  local ds=$1 tool=$2 pfx="$1-run$RUN-$2" base="$LOGDIR/$1-$2-run$RUN"
  local secs rss usr sys rc c0 c1 s0 s1 r0 r1 l0 l1 b0 b1 other la
  if ! setup "$ds" "$tool" "$pfx"; then
    fail "$ds" "$tool" setup "$LOGDIR/$ds-$tool-run$RUN-setup.log"; return
  fi
  if [[ $ds == pgbench ]]; then
    q "CHECKPOINT" >/dev/null; q "SELECT pg_switch_wal()" >/dev/null
    wait_archive_drained 120 || log "  (WAL backlog not drained)"
    set_archive_command "$ARCHIVE"
  fi
  wait_quiet
  drop_caches
  la=$(cut -d' ' -f1 /proc/loadavg)
  [[ -z $COUNT_TAG ]] && LOADS+=("$la")
  if [[ -n $COUNT_TAG ]]; then curl -sf -X POST "$PROXY_CTL/reset" > /dev/null; fi
  r0=$(rgw_req); l0=$(log_size); s0=$(server_cpu); b0=$(cpu_busy)
  log "$ds $tool ($([[ -n $COUNT_TAG ]] && echo "count run through the proxy" || echo "run $RUN"), load $la)"
  if (( AS_PG )); then
    as_pg /usr/bin/time -f '%e %M %U %S' -o "$base.time" "${CMD[@]}" > "$base.out" 2> "$base.err"; rc=$?
  else
    /usr/bin/time -f '%e %M %U %S' -o "$base.time" "${CMD[@]}" > "$base.out" 2> "$base.err"; rc=$?
  fi
  b1=$(cpu_busy); s1=$(server_cpu)
  sleep 1   # radosgw's log thread
  r1=$(rgw_req); l1=$(log_size)
  if [[ $ds == pgbench ]]; then
    wait_archive_drained 120 || log "  (WAL backlog not drained after the step)"
    set_archive_command /bin/true
  fi
  if (( rc != 0 )); then fail "$ds" "$tool" "backup (exit $rc)" "$base.err"; return; fi
  read -r secs rss usr sys < <(tail -n1 "$base.time")
  local scpu tcpu
  scpu=$(awk -v a="$s0" -v b="$s1" -v hz="$HZ" 'BEGIN {printf "%.1f", (b - a) / hz}')
  tcpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN {printf "%.1f", u + s}')
  other=$(awk -v a="$b0" -v b="$b1" -v hz="$HZ" -v t="$tcpu" -v s="$scpu" \
    'BEGIN {o = (b - a) / hz - t - s; printf "%.1f", o < 0 ? 0 : o}')
  local bytes; bytes=$(stored_bytes "$tool" "$pfx")
  local kinds; kinds=$(python3 "$HELPER" access-log --log "$RGW_LOG" --from "$l0" --to "$l1")
  if [[ -n $COUNT_TAG ]]; then
    local stats; stats=$(curl -sf "$PROXY_CTL/stats")
    rec1 "$ds" "$tool" proxy-requests "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["requests"])' "$stats")"
    rec1 "$ds" "$tool" proxy-wall-s "$secs"
    rec1 "$ds" "$tool" proxy-rgw-requests "$((r1 - r0))"
    log "  via proxy: ${secs} s, proxy counted $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["requests"])' "$stats") requests, the gateway $((r1 - r0))"
    return
  fi
  rec "$ds" "$tool" wall-s "$secs"
  rec "$ds" "$tool" rss-kib "$rss"
  rec "$ds" "$tool" tool-cpu-s "$tcpu"
  rec "$ds" "$tool" server-cpu-s "$scpu"
  rec "$ds" "$tool" other-cpu-s "$other"
  rec "$ds" "$tool" load "$la"
  rec "$ds" "$tool" bytes "$bytes"
  [[ $tool == *-local ]] || rec "$ds" "$tool" requests "$((r1 - r0))"
  [[ $tool == *-local ]] || rec1 "$ds" "$tool" kinds-run$RUN "$kinds"
  log "  ${secs} s, RSS $((rss / 1024)) MiB, CPU tool $tcpu s / gateway $scpu s / others $other s, $((bytes >> 20)) MiB stored$([[ $tool == *-local ]] || echo ", $((r1 - r0)) requests ($kinds)")"
}

# ---------------------------------------------------------------- runs
COUNT_TAG=""
for ((RUN = 1; RUN <= RUNS; RUN++)); do
  start_rgw
  SERVER_PIDS=$(server_pids)
  ENDPOINT=$EP
  for ds in "${DATASETS[@]}"; do
    order=("${TOOLS[@]}")
    if (( RUN % 2 == 0 )); then
      order=(); for ((i = ${#TOOLS[@]} - 1; i >= 0; i--)); do order+=("${TOOLS[i]}"); done
    fi
    for t in "${order[@]}"; do applies "$ds" "$t" && step "$ds" "$t"; done
  done
  if (( RUN == 1 )); then  # the S3 repositories are sound (unmeasured)
    for ds in "${DATASETS[@]}"; do
      for t in lb-s3 lb-s3tls; do
        [[ " ${TOOLS[*]} " == *" $t "* ]] || continue
        d="$REPOS/$ds-run1-$t-lb"; [[ -f $d/key ]] || continue
        if env LIFEBOAT_CACHE_DIR="$d/cache" "$LB" --repo "$(lb_url "$t" "$ds-run1-$t")" --key-file "$d/key" check \
             > "$LOGDIR/$ds-$t-run1-check.log" 2>&1; then
          rec1 "$ds" "$t" check ok
        else
          rec1 "$ds" "$t" check FAILED; fail "$ds" "$t" "check" "$LOGDIR/$ds-$t-run1-check.log"
        fi
      done
    done
  fi
  stop_rgw
done
if (( COUNT )); then
  RUN=count; COUNT_TAG=-count
  start_rgw
  SERVER_PIDS=$(server_pids)
  start_proxy
  ENDPOINT=$PROXY_EP
  for ds in "${DATASETS[@]}"; do
    for t in lb-s3 restic-s3; do
      [[ " ${TOOLS[*]} " == *" $t "* ]] && applies "$ds" "$t" && step "$ds" "$t"
    done
  done
  stop_proxy
  stop_rgw
fi

# ---------------------------------------------------------------- report
val() {  # val DATASET TOOL METRIC [DIVISOR] [FORMAT] -> median / divisor
  local v=${V["$1:$2:$3"]:-}
  [[ -n $v ]] || return 0
  awk -v m="$(median "$v")" -v d="${4:-1}" -v f="${5:-%.2f}" 'BEGIN {printf f, m / d}'
}
spread() {  # spread DATASET TOOL METRIC -> "min-max"
  local v=${V["$1:$2:$3"]:-}
  [[ -n $v ]] || return 0
  tr ' ' '\n' <<< "$v" | grep . | sort -g | awk 'NR == 1 {a = $1} {b = $1} END {printf "%.2f-%.2f", a, b}'
}
ratio() {  # ratio A B -> A / B with 2 decimals, or n/a
  awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b}'
}
declare -A LABEL=([lb-local]="lifeboat, local path" [lb-s3]="lifeboat, S3 http" [lb-s3tls]="lifeboat, S3 https"
  [restic-local]="restic, local path" [restic-s3]="restic, S3 http" [restic-s3tls]="restic, S3 https"
  [pgbr-local]="pgBackRest, local path" [pgbr-s3tls]="pgBackRest, S3 https")
verdict() {  # verdict RATIO LIMIT -> met / missed
  awk -v r="$1" -v l="$2" 'BEGIN {if (r == "n/a") print "n/a"; else if (r + 0 <= l + 0) print "**met**"; else print "**missed**"}'
}
if (( DROP_FAIL == 0 )); then caches="yes ($DROP_OK times)"; else caches="NOT always ($DROP_OK ok, $DROP_FAIL failed)"; fi
{
  echo "## S3 full backups: lifeboat vs local path, pgBackRest and restic (bench/s3_vs_tools.sh)"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), host: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo), kernel $(uname -r), work dir on $(df -PT "$WORKDIR" | awk 'NR==2 {print $2}')"
  echo "- command: bench/s3_vs_tools.sh --datasets $DATASETS_ARG --scale $SCALE --size-mib $SIZE_MIB --runs $RUNS --memstore-mib $MEMSTORE_MIB"
  echo "- lifeboat $("$LB" --version 2>&1 | awk '{print $2}') at commit $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null) (--threads 2, key file); $(restic version | awk '{print $1, $2}') (repository v2, compression auto); $(pgbackrest version) (process-max=2, compress-type=zst, aes-256-cbc); $(radosgw --version | awk '{print "Ceph RGW", $3}') (beast, memstore OSD, one replica; http and https on 127.0.0.1)"
  [[ -n ${TREE_FILES:-} ]] && echo "- tree: $TREE_FILES files, $((TREE_BYTES >> 20)) MiB (bench/gen_tree.py --size-mib $SIZE_MIB --seed $SEED)"
  [[ -n ${PG_DB_BYTES:-} ]] && echo "- pgbench: scale $SCALE, database $((PG_DB_BYTES >> 20)) MiB, data directory without pg_wal $((PG_DATA_BYTES >> 20)) MiB in $PG_FILES files; a backup step includes archiving its WAL with the same tool to the same target"
  echo "- medians of $RUNS runs (min-max in brackets); page caches dropped before each step: $caches; load average (1 min) at the steps' start: $(printf '%s\n' "${LOADS[@]}" | sort -g | awk 'NR == 1 {a = $1} {b = $1} END {printf "%s-%s (median %s)", a, b, v[int((NR + 1) / 2)]} {v[NR] = $1}')"
  echo "- CPU: the tool's own (user+sys of the timed command), the gateway's (radosgw + ceph-osd), and others' (everything else on the machine during the step: other users' work, and for pgbench also PostgreSQL and the archive_command processes); requests: the gateway's perf counter rgw.req over the step (archive_command's requests included)"
  for ds in "${DATASETS[@]}"; do
    echo
    echo "### $ds"
    echo
    echo "| tool | wall s | tool CPU s | gateway CPU s | others' CPU s | peak RSS MiB | requests | stored MiB |"
    echo "|---|---|---|---|---|---|---|---|"
    for t in "${TOOLS[@]}"; do
      applies "$ds" "$t" || continue
      [[ -n ${V["$ds:$t:wall-s"]:-} ]] || { echo "| ${LABEL[$t]} | failed | | | | | | |"; continue; }
      echo "| ${LABEL[$t]} | $(val "$ds" "$t" wall-s) [$(spread "$ds" "$t" wall-s)] | $(val "$ds" "$t" tool-cpu-s 1 %.1f) | $(val "$ds" "$t" server-cpu-s 1 %.1f) | $(val "$ds" "$t" other-cpu-s 1 %.1f) | $(val "$ds" "$t" rss-kib 1024 %.0f) | $(val "$ds" "$t" requests 1 %.0f) | $(val "$ds" "$t" bytes 1048576 %.1f) |"
    done
    l=$(val "$ds" lb-local wall-s); s=$(val "$ds" lb-s3 wall-s); st=$(val "$ds" lb-s3tls wall-s)
    echo
    echo "| ratio | value | target |"
    echo "|---|---|---|"
    echo "| lifeboat S3 http / lifeboat local | $(ratio "$s" "$l") | <= 1.3: $(verdict "$(ratio "$s" "$l")" 1.3) |"
    echo "| lifeboat S3 https / lifeboat local | $(ratio "$st" "$l") | <= 1.3: $(verdict "$(ratio "$st" "$l")" 1.3) |"
    if [[ $ds == pgbench ]]; then
      p=$(val "$ds" pgbr-s3tls wall-s)
      echo "| lifeboat S3 https / pgBackRest S3 https | $(ratio "$st" "$p") | <= 0.5: $(verdict "$(ratio "$st" "$p")" 0.5) |"
      r=$(val "$ds" restic-s3 wall-s)
      echo "| lifeboat S3 http / restic S3 http (data directory as files) | $(ratio "$s" "$r") | <= 0.5: $(verdict "$(ratio "$s" "$r")" 0.5) |"
    else
      r=$(val "$ds" restic-s3 wall-s); rt=$(val "$ds" restic-s3tls wall-s)
      echo "| lifeboat S3 http / restic S3 http | $(ratio "$s" "$r") | <= 0.5: $(verdict "$(ratio "$s" "$r")" 0.5) |"
      echo "| lifeboat S3 https / restic S3 https | $(ratio "$st" "$rt") | <= 0.5: $(verdict "$(ratio "$st" "$rt")" 0.5) |"
    fi
    echo
    echo "Requests by kind (run 1, the gateway's access log):"
    echo
    for t in "${TOOLS[@]}"; do
      k=${ONE["$ds:$t:kinds-run1"]:-}; [[ -n $k ]] && echo "- ${LABEL[$t]}: $k"
    done
    if (( COUNT )); then
      echo
      echo "Through tests/s3/fault_proxy.py (pass mode), one more run:"
      echo
      for t in lb-s3 restic-s3; do
        [[ -n ${ONE["$ds:$t:proxy-requests"]:-} ]] || continue
        echo "- ${LABEL[$t]}: proxy counted ${ONE["$ds:$t:proxy-requests"]} requests (the gateway ${ONE["$ds:$t:proxy-rgw-requests"]}); wall time through the proxy ${ONE["$ds:$t:proxy-wall-s"]} s"
      done
    fi
    for t in lb-s3 lb-s3tls; do
      [[ -n ${ONE["$ds:$t:check"]:-} ]] && echo "- lifeboat check of the run-1 repository of ${LABEL[$t]}: ${ONE["$ds:$t:check"]}"
    done
  done
  if (( ${#FAILS[@]} )); then
    echo
    echo "### Failures"
    for f in "${FAILS[@]}"; do echo "- $f"; done
  fi
} > "$RESULTS"
echo
cat "$RESULTS"
echo
log "results in $RESULTS (raw values: $RAW, logs: $LOGDIR)"
