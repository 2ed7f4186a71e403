#!/usr/bin/env bash
# End-to-end tests of the audit trail: real lifeboat commands leave the records they should
# (and no secret), and `audit verify` names each kind of tampering with the file, with the
# exit code the user guide promises.
#
# Usage: audit_test.sh [CASE...]   (default: every case; names as printed by PASS/FAIL)
# Env:   LIFEBOAT  the binary to test (default: build/lifeboat of this checkout)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIFEBOAT=${LIFEBOAT:-$HERE/../../build/lifeboat}
if [[ ! -x $LIFEBOAT ]]; then
  echo "FAIL setup: no lifeboat binary at '$LIFEBOAT' (build it or set LIFEBOAT)" >&2
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-audit-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

unset LIFEBOAT_PASSWORD LIFEBOAT_NEW_PASSWORD_FILE LIFEBOAT_REPO LIFEBOAT_PASSWORD_FILE \
  LIFEBOAT_KEY_FILE LIFEBOAT_AUDIT_LOG LIFEBOAT_AUDIT_KEY_FILE LIFEBOAT_AUDIT_REQUIRED
export LIFEBOAT_TEST_FAST_KDF=1

# Distinctive secrets: none of them may appear anywhere in an audit log.
PASSWORD='Tr0ub4dor-and-3-audit-canaries'
NEW_PASSWORD='second-key-Zebra-Umbrella-917'
CONNINFO_PASSWORD='conninfo-Pa55-Walrus-442'
URL_SECRET='url-S3cret-Heron-58'

# ---- helpers (used inside a case; T is the case's directory) ----

lb() { "$LIFEBOAT" "$@"; }

fail() {
  echo "  $*" >&2
  return 1
}

# expect_rc WANT CMD...: stdout in $T/out, stderr in $T/err; fails unless CMD exits WANT.
expect_rc() {
  local want=$1 rc=0
  shift
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  if [[ $rc != "$want" ]]; then
    echo "  expected exit $want, got $rc from: $*" >&2
    sed 's/^/  | out: /' "$T/out" | head -40 >&2
    sed 's/^/  | err: /' "$T/err" | head -40 >&2
    return 1
  fi
}

# expect_in FILE TEXT: fails unless FILE holds TEXT (a fixed string).
expect_in() {
  grep -qF -- "$2" "$1" || {
    sed 's/^/  | /' "$1" | head -20 >&2
    fail "'$1' lacks: $2"
  }
}

# A repository, a password, and an audit log of the case's own.
new_setup() {
  export LIFEBOAT_REPO=$T/repo LIFEBOAT_CACHE_DIR=$T/cache LIFEBOAT_PASSWORD_FILE=$T/pw
  export LIFEBOAT_AUDIT_LOG=$T/state/audit.log
  printf '%s\n' "$PASSWORD" >"$T/pw"
  printf '%s\n' "$NEW_PASSWORD" >"$T/pw2"
  mkdir -p "$T/data/sub"
  head -c 200K /dev/urandom >"$T/data/a"
  printf 'hello\n' >"$T/data/sub/b"
}

# The usual life of a repository: 7 records, the last a failure.
run_operations() {
  expect_rc 0 lb init
  expect_rc 0 lb backup files "$T/data"
  printf 'changed\n' >"$T/data/sub/b"
  expect_rc 0 lb backup files "$T/data"
  expect_rc 0 lb restore latest --target "$T/restored"
  expect_rc 0 lb forget --keep-last 1
  expect_rc 0 lb prune
  expect_rc 0 lb key add --new-password-file "$T/pw2"
  expect_rc 5 lb restore 0badc0de --target "$T/nowhere"
}

# field LINE EXPR: evaluates a Python expression over record `r` on line LINE of the log.
field() {
  python3 -c 'import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[int(sys.argv[2]) - 1])
print(eval(sys.argv[3]))' "$LIFEBOAT_AUDIT_LOG" "$1" "$2"
}

# Rewrites record LINE with a Python statement over `r` and recomputes its hash the way an
# attacker without a key can (docs/repository-format.md, 13).
rewrite_record() {
  python3 - "$LIFEBOAT_AUDIT_LOG" "$1" "$2" <<'EOF'
import hashlib, json, sys
path, n, stmt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = open(path).read().splitlines()
r = json.loads(lines[n - 1])
exec(stmt)
r.pop("hash", None)
canonical = json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
r["hash"] = hashlib.sha256(canonical.encode()).hexdigest()
lines[n - 1] = json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
open(path, "w").write("\n".join(lines) + "\n")
EOF
}

# verify_says WANT_RC TEXT [ARGS...]: `audit verify` exits WANT_RC and prints TEXT.
verify_says() {
  local want=$1 text=$2
  shift 2
  expect_rc "$want" lb audit verify "$@"
  expect_in "$T/out" "$text"
}

