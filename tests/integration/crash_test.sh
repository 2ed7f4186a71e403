#!/usr/bin/env bash
# Crash test: `lifeboat backup files` killed with SIGKILL at random moments must never damage
# the repository. After every kill `check --read-data` must find no error (packs left out of
# the index and stale locks are expected debris, nothing else), and a clean backup after a
# kill must round-trip the tree and reuse what the killed backup had already indexed.
#
# Env: LIFEBOAT    the binary to test (default: build/lifeboat of this checkout)
#      CRASH_RUNS  number of random kills (default 20)
#      CRASH_SEED  seed for the kill moments and mutations (default: time; printed)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIFEBOAT=${LIFEBOAT:-$HERE/../../build/lifeboat}
RUNS=${CRASH_RUNS:-20}
SEED=${CRASH_SEED:-$(date +%s)}
if [[ ! -x $LIFEBOAT ]]; then
  echo "FAIL setup: no lifeboat binary at '$LIFEBOAT' (build it or set LIFEBOAT)" >&2
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-crash-test.XXXXXX")
RUNNING=()  # process groups of backups that may still run
cleanup() {
  local p
  for p in "${RUNNING[@]}"; do kill -9 -- "-$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

unset LIFEBOAT_PASSWORD LIFEBOAT_NEW_PASSWORD_FILE
export LIFEBOAT_TEST_FAST_KDF=1 LIFEBOAT_AUDIT_LOG=$WORK/audit.log
export LIFEBOAT_REPO=$WORK/repo LIFEBOAT_CACHE_DIR=$WORK/cache LIFEBOAT_PASSWORD_FILE=$WORK/pw
TREE=$WORK/tree
MIB=$((1 << 20))
RANDOM=$SEED
echo "crash test: $RUNS runs, seed $SEED, work dir $WORK"

FAILED=0
fail() {
  echo "FAIL $*"
  FAILED=1
}

lb() { "$LIFEBOAT" "$@"; }

json_get() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$1" "$2"
}

# ---- the tree: two halves (h1, h2) of random and compressible files, ~300 MiB ----

# Upper bound of the bytes the next backup may have to store: the full size of every file
# written since the last snapshot of the whole tree.
DIRTY=0

# write_random FILE MIB: new incompressible content.
write_random() {
  head -c "$(($2 * MIB))" /dev/urandom >"$1"
  DIRTY=$((DIRTY + $2 * MIB))
}

# write_text FILE START: ~10 MiB of compressible, non-repeating text.
write_text() {
  seq "$2" $(($2 + 1500000)) | head -c $((10 * MIB)) >"$1" || true
  DIRTY=$((DIRTY + 10 * MIB))
}

make_tree() {
  local h i
  for h in h1 h2; do
    mkdir -p "$TREE/$h/random" "$TREE/$h/text" "$TREE/$h/small/deeper"
    for i in $(seq 1 8); do write_random "$TREE/$h/random/r$i" 10; done
    for i in $(seq 1 7); do write_text "$TREE/$h/text/t$i" $((RANDOM * 1000 + i)); done
    for i in $(seq 1 100); do printf '%s small %s %s\n' "$h" "$i" "$RANDOM" >"$TREE/$h/small/s$i"; done
    ln -s ../random/r1 "$TREE/$h/small/link"
  done
  DIRTY=$((DIRTY + MIB))  # small files and trees, generously
}

# A few changes of every kind, between two backups.
mutate() {
  local h=h$((RANDOM % 2 + 1)) i
  for i in 1 2; do write_random "$TREE/h$((RANDOM % 2 + 1))/random/r$((RANDOM % 8 + 1))" 10; done
  i=$((RANDOM % 7 + 1))
  echo "appended $RANDOM" >>"$TREE/$h/text/t$i"
  DIRTY=$((DIRTY + $(stat -c %s "$TREE/$h/text/t$i")))
  printf 'changed %s\n' "$RANDOM" >"$TREE/$h/small/s$((RANDOM % 100 + 1))"
  rm -f "$TREE/$h/small/s$((RANDOM % 100 + 1))"
  printf 'new %s\n' "$RANDOM" >"$TREE/$h/small/deeper/n$RANDOM"
  touch -d "@$((1500000000 + RANDOM))" "$TREE/$h/small/s$((RANDOM % 100 + 1))" 2>/dev/null || true
  DIRTY=$((DIRTY + MIB))  # small files and trees, generously
}

