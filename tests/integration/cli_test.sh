#!/usr/bin/env bash
# End-to-end tests of the lifeboat command line against a local repository: round trip of
# every kind of file, exit codes and messages of the common failures, keys, damaged
# repositories, unreadable files, locks and concurrent backups.
#
# Usage: cli_test.sh [CASE...]   (default: every case; names as printed by PASS/FAIL)
# Env:   LIFEBOAT  the binary to test (default: build/lifeboat of this checkout)
#        LIFEBOAT_TEST_KNOWN_BUGS=1  also run the cases of known, unfixed bugs
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIFEBOAT=${LIFEBOAT:-$HERE/../../build/lifeboat}
COMPARE="python3 $HERE/compare_trees.py"
if [[ ! -x $LIFEBOAT ]]; then
  echo "FAIL setup: no lifeboat binary at '$LIFEBOAT' (build it or set LIFEBOAT)" >&2
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-cli-test.XXXXXX")
cleanup() {
  # Restored trees may hold read-only directories; make them removable first.
  chmod -R u+rwX "$WORK" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Every case starts from the same environment; nothing of the caller's leaks in.
unset LIFEBOAT_PASSWORD LIFEBOAT_NEW_PASSWORD_FILE LIFEBOAT_REPO LIFEBOAT_PASSWORD_FILE
export LIFEBOAT_TEST_FAST_KDF=1
# Audit records of every case go here, not into the audit log of whoever runs the tests.
export LIFEBOAT_AUDIT_LOG=$WORK/audit.log

# ---- helpers (used inside a case; T is the case's directory) ----

lb() { "$LIFEBOAT" "$@"; }

# Prints a reason and fails the case.
fail() {
  echo "  $*" >&2
  return 1
}

# expect_rc WANT CMD...: runs CMD with stdout in $T/out and stderr in $T/err (terminal
# escapes stripped, so messages can be matched line by line); fails unless it exits WANT.
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

# json_get FILE EXPR: evaluates a Python expression over the JSON document `d` in FILE.
json_get() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$1" "$2"
}

# Flips every bit of the byte at OFFSET (default: a third into the file).
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

hex64() { python3 -c 'import secrets; print(secrets.token_hex(32))'; }

# Gives the case a repository, a cache and a password of its own.
new_repo() {
  export LIFEBOAT_REPO=$T/repo LIFEBOAT_CACHE_DIR=$T/cache LIFEBOAT_PASSWORD_FILE=$T/pw
  printf 'correct horse battery staple\n' >"$T/pw"
  expect_rc 0 lb init
}

# A small tree of ordinary files: one multi-chunk random file and a few small ones.
make_plain_tree() {
  local d=$1
  mkdir -p "$d/sub/deeper"
  head -c 3M /dev/urandom >"$d/big"
  for i in $(seq 1 12); do
    printf 'small file %s of %s\n' "$i" "$d" >"$d/sub/small$i"
  done
  yes "text in $d" | head -c 300K >"$d/sub/deeper/text" || true
}

# ---- cases ----

