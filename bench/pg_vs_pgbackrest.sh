#!/usr/bin/env bash
# Benchmark lifeboat against pgBackRest on the same PostgreSQL 15 cluster, in one run.
# Never run in CI: it needs root (runuser, drop_caches), minutes and gigabytes.
#
# Usage: bench/pg_vs_pgbackrest.sh [--dataset pgbench|reservations] [--scale 200]
#          [--size-mib 2048] [--workdir /tmp/lb-pgbench] [--tools lifeboat,zst1,gz,block]
#          [--change blocks|rows] [--wal-segments 20] [--keepup-seconds 60]
#          [--keepup-tools lifeboat,zst1] [--reuse-data] [--no-floor] [--no-renice]
# Env:   LIFEBOAT  lifeboat binary (default ./build/lifeboat, relative to the repo root)
#        PG_BIN    PostgreSQL programs (default /usr/lib/postgresql/15/bin)
#
# Tools (columns): lifeboat (always encrypted), and pgBackRest 2.45 in three configurations,
# all with process-max=2, repo1-retention-full=99, start-fast=y and
# repo1-cipher-type=aes-256-cbc (encrypted too, for fairness):
#   zst1  compress-type=zst compress-level=1
#   gz    compress-type=gz (its default level, 6)
#   block zst1 plus repo1-bundle=y repo1-block=y (block incremental; beta=y in 2.45)
# plus the floor `tar -cf - --exclude=pg_wal DATADIR | zstd -1 -T2`.
#
# Steps, for each tool in turn, on one cluster (initdb --data-checksums, 127.0.0.1, a free
# port, run as the postgres user; stopped on exit):
#   (once, before the first tool: an unmeasured warm-up change, see 2.)
#   VACUUM + CHECKPOINT; archive_command switched to the tool's WAL push;
#   1. full backup (time, peak RSS, repository bytes added: du -sb before/after);
#   2. UPDATE of the rows of every 67th heap block of the main tables (--change blocks,
#      default: ~1.5% of heap pages, each tool a different residue) or of every 67th row
#      (--change rows: ~1.5% of rows, but that touches most pages) + CHECKPOINT, then an
#      incremental backup (time, bytes added);
#   3. restore into an empty directory, then start it on another port with the recovery
#      settings the tool wrote, wait for the end of recovery and compare count(*) of the
#      main table with the source.
# Then: WAL segments collected with archive_command=cp during pgbench traffic; each tool's
# WAL push run on --wal-segments of them, one process per segment (timed one by one), into
# fresh repositories; and a keep-up test per --keepup-tools: archive_command = the tool,
# `pgbench -c 4 -j 2 -T SECONDS`, .ready backlog sampled every second.
# Page caches are dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before each timed
# backup/restore step. Peak RSS is GNU time's %M: the largest single process (pgBackRest's
# worker processes are not summed).
#
# Output: a markdown table on stdout and in WORKDIR/results.md; raw values in
# WORKDIR/raw.tsv; every command's output in WORKDIR/logs/. A step that fails is reported
# (command and error) in the "Failures" section and the benchmark goes on.
set -uo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATASET=pgbench
SCALE=200
SIZE_MIB=2048
WORKDIR=/tmp/lb-pgbench
TOOLS_ARG=lifeboat,zst1,gz,block
CHANGE=blocks
WAL_SEGS=20
KEEPUP_S=60
KEEPUP_ARG=lifeboat,zst1
REUSE=0
FLOOR=1
RENICE=1

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "pg_vs_pgbackrest: ERROR: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dataset) DATASET=${2:?}; shift 2 ;;
    --scale) SCALE=${2:?}; shift 2 ;;
    --size-mib) SIZE_MIB=${2:?}; shift 2 ;;
    --workdir) WORKDIR=${2:?}; shift 2 ;;
    --tools) TOOLS_ARG=${2:?}; shift 2 ;;
    --change) CHANGE=${2:?}; shift 2 ;;
    --wal-segments) WAL_SEGS=${2:?}; shift 2 ;;
    --keepup-seconds) KEEPUP_S=${2:?}; shift 2 ;;
    --keepup-tools) KEEPUP_ARG=${2?}; shift 2 ;;
    --reuse-data) REUSE=1; shift ;;
    --no-floor) FLOOR=0; shift ;;
    --no-renice) RENICE=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ $DATASET == pgbench || $DATASET == reservations ]] || die "--dataset must be pgbench or reservations"
[[ $CHANGE == blocks || $CHANGE == rows ]] || die "--change must be blocks or rows"
for n in "$SCALE" "$SIZE_MIB" "$WAL_SEGS" "$KEEPUP_S"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "numeric options must be positive integers (got '$n')"
done
IFS=, read -r -a TOOLS <<< "$TOOLS_ARG"
IFS=, read -r -a KEEPUP_TOOLS <<< "$KEEPUP_ARG"
for t in "${TOOLS[@]}" "${KEEPUP_TOOLS[@]}"; do
  case "$t" in lifeboat|zst1|gz|block) ;; *) die "unknown tool '$t' (lifeboat, zst1, gz, block)" ;; esac
done