# ---- cases ----

# The commands of a repository's life are recorded with what they did; listings are not;
# no secret is written anywhere.
case_records() {
  new_setup
  run_operations
  expect_rc 0 lb snapshots
  expect_rc 0 lb check
  expect_rc 0 lb key list
  local log=$LIFEBOAT_AUDIT_LOG
  [[ $(wc -l <"$log") == 8 ]] || fail "expected 8 records, got $(wc -l <"$log")"
  local ops
  ops=$(python3 -c 'import json, sys
print(",".join(json.loads(l)["operation"] for l in open(sys.argv[1])))' "$log")
  [[ $ops == "init,backup files,backup files,restore,forget,prune,key add,restore" ]] ||
    fail "operations: $ops"
  [[ $(field 1 'r["seq"], r["exit_code"], r["result"]') == "(1, 0, 'ok')" ]] || fail "record 1"
  [[ $(field 8 'r["exit_code"]') == 5 ]] || fail "record 8 exit code"
  expect_in "$log" "no snapshot '0badc0de'"
  [[ $(field 2 'r["repositories"]') == "['$T/repo']" ]] || fail "repositories of record 2"
  [[ $(field 2 'r["argv"][1:]') == "['backup', 'files', '$T/data']" ]] || fail "argv of 2"
  [[ $(field 7 'r["argv"][-1]') == "$T/pw2" ]] || fail "a password file's path is kept"
  [[ $(field 3 'r["user"] != "" and r["host"] != "" and r["pid"] > 0 and r["time"][-1] == "Z"') == True ]] ||
    fail "user, host, pid, time"
  [[ $(field 3 'r["prev"] == json.loads(open(sys.argv[1]).read().splitlines()[1])["hash"]') == True ]] ||
    fail "record 3 does not chain to record 2"
  [[ $(stat -c %a "$log") == 600 ]] || fail "log mode $(stat -c %a "$log")"

  # Secrets given on the command line or in urls are redacted.
  expect_rc 11 lb pg backup --dbname "host=$T/nosocket user=x password=$CONNINFO_PASSWORD"
  expect_rc 2 lb --repo "s3://AKIDEXAMPLE:$URL_SECRET@s3.example.net/bucket" prune
  expect_in "$log" "password=<redacted>"
  expect_in "$log" "s3://AKIDEXAMPLE:<redacted>@s3.example.net/bucket"
  local s
  for s in "$PASSWORD" "$NEW_PASSWORD" "$CONNINFO_PASSWORD" "$URL_SECRET"; do
    if grep -rqF -- "$s" "$T/state" "$T/repo"; then fail "secret '$s' was written"; fi
  done

  # wal-push is recorded only when it fails; wal-get's "not in the archive" is not recorded.
  expect_rc 5 lb pg wal-push "$T/000000010000000000000001"
  expect_rc 1 lb pg wal-get 000000010000000000000001 "$T/seg"
  expect_rc 255 lb --repo "$T/missing-repo" pg wal-get 000000010000000000000001 "$T/seg"
  ops=$(python3 -c 'import json, sys
print(",".join(json.loads(l)["operation"] for l in list(open(sys.argv[1]))[-3:]))' "$log")
  [[ $ops == "prune,pg wal-push,pg wal-get" ]] || fail "last operations: $ops"

  # Every command that opened the repository left a copy of its record there.
  expect_rc 0 lb audit verify
  expect_in "$T/out" "no problems were found"
  expect_in "$T/out" "repository $T/repo: 9 records of this log"
  expect_rc 0 lb audit show --last 2
  expect_in "$T/out" "pg wal-get"
  expect_rc 0 lb audit show --json
  [[ $(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$T/out") == 12 ]] ||
    fail "audit show --json"
}

case_intact() {
  new_setup
  run_operations
  verify_says 0 "no problems were found; last record 8"
  LIFEBOAT_REPO= verify_says 0 "8 records of log"
}

case_edited() {
  new_setup
  run_operations
  sed -i '3s/"exit_code":0/"exit_code":1/' "$LIFEBOAT_AUDIT_LOG"
  verify_says 6 "error: record 3 (line 3): hash mismatch — the record was edited"
  expect_in "$T/out" "the audit trail has been tampered with"
}

case_edited_rehashed() {
  new_setup
  run_operations
  # Without the key of a keyed log, an attacker can make the record's own hash match again;
  # the next record's link still exposes it.
  rewrite_record 4 'r["argv"][-1] = "/somewhere/else"'
  LIFEBOAT_REPO= verify_says 6 "error: prev of record 5 does not match record 4"
  verify_says 6 "error: record 4 differs from its repository copy"
}

case_last_rewritten() {
  new_setup
  run_operations
  rewrite_record 8 'r["result"] = "ok"; r["exit_code"] = 0'
  LIFEBOAT_REPO= verify_says 0 "no problems were found"
  verify_says 6 "error: record 8 differs from its repository copy"
}

case_removed() {
  new_setup
  run_operations
  sed -i '5d' "$LIFEBOAT_AUDIT_LOG"
  LIFEBOAT_REPO= verify_says 6 "error: record 6 follows record 4: record 5 was removed"
  sed -i '1d' "$LIFEBOAT_AUDIT_LOG"
  LIFEBOAT_REPO= verify_says 6 "error: the log starts at record 2: record 1 was removed"
}

case_reordered() {
  new_setup
  run_operations
  sed -i '3{h;d};4G' "$LIFEBOAT_AUDIT_LOG"  # swap records 3 and 4
  verify_says 6 "error: records out of order at line 3 (seq 4 before 3)"
}

case_inserted() {
  new_setup
  run_operations
  sed -i '2a {"v":1,"operation":"nothing to see"}' "$LIFEBOAT_AUDIT_LOG"
  verify_says 6 "error: line 3 is not a valid record"
}

case_truncated() {
  new_setup
  run_operations
  head -n 6 "$LIFEBOAT_AUDIT_LOG" >"$T/short" && cat "$T/short" >"$LIFEBOAT_AUDIT_LOG"
  # The file alone looks whole; the repository copy knows better.
  LIFEBOAT_REPO= verify_says 0 "no problems were found; last record 6"
  verify_says 6 "error: log truncated: the repository copy has records up to 8 but the file ends at 6"
  # A new record reuses seq 7, whose copy in the repository differs: a warning, not a failure.
  expect_rc 0 lb backup files "$T/data"
  expect_in "$T/err" "the repository already holds another record 7"
}

case_deleted() {
  new_setup
  run_operations
  rm "$LIFEBOAT_AUDIT_LOG"
  verify_says 5 "also holds audit log"
  expect_in "$T/err" "does not exist"
}

case_torn() {
  new_setup
  run_operations
  # A crash in the middle of writing a record leaves a line without its newline.
  printf '{"alg":"sha256","argv":["lifeboat","ba' >>"$LIFEBOAT_AUDIT_LOG"
  verify_says 3 "warning: incomplete final record at line 9"
  if grep -qF "tampered" "$T/out"; then fail "a cut-off record is not tampering"; fi
  expect_rc 0 lb backup files "$T/data"
  expect_in "$T/err" "removed an incomplete final record of 38 bytes"
  verify_says 0 "no problems were found; last record 9"
  [[ $(field 9 '"repair" in r and r["operation"] == "backup files"') == True ]] ||
    fail "record 9 does not tell of the repair"
}

case_keyed() {
  new_setup
  openssl rand -hex 32 >"$T/audit.key"
  export LIFEBOAT_AUDIT_KEY_FILE=$T/audit.key
  run_operations
  [[ $(field 1 'r["alg"]') == hmac-sha256 ]] || fail "not keyed"
  verify_says 0 "no problems were found"
  LIFEBOAT_AUDIT_KEY_FILE= verify_says 7 "the log is keyed"
  openssl rand -hex 32 >"$T/other.key"
  LIFEBOAT_AUDIT_KEY_FILE=$T/other.key verify_says 4 "was keyed with key"
  # Without the key, an edit can only be re-hashed as a plain record.
  rewrite_record 8 'r["result"] = "ok"; r["exit_code"] = 0; r["alg"] = "sha256"; del r["key_id"]'
  LIFEBOAT_REPO= verify_says 6 "error: record 8 (line 8) is not keyed although a key was given"
}

case_required() {
  new_setup
  expect_rc 0 lb init
  printf 'not a directory\n' >"$T/file"
  # Default: a warning, and the operation runs.
  LIFEBOAT_AUDIT_LOG=$T/file/audit.log expect_rc 0 lb backup files "$T/data"
  expect_in "$T/err" "'backup files' is not recorded in the audit trail"
  # Required: the operation does not run.
  expect_rc 0 lb snapshots --json
  local before
  before=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$T/out")
  LIFEBOAT_AUDIT_LOG=$T/file/audit.log expect_rc 10 lb --audit-required backup files "$T/data"
  expect_in "$T/err" "'backup files' was not run"
  expect_rc 0 lb snapshots --json
  [[ $(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$T/out") == "$before" ]] ||
    fail "a backup ran although its record could not be written"
  # Commands that are not audited do not care.
  LIFEBOAT_AUDIT_LOG=$T/file/audit.log expect_rc 0 lb --audit-required snapshots
}

# ---- runner ----

ALL_CASES=(records intact edited edited_rehashed last_rewritten removed reordered inserted
  truncated deleted torn keyed required)
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