# ---- backups that get killed ----

# start_backup NAME PATH [CACHE]: runs `backup files PATH` in a process group of its own
# (setsid does not fork here: a background job is no group leader); sets PID.
start_backup() {
  local name=$1 path=$2 cache=${3:-$LIFEBOAT_CACHE_DIR}
  LIFEBOAT_CACHE_DIR=$cache setsid "$LIFEBOAT" backup files "$path" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PID=$!
  RUNNING+=("$PID")
}

# kill_and_reap PID: SIGKILL to its group, then its exit code in RC (137 = killed; 0 =
# it had finished).
kill_and_reap() {
  kill -9 -- "-$1" 2>/dev/null || true
  RC=0
  { wait "$1"; } 2>/dev/null || RC=$?
  local keep=() p
  for p in "${RUNNING[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  RUNNING=("${keep[@]+"${keep[@]}"}")
}

count_index_files() { find "$LIFEBOAT_REPO/index" -type f ! -name '.*' 2>/dev/null | wc -l; }

# The repository must be intact: check exits 0 and says nothing but the expected warnings.
verify_repo() {
  local what=$1 rc=0
  lb check --read-data >"$WORK/check.out" 2>"$WORK/check.err" || rc=$?
  local unexpected
  unexpected=$(sed -e 's/\r//g' -e 's/\x1b\[K//g' "$WORK/check.out" "$WORK/check.err" |
    grep -E '^(error|warning)' |
    grep -vE 'pack\(s\) are not in any index|^warning: stale (lock|an exclusive lock|a lock)' ||
    true)
  if [[ $rc != 0 || -n $unexpected ]]; then
    fail "$what: check exited $rc"
    cat "$WORK/check.out" "$WORK/check.err"
    return 1
  fi
  rc=0
  lb unlock >/dev/null 2>"$WORK/unlock.err" || rc=$?
  lb --json locks >"$WORK/locks.json" 2>/dev/null || rc=$?
  if [[ $rc != 0 || $(json_get "$WORK/locks.json" 'len(d)') != 0 ]]; then
    fail "$what: unlock exited $rc or left locks"
    cat "$WORK/unlock.err" "$WORK/locks.json"
    return 1
  fi
}

# A clean backup of the whole tree; it must store no more than changed since the last
# snapshot, and nothing a killed backup had indexed (NEW_INDEX > 0: it wrote index files).
clean_backup_and_restore() {
  local what=$1 new_index=$2 rc=0
  lb --json backup files "$TREE" >"$WORK/clean.json" 2>"$WORK/clean.err" || rc=$?
  if [[ $rc != 0 ]]; then
    fail "$what: clean backup exited $rc"
    cat "$WORK/clean.err"
    return 1
  fi
  local new total
  new=$(json_get "$WORK/clean.json" 'd["summary"]["bytes_new"]')
  total=$(json_get "$WORK/clean.json" 'd["summary"]["bytes_total"]')
  echo "  $what: clean backup added $((new / MIB)) MiB of the $((total / MIB)) MiB tree" \
    "($((DIRTY / MIB)) MiB written since the last snapshot; the killed backup left" \
    "$new_index index file(s))"
  # The tree blobs of the directories above TREE change with every file this script
  # writes into its work directory: allow for them.
  if ((new > DIRTY + MIB)); then
    fail "$what: clean backup stored more than changed"
  fi
  # An index file written during a backup covers 8 full 8 MiB packs (64 MiB of stored data);
  # one written at its end covers everything: either way its blobs must not be stored again.
  if ((new_index > 0 && new > DIRTY - 56 * MIB && new > MIB)); then
    fail "$what: clean backup did not reuse what the killed backup had indexed"
  fi
  DIRTY=0
  rm -rf "$WORK/restore"
  rc=0
  lb restore latest --target "$WORK/restore" >/dev/null 2>"$WORK/restore.err" || rc=$?
  if [[ $rc != 0 ]]; then
    fail "$what: restore exited $rc"
    cat "$WORK/restore.err"
    return 1
  fi
  diff -r "$TREE" "$WORK/restore$TREE" || fail "$what: diff -r of the restored tree"
  python3 "$HERE/compare_trees.py" "$TREE" "$WORK/restore$TREE" ||
    fail "$what: restored metadata differs"
  rm -rf "$WORK/restore"
}

