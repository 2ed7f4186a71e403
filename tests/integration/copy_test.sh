#!/usr/bin/env bash
# End-to-end tests of `lifeboat copy` between two local repositories with different
# passwords: round trip, a second copy that copies nothing, `init --copy-params-from`, kill -9
# at random moments and a resumed copy, filters, a wrong source password, a damaged source
# pack, dry runs, and the WAL archive (fake segments pushed with `pg wal-push`; a real
# cluster's, restored from the copy, is case_copy of tests/pg/pg_lifeboat_test.py).
#
# Usage: copy_test.sh [CASE...]   (default: every case; names as printed by PASS/FAIL)
# Env:   LIFEBOAT   the binary to test (default: build/lifeboat of this checkout)
#        COPY_SEED  seed of the kill moments (default: time; printed)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIFEBOAT=${LIFEBOAT:-$HERE/../../build/lifeboat}
COMPARE="python3 $HERE/compare_trees.py"
SEED=${COPY_SEED:-$(date +%s)}
if [[ ! -x $LIFEBOAT ]]; then
  echo "FAIL setup: no lifeboat binary at '$LIFEBOAT' (build it or set LIFEBOAT)" >&2
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-copy-test.XXXXXX")
cleanup() {
  chmod -R u+rwX "$WORK" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
echo "copy test: seed $SEED, work dir $WORK"

unset LIFEBOAT_PASSWORD LIFEBOAT_NEW_PASSWORD_FILE LIFEBOAT_REPO LIFEBOAT_PASSWORD_FILE
unset LIFEBOAT_KEY_FILE LIFEBOAT_FROM_REPO LIFEBOAT_FROM_PASSWORD LIFEBOAT_FROM_PASSWORD_FILE
unset LIFEBOAT_FROM_KEY_FILE
export LIFEBOAT_TEST_FAST_KDF=1

# ---- helpers (used inside a case; T is the case's directory) ----

fail() {
  echo "  $*" >&2
  return 1
}

# expect_rc WANT CMD...: stdout in $T/out, stderr in $T/err; fails unless CMD exits WANT.
expect_rc() {
  local want=$1 rc=0
  shift
  "$@" >"$T/out" 2>"$T/err.raw" || rc=$?
  sed -e 's/\r//g' -e 's/\x1b\[K//g' "$T/err.raw" >"$T/err"
  if [[ $rc != "$want" ]]; then
    echo "  expected exit $want, got $rc from: $*" >&2
    sed 's/^/  | out: /' "$T/out" | head -40 >&2
    sed 's/^/  | err: /' "$T/err" | head -40 >&2
    return 1
  fi
}

json_get() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$1" "$2"
}

flip_byte() {
  python3 - "$@" <<'EOF'
import sys
path = sys.argv[1]
with open(path, "r+b") as f:
    data = f.read()
    off = int(sys.argv[2]) if len(sys.argv) > 2 else len(data) // 3
    f.seek(off)
    f.write(bytes([data[off] ^ 0xFF]))
EOF
}

# The source repository A (LIFEBOAT_FROM_*) and the target B (LIFEBOAT_REPO, ...), with
# passwords and caches of their own. `a` and `b` run lifeboat on one of them.
new_repos() {
  printf 'source password A\n' >"$T/pwa"
  printf 'target password B\n' >"$T/pwb"
  export LIFEBOAT_REPO=$T/b LIFEBOAT_PASSWORD_FILE=$T/pwb LIFEBOAT_CACHE_DIR=$T/cache
  export LIFEBOAT_FROM_REPO=$T/a LIFEBOAT_FROM_PASSWORD_FILE=$T/pwa
  expect_rc 0 a init
  expect_rc 0 lb init
}
lb() { "$LIFEBOAT" "$@"; }
a() { "$LIFEBOAT" --repo "$T/a" --password-file "$T/pwa" "$@"; }

