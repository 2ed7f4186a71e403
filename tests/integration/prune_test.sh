#!/usr/bin/env bash
# Prune tests: the two-phase prune (src/repo/prune.cc) must never lose data that a snapshot
# or the WAL archive needs, neither while backups and wal-push keep appending, nor when the
# prune itself is killed with SIGKILL at a random moment.
#
#   concurrent_prune  a loop of `backup files` (of a tree mutated between backups, with content
#                     that leaves the tree and comes back later, so backups deduplicate
#                     against data a prune is condemning) and a loop of `pg wal-push` run while
#                     another loop runs `forget --keep-last 3` + `prune` PRUNE_ROUNDS times.
#                     Afterwards (and again after a final quiet prune) `check --read-data`
#                     passes, every remaining snapshot restores equal to the tree it was taken
#                     of, every pushed WAL file comes back byte-identical, and the prunes
#                     deleted something.
#   kill_prune        ~10 snapshots of a ~100 MiB mutating tree, most of them forgotten; then
#                     PRUNE_KILLS times `prune` is killed -9 after a random delay (the window
#                     adapts, as in crash_test.sh, so most kills land inside a prune). After
#                     every kill `check --read-data` passes and the kept snapshots restore
#                     identical; a final prune reclaims the space.
#   interrupted_mark  a prune killed (strace injects SIGKILL) between rewriting the index and
#                     writing its final condemned list, while a held backup deduplicates
#                     against a pack it took out of the index: that backup's snapshot must
#                     survive the later prunes.
#   reader_during_rewrite  a restore whose listing of index/ predates a prune's index rewrite
#                     (strace delays it) must still restore its snapshot.
#   The last two need strace (SKIP without it).
#
# A "prune to completion" (at most 3 quiet runs) must leave nothing unused, unindexed or
# garbage enough to repack; all but reader_during_rewrite end with one.
#
# Usage: prune_test.sh [CASE...]   (default: every case)
# Env:   LIFEBOAT      the binary to test (default: build/lifeboat of this checkout)
#        PRUNE_ROUNDS  forget+prune rounds of concurrent_prune (default 10)
#        PRUNE_KILLS   kills of kill_prune (default 20)
#        PRUNE_SEED    seed of the mutations and kill moments (default: time; printed)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIFEBOAT=${LIFEBOAT:-$HERE/../../build/lifeboat}
ROUNDS=${PRUNE_ROUNDS:-10}
KILLS=${PRUNE_KILLS:-20}
SEED=${PRUNE_SEED:-$(date +%s)}
if [[ ! -x $LIFEBOAT ]]; then
  echo "FAIL setup: no lifeboat binary at '$LIFEBOAT' (build it or set LIFEBOAT)" >&2
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-prune-test.XXXXXX")
cleanup() {
  # Stop the loops and processes of a case that was interrupted: their pids are recorded
  # while they run (and forgotten once reaped, so no reused pid is hit).
  local f p
  touch "$WORK"/*/stop 2>/dev/null || true
  for f in "$WORK"/*/pids; do
    [[ -e $f ]] || continue
    while read -r p; do kill -9 -- "-$p" "$p" 2>/dev/null || true; done <"$f"
  done
  wait 2>/dev/null || true
  chmod -R u+rwX "$WORK" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

unset LIFEBOAT_PASSWORD LIFEBOAT_NEW_PASSWORD_FILE LIFEBOAT_REPO LIFEBOAT_PASSWORD_FILE
export LIFEBOAT_TEST_FAST_KDF=1 LIFEBOAT_AUDIT_LOG=$WORK/audit.log
MIB=$((1 << 20))
echo "prune test: seed $SEED, work dir $WORK"

# ---- helpers (used inside a case; T is the case's directory) ----

lb() { "$LIFEBOAT" "$@"; }

fail() {
  echo "  $*" >&2
  return 1
}

# Records a failure without stopping the case (loops and checks go on, the case fails).
note_fail() {
  echo "  $*" >&2
  echo "$*" >>"$T/failures"
}

json_get() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$1" "$2"
}

new_repo() {
  export LIFEBOAT_REPO=$T/repo LIFEBOAT_CACHE_DIR=$T/cache LIFEBOAT_PASSWORD_FILE=$T/pw
  printf 'prune test password\n' >"$T/pw"
  lb init >/dev/null
}