# Every kind of entry lifeboat stores, with odd names, modes, owners and times.
case_round_trip() {
  new_repo
  local d=$T/src
  mkdir -p "$d/dir1/sub" "$d/empty dir" "$d/name with spaces" "$d/sticky" "$d/private"
  head -c 3M /dev/urandom >"$d/dir1/random 3MiB"
  head -c 1048583 /dev/urandom >"$d/dir1/sub/random_odd"
  yes 'a compressible line of text' | head -c 2M >"$d/dir1/text" || true
  : >"$d/empty_file"
  printf 'hello\n' >"$d/name with spaces/file with spaces.txt"
  printf 'newline\n' >"$d/new"$'\n'"line"
  printf 'invalid utf-8\n' >"$d/bad"$'\xff\xfe'"name"
  mkdir "$d/dir"$'\xc3\x28'
  printf 'inside\n' >"$d/dir"$'\xc3\x28'"/inner"
  ln -s "dir1/text" "$d/link_rel"
  ln -s "/nonexistent/target path" "$d/dangling"
  ln "$d/dir1/text" "$d/hardlink to text"
  mkfifo "$d/fifo"
  truncate -s 32M "$d/sparse"
  printf 'middle' | dd of="$d/sparse" bs=1 seek=$((16 << 20)) conv=notrunc status=none
  printf 'secret\n' >"$d/private/secret"
  printf '#!/bin/sh\n' >"$d/setuid"
  printf 'ro\n' >"$d/readonly"
  chmod 0751 "$d/dir1"
  chmod 0600 "$d/private/secret"
  chmod 0700 "$d/private"
  chmod 1777 "$d/sticky"
  chmod 4755 "$d/setuid"
  chmod 0444 "$d/readonly"
  if [[ $EUID == 0 ]]; then
    chown 1234:5678 "$d/dir1/sub/random_odd" "$d/private"
    chown -h 4321:8765 "$d/link_rel"
  fi
  # Distinct times with nanoseconds, one before 1970; children before their directory.
  local i=0 p
  while IFS= read -r -d '' p; do
    i=$((i + 1))
    touch -h -d "@$((1000000000 + i * 86400)).$(printf '%09d' $((i * 7919)))" "$p"
  done < <(find "$d" -depth -print0)
  touch -h -d '1969-07-20 20:17:40.123456789 UTC' "$d/readonly"

  expect_rc 0 lb backup files "$d"
  expect_rc 0 lb restore latest --target "$T/restore"
  $COMPARE "$d" "$T/restore$d" || fail "restored tree differs from the source"
  local allocated
  allocated=$(($(stat -c '%b * %B' "$T/restore$d/sparse")))
  ((allocated < 1048576)) || fail "sparse file restored dense ($allocated bytes allocated)"
}

# A second backup of an unchanged tree reads nothing.
case_unchanged_rebackup() {
  new_repo
  make_plain_tree "$T/src"
  expect_rc 0 lb --json backup files "$T/src"
  [[ $(json_get "$T/out" 'd["summary"]["bytes_read"]') -gt 0 ]] || fail "first backup read 0 bytes"
  expect_rc 0 lb --json backup files "$T/src"
  local read unchanged files
  read=$(json_get "$T/out" 'd["summary"]["bytes_read"]')
  unchanged=$(json_get "$T/out" 'd["summary"]["files_unchanged"]')
  files=$(json_get "$T/out" 'd["summary"]["files"]')
  [[ $read == 0 ]] || fail "re-backup read $read bytes, want 0"
  [[ $unchanged == "$files" ]] || fail "re-backup: $unchanged of $files files unchanged"
}

# Exit codes and messages of the failures a user meets first.
case_open_errors() {
  new_repo
  make_plain_tree "$T/src"
  expect_rc 0 lb backup files "$T/src"

  printf 'wrong-password-Zq9x\n' >"$T/pw_wrong"
  expect_rc 4 env LIFEBOAT_PASSWORD_FILE="$T/pw_wrong" "$LIFEBOAT" snapshots
  [[ $(grep -c '^error: ' "$T/err") == 1 ]] || fail "wrong password: want one error line"
  [[ $(grep -vc '^\(error\|hint\): ' "$T/err") == 0 ]] || fail "wrong password: unexpected output"
  if grep -q 'Zq9x\|horse' "$T/out" "$T/err"; then fail "wrong password: the password is printed"; fi

  expect_rc 2 env -u LIFEBOAT_PASSWORD_FILE "$LIFEBOAT" snapshots
  grep -q 'password' "$T/err" || fail "missing password: message does not say so"

  expect_rc 7 lb --repo "$T/does-not-exist" snapshots
  [[ ! -e $T/does-not-exist ]] || fail "opening a missing repository created it"

  mkdir "$T/plain-dir"
  expect_rc 7 lb --repo "$T/plain-dir" snapshots
  grep -q 'not a lifeboat repository' "$T/err" || fail "plain directory: unclear message"

  cp -a "$T/repo" "$T/repo-v9"
  sed -i 's/"version": *1/"version": 9/' "$T/repo-v9/config"
  grep -q '"version": 9' "$T/repo-v9/config" || fail "could not edit the config version"
  expect_rc 7 lb --repo "$T/repo-v9" snapshots
  grep -q 'newer' "$T/err" || fail "newer format: message does not say 'newer'"

  expect_rc 8 lb init
}