make_tree() {
  local d=$1 mib=${2:-3}
  mkdir -p "$d/sub/deeper" "$d/empty dir"
  head -c "${mib}M" /dev/urandom >"$d/big"
  head -c 1048583 /dev/urandom >"$d/sub/odd size"
  for i in $(seq 1 12); do printf 'small file %s of %s\n' "$i" "$d" >"$d/sub/small$i"; done
  yes "text in $d" | head -c 300K >"$d/sub/deeper/text" || true
  : >"$d/empty"
  ln -s sub/deeper/text "$d/link"
  chmod 0640 "$d/sub/small3"
  touch -d '2001-02-03 04:05:06.789 UTC' "$d/sub/small4"
}

# Snapshots of a repository as "original-or-id time kind source paths tags", sorted.
identities() {
  "$@" --json snapshots >"$T/snaps.json"
  python3 - "$T/snaps.json" <<'EOF'
import json, sys
for s in sorted(json.load(open(sys.argv[1])), key=lambda s: (s["time"], s["id"])):
    print(s.get("original", s["id"]), s["time"], s["kind"], s["source"], s["host"],
          " ".join(s["paths"]), " ".join(s["tags"]))
EOF
}

# B holds exactly A's snapshots (by original, each once, same metadata), passes check
# --read-data, and restores the latest files snapshot to the same bytes as A.
expect_same() {
  identities a >"$T/ids-a"
  identities lb >"$T/ids-b"
  diff -u "$T/ids-a" "$T/ids-b" >&2 || fail "the target's snapshots differ from the source's"
  expect_rc 0 lb check --read-data
  rm -rf "$T/restore-a" "$T/restore-b"
  expect_rc 0 a restore latest --target "$T/restore-a"
  expect_rc 0 lb restore latest --target "$T/restore-b"
  touch -r "$T/restore-a" "$T/restore-b"  # the target directory itself is not restored
  $COMPARE "$T/restore-a" "$T/restore-b" || fail "restores from A and B differ"
}

# Every object of a repository except locks and audit records (a command's audit record is
# written into the repositories it opened, whatever the command did), with its size.
listing() {
  (cd "$1" && find . -type f ! -path './locks/*' ! -path './audit/*' -printf '%p %s\n' | sort)
}

# ---- cases ----

case_round_trip() {
  new_repos
  make_tree "$T/src"
  expect_rc 0 a backup files "$T/src" --tag daily
  expect_rc 0 lb --json copy
  [[ $(json_get "$T/out" 'd["snapshots_copied"]') == 1 ]] || fail "first copy copied no snapshot"
  [[ $(json_get "$T/out" 'd["same_id_key"]') == False ]] || fail "independent repositories share ids"
  grep -q '^copied snapshot' "$T/err" || fail "no progress line on stderr"
  expect_rc 0 lb restore latest --target "$T/restore"
  $COMPARE "$T/src" "$T/restore$T/src" || fail "restore from the copy differs from the source tree"
  expect_same

  # Again: nothing to copy, nothing read, nothing written.
  listing "$T/b" >"$T/before"
  expect_rc 0 lb --json copy
  [[ $(json_get "$T/out" 'd["snapshots_copied"]') == 0 ]] || fail "second copy copied a snapshot"
  [[ $(json_get "$T/out" 'd["snapshots_skipped"]') == 1 ]] || fail "second copy skipped nothing"
  [[ $(json_get "$T/out" 'd["bytes_read"]') == 0 ]] || fail "second copy read data"
  listing "$T/b" >"$T/after"
  diff -u "$T/before" "$T/after" >&2 || fail "second copy wrote to the target"

  # Quiet: nothing on stderr.
  make_tree "$T/src2" 1
  expect_rc 0 a backup files "$T/src2"
  expect_rc 0 lb -q copy --from "$T/a" --to "$T/b"
  [[ ! -s $T/err ]] || fail "copy -q printed: $(head -1 "$T/err")"
  expect_same
}