# digest DIR: one line per entry below DIR (type, path, mode, size, sha256 or link target),
# sorted: what a restore of DIR must reproduce.
digest() {
  python3 - "$1" <<'EOF'
import hashlib, os, stat, sys
root = os.fsencode(sys.argv[1])
out = []
for dirpath, dirs, files in os.walk(root):
    for name in dirs + files:
        full = os.path.join(dirpath, name)
        rel = os.path.relpath(full, root).decode(errors="backslashreplace")
        st = os.lstat(full)
        mode = "%o" % stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            out.append("l %s -> %s" % (rel, os.readlink(full).decode(errors="backslashreplace")))
        elif stat.S_ISDIR(st.st_mode):
            out.append("d %s %s" % (rel, mode))
        elif stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(full, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            out.append("f %s %s %d %s" % (rel, mode, st.st_size, h.hexdigest()))
        else:
            out.append("o %s %s" % (rel, mode))
out.sort()
print("\n".join(out))
EOF
}

# verify_check WHAT: `check --read-data` must exit 0; warnings are shown, not fatal.
verify_check() {
  local what=$1 rc=0
  lb check --read-data >"$T/check.out" 2>"$T/check.err" || rc=$?
  if [[ $rc != 0 ]]; then
    note_fail "$what: check --read-data exited $rc"
    sed -e 's/\x1b\[K//g' -e 's/^/  | /' "$T/check.out" "$T/check.err" | head -40 >&2
    return 1
  fi
  local warnings
  warnings=$(grep -c '^warning' "$T/check.out" || true)
  ((warnings == 0)) || echo "  $what: check passed with $warnings warning(s):" \
    "$(grep '^warning' "$T/check.out" | head -3 | tr '\n' ' ')"
}

# verify_restores WHAT: every snapshot in the repository restores to exactly the tree
# recorded (digests/<id>) when it was taken.
verify_restores() {
  local what=$1 id path n=0 rc
  lb --json snapshots >"$T/snaps.json" 2>"$T/snaps.err" || {
    note_fail "$what: snapshots exited $?"
    cat "$T/snaps.err" >&2
    return 1
  }
  while read -r id path; do
    n=$((n + 1))
    if [[ ! -e $T/digests/$id ]]; then
      note_fail "$what: snapshot ${id:0:8} was not made by this test"
      continue
    fi
    rm -rf "$T/restore"
    rc=0
    lb restore "$id" --target "$T/restore" >/dev/null 2>"$T/restore.err" || rc=$?
    if [[ $rc != 0 ]]; then
      note_fail "$what: restore of snapshot ${id:0:8} exited $rc"
      sed -e 's/\x1b\[K//g' -e 's/^/  | /' "$T/restore.err" | head -20 >&2
      continue
    fi
    # The restore re-roots the snapshot's absolute path under the target.
    if ! digest "$T/restore$path" | cmp -s - "$T/digests/$id"; then
      note_fail "$what: restore of snapshot ${id:0:8} differs from the tree it was taken of"
      digest "$T/restore$path" | diff "$T/digests/$id" - | head -10 | sed 's/^/  | /' >&2
    fi
  done < <(json_get "$T/snaps.json" '"\n".join(s["id"] + " " + s["paths"][0] for s in d)')
  rm -rf "$T/restore"
  RESTORED=$n
}

# prune_to_completion WHAT: prunes (at most 3 times: a run may have to finish what an
# interrupted one left) until `prune --dry-run` finds nothing unused, unindexed or garbage
# enough to repack. Nothing else may run meanwhile.
prune_to_completion() {
  local what=$1 n rc left=1
  for n in 1 2 3; do
    rc=0
    lb --json prune >"$T/final$n.json" 2>"$T/final$n.err" || rc=$?
    if [[ $rc != 0 ]]; then
      note_fail "$what: prune $n exited $rc: $(sed 's/\x1b\[K//g' "$T/final$n.err" | head -3 | tr '\n' ' ')"
      return 1
    fi
    rc=0
    lb --json prune --dry-run >"$T/dry.json" 2>"$T/dry.err" || rc=$?
    [[ $rc == 0 ]] || { note_fail "$what: prune --dry-run exited $rc"; return 1; }
    # (A dry run counts what it would condemn as "waiting": not looked at.)
    left=$(json_get "$T/dry.json" 'd["packs_unused"] + d["packs_unindexed"] + d["packs_repacked"]')
    ((left != 0)) || break
  done
  if ((left != 0)); then
    note_fail "$what: after $n quiet prunes, prune --dry-run still finds work: $(json_get "$T/dry.json" \
      '"%d unused, %d unindexed, %d to repack (%.1f MiB live) of %d packs; %.1f MiB unreferenced" % (d["packs_unused"], d["packs_unindexed"], d["packs_repacked"], d["bytes_repacked"] / 2**20, d["packs_total"], d["bytes_unreferenced"] / 2**20)')"
    return 1
  fi
  [[ -z $(compgen -G "$LIFEBOAT_REPO/condemned/*") ]] ||
    note_fail "$what: condemned lists remain after quiet prunes: $(ls "$LIFEBOAT_REPO/condemned" | head -3 | tr '\n' ' ')"
}

# rnd LO HI: sets R to a random integer in [LO, HI] (bash's seeded $RANDOM; not in a $(...)
# subshell, whose $RANDOM would not advance ours).
rnd() { R=$(($1 + RANDOM % ($2 - $1 + 1))); }

# A WAL segment to fabricate others from: the first segment of a throwaway initdb'd cluster
# (no server is started). Without PostgreSQL, a synthetic long page header does: wal-push
# checks the page magic, the long-header flag and the segment size only.
make_base_segment() {
  local out=$1 initdb pgtmp
  initdb=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n1 || true)
  if [[ -n $initdb ]]; then
    pgtmp=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-prune-initdb.XXXXXX")
    local ok=0
    if [[ $EUID == 0 ]] && id postgres >/dev/null 2>&1; then
      chown postgres "$pgtmp"
      runuser -u postgres -- "$initdb" -D "$pgtmp/data" -A trust >"$T/initdb.log" 2>&1 && ok=1
    elif [[ $EUID != 0 ]]; then
      "$initdb" -D "$pgtmp/data" -A trust >"$T/initdb.log" 2>&1 && ok=1
    fi
    if ((ok)) && [[ -f $pgtmp/data/pg_wal/000000010000000000000001 ]]; then
      cp "$pgtmp/data/pg_wal/000000010000000000000001" "$out"
      rm -rf "$pgtmp"
      echo "  WAL: segment of a fresh PostgreSQL $("$initdb" --version | awk '{print $3}') cluster"
      return 0
    fi
    rm -rf "$pgtmp"
  fi
  python3 - "$out" <<'EOF'
import os, random, struct, sys
seg = 16 << 20
r = random.Random(42)
# XLogLongPageHeaderData: magic (PG 15), info XLP_LONG_HEADER, tli 1, pageaddr 0, rem_len 0,
# system identifier, segment size, block size.
hdr = struct.pack("<HHIQI4xQII", 0xD110, 0x0002, 1, 0, 0, r.getrandbits(64), seg, 8192)
body = bytes(r.getrandbits(8) for _ in range(1 << 16)) * 24  # ~1.5 MiB of "records"
with open(sys.argv[1], "wb") as f:
    f.write(hdr + body + bytes(seg - len(hdr) - len(body)))
EOF
  echo "  WAL: no usable initdb; synthetic segment header"
}

