#!/usr/bin/env bash
# End-to-end tests of 'lifeboat plan check' and 'lifeboat plan next': exit codes, located
# problems, JSON output, and the example plan of the seed (examples/reservations-plan.yaml).
#
# Usage: plan_test.sh [CASE...]   (default: every case)
# Env:   LIFEBOAT  the binary to test (default: build/lifeboat of this checkout)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIFEBOAT=${LIFEBOAT:-$HERE/../../build/lifeboat}
EXAMPLE=$HERE/../../examples/reservations-plan.yaml
if [[ ! -x $LIFEBOAT ]]; then
  echo "FAIL setup: no lifeboat binary at '$LIFEBOAT' (build it or set LIFEBOAT)" >&2
  exit 1
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-plan-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
unset LIFEBOAT_REPO LIFEBOAT_PASSWORD LIFEBOAT_PASSWORD_FILE LIFEBOAT_KEY_FILE

lb() { "$LIFEBOAT" "$@"; }
fail() {
  echo "  $*" >&2
  return 1
}
# expect_rc WANT CMD...: stdout to $T/out, stderr to $T/err; fails unless CMD exits WANT.
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
json_get() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$1" "$2"
}

# The seed's plan passes, with a summary and next runs in UTC.
case_example_passes() {
  expect_rc 0 lb plan check "$EXAMPLE" --now 2026-03-28T12:00:00Z
  grep -q 'reservations-plan.yaml: ok (0 warnings)$' "$T/out" || fail "no ok line"
  grep -q '^3 repositories, 6 sources, 14 jobs, 4 objectives, 4 drills$' "$T/out" ||
    fail "summary line missing"
  grep -Eq '^pg-full +full +reservations-db +0 1 \* \* \* +2026-03-29T01:00:00Z$' "$T/out" ||
    fail "pg-full's next run missing"
  grep -Eq '^pg-incr .* 2026-03-28T12:15:00Z$' "$T/out" || fail "pg-incr's next run missing"

  expect_rc 0 lb --json plan check "$EXAMPLE" --now 2026-03-28T12:00:00Z
  [[ $(json_get "$T/out" 'd["ok"]') == True ]] || fail "json: not ok"
  [[ $(json_get "$T/out" 'len(d["summary"]["jobs"])') == 14 ]] || fail "json: job count"
  [[ $(json_get "$T/out" '[j["next_run"] for j in d["summary"]["jobs"] if j["name"] == "pg-full"][0]') == 2026-03-29T01:00:00Z ]] ||
    fail "json: pg-full next run"
}

# A plan with mistakes: every problem, located, and exit 2.
case_problems_exit_2() {
  cat >"$T/plan.yaml" <<'YAML'
repositories:
  main:
    url: /srv/backup
    password: hunter2
sources:
  db:
    kind: postgres
jobs:
  full:
    kind: full
    source: dbb
    schedule: "0 25 * * *"
    retenion: 30d
YAML
  expect_rc 2 lb plan check "$T/plan.yaml"
  local p=$T/plan.yaml
  {
    echo "$p:2:3: error: repository 'main': no key source: lifeboat could not open it"
    echo "$p:4:5: error: repository 'main': 'password' would put a secret into the plan file; the plan holds only references to secrets"
    echo "$p:11:13: error: job 'full': unknown source 'dbb'; did you mean 'db'?"
    echo "$p:12:18: error: job 'full': bad schedule '0 25 * * *': column 3: hour field: 25 is out of range 0-23"
    echo "$p:13:5: error: job 'full': unknown key 'retenion'; did you mean 'retention'? expected one of: kind, source, schedule, timezone, retention, repositories, tags, databases, from, read_data, read_data_subset"
    echo "$p: 5 errors, 0 warnings"
  } >"$T/want"
  grep -v '^  hint: ' "$T/out" | diff - "$T/want" >&2 || fail "problems differ (diff above)"
  grep -q '^  hint: use password_file: PATH or password_env: VARIABLE' "$T/out" || fail "no hint"
  if grep -q hunter2 "$T/out" "$T/err"; then fail "the secret is printed"; fi

  expect_rc 2 lb --json plan check "$T/plan.yaml"
  [[ $(json_get "$T/out" 'd["ok"]') == False ]] || fail "json: ok"
  [[ $(json_get "$T/out" 'd["errors"]') == 5 ]] || fail "json: error count"
  [[ $(json_get "$T/out" '(d["problems"][3]["line"], d["problems"][3]["column"])') == "(12, 18)" ]] ||
    fail "json: location of the cron error"
  [[ $(json_get "$T/out" '"summary" in d') == False ]] || fail "json: summary of a bad plan"

  # plan next refuses a bad plan the same way, problems on stderr.
  expect_rc 2 lb plan next "$T/plan.yaml"
  grep -q "^$T/plan.yaml:12:18: error: " "$T/err" || fail "plan next: problems not shown"
  grep -q "^error: plan '$T/plan.yaml' has 5 errors$" "$T/err" || fail "plan next: no error line"
}