case_keys() {
  new_repo
  make_plain_tree "$T/src"
  expect_rc 0 lb backup files "$T/src"
  printf 'second password\n' >"$T/pw2"
  expect_rc 0 lb key add --new-password-file "$T/pw2"
  expect_rc 0 lb --json key list
  [[ $(json_get "$T/out" 'len(d)') == 2 ]] || fail "key list shows $(json_get "$T/out" 'len(d)') keys, want 2"
  local first second
  first=$(json_get "$T/out" '[k["id"] for k in d if k["current"]][0]')
  second=$(json_get "$T/out" '[k["id"] for k in d if not k["current"]][0]')

  export LIFEBOAT_PASSWORD_FILE=$T/pw2
  expect_rc 0 lb snapshots
  expect_rc 0 lb --json key list
  [[ $(json_get "$T/out" '[k["id"] for k in d if k["current"]][0]') == "$second" ]] ||
    fail "the second password does not open the second key"
  expect_rc 7 lb key remove "${second:0:8}"
  expect_rc 0 lb key remove "${first:0:8}"
  expect_rc 0 lb --json key list
  [[ $(json_get "$T/out" 'len(d)') == 1 ]] || fail "key remove left $(json_get "$T/out" 'len(d)') keys"
  expect_rc 0 lb restore latest --target "$T/restore"
  $COMPARE "$T/src" "$T/restore$T/src" || fail "restore with the second key differs"

  export LIFEBOAT_PASSWORD_FILE=$T/pw
  expect_rc 4 lb snapshots
}

# Several repositories: one key file opens both; restores fall back to the next repository
# in --repo order; commands that work on one repository refuse several.
case_several_repos() {
  new_repo
  make_plain_tree "$T/src"
  expect_rc 0 lb --repo "$T/repo2" init
  expect_rc 0 lb key add --generate-key-file "$T/key"
  expect_rc 0 lb --repo "$T/repo2" key add --new-key-file "$T/key"
  expect_rc 2 lb --repo "$T/repo2" key add --new-key-file "$T/pw"
  grep -q "is not a lifeboat key file" "$T/err" || fail "a password accepted as a key file"
  unset LIFEBOAT_PASSWORD_FILE
  export LIFEBOAT_KEY_FILE=$T/key
  expect_rc 0 lb --repo "$T/repo2" backup files "$T/src"
  expect_rc 0 lb snapshots
  expect_rc 0 lb --repo "$T/gone" --repo "$T/repo2" restore latest --target "$T/restore"
  grep -q "trying the next repository" "$T/err" || fail "no warning about the unreachable repository"
  $COMPARE "$T/src" "$T/restore$T/src" || fail "restore from the second repository differs"
  expect_rc 2 lb --repo "$T/repo" --repo "$T/repo2" check
  grep -q "works on one repository" "$T/err" || fail "check took two repositories silently"
  # A backup given two repositories writes the first and copies into the second.
  echo "changed" >>"$T/src/sub/small1"
  expect_rc 0 lb --json --repo "$T/repo" --repo "$T/repo2" backup files "$T/src"
  local id
  id=$(json_get "$T/out" 'd["id"]')
  expect_rc 0 lb --json --repo "$T/repo2" snapshots
  [[ $(json_get "$T/out" '[s.get("original") for s in d].count("'"$id"'")') == 1 ]] ||
    fail "the second repository has no copy of snapshot $id"
  expect_rc 0 lb --repo "$T/repo2" restore latest --target "$T/restore3"
  $COMPARE "$T/src" "$T/restore3$T/src" || fail "the copied snapshot restores differently"
  expect_rc 0 lb --repo "$T/repo2" check --read-data
  # The second one unreachable: the backup is stored in the first, the command says what to
  # run later and fails.
  expect_rc 7 lb --repo "$T/repo" --repo "$T/gone" backup files "$T/src"
  grep -q "lifeboat copy --from $T/repo --to $T/gone" "$T/err" || fail "no catch-up hint"
  # A url carrying credentials is refused without being echoed.
  expect_rc 2 lb --repo "$T/repo" --repo 's3://AKIDCLITEST:verysecretvalue@bucket/x' restore latest --target "$T/r4"
  ! grep -q -e verysecretvalue -e AKIDCLITEST "$T/out" "$T/err" || fail "a url's credentials were echoed"
  expect_rc 2 lb --repo 's3://bucket/x?secret_access_key=verysecretvalue' snapshots
  ! grep -q verysecretvalue "$T/out" "$T/err" || fail "a url's secret option was echoed"
  expect_rc 7 lb --repo "$T/gone" --repo "$T/gone2" restore latest --target "$T/restore2"
  grep -q "gone2" "$T/err" || fail "the last error does not name the repository"
}