# fabricate_segment BASE OUT: a copy of BASE with random bytes changed after the header.
fabricate_segment() {
  python3 - "$1" "$2" <<'EOF'
import os, sys
data = bytearray(open(sys.argv[1], "rb").read())
rnd = os.urandom(64)
for i in range(16):
    pos = 40 + int.from_bytes(rnd[4 * i:4 * i + 4], "little") % (len(data) - 40)
    data[pos] ^= rnd[32 + i] | 1
open(sys.argv[2], "wb").write(data)
EOF
}

# ---- concurrent_prune ----

# The tree of concurrent_prune: pool files (content that leaves the tree and comes back),
# unique random files, compressible text, small files, a symlink. ~25-40 MiB.
A_POOL=16
a_make_tree() {
  local tree=$1 i
  mkdir -p "$T/pool" "$tree/shared" "$tree/own" "$tree/text" "$tree/small/deeper"
  for i in $(seq 1 $A_POOL); do
    rnd 256 2048
    head -c $((R * 1024)) /dev/urandom >"$T/pool/p$i"
  done
  for i in $(seq 1 8); do cp "$T/pool/p$i" "$tree/shared/p$i"; done
  for i in $(seq 1 5); do
    rnd 512 2048
    head -c $((R * 1024)) /dev/urandom >"$tree/own/u$i"
  done
  for i in 1 2 3; do seq $((i * 1000000)) $((i * 1000000 + 200000)) >"$tree/text/t$i"; done
  for i in $(seq 1 30); do printf 'small %s %s\n' "$i" "$RANDOM" >"$tree/small/s$i"; done
  ln -s ../shared/p1 "$tree/small/link"
}