# A YAML syntax error is a located problem too.
case_syntax_error() {
  printf 'jobs:\n  a: [1, 2\n  b: 3\n' >"$T/plan.yaml"
  expect_rc 2 lb plan check "$T/plan.yaml"
  grep -q "^$T/plan.yaml:3:4: error: YAML syntax error: " "$T/out" || fail "syntax error not located"
}

# Warnings alone do not fail the check.
case_warnings_exit_0() {
  cat >"$T/plan.yaml" <<'YAML'
encryption: {key_file: /etc/lifeboat/key}
repositories:
  main: {url: /srv/backup}
sources:
  uploads: {kind: files, paths: [/srv/app/uploads]}
jobs:
  uploads: {kind: files, source: uploads, schedule: "*/10 * * * *", retention: 30d}
objectives:
  files: {sources: [uploads], rpo: 15m, rto: 1h}
YAML
  expect_rc 0 lb plan check "$T/plan.yaml"
  grep -q "^$T/plan.yaml:9:46: warning: objective 'files': rto 1h is not measured" "$T/out" ||
    fail "warning missing"
  grep -q ': ok (1 warning)$' "$T/out" || fail "ok line missing"
}

# Usage errors: a missing file is 'not found' (5), a bad --now is 2.
case_usage() {
  expect_rc 5 lb plan check "$T/missing.yaml"
  grep -q "^error: read plan '$T/missing.yaml': No such file or directory$" "$T/err" ||
    fail "missing file: message"
  expect_rc 2 lb plan check "$EXAMPLE" --now yesterday
  grep -q "is not a UTC time" "$T/err" || fail "bad --now: message"
  expect_rc 2 lb plan check
  expect_rc 2 lb plan
}

# plan next: the next N runs of every job and drill, in time order.
case_next() {
  expect_rc 0 lb plan next "$EXAMPLE" --count 2 --now 2026-03-28T23:59:00Z
  [[ $(head -1 "$T/out") =~ ^TIME\ \(UTC\)\ +KIND\ +NAME$ ]] || fail "no header"
  [[ $(sed -n 2p "$T/out") =~ ^2026-03-29T00:00:00Z\ +job\ +copy-to-dr$ ]] ||
    fail "first run: $(sed -n 2p "$T/out")"
  [[ $(grep -c ' pg-full$' "$T/out") == 2 ]] || fail "pg-full: want 2 runs"
  tail -n +2 "$T/out" | sort -c -k1,1 || fail "runs not in time order"
  expect_rc 0 lb --json plan next "$EXAMPLE" --count 3 --now 2026-03-28T23:59:00Z
  [[ $(json_get "$T/out" 'len(d)') == $(((14 + 4) * 3)) ]] || fail "json: run count"
  [[ $(json_get "$T/out" '[r["time"] for r in d if r["name"] == "weekly-restore"]') == "['2026-04-04T06:00:00Z', '2026-04-11T06:00:00Z', '2026-04-18T06:00:00Z']" ]] ||
    fail "json: weekly-restore runs"
  expect_rc 2 lb plan next "$EXAMPLE" --count 0
}

ALL_CASES=(example_passes problems_exit_2 syntax_error warnings_exit_0 usage next)
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
  # A background subshell keeps `set -e` in force inside the case.
  (case_"$c") &
  rc=0
  wait $! || rc=$?
  if [[ $rc == 0 ]]; then echo "PASS $c"; else echo "FAIL $c"; failed=1; fi
done
exit $failed