# Lines under "damage affects:" of `check`, without the "snapshot xxxxxxxx: " prefix.
affected_paths() {
  sed -n '/^damage affects:/,/^the repository/p' "$1" | sed -n 's/^  snapshot [0-9a-f]\{8\}: //p' | sort -u
}

case_tamper() {
  new_repo
  make_plain_tree "$T/src"
  expect_rc 0 lb --json backup files "$T/src"
  local snap
  snap=$(json_get "$T/out" 'd["id"]')
  expect_rc 0 lb check --read-data

  # (a) a data pack: check names the pack and the file; restore saves the rest.
  cp -a "$T/repo" "$T/repo-a"
  local pack name
  pack=$(find "$T/repo-a/data" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
  name=$(basename "$pack")
  flip_byte "$pack"
  export LIFEBOAT_REPO=$T/repo-a LIFEBOAT_CACHE_DIR=$T/cache-a
  expect_rc 6 lb check --read-data
  cp "$T/out" "$T/check-a"
  grep -q "${name:0:8}" "$T/check-a" || fail "(a) check does not name pack ${name:0:8}"
  affected_paths "$T/check-a" >"$T/affected-a"
  grep -q "^$T/src/" "$T/affected-a" || fail "(a) check names no affected file"
  expect_rc 6 lb restore "$snap" --target "$T/restore-a"
  sed -n 's/^  //p' "$T/err" | sort -u >"$T/damaged-a"
  [[ -s $T/damaged-a ]] || fail "(a) restore lists no damaged path"
  diff -u "$T/affected-a" "$T/damaged-a" >&2 || fail "(a) restore and check disagree on the damage"
  local skips=() p
  while IFS= read -r p; do skips+=(--skip "${p#"$T/src/"}"); done <"$T/damaged-a"
  $COMPARE "${skips[@]}" "$T/src" "$T/restore-a$T/src" || fail "(a) intact files differ"

  # (b) an index file.
  cp -a "$T/repo" "$T/repo-b"
  local index
  index=$(find "$T/repo-b/index" -type f | head -1)
  flip_byte "$index"
  export LIFEBOAT_REPO=$T/repo-b LIFEBOAT_CACHE_DIR=$T/cache-b
  expect_rc 6 lb check --read-data
  name=$(basename "$index")
  grep -q "${name:0:8}" "$T/out" || fail "(b) check does not name index file ${name:0:8}"

  # (c) a snapshot.
  cp -a "$T/repo" "$T/repo-c"
  flip_byte "$T/repo-c/snapshots/$snap"
  export LIFEBOAT_REPO=$T/repo-c LIFEBOAT_CACHE_DIR=$T/cache-c
  expect_rc 6 lb check --read-data
  grep -q "${snap:0:8}" "$T/out" || fail "(c) check does not name snapshot ${snap:0:8}"
}

# A file the backup cannot read: exit 3, the file named, the rest saved.
case_unreadable_file() {
  if [[ $EUID != 0 ]] || ! command -v runuser >/dev/null || ! id nobody >/dev/null 2>&1; then
    echo "  skipped: needs root, runuser and user nobody"
    return 0
  fi
  local nb=$T/nobody
  mkdir -p "$nb" "$T/src"
  chmod 0755 "$WORK" "$T"
  chown nobody "$nb"
  make_plain_tree "$T/src"
  chmod -R a+rX "$T/src"
  printf 'nobody may read this\n' >"$T/src/sub/unreadable"
  chmod 000 "$T/src/sub/unreadable"
  printf 'pw for nobody\n' >"$nb/pw"
  chown nobody "$nb/pw"
  chmod 0600 "$nb/pw"
  local as_nobody=(runuser -u nobody -- env LIFEBOAT_REPO="$nb/repo"
    LIFEBOAT_CACHE_DIR="$nb/cache" LIFEBOAT_PASSWORD_FILE="$nb/pw" "$LIFEBOAT")
  cd /  # nobody cannot enter the caller's directory
  expect_rc 0 "${as_nobody[@]}" init
  expect_rc 3 "${as_nobody[@]}" backup files "$T/src"
  grep -q "$T/src/sub/unreadable" "$T/err" || fail "the message does not name the unreadable file"
  expect_rc 0 "${as_nobody[@]}" --json snapshots
  [[ $(json_get "$T/out" 'len(d)') == 1 ]] || fail "no snapshot after the incomplete backup"
  export LIFEBOAT_REPO=$nb/repo LIFEBOAT_CACHE_DIR=$T/cache LIFEBOAT_PASSWORD_FILE=$nb/pw
  expect_rc 0 lb restore latest --target "$T/restore"
  [[ ! -e $T/restore$T/src/sub/unreadable ]] || fail "the unreadable file was restored"
  $COMPARE --skip sub/unreadable "$T/src" "$T/restore$T/src" || fail "restored files differ"
}

# write_lock PID EXCLUSIVE: a lock of this host as another lifeboat would write it.
write_lock() {
  local id
  id=$(hex64)
  mkdir -p "$LIFEBOAT_REPO/locks"
  printf '{"host":"%s","pid":%s,"user":"ghost","time":%s,"exclusive":%s,"purpose":"test"}' \
    "$(uname -n)" "$1" "$(date +%s)" "$2" >"$LIFEBOAT_REPO/locks/$id"
  echo "$id"
}

case_locks() {
  new_repo
  make_plain_tree "$T/src"
  expect_rc 0 lb backup files "$T/src"

  local id
  id=$(write_lock 999999999 true)
  expect_rc 0 lb locks
  grep -q "^${id:0:8} .*STALE" "$T/out" || fail "locks does not mark the dead process's lock STALE"
  echo more >>"$T/src/sub/small1"
  expect_rc 0 lb backup files "$T/src"
  grep -qi 'stale' "$T/err" || fail "backup over a stale lock prints no warning"
  expect_rc 0 lb unlock
  expect_rc 0 lb --json locks
  [[ $(json_get "$T/out" 'len(d)') == 0 ]] || fail "unlock left a lock behind"

  sleep 30 &
  SLEEPER=$!  # global: the EXIT trap runs after this function has returned
  trap 'kill $SLEEPER 2>/dev/null || true' EXIT
  id=$(write_lock "$SLEEPER" true)
  expect_rc 7 lb backup files "$T/src"
  grep -q 'locked' "$T/err" || fail "blocked backup does not say 'locked'"
  expect_rc 0 lb unlock
  [[ -e $LIFEBOAT_REPO/locks/$id ]] || fail "unlock removed a live lock"
  kill "$SLEEPER"
  wait "$SLEEPER" 2>/dev/null || true
  expect_rc 0 lb locks
  grep -q "^${id:0:8} .*STALE" "$T/out" || fail "lock of the killed process is not STALE"
  expect_rc 0 lb unlock
  [[ ! -e $LIFEBOAT_REPO/locks/$id ]] || fail "unlock kept the stale lock"
}

case_concurrent_backups() {
  new_repo
  make_plain_tree "$T/a"
  make_plain_tree "$T/b"
  # Content both trees share: both writers may store the same blobs.
  head -c 20M /dev/urandom >"$T/a/shared"
  cp "$T/a/shared" "$T/b/shared"
  head -c 20M /dev/urandom >"$T/a/own"
  head -c 20M /dev/urandom >"$T/b/own"
  local pa pb rca=0 rcb=0
  lb --json backup files "$T/a" >"$T/a.json" 2>"$T/a.err" &
  pa=$!
  lb --json backup files "$T/b" >"$T/b.json" 2>"$T/b.err" &
  pb=$!
  wait $pa || rca=$?
  wait $pb || rcb=$?
  [[ $rca == 0 && $rcb == 0 ]] || { cat "$T/a.err" "$T/b.err" >&2; fail "backups exited $rca and $rcb"; }
  expect_rc 0 lb check --read-data
  local t
  for t in a b; do
    expect_rc 0 lb restore "$(json_get "$T/$t.json" 'd["id"]')" --target "$T/restore-$t"
    $COMPARE "$T/$t" "$T/restore-$t$T/$t" || fail "restore of tree $t differs"
  done
}

# Known bug, not in the default set: processes that share the index cache (the default
# ~/.cache/lifeboat) fail with exit 5 while another one appends to the index, because
# Index::Load removes the cached runs of index files newer than its own listing of index/,
# which another process has just fetched and is about to map ("open cache ...: No such
# file or directory"). Rare: about one command in a few hundred here. (Until fa4a241 it
# also removed other processes' temporary files: "cache rename ...: No such file".)
case_shared_index_cache() {
  new_repo
  mkdir -p "$T/src"
  echo 0 >"$T/src/f"
  expect_rc 0 lb backup files "$T/src"
  # One writer adds an index file per backup; three readers load the index meanwhile.
  (
    for i in $(seq 1 300); do
      echo "$i" >"$T/src/f"
      lb backup files "$T/src" >/dev/null 2>>"$T/writer.err" || echo "writer exit $?" >>"$T/failures"
    done
    touch "$T/writer.done"
  ) &
  local r
  for r in 1 2 3; do
    (
      while [[ ! -e $T/writer.done ]]; do
        lb ls latest >/dev/null 2>"$T/reader$r.err" ||
          echo "reader $r exit $?: $(tr -d '\r' <"$T/reader$r.err" | sed 's/\x1b\[K//g')" >>"$T/failures"
      done
    ) &
  done
  wait
  if [[ -s $T/failures ]]; then
    sort "$T/failures" | uniq -c | head -5 | sed 's/^/  /' >&2
    fail "$(wc -l <"$T/failures") command(s) failed while sharing the index cache"
  fi
}

# ---- runner ----

ALL_CASES=(round_trip unchanged_rebackup open_errors keys several_repos tamper unreadable_file
  locks concurrent_backups)
# Cases that fail until a known bug is fixed; run them by name or with LIFEBOAT_TEST_KNOWN_BUGS=1.
KNOWN_BUG_CASES=(shared_index_cache)
CASES=("$@")
if ((${#CASES[@]} == 0)); then
  CASES=("${ALL_CASES[@]}")
  [[ ${LIFEBOAT_TEST_KNOWN_BUGS:-0} == 0 ]] || CASES+=("${KNOWN_BUG_CASES[@]}")
fi

failed=0
for c in "${CASES[@]}"; do
  if ! declare -F "case_$c" >/dev/null; then
    echo "FAIL $c (no such case)"
    failed=1
    continue
  fi
  T=$WORK/$c
  mkdir -p "$T"
  # A background subshell keeps `set -e` in force inside the case (it would be ignored in
  # an `if` or `||` context), and its environment changes stay in the case.
  (case_"$c") &
  rc=0
  wait $! || rc=$?
  if [[ $rc == 0 ]]; then echo "PASS $c"; else echo "FAIL $c"; failed=1; fi
done
exit $failed