# Changes of every kind between two backups.
a_mutate() {
  local tree=$1 n i size pool
  rnd 2 4
  for ((n = R; n > 0; n--)); do
    case $((RANDOM % 7)) in
      0) # a pool file leaves the tree
        mapfile -t pool < <(compgen -G "$tree/shared/p*" || true)
        if ((${#pool[@]} > 0)); then rm -f "${pool[RANDOM % ${#pool[@]}]}"; fi ;;
      1 | 2) # a pool file comes (back): its blobs may be garbage a prune is condemning
        rnd 1 $A_POOL
        cp "$T/pool/p$R" "$tree/shared/p$R.$RANDOM" ;;
      3) # a unique file changes
        rnd 256 2048
        size=$((R * 1024))
        rnd 1 8
        head -c $size /dev/urandom >"$tree/own/u$R" ;;
      4) # a unique file goes
        rnd 1 8
        rm -f "$tree/own/u$R" ;;
      5) # text grows, in the middle of a chunk
        rnd 1 3
        echo "appended $RANDOM" >>"$tree/text/t$R" ;;
      6) # small files churn
        rnd 1 40
        printf 'changed %s\n' "$RANDOM" >"$tree/small/s$R"
        rnd 1 40
        rm -f "$tree/small/s$R"
        printf 'new %s\n' "$RANDOM" >"$tree/small/deeper/n$RANDOM" ;;
    esac
  done
  # Bounded: at most 12 pool copies in the tree.
  mapfile -t pool < <(compgen -G "$tree/shared/p*" || true)
  for ((i = 12; i < ${#pool[@]}; i++)); do rm -f "${pool[i]}"; done
}

case_concurrent_prune() {
  new_repo
  local tree=$T/tree
  mkdir -p "$T/digests" "$T/wal-src" "$T/wal-sums"
  : >"$T/failures"
  : >"$T/pids"
  trap 'touch "$T/stop"; wait' EXIT
  RANDOM=$SEED
  a_make_tree "$tree"
  make_base_segment "$T/base-segment"
  # A first snapshot before the loops start.
  digest "$tree" >"$T/cur.digest"
  lb --json backup files "$tree" >"$T/b0.json"
  cp "$T/cur.digest" "$T/digests/$(json_get "$T/b0.json" 'd["id"]')"

  # Backups: mutate, record the tree, back it up; the snapshot id names the record.
  (
    echo "$BASHPID" >>"$T/pids"
    RANDOM=$((SEED + 1))
    export LIFEBOAT_CACHE_DIR=$T/cache-backup
    i=0
    while [[ ! -e $T/stop ]]; do
      i=$((i + 1))
      a_mutate "$tree"
      digest "$tree" >"$T/cur.digest"
      rc=0
      lb --json backup files "$tree" >"$T/b.json" 2>"$T/b.err" || rc=$?
      if [[ $rc != 0 ]]; then
        note_fail "backup $i exited $rc: $(sed 's/\x1b\[K//g' "$T/b.err" | grep -v '^$' | head -3 | tr '\n' ' ')"
        continue
      fi
      id=$(json_get "$T/b.json" 'd["id"]' 2>/dev/null || true)
      if [[ -z $id ]]; then
        note_fail "backup $i: no snapshot id in its --json output"
        continue
      fi
      cp "$T/cur.digest" "$T/digests/$id"
      if grep -q '^warning' "$T/b.err"; then
        echo "backup $i: $(grep '^warning' "$T/b.err" | head -2 | tr '\n' ' ')" >>"$T/backup-warnings"
      fi
    done
    echo "$i" >"$T/backups.count"
  ) &
  # wal-push: fabricated segments under consecutive names; their sums are kept.
  (
    echo "$BASHPID" >>"$T/pids"
    export LIFEBOAT_CACHE_DIR=$T/cache-wal
    n=2
    while [[ ! -e $T/stop ]]; do
      name=$(printf '%08X%08X%08X' 1 0 $n)
      fabricate_segment "$T/base-segment" "$T/wal-src/$name"
      rc=0
      lb pg wal-push "$T/wal-src/$name" --source prunetest >/dev/null 2>"$T/w.err" || rc=$?
      if [[ $rc == 0 ]]; then
        sha256sum <"$T/wal-src/$name" | cut -d' ' -f1 >"$T/wal-sums/$name"
      else
        note_fail "wal-push $name exited $rc: $(head -c 300 "$T/w.err")"
      fi
      rm -f "$T/wal-src/$name"
      n=$((n + 1))
      sleep 0.2
    done
  ) &

  # A reader: restores the newest snapshot (never forgotten by --keep-last 3 before the
  # restore has its lock) and compares it with the tree it was taken of. Prune runs with a
  # shared lock so that reads go on meanwhile.
  (
    echo "$BASHPID" >>"$T/pids"
    export LIFEBOAT_CACHE_DIR=$T/cache-reader
    n=0
    while [[ ! -e $T/stop ]]; do
      id=$(lb --json snapshots 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)[-1]["id"])' 2>/dev/null || true)
      [[ -n $id && -e $T/digests/$id ]] || { sleep 0.1; continue; }
      n=$((n + 1))
      rm -rf "$T/reader-out"
      rc=0
      lb restore "$id" --target "$T/reader-out" >/dev/null 2>"$T/reader.err" || rc=$?
      if [[ $rc != 0 ]]; then
        # Only a snapshot forgotten before the restore found it excuses a failure.
        if lb --json snapshots 2>/dev/null | grep -q "\"$id\""; then
          note_fail "restore ${id:0:8} during prune exited $rc: $(sed 's/\x1b\[K//g' "$T/reader.err" | grep -v '^$' | head -4 | cut -c1-200 | tr '\n' ' ')"
        fi
      elif ! digest "$T/reader-out$tree" | cmp -s - "$T/digests/$id"; then
        note_fail "restore ${id:0:8} during prune differs from the tree it was taken of"
      fi
    done
    rm -rf "$T/reader-out"
    echo "$n" >"$T/restores.count"
  ) &

  # forget + prune rounds, at random moments relative to the backups.
  local r rc deleted=0 d mu
  RANDOM=$((SEED + 2))
  export LIFEBOAT_CACHE_DIR=$T/cache-prune
  for ((r = 1; r <= ROUNDS; r++)); do
    rnd 1 9
    sleep "0.$R"
    rc=0
    lb forget --keep-last 3 >"$T/forget.out" 2>"$T/forget.err" || rc=$?
    [[ $rc == 0 ]] || note_fail "round $r: forget exited $rc: $(head -c 300 "$T/forget.err")"
    # Mostly the default; sometimes a low threshold, so that repacking happens too.
    mu=$((r % 3 == 0 ? 5 : 30))
    rc=0
    lb --json prune --max-unused "$mu" >"$T/prune$r.json" 2>"$T/prune$r.err" || rc=$?
    if [[ $rc != 0 ]]; then
      note_fail "round $r: prune exited $rc: $(sed 's/\x1b\[K//g' "$T/prune$r.err" | head -3 | tr '\n' ' ')"
      continue
    fi
    d=$(json_get "$T/prune$r.json" 'd["bytes_deleted"]')
    deleted=$((deleted + d))
    echo "  round $r (--max-unused $mu): $(json_get "$T/prune$r.json" \
      '"%d snapshots, %d packs: deleted %d (%.1f MiB), repacked %d, resurrected %d, waiting %d" % (d["snapshots"], d["packs_total"], d["packs_deleted"], d["bytes_deleted"] / 2**20, d["packs_repacked"], d["packs_resurrected"], d["packs_waiting"])')"
  done
  touch "$T/stop"
  wait
  : >"$T/pids"
  trap - EXIT
  local backups pushed
  backups=$(cat "$T/backups.count" 2>/dev/null || echo "?")
  pushed=$(find "$T/wal-sums" -type f | wc -l)
  echo "  $backups backups, $pushed wal-pushes and $(cat "$T/restores.count" 2>/dev/null || echo "?")" \
    "restores ran during $ROUNDS prune rounds;" \
    "the prunes deleted $((deleted / MIB)) MiB"
  [[ ! -s $T/backup-warnings ]] || {
    echo "  backup warnings ($(wc -l <"$T/backup-warnings")):"
    head -5 "$T/backup-warnings" | sed 's/^/  | /'
  }
  [[ -e $T/backups.count && -e $T/restores.count ]] || note_fail "the backup or the reader loop died"
  ((deleted > 0)) || note_fail "no prune round deleted anything"
  ((pushed > 0)) || note_fail "no WAL file was pushed"

  local phase
  for phase in "after the concurrent rounds" "after a final prune"; do
    export LIFEBOAT_CACHE_DIR=$T/cache
    if [[ $phase == "after a final prune" ]]; then prune_to_completion "$phase" || true; fi
    verify_check "$phase" || true
    verify_restores "$phase" || true
    # Every pushed WAL file comes back byte-identical.
    local name missing=0
    for f in "$T"/wal-sums/*; do
      [[ -e $f ]] || continue
      name=${f##*/}
      rm -f "$T/wal-out"
      rc=0
      lb pg wal-get "$name" "$T/wal-out" --source prunetest --prefetch 0 >/dev/null 2>"$T/wg.err" || rc=$?
      if [[ $rc != 0 ]]; then
        missing=$((missing + 1))
        note_fail "$phase: wal-get $name exited $rc: $(head -c 200 "$T/wg.err")"
      elif [[ $(sha256sum <"$T/wal-out" | cut -d' ' -f1) != "$(cat "$f")" ]]; then
        missing=$((missing + 1))
        note_fail "$phase: wal-get $name returned different bytes"
      fi
    done
    echo "  $phase: $RESTORED snapshot(s) restored and compared, $pushed WAL file(s) fetched" \
      "($missing bad)"
  done
  [[ ! -s $T/failures ]] || fail "$(wc -l <"$T/failures") failure(s)"
}