# A repository made with init --copy-params-from shares blob ids with its source: blobs move
# without translation, and a later copy reads only what is new.
case_copy_params() {
  new_repos
  make_tree "$T/src" 8
  expect_rc 0 a backup files "$T/src"
  export LIFEBOAT_REPO=$T/c
  expect_rc 0 lb init --copy-params-from "$T/a"
  grep -q 'blob ids' "$T/out" || fail "init does not say it took the blob ids"
  expect_rc 0 lb --json copy
  [[ $(json_get "$T/out" 'd["same_id_key"]') == True ]] || fail "ids are not shared"
  expect_same
  # One new file: the copy reads about that much, not the whole tree again.
  head -c 2M /dev/urandom >"$T/src/new"
  expect_rc 0 a backup files "$T/src"
  expect_rc 0 lb --json copy
  local read
  read=$(json_get "$T/out" 'd["bytes_read"]')
  ((read < 4 * 1048576)) || fail "second copy read $read bytes for a 2 MiB change"
  ((read > 1048576)) || fail "second copy read only $read bytes"
  expect_same
  # A password of the source must not open the copy, and vice versa.
  expect_rc 4 lb --password-file "$T/pwa" snapshots
}

# kill -9 at random moments, five times, then a copy that completes: every snapshot once,
# check --read-data clean after every kill and at the end. Into a repository with ids of its
# own (b) and one made with --copy-params-from (c).
case_kill() {
  new_repos
  make_tree "$T/src" 64
  for i in 1 2 3 4; do head -c 32M /dev/urandom >"$T/src/more$i"; done
  expect_rc 0 a backup files "$T/src"
  echo change >"$T/src/sub/small1"
  head -c 32M /dev/urandom >"$T/src/more2"
  expect_rc 0 a backup files "$T/src" --tag second
  expect_rc 0 lb init --repo "$T/c" --copy-params-from "$T/a"
  RANDOM=$SEED
  local target k pid ms rc killed start full
  for target in b c; do
    export LIFEBOAT_REPO=$T/$target
    # How long a whole copy takes here, into a scratch repository of the same kind: the
    # kills land within that time.
    rm -rf "$T/scratch"
    if [[ $target == b ]]; then expect_rc 0 lb init --repo "$T/scratch"
    else expect_rc 0 lb init --repo "$T/scratch" --copy-params-from "$T/a"; fi
    start=$(date +%s%N)
    expect_rc 0 lb --threads 2 copy --to "$T/scratch" --repo "$T/scratch"
    full=$((($(date +%s%N) - start) / 1000000))
    killed=0
    for k in 1 2 3 4 5; do
      ms=$((full / 10 + RANDOM % (full * 7 / 10 + 1)))
      setsid "$LIFEBOAT" --threads 2 copy >"$T/kill$k.out" 2>&1 &
      pid=$!
      sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
      kill -9 -- "-$pid" 2>/dev/null || true
      rc=0
      { wait "$pid"; } 2>/dev/null || rc=$?
      [[ $rc != 137 ]] || killed=$((killed + 1))
      echo "  $target: kill $k after $ms of $full ms: exit $rc," \
        "$(find "$T/$target/snapshots" -type f 2>/dev/null | wc -l) snapshot(s) in the target"
      expect_rc 0 lb check --read-data
    done
    ((killed > 0)) || fail "$target: every copy finished before its kill"
    expect_rc 0 lb --json copy
    expect_same
    # Stale locks of the killed copies, and nothing else.
    expect_rc 0 lb unlock
  done
  expect_rc 0 a unlock
}