(( EUID == 0 )) || die "run as root (PostgreSQL and the tools run as 'postgres' via runuser; drop_caches)"
id postgres >/dev/null 2>&1 || die "no 'postgres' user (apt-get install postgresql-15)"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
[[ -x $PG_BIN/initdb ]] || die "no PostgreSQL programs in $PG_BIN (apt-get install postgresql-15)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (apt-get install time)"
command -v zstd >/dev/null || die "zstd not found (apt-get install zstd)"
PGBACKREST=$(command -v pgbackrest || true)
[[ -n $PGBACKREST ]] || die "pgbackrest not found (LIFEBOAT_BENCH=1 scripts/install-deps.sh)"
LIFEBOAT=${LIFEBOAT:-./build/lifeboat}
[[ $LIFEBOAT = /* ]] || LIFEBOAT="$REPO_ROOT/${LIFEBOAT#./}"
[[ -x $LIFEBOAT ]] || die "lifeboat binary not found at $LIFEBOAT (build it, or set LIFEBOAT=...)"
RES_PY="$REPO_ROOT/tests/pg/reservations.py"
if [[ $DATASET == reservations ]]; then
  if [[ -f $RES_PY ]]; then
    /usr/bin/python3 -c 'import psycopg2' 2>/dev/null || die "python3-psycopg2 missing (apt-get install python3-psycopg2)"
  else
    RES_PY=""   # fall back to the SQL generator below
  fi
fi
export PATH="$PG_BIN:$PATH"

# ---------------------------------------------------------------- work dir
MARK=.pg_vs_pgbackrest
if [[ -e $WORKDIR ]]; then
  [[ -d $WORKDIR ]] || die "$WORKDIR exists and is not a directory"
  if [[ ! -e $WORKDIR/$MARK ]] && [[ -n $(ls -A "$WORKDIR") ]]; then
    die "$WORKDIR is not empty and was not made by this script; choose another --workdir"
  fi
fi
mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd -P)
[[ $WORKDIR != / ]] || die "refusing to use / as the work dir"
# A cluster left running by an interrupted run is stopped before anything is removed.
for d in "$WORKDIR"/data "$WORKDIR"/restore-*; do
  [[ -f $d/postmaster.pid ]] && runuser -u postgres -- pg_ctl -D "$d" stop -m immediate -w >/dev/null 2>&1
done
DATA="$WORKDIR/data"
DATA_MARKER="dataset=$DATASET scale=$SCALE size_mib=$SIZE_MIB res=$( [[ -n ${RES_PY:-} ]] && sha256sum "$RES_PY" | cut -c1-12)"
reuse_data=no
if (( REUSE )) && [[ -f $WORKDIR/data.marker && -f $DATA/PG_VERSION ]] &&
   [[ $(cat "$WORKDIR/data.marker") == "$DATA_MARKER" ]]; then
  reuse_data=yes
fi
# Wipe everything but (possibly) the loaded cluster.
find "$WORKDIR" -mindepth 1 -maxdepth 1 ! -name "$MARK" \
  $( [[ $reuse_data == yes ]] && echo "! -name data ! -name data.marker ! -name data.rounds" ) -exec rm -rf {} +
touch "$WORKDIR/$MARK"

if [[ $DATASET == pgbench ]]; then DATA_MIB=$((SCALE * 15)); else DATA_MIB=$SIZE_MIB; fi
# cluster + WAL (max_wal_size) + lifeboat and 3 pgBackRest repositories (full + incr each,
# worst case ~0.6x per backup without block incremental) + one restore at a time.
need_mib=$((DATA_MIB * 5 + 3072))
[[ $reuse_data == yes ]] && need_mib=$((DATA_MIB * 4 + 3072))
avail_mib=$(df -Pm "$WORKDIR" | awk 'NR==2 {print $4}')
(( avail_mib >= need_mib )) || die "not enough free space in $WORKDIR: need ~${need_mib} MiB, ${avail_mib} MiB available"
log "workdir $WORKDIR: ${avail_mib} MiB free, ~${need_mib} MiB needed"

LOGDIR="$WORKDIR/logs"; SOCK="$WORKDIR/sock"; RAW="$WORKDIR/raw.tsv"; RESULTS="$WORKDIR/results.md"
mkdir -p "$LOGDIR" "$SOCK" "$WORKDIR/bin" "$WORKDIR/lbcache"
# A private copy of lifeboat: readable by postgres, and unchanged by rebuilds during the run.
install -m 755 "$LIFEBOAT" "$WORKDIR/bin/lifeboat"
LB="$WORKDIR/bin/lifeboat"
chown postgres:postgres "$WORKDIR"
chown -R postgres:postgres "$LOGDIR" "$SOCK" "$WORKDIR/lbcache"
chmod 700 "$SOCK"
printf 'tool\tmetric\tvalue\n' > "$RAW"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
PORT2=$(free_port)
[[ $PORT2 != "$PORT" ]] || PORT2=$((PORT + 1))
DB=bench
export PGHOST="$SOCK" PGPORT="$PORT" PGUSER=postgres PGDATABASE=$DB
unset PGPASSWORD PGSERVICE LIFEBOAT_REPO LIFEBOAT_PASSWORD LIFEBOAT_KEY_FILE 2>/dev/null || true

as_pg() { runuser -u postgres -- "$@"; }
psqlc() { psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"; }   # as root, user postgres (trust)
q() { local s=$1; shift; psqlc "$@" -c "$s"; }

# ---------------------------------------------------------------- cleanup
RUNNING=()   # data directories of clusters this script started
stop_cluster() {
  local d=$1
  [[ -f $d/postmaster.pid ]] || return 0
  as_pg pg_ctl -D "$d" stop -m fast -w -t 60 >/dev/null 2>&1 ||
    as_pg pg_ctl -D "$d" stop -m immediate -w >/dev/null 2>&1
}
BGPIDS=()
cleanup() {
  local p d
  for p in "${BGPIDS[@]}"; do kill "$p" 2>/dev/null; done
  for d in "${RUNNING[@]}"; do stop_cluster "$d"; done
  [[ -n ${AUTOGROUP_NICE0:-} ]] && echo "$AUTOGROUP_NICE0" > /proc/$$/autogroup 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------- results bookkeeping
declare -A R          # "tool:metric" -> value
FAILS=()
rec() { R["$1:$2"]=$3; printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RAW"; }
fail() {  # fail TOOL STEP LOGFILE COMMAND...
  local tool=$1 step=$2 lf=$3; shift 3
  local err; err=$(tail -n 5 "$lf" 2>/dev/null | sed 's/^/    /')
  FAILS+=("**$tool $step** failed: \`$*\`"$'\n'"$err")
  log "FAILED: $tool $step: $*"; [[ -n $err ]] && echo "$err" >&2
}

DROP_OK=0; DROP_FAIL=0
# Other work on the machine (builds, tests) distorts timings on 2 cores: the whole benchmark
# (PostgreSQL and the tools included) runs at nice -10 / ionice best-effort 0 unless
# --no-renice; before each timed step it waits (at most QUIET_WAIT s, QUIET_TOTAL s in all)
# until less than 0.3 cores are busy, and marks steps during which other processes used
# noticeable CPU.
# With autogroup scheduling (sched_autogroup_enabled=1) a process's nice value only counts
# inside its session's group, so the groups' nice values are raised too: this script's
# (restored at exit) and each postmaster's (pg_ctl starts it in a session of its own).
RENICED=no
AUTOGROUP_NICE0=""
prioritize() {  # prioritize PID: nice -10 for PID's autogroup (when autogroups are in use)
  (( RENICE )) && [[ -w /proc/$1/autogroup ]] && echo -10 > "/proc/$1/autogroup" 2>/dev/null
  return 0
}
if (( RENICE )); then
  renice -n -10 -p $$ >/dev/null 2>&1 && RENICED="nice -10"
  ionice -c 2 -n 0 -p $$ >/dev/null 2>&1 && RENICED+=", ionice best-effort 0"
  if [[ $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null) == 1 && -w /proc/$$/autogroup ]]; then
    AUTOGROUP_NICE0=$(awk '{print $NF}' /proc/$$/autogroup)
    prioritize $$ && RENICED+=", autogroup nice -10"
  fi
fi
postmaster_pid() { head -n1 "$1/postmaster.pid" 2>/dev/null; }
pg_tree_cpu() {  # CPU ticks so far of the postmaster of data dir $1 and its live children
  local pm; pm=$(postmaster_pid "$1")
  [[ -n $pm ]] || { echo 0; return; }
  { echo "$pm"; pgrep -P "$pm"; } | while read -r p; do
    # fields after the ")" of comm: utime stime cutime cstime are the 12th..15th
    sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13 + $14 + $15}'
  done | awk '{s += $1} END {print s + 0}'
}
HZ=$(getconf CLK_TCK)
QUIET_WAIT=${QUIET_WAIT:-60}      # per step
QUIET_TOTAL=${QUIET_TOTAL:-600}   # in all; then steps no longer wait
QUIET_WAITED=0
declare -A DISTURBED
cpu_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }
wait_quiet() {
  local waited=0 b0 busy
  while :; do
    b0=$(cpu_busy); sleep 2
    busy=$(awk -v a="$b0" -v b="$(cpu_busy)" -v hz="$HZ" 'BEGIN {printf "%.2f", (b - a) / hz / 2}')
    awk -v x="$busy" 'BEGIN {exit !(x < 0.3)}' && break
    (( waited == 0 )) && log "  machine busy ($busy cores in use by others); waiting (at most ${QUIET_WAIT} s)"
    if (( waited >= QUIET_WAIT || QUIET_WAITED + waited >= QUIET_TOTAL )); then
      log "  still busy after ${waited} s; going on"; break
    fi
    sleep 8; waited=$((waited + 10))
  done
  QUIET_WAITED=$((QUIET_WAITED + waited))
}
drop_caches() {
  sync
  if (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then DROP_OK=$((DROP_OK + 1)); else DROP_FAIL=$((DROP_FAIL + 1)); fi
}

# timed TOOL STEP CMD... : drop caches, run CMD as postgres under /usr/bin/time.
# Records TOOL:STEP-s and TOOL:STEP-rss (KiB); returns the command's exit status.
timed() {
  local tool=$1 step=$2; shift 2
  local base="$LOGDIR/$tool-$step" secs rss rc
  local usr sys b0 b1 other
  wait_quiet
  drop_caches
  log "$tool: $step"
  rm -f "$base.time"
  b0=$(cpu_busy)
  as_pg /usr/bin/time -f '%e %M %U %S' -o "$base.time" "$@" > "$base.out" 2> "$base.err"
  rc=$?
  # Written data reaches the disk before the step counts as done (a tool that does not
  # fsync leaves that work to this sync, or to PostgreSQL's start-up sync of a restore).
  local s0 s1 tool_secs sync_secs
  s0=$(date +%s.%N); sync; s1=$(date +%s.%N)
  b1=$(cpu_busy)
  read -r tool_secs rss usr sys < <(tail -n1 "$base.time" 2>/dev/null)
  sync_secs=$(awk -v a="$s0" -v b="$s1" 'BEGIN {printf "%.2f", b - a}')
  secs=$(awk -v a="${tool_secs:-0}" -v b="$sync_secs" 'BEGIN {printf "%.2f", a + b}')
  rec "$tool" "$step-tool-s" "${tool_secs:-}"; rec "$tool" "$step-sync-s" "$sync_secs"
  # CPU seconds used by anything but the tool (and its children) while it ran; the
  # PostgreSQL server's share (checkpoint, backup functions) is in it but small.
  other=$(awk -v a="$b0" -v b="$b1" -v hz="$HZ" -v u="${usr:-0}" -v s="${sys:-0}" \
    'BEGIN {o = (b - a) / hz - u - s; printf "%.1f", o < 0 ? 0 : o}')
  rec "$tool" "$step-othercpu" "$other"
  if awk -v o="$other" -v w="${secs:-0}" 'BEGIN {exit !(o > 0.2 * w + 0.5)}'; then
    DISTURBED["$tool:$step"]=1
    log "  (other processes used $other CPU s during this step: marked *)"
  fi
  if (( rc != 0 )); then
    fail "$tool" "$step" "$base.err" "$@"
    rec "$tool" "$step-s" "FAIL"
    return $rc
  fi
  rec "$tool" "$step-s" "$secs"; rec "$tool" "$step-rss" "$rss"
  log "  ${secs} s (sync ${sync_secs} s of it), peak RSS $((rss / 1024)) MiB"
  return 0
}

repo_bytes() { du -sb "$1" 2>/dev/null | cut -f1; }
# Everything written so far archived, so repository growth belongs to the next step only.
settle_archive() { q "SELECT pg_switch_wal()" >/dev/null; wait_archive_drained 300 || log "  (WAL archive backlog not drained)"; }

# ---------------------------------------------------------------- cluster
PGLOG="$LOGDIR/postgres.log"
if [[ $reuse_data == no ]]; then
  rm -rf "$DATA" "$WORKDIR/data.marker" "$WORKDIR/data.rounds"
  install -d -o postgres -g postgres -m 700 "$DATA"
  log "initdb --data-checksums in $DATA"
  as_pg initdb -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C --data-checksums \
    > "$LOGDIR/initdb.log" 2>&1 || die "initdb failed (see $LOGDIR/initdb.log)"
fi
# Settings at the end of postgresql.conf (rewritten each run: the port changes).
sed -i '/^# pg_vs_pgbackrest begin/,/^# pg_vs_pgbackrest end/d' "$DATA/postgresql.conf"
rm -f "$DATA/postgresql.auto.conf"
as_pg touch "$DATA/postgresql.auto.conf"
cat >> "$DATA/postgresql.conf" <<EOF
# pg_vs_pgbackrest begin
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
shared_buffers = 512MB
max_wal_size = 2GB
wal_level = replica
archive_mode = on
archive_command = '/bin/true'
archive_timeout = 0
max_wal_senders = 4
logging_collector = off
# pg_vs_pgbackrest end
EOF
log "starting PostgreSQL $(postgres --version | awk '{print $3}') on 127.0.0.1:$PORT"
RUNNING+=("$DATA")
as_pg pg_ctl -D "$DATA" -l "$PGLOG" -w -t 120 start > /dev/null || die "PostgreSQL did not start (see $PGLOG)"
prioritize "$(postmaster_pid "$DATA")"

set_archive_command() {  # and wait until the archiver uses it
  local cmd=$1
  q "ALTER SYSTEM SET archive_command = '${cmd//\'/\'\'}'" && q "SELECT pg_reload_conf()" >/dev/null
  sleep 1
}
ready_count() {
  q "SELECT count(*) FROM pg_ls_dir('pg_wal/archive_status') WHERE pg_ls_dir LIKE '%.ready'" 2>/dev/null
}
wait_archive_drained() {  # wait_archive_drained TIMEOUT_S -> 0 when no .ready left
  local i n
  for ((i = 0; i < $1; i++)); do
    n=$(ready_count); [[ $n == 0 ]] && return 0
    sleep 1
  done
  return 1
}

# ---------------------------------------------------------------- data set
if [[ $DATASET == pgbench ]]; then MAIN_TABLE=pgbench_accounts; else MAIN_TABLE=reservations; fi
load_reservations_sql() {  # fallback when tests/pg/reservations.py is absent: SQL only
  local n=$(( SIZE_MIB * 1048576 / 1100 ))   # ~1.1 KB per reservation incl. guest, payments, indexes
  q "CREATE EXTENSION IF NOT EXISTS pgcrypto" >/dev/null
  psqlc <<EOF
CREATE TABLE guests (id uuid PRIMARY KEY, full_name text, email text, phone text, notes text);
CREATE TABLE reservations (id uuid PRIMARY KEY, guest_id uuid REFERENCES guests(id), hotel text,
  room int, check_in date, check_out date, status text, notes text, created_at timestamptz);
CREATE TABLE payments (id uuid PRIMARY KEY, reservation_id uuid REFERENCES reservations(id),
  amount numeric(12,2), currency char(3), card_last4 char(4), paid_at timestamptz);
INSERT INTO guests SELECT md5('1:g:' || g)::uuid,
  (ARRAY['Anna','Ben','Chloe','David','Emma','Felix','Grace','Hugo','Ines','Jonas'])[1 + (random() * 9)::int]
   || ' ' || (ARRAY['Smith','Mueller','Rossi','Garcia','Dubois','Novak','Jansen','Kowalski'])[1 + (random() * 7)::int],
  'guest' || g || '@' || (ARRAY['gmail.com','web.de','proton.me','outlook.com'])[1 + (random() * 3)::int],
  '+' || (30 + (random() * 60)::int) || ' ' || lpad((random() * 999999999)::bigint::text, 9, '0'),
  CASE WHEN random() < 0.5 THEN 'prefers ' || md5(g::text) ELSE NULL END
  FROM generate_series(0, $n / 3) g;
INSERT INTO reservations SELECT md5('1:r:' || i)::uuid, md5('1:g:' || (i / 3))::uuid,
  (ARRAY['Grand Hotel','Seaside Resort','Alpine Lodge','City Inn'])[1 + (random() * 3)::int],
  100 + (random() * 1200)::int, d, d + 1 + (random() * 10)::int,
  (ARRAY['booked','confirmed','checked_in','checked_out','cancelled'])[1 + (random() * 4)::int],
  (ARRAY['late arrival','early check-in','quiet room please','needs a baby cot','sea view'])[1 + (random() * 4)::int]
   || '; ref ' || upper(substr(md5(random()::text), 1, 8)) || '; ' || repeat('x', (random() * 60)::int),
  now() - i * interval '40 seconds'
  FROM (SELECT i, date '2024-01-01' + (random() * 700)::int AS d FROM generate_series(0, $n) i) s;
INSERT INTO payments SELECT md5('1:p:' || i || ':1')::uuid, md5('1:r:' || i)::uuid,
  round((40 + random() * 2000)::numeric, 2), (ARRAY['EUR','USD','GBP'])[1 + (random() * 2)::int],
  lpad(((random() * 9999)::int)::text, 4, '0'), now() - i * interval '40 seconds'
  FROM generate_series(0, $n) i WHERE random() < 0.88;
VACUUM ANALYZE;
EOF
}

if [[ $reuse_data == yes ]]; then
  log "reusing the loaded cluster ($DATA_MARKER)"
else
  q "CREATE DATABASE $DB" -d postgres || die "CREATE DATABASE failed"
  t0=$(date +%s)
  if [[ $DATASET == pgbench ]]; then
    log "loading pgbench -i -s $SCALE"
    pgbench -i -s "$SCALE" -I dtGvp -q > "$LOGDIR/load.log" 2>&1 || die "pgbench -i failed (see $LOGDIR/load.log)"
  elif [[ -n $RES_PY ]]; then
    log "loading reservations ($SIZE_MIB MiB) with tests/pg/reservations.py"
    /usr/bin/python3 "$RES_PY" load --size-mib "$SIZE_MIB" > "$LOGDIR/load.log" 2>&1 ||
      die "reservations.py load failed (see $LOGDIR/load.log)"
  else
    log "loading reservations ($SIZE_MIB MiB) with the SQL generator"
    load_reservations_sql > "$LOGDIR/load.log" 2>&1 || die "SQL load failed (see $LOGDIR/load.log)"
  fi
  q "CHECKPOINT"
  log "  loaded in $(( $(date +%s) - t0 )) s"
  echo "$DATA_MARKER" > "$WORKDIR/data.marker"
fi
if [[ $DATASET == pgbench ]]; then CHANGE_TABLES=(pgbench_accounts); else CHANGE_TABLES=(reservations payments guests); fi
q "VACUUM ANALYZE" ; q "CHECKPOINT"
DB_BYTES=$(q "SELECT pg_database_size('$DB')")
DATA_BYTES=$(du -sb --exclude=pg_wal "$DATA" | cut -f1)
EXPECT_COUNT=$(q "SELECT count(*) FROM $MAIN_TABLE")
log "database $DB: $((DB_BYTES / 1048576)) MiB, data dir without pg_wal $((DATA_BYTES / 1048576)) MiB, $MAIN_TABLE: $EXPECT_COUNT rows"

# Change ~1.5% for an incremental backup: round K (0, 1, ...) updates other rows each time.
change_sql() {
  local k=$1 t where set
  for t in "${CHANGE_TABLES[@]}"; do
    if [[ $CHANGE == blocks ]]; then where="((ctid::text::point)[0])::bigint % 67 = $k"
    elif [[ $t == pgbench_accounts ]]; then where="aid % 67 = $k"
    else where="abs(hashtext(id::text)) % 67 = $k"; fi
    case "$t" in
      pgbench_accounts) set="abalance = abalance + 1" ;;
      reservations) set="status = CASE WHEN status = 'checked_out' THEN 'cancelled' ELSE 'checked_out' END" ;;
      payments) set="amount = amount + 0.01" ;;
      guests) set="phone = coalesce(phone, '') || '0'" ;;
    esac
    echo "UPDATE $t SET $set WHERE $where;"
  done
}
ROUND=$(cat "$WORKDIR/data.rounds" 2>/dev/null || echo 0)   # a reused cluster goes on with new rows
[[ $ROUND =~ ^[0-9]+$ ]] || ROUND=0
apply_change() {  # apply_change TOOL: rows changed and WAL written recorded
  local tool=$1 lsn0 out rows
  lsn0=$(q "SELECT pg_current_wal_lsn()")
  out=$(change_sql "$ROUND" | psqlc 2>&1 -c '\set QUIET off' -f - ) || { fail "$tool" change "/dev/null" "$(change_sql $ROUND)"; }
  rows=$(grep -o 'UPDATE [0-9]*' <<< "$out" | awk '{s += $2} END {print s + 0}')
  q "CHECKPOINT"
  rec "$tool" change-rows "$rows"
  rec "$tool" change-wal "$(q "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0')")"
  ROUND=$(( (ROUND + 1) % 67 ))
  echo "$ROUND" > "$WORKDIR/data.rounds"
  log "$tool: changed $rows rows (--change $CHANGE, residue $(( (ROUND + 66) % 67 )) of 67)"
}

# ---------------------------------------------------------------- restore check
# verify_restore TOOL DIR: start DIR on PORT2 with its recovery settings (archiving off),
# wait for the end of recovery, compare count(*) of the main table.
verify_restore() {
  local tool=$1 dir=$2 t0 i rec_state cnt
  log "$tool: starting the restored cluster on port $PORT2 (recovery)"
  t0=$(date +%s.%N)
  RUNNING+=("$dir")
  if ! as_pg pg_ctl -D "$dir" -l "$LOGDIR/$tool-restored-postgres.log" -w -t 900 \
        -o "-p $PORT2 -c listen_addresses=127.0.0.1 -c unix_socket_directories=$SOCK -c archive_mode=off" \
        start > "$LOGDIR/$tool-restored-start.out" 2>&1; then
    fail "$tool" "restored cluster start" "$LOGDIR/$tool-restored-postgres.log" pg_ctl -D "$dir" start
    stop_cluster "$dir"; rec "$tool" verify "FAIL (start)"; return 1
  fi
  prioritize "$(postmaster_pid "$dir")"
  for ((i = 0; i < 900; i++)); do
    rec_state=$(q "SELECT pg_is_in_recovery()" -p "$PORT2" 2>/dev/null)
    [[ $rec_state == f ]] && break
    sleep 1
  done
  rec "$tool" verify-s "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')"
  cnt=$(q "SELECT count(*) FROM $MAIN_TABLE" -p "$PORT2" 2>&1)
  stop_cluster "$dir"
  if [[ $rec_state != f ]]; then
    fail "$tool" "recovery of the restored cluster (still in recovery after 900 s)" \
      "$LOGDIR/$tool-restored-postgres.log" pg_ctl -D "$dir" start
    rec "$tool" verify "FAIL (recovery)"; return 1
  fi
  if [[ $cnt == "$EXPECT_COUNT" ]]; then
    rec "$tool" verify "ok ($cnt rows)"; log "  restored cluster OK: $cnt rows in $MAIN_TABLE"
  else
    echo "count: $cnt, expected $EXPECT_COUNT" >> "$LOGDIR/$tool-restored-postgres.log"
    fail "$tool" "restore check (count(*) $cnt, expected $EXPECT_COUNT)" "$LOGDIR/$tool-restored-postgres.log" \
      psql -p "$PORT2" -c "SELECT count(*) FROM $MAIN_TABLE"
    rec "$tool" verify "FAIL (count $cnt)"
  fi
}

# ---------------------------------------------------------------- lifeboat
LBDIR="$WORKDIR/lifeboat"
lb_setup() {  # lb_setup DIR: repository DIR/repo, key file DIR/key, cache DIR/cache
  local d=$1
  install -d -o postgres -g postgres -m 700 "$d" "$d/cache"
  (umask 077 && head -c 24 /dev/urandom | base64 > "$d/password")
  chown postgres:postgres "$d/password"; chmod 600 "$d/password"
  as_pg env LIFEBOAT_PASSWORD_FILE="$d/password" LIFEBOAT_CACHE_DIR="$d/cache" "$LB" init --repo "$d/repo" \
    > "$LOGDIR/lb-init-$(basename "$d").log" 2>&1 || return 1
  as_pg env LIFEBOAT_PASSWORD_FILE="$d/password" LIFEBOAT_CACHE_DIR="$d/cache" "$LB" --repo "$d/repo" \
    key add --generate-key-file "$d/key" >> "$LOGDIR/lb-init-$(basename "$d").log" 2>&1 || return 1
  chown postgres:postgres "$d/key"; chmod 600 "$d/key"
}
lb_cmd() {  # the lifeboat command line for repository dir $1 (as argv words)
  echo "env LIFEBOAT_CACHE_DIR=$1/cache $LB --repo $1/repo --key-file $1/key"
}
lb_archive_command() { echo "LIFEBOAT_CACHE_DIR=$1/cache $LB --repo $1/repo --key-file $1/key pg wal-push %p"; }
json_field() {  # json_field FILE KEY: first value of KEY anywhere in the JSON document(s) of FILE
  python3 - "$1" "$2" <<'EOF' 2>/dev/null
import json, sys
text = open(sys.argv[1]).read()
def find(o, k):
    if isinstance(o, dict):
        if k in o: return o[k]
        for v in o.values():
            r = find(v, k)
            if r is not None: return r
    elif isinstance(o, list):
        for v in o:
            r = find(v, k)
            if r is not None: return r
    return None
dec, i, docs = json.JSONDecoder(), 0, []
while i < len(text):
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    try:
        o, i = dec.raw_decode(text, i); docs.append(o)
    except ValueError:
        nl = text.find("\n", i); i = len(text) if nl < 0 else nl + 1
for o in reversed(docs):
    r = find(o, sys.argv[2])
    if r is not None:
        print(r); break
EOF
}

bench_lifeboat() {
  local tool=lifeboat b0 b1 out="$WORKDIR/restore-lifeboat" LBC
  log "lifeboat: $("$LB" --version 2>&1 | head -n1)"
  lb_setup "$LBDIR" || { fail lifeboat setup "$LOGDIR/lb-init-lifeboat.log" "$LB" init / key add; return; }
  read -r -a LBC <<< "$(lb_cmd "$LBDIR")"
  wait_archive_drained 120
  set_archive_command "$(lb_archive_command "$LBDIR")"
  settle_archive; b0=$(repo_bytes "$LBDIR/repo")
  if timed lifeboat full "${LBC[@]}" --json pg backup --type full; then
    b1=$(repo_bytes "$LBDIR/repo"); rec lifeboat full-bytes $((b1 - b0))
    rec lifeboat full-stored "$(json_field "$LOGDIR/lifeboat-full.out" bytes_stored)"
  fi
  b0=$(repo_bytes "$LBDIR/repo")
  apply_change lifeboat
  settle_archive; b1=$(repo_bytes "$LBDIR/repo"); rec lifeboat change-archived $((b1 - b0))
  b0=$b1
  if timed lifeboat incr "${LBC[@]}" --json pg backup --type incr; then
    b1=$(repo_bytes "$LBDIR/repo"); rec lifeboat incr-bytes $((b1 - b0))
    rec lifeboat incr-stored "$(json_field "$LOGDIR/lifeboat-incr.out" bytes_stored)"
  fi
  rm -rf "$out"; install -d -o postgres -g postgres -m 700 "$out"
  if timed lifeboat restore "${LBC[@]}" pg restore --pgdata "$out"; then
    verify_restore lifeboat "$out"
  fi
  rm -rf "$out"
}

# ---------------------------------------------------------------- pgBackRest
pgbr_conf() {  # pgbr_conf CFG DIR: writes DIR/pgbackrest.conf for configuration CFG, prints its path
  local cfg=$1 d=$2
  install -d -o postgres -g postgres -m 700 "$d" "$d/log" "$d/lock" "$d/spool"
  local pass; pass=$(head -c 24 /dev/urandom | base64)
  {
    echo "[global]"
    echo "repo1-path=$d/repo"
    echo "repo1-retention-full=99"
    echo "repo1-cipher-type=aes-256-cbc"
    echo "repo1-cipher-pass=$pass"
    echo "process-max=2"
    echo "start-fast=y"
    echo "log-path=$d/log"
    echo "lock-path=$d/lock"
    echo "spool-path=$d/spool"
    echo "log-level-console=warn"
    echo "archive-timeout=300"
    case "$cfg" in
      zst1) echo "compress-type=zst"; echo "compress-level=1" ;;
      gz) echo "compress-type=gz" ;;
      block) echo "compress-type=zst"; echo "compress-level=1"
             echo "repo1-bundle=y"; echo "repo1-block=y"; echo "beta=y" ;;
    esac
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

bench_pgbackrest() {
  local cfg=$1 d="$WORKDIR/pgbr-$1" conf b0 b1 out="$WORKDIR/restore-$1"
  conf=$(pgbr_conf "$cfg" "$d")
  local PB=("$PGBACKREST" "--config=$conf" --stanza=bench)
  if ! as_pg "${PB[@]}" stanza-create > "$LOGDIR/$cfg-stanza-create.log" 2>&1; then
    fail "$cfg" stanza-create "$LOGDIR/$cfg-stanza-create.log" "${PB[@]}" stanza-create; return
  fi
  wait_archive_drained 120
  set_archive_command "$PGBACKREST --config=$conf --stanza=bench archive-push %p"
  settle_archive; b0=$(repo_bytes "$d/repo")
  if timed "$cfg" full "${PB[@]}" --type=full backup; then
    b1=$(repo_bytes "$d/repo"); rec "$cfg" full-bytes $((b1 - b0))
  fi
  b0=$(repo_bytes "$d/repo")
  apply_change "$cfg"
  settle_archive; b1=$(repo_bytes "$d/repo"); rec "$cfg" change-archived $((b1 - b0))
  b0=$b1
  if timed "$cfg" incr "${PB[@]}" --type=incr backup; then
    b1=$(repo_bytes "$d/repo"); rec "$cfg" incr-bytes $((b1 - b0))
  fi
  as_pg "${PB[@]}" info > "$LOGDIR/$cfg-info.txt" 2>&1
  rm -rf "$out"; install -d -o postgres -g postgres -m 700 "$out"
  if timed "$cfg" restore "${PB[@]}" "--pg1-path=$out" restore; then
    verify_restore "$cfg" "$out"
  fi
  rm -rf "$out"
}

# ---------------------------------------------------------------- floor
if (( FLOOR )); then
  wait_quiet
  drop_caches
  log "floor: tar -cf - --exclude=pg_wal DATADIR | zstd -1 -T2"
  /usr/bin/time -f '%e %M' -o "$LOGDIR/floor.time" bash -c \
    "tar -cf - --exclude=pg_wal -C '$WORKDIR' data 2>'$LOGDIR/floor.err' | zstd -1 -T2 | wc -c > '$LOGDIR/floor.bytes'"
  read -r secs rss < <(tail -n1 "$LOGDIR/floor.time")
  rec floor full-s "$secs"; rec floor full-rss "$rss"; rec floor full-bytes "$(cat "$LOGDIR/floor.bytes")"
  log "  $secs s, $(( $(cat "$LOGDIR/floor.bytes") / 1048576 )) MiB"
fi

# ---------------------------------------------------------------- backups and restores
# One unmeasured change first: the first UPDATE after the load has no free space to put
# new row versions in and appends them (more pages, more WAL); after it and a VACUUM every
# tool's change finds the same kind of free space.
apply_change warmup
for t in "${TOOLS[@]}"; do
  q "VACUUM" ; q "CHECKPOINT"   # the same settled state before every tool's full backup
  case "$t" in
    lifeboat) bench_lifeboat ;;
    *) bench_pgbackrest "$t" ;;
  esac
done

# ---------------------------------------------------------------- WAL: real segments
# Traffic: pgbench's TPC-B on the pgbench data set; on the reservations data set a custom
# script (status update by uuid + a new payment), both write-heavy with random index access.
TRAFFIC=()
if [[ $DATASET == pgbench ]]; then
  TRAFFIC=(-n)
else
  NRES=$(q "SELECT count(*) FROM reservations")
  cat > "$WORKDIR/traffic.sql" <<EOF
\\set i random(0, $((NRES - 1)))
UPDATE reservations SET status = 'confirmed' WHERE id = md5('1:r:' || :i)::uuid;
INSERT INTO payments (id, reservation_id, amount, currency, card_last4, paid_at)
  VALUES (gen_random_uuid(), md5('1:r:' || :i)::uuid, round((random() * 900)::numeric, 2), 'EUR', '4242', now());
EOF
  TRAFFIC=(-n -f "$WORKDIR/traffic.sql")
  # reservations.py ids are md5('1:r:' || i); the SQL fallback uses the same scheme.
fi

WALCOPY="$WORKDIR/walcopy"
install -d -o postgres -g postgres -m 700 "$WALCOPY"
wait_archive_drained 120
set_archive_command "test ! -f $WALCOPY/%f && cp %p $WALCOPY/%f"
log "collecting $WAL_SEGS real WAL segments (archive_command = cp, pgbench traffic)"
pgbench -c 4 -j 2 -T 600 "${TRAFFIC[@]}" > "$LOGDIR/walcollect-pgbench.log" 2>&1 &
pgb_pid=$!; BGPIDS+=("$pgb_pid")
for ((i = 0; i < 600; i++)); do
  n=$(find "$WALCOPY" -maxdepth 1 -regextype egrep -regex '.*/[0-9A-F]{24}' | wc -l)
  (( n >= WAL_SEGS + 1 )) && break
  kill -0 "$pgb_pid" 2>/dev/null || break
  sleep 1
done
kill "$pgb_pid" 2>/dev/null; wait "$pgb_pid" 2>/dev/null
mapfile -t SEGS < <(find "$WALCOPY" -maxdepth 1 -regextype egrep -regex '.*/[0-9A-F]{24}' | sort | head -n "$WAL_SEGS")
log "  ${#SEGS[@]} segments ($(du -sb "$WALCOPY" | awk '{printf "%.0f", $1 / 1048576}') MiB in $WALCOPY)"
rec wal segments "${#SEGS[@]}"
if (( ${#SEGS[@]} > 0 )); then
  rec wal zstd1-ratio "$(cat "${SEGS[@]}" | zstd -1 -T1 -c | wc -c | awk -v n="$(cat "${SEGS[@]}" | wc -c)" '{printf "%.2f", n / $1}')"
fi

# walpush_bench TOOL CMD...: CMD SEGMENT once per segment, as postgres, each call timed.
walpush_bench() {
  local tool=$1; shift
  local lf="$LOGDIR/$tool-walpush"
  wait_quiet
  log "$tool: WAL push of ${#SEGS[@]} segments, one process each"
  as_pg bash -c '
    for f in "${@:2}"; do
      t0=$(date +%s%N)
      if eval "$1 \"\$f\"" >>"'"$lf"'.out" 2>&1; then ok=1; else ok=0; fi
      t1=$(date +%s%N)
      echo "$(( (t1 - t0) / 1000 )) $ok"
    done' _ "$*" "${SEGS[@]}" > "$lf.us"
  local nfail; nfail=$(awk '$2 != 1' "$lf.us" | wc -l)
  if (( nfail > 0 )); then
    fail "$tool" "wal-push ($nfail of ${#SEGS[@]} calls failed)" "$lf.out" "$@" SEGMENT
  fi
  rec "$tool" walpush-median-ms "$(awk '{print $1}' "$lf.us" | sort -n |
    awk '{v[NR] = $1} END {if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", m / 1000}')"
  rec "$tool" walpush-segs "$(awk '{s += $1; n++} END {printf "%.1f", n / (s / 1e6)}' "$lf.us")"
  log "  median ${R[$tool:walpush-median-ms]} ms, ${R[$tool:walpush-segs]} segments/s"
}
if (( ${#SEGS[@]} > 0 )); then
  for t in "${TOOLS[@]}"; do
    d="$WORKDIR/walbench-$t"
    if [[ $t == lifeboat ]]; then
      if lb_setup "$d"; then
        walpush_bench lifeboat "$(lb_cmd "$d")" pg wal-push
        rec lifeboat walpush-repo-bytes "$(repo_bytes "$d/repo")"
      else
        fail lifeboat "wal-push setup" "$LOGDIR/lb-init-walbench-lifeboat.log" "$LB" init
      fi
    else
      conf=$(pgbr_conf "$t" "$d")
      if as_pg "$PGBACKREST" "--config=$conf" --stanza=bench stanza-create > "$LOGDIR/$t-walbench-stanza.log" 2>&1; then
        walpush_bench "$t" "$PGBACKREST" "--config=$conf" --stanza=bench archive-push
        rec "$t" walpush-repo-bytes "$(repo_bytes "$d/repo")"
      else
        fail "$t" "wal-push stanza-create" "$LOGDIR/$t-walbench-stanza.log" "$PGBACKREST" stanza-create
      fi
    fi
    rm -rf "$d"
  done
fi

# ---------------------------------------------------------------- keep-up test
keepup() {  # keepup TOOL ARCHIVE_COMMAND
  local tool=$1 cmd=$2 lf="$LOGDIR/$1-keepup" fail0 fail1 arch0 arch1 lsn0 max=0 endn drain t0 i n
  wait_archive_drained 300 || log "  (archive backlog not drained before $tool keep-up test)"
  wait_quiet
  set_archive_command "$cmd"
  q "CHECKPOINT"
  read -r arch0 fail0 < <(q "SELECT archived_count || ' ' || failed_count FROM pg_stat_archiver" | tr '|' ' ')
  lsn0=$(q "SELECT pg_current_wal_lsn()")
  log "$tool: keep-up test, pgbench -c 4 -j 2 -T $KEEPUP_S ${TRAFFIC[*]}"
  local c0 p0 c1 p1 pgb_cpu other
  c0=$(cpu_busy); p0=$(pg_tree_cpu "$DATA")
  /usr/bin/time -f '%U %S' -o "$lf-pgbench.time" \
    pgbench -c 4 -j 2 -T "$KEEPUP_S" "${TRAFFIC[@]}" > "$lf-pgbench.log" 2>&1 &
  local pid=$!; BGPIDS+=("$pid")
  : > "$lf.samples"
  while kill -0 "$pid" 2>/dev/null; do
    n=$(ready_count); [[ -n $n ]] && { echo "$(date +%s) $n" >> "$lf.samples"; (( n > max )) && max=$n; }
    sleep 1
  done
  wait "$pid"
  c1=$(cpu_busy); p1=$(pg_tree_cpu "$DATA")
  pgb_cpu=$(tail -n1 "$lf-pgbench.time" | awk '{print $1 + $2}')
  # CPU s of everything but PostgreSQL (archive_command included) and pgbench.
  other=$(awk -v a="$c0" -v b="$c1" -v p="$((p1 - p0))" -v g="${pgb_cpu:-0}" -v hz="$HZ" \
    'BEGIN {o = (b - a - p) / hz - g; printf "%.1f", o < 0 ? 0 : o}')
  rec "$tool" keepup-othercpu "$other"
  rec "$tool" keepup-pgcpu "$(awk -v p="$((p1 - p0))" -v hz="$HZ" 'BEGIN {printf "%.1f", p / hz}')"
  if awk -v o="$other" -v w="$KEEPUP_S" 'BEGIN {exit !(o > 0.2 * w)}'; then
    DISTURBED["$tool:keepup"]=1
    log "  (other processes used $other CPU s during the keep-up run: marked *)"
  fi
  endn=$(ready_count)
  rec "$tool" keepup-wal-mib "$(q "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0') / 1048576)")"
  rec "$tool" keepup-tps "$(grep -m1 -o 'tps = [0-9.]*' "$lf-pgbench.log" | awk '{printf "%.0f", $3}')"
  t0=$(date +%s)
  for ((i = 0; i < 600; i++)); do
    n=$(ready_count); (( n > max )) && max=$n
    [[ $n == 0 ]] && break
    sleep 1
  done
  drain=$(( $(date +%s) - t0 ))
  read -r arch1 fail1 < <(q "SELECT archived_count || ' ' || failed_count FROM pg_stat_archiver" | tr '|' ' ')
  rec "$tool" keepup-max "$max"; rec "$tool" keepup-end "$endn"; rec "$tool" keepup-drain-s "$drain"
  rec "$tool" keepup-archived "$((arch1 - arch0))"; rec "$tool" keepup-failed "$((fail1 - fail0))"
  if (( fail1 > fail0 )); then
    grep -iE 'archive command failed|error' "$PGLOG" | tail -n 5 > "$lf.errors"
    fail "$tool" "archive_command during the keep-up test ($((fail1 - fail0)) failures)" "$lf.errors" "$cmd"
  fi
  log "  backlog max $max, at the end $endn, drained ${drain} s later; $((arch1 - arch0)) segments archived"
}
for t in "${KEEPUP_TOOLS[@]}"; do
  [[ -n $t ]] || continue
  if [[ $t == lifeboat ]]; then
    [[ -f $LBDIR/key ]] || { lb_setup "$LBDIR" || continue; }
    keepup lifeboat "$(lb_archive_command "$LBDIR")"
  else
    conf="$WORKDIR/pgbr-$t/pgbackrest.conf"
    if [[ ! -f $conf ]]; then
      conf=$(pgbr_conf "$t" "$WORKDIR/pgbr-$t")
      as_pg "$PGBACKREST" "--config=$conf" --stanza=bench stanza-create > "$LOGDIR/$t-stanza-create.log" 2>&1 || continue
    fi
    keepup "$t" "$PGBACKREST --config=$conf --stanza=bench archive-push %p"
  fi
done
set_archive_command "/bin/true"

# ---------------------------------------------------------------- report
COLS=(lifeboat zst1 gz block floor)
declare -A LABEL=([lifeboat]="lifeboat" [zst1]="pgBackRest zst1" [gz]="pgBackRest gz"
                  [block]="pgBackRest zst1 block-incr" [floor]="tar\\|zstd -1 floor")
have() { local t; for t in "${TOOLS[@]}"; do [[ $t == "$1" ]] && return 0; done; [[ $1 == floor ]] && (( FLOOR )); }
val() { echo "${R[$1:$2]:-}"; }
mib() { local v; v=$(val "$1" "$2"); [[ $v =~ ^-?[0-9]+$ ]] && awk -v b="$v" 'BEGIN {printf "%.0f", b / 1048576}' || echo "$v"; }
kib2mib() { local v; v=$(val "$1" "$2"); [[ $v =~ ^[0-9]+$ ]] && echo $((v / 1024)) || echo "$v"; }
cell() {  # cell METRIC-KIND TOOL
  local t=$2 a b
  case "$1" in
    full-s|incr-s|restore-s) echo "$(val "$t" "$1")${DISTURBED[$t:${1%-s}]:+*}" ;;
    verify-s|walpush-median-ms|walpush-segs) val "$t" "$1" ;;
    full-mib|incr-mib|change-archived-mib) mib "$t" "${1%-mib}-bytes" ;;
    change-archived) mib "$t" change-archived ;;
    verify) val "$t" verify ;;
    keepup) a=$(val "$t" keepup-max); b=$(val "$t" keepup-end)
            [[ -n $a ]] && echo "$a (end $b, drained in $(val "$t" keepup-drain-s) s)${DISTURBED[$t:keepup]:+*}" ;;
    rss) a=$(kib2mib "$t" full-rss); b=$(kib2mib "$t" restore-rss)
         [[ -n $a || -n $b ]] && echo "${a:--} / ${b:--}" ;;
  esac
}
row() {  # row LABEL KIND [COLUMNS...]
  local label=$1 kind=$2 t v line="| $1 |"
  for t in "${COLS[@]}"; do
    have "$t" || continue
    v=$(cell "$kind" "$t"); line+=" ${v:-–} |"
  done
  echo "$line"
}
if (( DROP_FAIL == 0 )); then caches="yes ($DROP_OK times)"; else caches="NOT always ($DROP_OK ok, $DROP_FAIL failed)"; fi
if [[ $DATASET == pgbench ]]; then ds="pgbench -i -s $SCALE"
elif [[ -n $RES_PY ]]; then ds="reservations (tests/pg/reservations.py load --size-mib $SIZE_MIB)"
else ds="reservations (SQL generator, ~$SIZE_MIB MiB)"; fi
{
  echo "## lifeboat vs pgBackRest: PostgreSQL $(postgres --version | awk '{print $3}'), $ds"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), host: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo), $(df -PT "$WORKDIR" | awk 'NR==2 {print $2}') work dir"
  echo "- data: database $((DB_BYTES / 1048576)) MiB, data dir without pg_wal $((DATA_BYTES / 1048576)) MiB, $MAIN_TABLE $EXPECT_COUNT rows; initdb --data-checksums"
  echo "- lifeboat: $("$LB" --version 2>&1 | head -n1), commit $(git -C "$REPO_ROOT" rev-parse -q --verify --short HEAD 2>/dev/null || echo none) (encrypted, zstd; --threads default = all cores)"
  echo "- pgBackRest: $("$PGBACKREST" version) with process-max=2, start-fast=y, repo1-cipher-type=aes-256-cbc (encrypted like lifeboat); block-incr = repo1-bundle=y repo1-block=y (beta=y)"
  echo "- incremental change (--change $CHANGE, after one unmeasured warm-up change + VACUUM): $( [[ $CHANGE == blocks ]] && echo "rows of every 67th heap block (~1.5% of heap pages, new versions elsewhere, plus index entries)" || echo "every 67th row (~1.5% of rows, spread over most pages)") of ${CHANGE_TABLES[*]}, then CHECKPOINT; per tool: $(for t in "${TOOLS[@]}"; do printf '%s %s rows/%s MiB WAL; ' "$t" "$(val "$t" change-rows)" "$(mib "$t" change-wal)"; done)"
  echo "- sizes are repository bytes added (du -sb before/after; before: pg_switch_wal and archive drained), so a backup's size includes only the WAL archived while it ran; the change's own WAL is its own row"
  echo "- times: the tool's wall time plus a sync right after it (tool-only and sync times in raw.tsv); page caches dropped before each timed step: $caches"
  echo "- restore s: the tool's restore (+ sync) only; each restore was then started with its recovery settings and count(*) checked (rows 'restore check')"
  echo "- WAL push: ${#SEGS[@]} real 16 MiB segments (zstd -1 ratio $(val wal zstd1-ratio)), one process per segment into a fresh repository, as archive_command would; seg/s = segments / sum of call times"
  echo "- keep-up: archive_command = the tool, pgbench -c 4 -j 2 -T $KEEPUP_S ${TRAFFIC[*]}; .ready files sampled every second (max, at the end of the run, time to drain)"
  echo "- priority: benchmark processes (PostgreSQL, tools) at: $RENICED"
  echo "- other load: each timed step waited for < 0.3 busy cores first (${QUIET_WAITED} s waited in all); * = other processes used > 20% of the step's wall time in CPU during it (see *-othercpu in raw.tsv)"
  echo "- peak RSS: GNU time %M, the largest single process (pgBackRest's process-max workers not summed)"
  echo
  hdr="| metric |"; sep="|---|"
  for t in "${COLS[@]}"; do have "$t" || continue; hdr+=" ${LABEL[$t]} |"; sep+="---|"; done
  echo "$hdr"; echo "$sep"
  row "full backup s (incl. sync)" full-s
  row "full size MiB" full-mib
  row "incr backup s (incl. sync)" incr-s
  row "incr added MiB" incr-mib
  row "WAL of the change, archived MiB" change-archived
  row "restore s (incl. sync)" restore-s
  row "restore check (start + recovery s)" verify-s
  row "restore check" verify
  row "wal-push median ms" walpush-median-ms
  row "wal-push seg/s" walpush-segs
  row "archive backlog max (.ready)" keepup
  row "peak RSS backup / restore MiB" rss
  if (( ${#KEEPUP_TOOLS[@]} )); then
    echo
    echo "Keep-up runs: $(for t in "${KEEPUP_TOOLS[@]}"; do [[ -n $(val "$t" keepup-max) ]] &&
      printf '%s: %s tps, %s MiB WAL, %s segments archived, %s archive failures, PostgreSQL+archiver %s CPU s, others %s CPU s; ' \
        "$t" "$(val "$t" keepup-tps)" "$(val "$t" keepup-wal-mib)" "$(val "$t" keepup-archived)" \
        "$(val "$t" keepup-failed)" "$(val "$t" keepup-pgcpu)" "$(val "$t" keepup-othercpu)"; done)"
  fi
  if (( ${#FAILS[@]} )); then
    echo
    echo "### Failures"
    for f in "${FAILS[@]}"; do echo "- $f"; done
  fi
} > "$RESULTS"
echo
cat "$RESULTS"
echo
log "results written to $RESULTS (raw values: $RAW, logs: $LOGDIR)"