# ---- kill_prune ----

# ~100 MiB: 20 random 4 MiB files, 3 compressible text files, small files.
b_make_tree() {
  local tree=$1 i
  mkdir -p "$tree/random" "$tree/text" "$tree/small/deeper"
  for i in $(seq 1 20); do head -c $((4 * MIB)) /dev/urandom >"$tree/random/r$i"; done
  for i in 1 2 3; do seq $((RANDOM * 1000 + i)) $((RANDOM * 1000 + 1300000)) | head -c $((6 * MIB)) >"$tree/text/t$i" || true; done
  for i in $(seq 1 50); do printf 'small %s %s\n' "$i" "$RANDOM" >"$tree/small/s$i"; done
  ln -s ../random/r1 "$tree/small/link"
}

# b_mutate TREE N: N random files replaced, plus small changes.
b_mutate() {
  local tree=$1 n=$2 i
  for ((i = 0; i < n; i++)); do
    rnd 1 20
    head -c $((4 * MIB)) /dev/urandom >"$tree/random/r$R"
  done
  rnd 1 3
  echo "appended $RANDOM" >>"$tree/text/t$R"
  rnd 1 50
  printf 'changed %s\n' "$RANDOM" >"$tree/small/s$R"
  rnd 1 50
  rm -f "$tree/small/s$R"
  printf 'new %s\n' "$RANDOM" >"$tree/small/deeper/n$RANDOM"
}