# ---- the test ----

START=$SECONDS
printf 'the password\n' >"$WORK/pw"
lb init >/dev/null
make_tree
echo "tree: $(du -sm "$TREE" | cut -f1) MiB generated in $((SECONDS - START)) s"

# Kill 0: the first backup, once it has indexed part of the tree (an index file appears
# after 8 packs), to show that the next backup reuses what was indexed.
start_backup first "$TREE"
while [[ -z $(compgen -G "$LIFEBOAT_REPO/index/*") ]] && kill -0 "$PID" 2>/dev/null; do
  sleep 0.01
done
kill_and_reap "$PID"
if [[ $RC == 137 ]]; then
  echo "kill 0: killed with $(count_index_files) index file(s) written"
  verify_repo "kill 0" && clean_backup_and_restore "kill 0" "$(count_index_files)"
else
  echo "kill 0: the backup finished (exit $RC) before the kill; reuse not shown"
  [[ $RC == 0 ]] || { fail "kill 0: backup exited $RC"; cat "$WORK/first.err"; }
  DIRTY=0
fi

# Random kills. The window for the kill moment starts at 1.5 s and adapts to how long a
# backup takes here: it shrinks when backups finish before the kill and grows when they
# are killed, so most kills land inside a backup whatever the machine's speed.
WINDOW_MS=1500
KILLED=0
FINISHED=0
for ((i = 1; i <= RUNS; i++)); do
  mutate
  index_before=$(count_index_files)
  delay=$((50 + RANDOM % (WINDOW_MS - 50 + 1)))
  pids=()
  if ((i % 3 == 0)); then
    # Two writers at once. Separate caches: a shared cache has a race of its own (see the
    # shared_index_cache case of cli_test.sh), not the subject of this test.
    start_backup "run$i-h1" "$TREE/h1"
    pids+=("$PID")
    start_backup "run$i-h2" "$TREE/h2" "$WORK/cache2"
    pids+=("$PID")
  else
    start_backup "run$i" "$TREE"
    pids+=("$PID")
  fi
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  outcome=""
  all_killed=1
  all_finished=1
  for p in "${pids[@]}"; do
    kill_and_reap "$p"
    case $RC in
      137) KILLED=$((KILLED + 1)); outcome+=" killed"; all_finished=0 ;;
      0) FINISHED=$((FINISHED + 1)); outcome+=" finished"; all_killed=0 ;;
      *)
        fail "run $i: backup exited $RC"
        cat "$WORK"/run"$i"*.err
        all_killed=0 all_finished=0
        ;;
    esac
  done
  if ((all_finished)); then
    WINDOW_MS=$((WINDOW_MS * 6 / 10 < 150 ? 150 : WINDOW_MS * 6 / 10))
    DIRTY=0
  else
    WINDOW_MS=$((WINDOW_MS * 12 / 10 > 1500 ? 1500 : WINDOW_MS * 12 / 10))
  fi
  new_index=$(($(count_index_files) - index_before))
  echo "run $i: ${#pids[@]} backup(s), kill after ${delay} ms:$outcome; $new_index new index file(s)"
  verify_repo "run $i" || continue
  if ((i % 5 == 0)); then
    ((all_killed)) || new_index=0
    clean_backup_and_restore "run $i" "$new_index"
  fi
done

echo "$KILLED backup(s) killed, $FINISHED finished before the kill; $((SECONDS - START)) s"
if ((KILLED < (RUNS + 2) / 3)); then
  fail "too few backups were killed while running to call this a crash test"
fi
if ((FAILED)); then
  echo "FAIL crash_test (seed $SEED)"
  exit 1
fi
echo "PASS crash_test"