case_filters() {
  new_repos
  make_tree "$T/src" 1
  mkdir -p "$T/logs"
  echo 'old log' >"$T/logs/app.log.1"
  touch -d '2020-01-01' "$T/logs/app.log.1"
  expect_rc 0 a backup files "$T/src" --tag daily
  expect_rc 0 a --json backup logs "$T/logs" --older-than 1d
  local logs_id
  logs_id=$(json_get "$T/out" 'd["id"]')
  expect_rc 0 a backup command --name k8s-config -- echo 'kind: ConfigMap'
  sleep 1.1
  local since
  since=$(date -u '+%Y-%m-%d %H:%M:%S')
  sleep 1.1
  expect_rc 0 a --json backup files "$T/src" --tag weekly
  local weekly_id
  weekly_id=$(json_get "$T/out" 'd["id"]')

  copied() { json_get "$T/out" '" ".join(sorted(s["kind"] + ":" + "+".join(s["tags"]) for s in d["snapshots"]))'; }
  expect_rc 0 lb --json copy --dry-run --kind logs
  [[ $(copied) == "logs:" ]] || fail "--kind logs selected: $(copied)"
  expect_rc 0 lb --json copy --dry-run --tag weekly
  [[ $(copied) == "files:weekly" ]] || fail "--tag weekly selected: $(copied)"
  expect_rc 0 lb --json copy --dry-run --since "$since"
  [[ $(copied) == "files:weekly" ]] || fail "--since selected: $(copied)"
  expect_rc 0 lb --json copy --dry-run --since 1h
  [[ $(json_get "$T/out" 'd["snapshots_copied"]') == 4 ]] || fail "--since 1h did not select all"
  expect_rc 0 lb --json copy --dry-run --kind command --source k8s-config
  [[ $(copied) == "command:" ]] || fail "--kind command --source selected: $(copied)"
  expect_rc 0 lb --json copy --dry-run "${logs_id:0:8}"
  [[ $(copied) == "logs:" ]] || fail "a snapshot id selected: $(copied)"
  [[ ! -e $T/b/snapshots ]] || [[ -z $(ls "$T/b/snapshots") ]] || fail "a dry run wrote a snapshot"
  [[ ! -e $T/b/data ]] || [[ -z $(find "$T/b/data" -type f) ]] || fail "a dry run wrote data"
  expect_rc 2 lb copy --since yesterday
  expect_rc 5 lb copy ffffffff

  expect_rc 0 lb --json copy --tag daily
  [[ $(copied) == "files:daily" ]] || fail "--tag daily copied: $(copied)"
  expect_rc 0 lb --json copy "$weekly_id"
  [[ $(copied) == "files:weekly" ]] || fail "an id copied: $(copied)"
  expect_rc 0 lb --json copy
  [[ $(copied) == "command: logs:" ]] || fail "the rest was: $(copied)"
  cp "$T/out" "$T/rest.json"
  expect_same
  lb restore "$(json_get "$T/rest.json" '[s["target_id"] for s in d["snapshots"] if s["kind"] == "logs"][0]')" \
    --target "$T/restore-logs" >/dev/null
  $COMPARE "$T/logs" "$T/restore-logs$T/logs" || fail "the logs snapshot restores differently"
}

# A wrong password for the source: exit 4, a message about the source, nothing written on
# either side.
case_wrong_source_key() {
  new_repos
  make_tree "$T/src" 1
  expect_rc 0 a backup files "$T/src"
  listing "$T/a" >"$T/a-before"
  listing "$T/b" >"$T/b-before"
  printf 'not the password\n' >"$T/wrong"
  expect_rc 4 lb copy --from-password-file "$T/wrong"
  grep -q '^error: --from repository: no key' "$T/err" || fail "message: $(head -1 "$T/err")"
  grep -q 'from-password-file' "$T/err" || fail "the hint does not name --from-password-file"
  if grep -q 'not the password\|source password A\|target password B' "$T/err" "$T/out"; then
    fail "a password is printed"
  fi
  expect_rc 4 env LIFEBOAT_FROM_PASSWORD_FILE="$T/wrong" "$LIFEBOAT" copy
  expect_rc 2 env -u LIFEBOAT_FROM_PASSWORD_FILE "$LIFEBOAT" copy
  grep -q 'LIFEBOAT_FROM_PASSWORD_FILE' "$T/err" || fail "missing source password: hint lacks the variable"
  expect_rc 4 lb --password-file "$T/wrong" copy
  listing "$T/a" >"$T/a-after"
  listing "$T/b" >"$T/b-after"
  diff -u "$T/a-before" "$T/a-after" >&2 || fail "the source changed"
  diff -u "$T/b-before" "$T/b-after" >&2 || fail "the target changed"
  [[ -z $(find "$T/a" "$T/b" -path '*/locks/*' -type f) ]] || fail "a lock was left"
  expect_rc 2 env -u LIFEBOAT_FROM_REPO "$LIFEBOAT" copy
  expect_rc 2 lb copy --to "$T/a" --repo "$T/b"
}