# b_backup TREE: a snapshot whose id goes to KEPT (newest last).
b_backup() {
  digest "$1" >"$T/cur.digest"
  lb --json backup files "$1" >"$T/b.json" 2>"$T/b.err" || {
    cat "$T/b.err" >&2
    fail "backup exited $?"
  }
  local id
  id=$(json_get "$T/b.json" 'd["id"]')
  cp "$T/cur.digest" "$T/digests/$id"
  KEPT+=("$id")
}

repo_bytes() { du -sb "$LIFEBOAT_REPO" | cut -f1; }

case_kill_prune() {
  new_repo
  local tree=$T/tree
  mkdir -p "$T/digests"
  : >"$T/failures"
  : >"$T/pids"
  RANDOM=$((SEED + 3))
  KEPT=()
  b_make_tree "$tree"
  local i
  for i in $(seq 1 10); do
    ((i == 1)) || b_mutate "$tree" 4
    b_backup "$tree"
  done
  # Forget all but the newest three.
  lb forget "${KEPT[@]:0:7}" >/dev/null
  KEPT=("${KEPT[@]:7}")
  local before
  before=$(repo_bytes)
  echo "  10 snapshots of a $(du -sm "$tree" | cut -f1) MiB tree, 7 forgotten;" \
    "repository $((before / MIB)) MiB"

  local window=500 killed=0 finished=0 delay rc pid outcome="" regen=0
  for ((i = 1; i <= KILLS; i++)); do
    if ((i > 1)) && [[ $outcome == finished ]]; then
      # The last prune completed: new garbage, the way retention makes it: a new snapshot of
      # a changed tree, and the oldest kept one forgotten.
      b_mutate "$tree" 6
      b_backup "$tree"
      lb forget "${KEPT[0]}" >/dev/null
      KEPT=("${KEPT[@]:1}")
      regen=$((regen + 1))
    fi
    rnd 10 "$window"
    delay=$R
    setsid "$LIFEBOAT" prune --max-unused $((i % 2 ? 30 : 10)) \
      >"$T/prune$i.out" 2>"$T/prune$i.err" &
    pid=$!
    echo "$pid" >>"$T/pids"
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    kill -9 -- "-$pid" 2>/dev/null || true
    rc=0
    { wait "$pid"; } 2>/dev/null || rc=$?
    : >"$T/pids"
    case $rc in
      137)
        outcome=killed
        killed=$((killed + 1))
        window=$((window * 12 / 10 > 500 ? 500 : window * 12 / 10)) ;;
      0)
        outcome=finished
        finished=$((finished + 1))
        window=$((window * 6 / 10 < 20 ? 20 : window * 6 / 10)) ;;
      *)
        outcome="exit $rc"
        note_fail "kill $i: prune exited $rc: $(sed 's/\x1b\[K//g' "$T/prune$i.err" | head -3 | tr '\n' ' ')" ;;
    esac
    rc=0
    lb unlock >/dev/null 2>"$T/unlock.err" || rc=$?
    [[ $rc == 0 ]] || note_fail "kill $i: unlock exited $rc"
    local condemned
    condemned=$(find "$LIFEBOAT_REPO/condemned" -type f ! -name '.*' 2>/dev/null | sed 's,.*/,,; s/-.*//; s/^[0-9]*$/final/' | sort | uniq -c | tr -s ' \n' ' ' || true)
    echo "  kill $i after ${delay} ms: $outcome; condemned lists:${condemned:- none}"
    verify_check "kill $i" || true
    verify_restores "kill $i" || true
  done
  echo "  $killed of $KILLS prunes killed while running, $finished finished first" \
    "(garbage made anew $regen times)"
  ((killed >= (KILLS + 1) / 2)) ||
    note_fail "only $killed of $KILLS kills landed inside a prune: too few to call this a crash test"

  prune_to_completion "final" || true
  verify_check "final" || true
  verify_restores "final" || true
  local after
  after=$(repo_bytes)
  echo "  repository: $((before / MIB)) MiB before the kills, $((after / MIB)) MiB after the final prune"
  ((after < before)) || note_fail "the final prune did not reclaim space ($before -> $after bytes)"
  [[ ! -s $T/failures ]] || fail "$(wc -l <"$T/failures") failure(s)"
}

# ---- interrupted_mark ----

# A prune killed after it rewrote the index without some packs (condemned/pending-<id>
# written, old index files removed) but before it wrote the final condemned/<time>-<id>,
# while a backup that loaded the old index deduplicates against a blob of such a pack. The
# snapshot of that backup must stay restorable through every later prune. The kill lands
# exactly there: strace sends SIGKILL at prune's 3rd rename(2) (1: the pending list, 2: the
# rewritten index file, 3: the final list; its index cache is warm, so it renames nothing
# else); the backup is held with SIGSTOP so that it is still running.
case_interrupted_mark() {
  command -v strace >/dev/null || { echo "  needs strace"; return 77; }
  new_repo
  mkdir -p "$T/digests" "$T/keep" "$T/gone" "$T/b"
  : >"$T/failures"
  : >"$T/pids"
  head -c $MIB /dev/urandom >"$T/keep/k"
  head -c $((4 * MIB)) /dev/urandom >"$T/gone/g"
  local id gone pid rc n0 t
  digest "$T/keep" >"$T/cur.digest"
  lb --json backup files "$T/keep" >"$T/k.json"
  cp "$T/cur.digest" "$T/digests/$(json_get "$T/k.json" 'd["id"]')"
  lb --json backup files "$T/gone" >"$T/g.json"
  gone=$(json_get "$T/g.json" 'd["id"]')
  # The backup: a copy of gone/g (deduplicated against its blobs) and 96 MiB to read.
  cp "$T/gone/g" "$T/b/g-copy"
  head -c $((96 * MIB)) /dev/urandom >"$T/b/big"
  digest "$T/b" >"$T/b.digest"
  n0=$(find "$LIFEBOAT_REPO/data" -type f | wc -l)
  LIFEBOAT_CACHE_DIR=$T/cache-b setsid "$LIFEBOAT" --json backup files "$T/b" \
    >"$T/b.json" 2>"$T/b.err" &
  pid=$!
  echo "$pid" >>"$T/pids"
  # Once it has stored a pack, it has loaded the index: hold it there.
  t=$SECONDS
  while (($(find "$LIFEBOAT_REPO/data" -type f | wc -l) == n0)) && kill -0 "$pid" 2>/dev/null &&
    ((SECONDS - t < 60)); do
    sleep 0.01
  done
  kill -STOP -- "-$pid"
  [[ ! -s $T/b.json ]] || fail "setup: the backup finished before it could be held"
  lb forget "$gone" >/dev/null
  lb prune --dry-run >/dev/null
  rc=0
  { strace -f -o /dev/null -e trace=rename -e inject=rename:signal=KILL:when=3 \
    "$LIFEBOAT" prune >"$T/prune.out" 2>"$T/prune.err"; } 2>/dev/null || rc=$?
  lb unlock >/dev/null
  echo "  prune killed (exit $rc) with condemned/: $(ls "$LIFEBOAT_REPO/condemned" | sed 's/-.*//' | tr '\n' ' ')"
  if [[ -z $(compgen -G "$LIFEBOAT_REPO/condemned/pending-*") ]] ||
    compgen -G "$LIFEBOAT_REPO/condemned/[0-9]*" >/dev/null; then
    kill -9 -- "-$pid" 2>/dev/null || true
    fail "setup: the kill did not land between the index rewrite and the final condemned list"
  fi
  kill -CONT -- "-$pid"
  rc=0
  wait "$pid" || rc=$?
  : >"$T/pids"
  [[ $rc == 0 ]] || { cat "$T/b.err" >&2; fail "the held backup exited $rc"; }
  id=$(json_get "$T/b.json" 'd["id"]')
  cp "$T/b.digest" "$T/digests/$id"
  echo "  the held backup stored $(($(json_get "$T/b.json" 'd["summary"]["bytes_new"]') / MIB)) MiB" \
    "of its 100 MiB (g-copy deduplicated)"
  prune_to_completion "after the interrupted prune" || true
  verify_check "after the interrupted prune" || true
  verify_restores "after the interrupted prune" || true
  [[ ! -s $T/failures ]] || fail "$(wc -l <"$T/failures") failure(s)"
}