# A damaged pack in the source: exit 6 naming it; the target has no snapshot that refers to
# data it lacks, and the next copy after a repair of the source completes.
case_damaged_source() {
  new_repos
  make_tree "$T/src" 1
  expect_rc 0 a backup files "$T/src" --tag first
  make_tree "$T/src2" 6
  expect_rc 0 a backup files "$T/src2" --tag second
  local pack name
  pack=$(find "$T/a/data" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
  name=$(basename "$pack")
  cp "$pack" "$T/pack.orig"
  flip_byte "$pack"
  expect_rc 6 lb copy
  grep -q "$name" "$T/err" || fail "the error does not name pack $name: $(grep error "$T/err")"
  expect_rc 0 lb check --read-data
  expect_rc 0 lb --json snapshots
  local n
  n=$(json_get "$T/out" 'len(d)')
  ((n <= 1)) || fail "the target has $n snapshots after a failed copy"
  chmod u+w "$pack"
  cp "$T/pack.orig" "$pack"
  expect_rc 0 lb copy
  expect_same
}

# One copy at a time into a repository (two would both write a missing snapshot); several
# copies may read one source at once.
case_one_at_a_time() {
  new_repos
  make_tree "$T/src" 1
  expect_rc 0 a backup files "$T/src"
  sleep 60 &
  local sleeper=$! id
  id=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  mkdir -p "$T/b/locks"
  printf '{"host":"%s","pid":%s,"user":"ghost","time":%s,"started_ns":%s,"exclusive":false,"purpose":"copy"}' \
    "$(uname -n)" "$sleeper" "$(date +%s)" "$(date +%s%N)" >"$T/b/locks/$id"
  expect_rc 7 lb copy
  grep -q 'locked' "$T/err" || fail "a second copy does not say 'locked'"
  [[ -z $(find "$T/b/snapshots" -type f 2>/dev/null) ]] || fail "the refused copy wrote a snapshot"
  # The same live process as another copy's reader of the source: no conflict.
  mkdir -p "$T/a/locks"
  mv "$T/b/locks/$id" "$T/a/locks/$id"
  sed -i 's/"purpose":"copy"/"purpose":"copy (source)"/' "$T/a/locks/$id"
  expect_rc 0 lb copy
  kill "$sleeper"
  wait "$sleeper" 2>/dev/null || true
  expect_same
}

# fake_segment DIR NAME SYSID [FILL]: a 16 MiB file that passes wal-push's checks (the long
# page header: magic, XLP_LONG_HEADER, timeline, system identifier, segment size).
fake_segment() {
  python3 - "$@" <<'PY'
import struct, sys
d, name, sysid = sys.argv[1], sys.argv[2], int(sys.argv[3])
fill = int(sys.argv[4]) if len(sys.argv) > 4 else 0
size = 16 << 20
tli, log, seg = int(name[0:8], 16), int(name[8:16], 16), int(name[16:24], 16)
head = struct.pack("<HHIQIIQII", 0xD10D, 0x0002, tli, (log << 32) + seg * size, 0, 0,
                   sysid, size, 8192)
body = bytes([fill & 0xFF]) * 100000 + bytes(range(256)) * 64
with open(f"{d}/{name}", "wb") as f:
    f.write(head + body + bytes(size - len(head) - len(body)))
PY
}

# The WAL archive of a source, pushed as PostgreSQL would (fake segments with valid headers):
# copied with the snapshots, byte for byte, never twice, only for the sources asked for; a
# target source that belongs to another cluster is refused. (A name that appears in the
# target with other content while a copy runs is refused too: a race, tested in
# src/repo/copy_test.cc.)
case_wal() {
  new_repos
  cd "$T"  # wal-get keeps its prefetch spool in the working directory, as in a data directory
  mkdir -p "$T/wal" "$T/other"
  local i n
  for i in 1 2 3; do
    n=00000001000000000000000$i
    fake_segment "$T/wal" "$n" 7001 "$i"
    expect_rc 0 a pg wal-push "$T/wal/$n"
  done
  make_tree "$T/src" 1
  expect_rc 0 a backup files "$T/src"
  expect_rc 0 lb --json copy --dry-run
  [[ $(json_get "$T/out" 'd["wal_files_copied"]') == 3 ]] || fail "dry run: want 3 WAL files to copy"
  [[ ! -e $T/b/wal ]] || fail "a dry run copied WAL"
  expect_rc 0 lb --json copy
  [[ $(json_get "$T/out" 'd["wal_files_copied"]') == 3 ]] ||
    fail "copied $(json_get "$T/out" 'd["wal_files_copied"]') WAL files, want 3"
  grep -q "WAL of source 'main'" "$T/err" || fail "no WAL line on stderr"
  for i in 1 2 3; do
    n=00000001000000000000000$i
    expect_rc 0 lb pg wal-get "$n" "$T/got-$n"
    cmp "$T/wal/$n" "$T/got-$n" || fail "WAL $n differs in the copy"
  done
  expect_rc 0 lb --json copy
  [[ $(json_get "$T/out" 'd["wal_files_copied"]') == 0 ]] || fail "second copy copied WAL"
  [[ $(json_get "$T/out" 'd["wal_files_present"]') == 3 ]] || fail "second copy: WAL not present"

  fake_segment "$T/wal" 000000010000000000000004 7001 4
  expect_rc 0 a pg wal-push "$T/wal/000000010000000000000004"
  expect_rc 0 lb --json copy --no-wal
  [[ $(json_get "$T/out" 'd["wal_files_copied"]') == 0 ]] || fail "--no-wal copied WAL"
  expect_rc 0 lb --json copy --kind files
  [[ $(json_get "$T/out" 'd["wal_files_copied"]') == 0 ]] || fail "--kind files copied WAL"
  expect_rc 0 lb --json --threads 3 copy --source main
  [[ $(json_get "$T/out" 'd["wal_files_copied"]') == 1 ]] || fail "--source main did not copy the new WAL"
  expect_rc 0 lb pg wal-get 000000010000000000000004 "$T/got-4"
  cmp "$T/wal/000000010000000000000004" "$T/got-4" || fail "WAL 4 differs in the copy"

  # A target whose source 'main' belongs to another cluster.
  export LIFEBOAT_REPO=$T/c
  expect_rc 0 lb init
  fake_segment "$T/other" 000000010000000000000001 8002 1
  expect_rc 0 lb pg wal-push "$T/other/000000010000000000000001"
  expect_rc 7 lb copy
  grep -q "cluster" "$T/err" || fail "another cluster: unclear message: $(head -1 "$T/err")"
}

# ---- runner ----

ALL_CASES=(round_trip copy_params kill filters wrong_source_key damaged_source one_at_a_time wal)
CASES=("$@")
((${#CASES[@]} > 0)) || CASES=("${ALL_CASES[@]}")

failed=0
for c in "${CASES[@]}"; do
  if ! declare -F "case_$c" >/dev/null; then
    echo "FAIL $c (no such case)"
    failed=1
    continue
  fi
  T=$WORK/$c
  mkdir -p "$T"
  (case_"$c") &
  rc=0
  wait $! || rc=$?
  if [[ $rc == 0 ]]; then echo "PASS $c"; else echo "FAIL $c"; failed=1; fi
done
exit $failed