# ---- reader_during_rewrite ----

# A restore that has listed index/ when prune replaces the index files (the restore holds
# its shared lock, so prune itself proceeds) must still find every blob. strace returns the
# restore's listing of index/ 2 s late; prune runs in between.
case_reader_during_rewrite() {
  command -v strace >/dev/null || { echo "  needs strace"; return 77; }
  new_repo
  mkdir -p "$T/digests" "$T/src"
  : >"$T/failures"
  : >"$T/pids"
  head -c $((2 * MIB)) /dev/urandom >"$T/src/a"
  head -c $((2 * MIB)) /dev/urandom >"$T/src/b"
  lb backup files "$T/src" >/dev/null
  head -c $((2 * MIB)) /dev/urandom >"$T/src/b"
  digest "$T/src" >"$T/cur.digest"
  local id pid rc
  lb --json backup files "$T/src" >"$T/s.json"
  id=$(json_get "$T/s.json" 'd["id"]')
  cp "$T/cur.digest" "$T/digests/$id"
  lb forget --keep-last 1 >/dev/null
  LIFEBOAT_CACHE_DIR=$T/cache-reader strace -f -o /dev/null -P "$LIFEBOAT_REPO/index" \
    -e trace=getdents64 -e inject=getdents64:delay_exit=2000000:when=1 \
    "$LIFEBOAT" restore "$id" --target "$T/out" >"$T/restore.out" 2>"$T/restore.err" &
  pid=$!
  echo "$pid" >>"$T/pids"
  sleep 1
  LIFEBOAT_CACHE_DIR=$T/cache-prune lb --json prune >"$T/prune.json"
  echo "  prune during the restore: $(json_get "$T/prune.json" \
    '"index files written %d, removed %d" % (d["index_files_written"], d["index_files_removed"])')"
  (($(json_get "$T/prune.json" 'd["index_files_removed"]') > 0)) ||
    fail "setup: prune did not replace index files"
  rc=0
  wait "$pid" || rc=$?
  : >"$T/pids"
  if [[ $rc != 0 ]]; then
    note_fail "restore while prune replaced the index exited $rc"
    sed -e "s/\x1b\[K//g" -e "s/^/  | /" "$T/restore.err" | head -10 >&2
  elif ! digest "$T/out$T/src" | cmp -s - "$T/digests/$id"; then
    note_fail "restore while prune replaced the index differs from the source"
  fi
  verify_check "afterwards" || true
  [[ ! -s $T/failures ]] || fail "$(wc -l <"$T/failures") failure(s)"
}

# ---- runner ----

ALL_CASES=(concurrent_prune kill_prune interrupted_mark reader_during_rewrite)
CASES=("$@")
((${#CASES[@]} > 0)) || CASES=("${ALL_CASES[@]}")

passed=0
failed=0
skipped=0
START=$SECONDS
for c in "${CASES[@]}"; do
  if ! declare -F "case_$c" >/dev/null; then
    echo "FAIL $c (no such case)"
    failed=$((failed + 1))
    continue
  fi
  T=$WORK/$c
  mkdir -p "$T"
  t0=$SECONDS
  # A background subshell keeps `set -e` in force inside the case (it would be ignored in
  # an `if` or `||` context), and its environment changes stay in the case.
  (case_"$c") &
  rc=0
  wait $! || rc=$?
  if [[ $rc == 0 ]]; then
    echo "PASS $c ($((SECONDS - t0)) s)"
    passed=$((passed + 1))
  elif [[ $rc == 77 ]]; then
    echo "SKIP $c"
    skipped=$((skipped + 1))
  else
    echo "FAIL $c ($((SECONDS - t0)) s, seed $SEED)"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed$( ((skipped == 0)) || echo ", $skipped skipped") ($((SECONDS - START)) s)"
((failed == 0))
