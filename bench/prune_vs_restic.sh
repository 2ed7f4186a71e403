#!/usr/bin/env bash
# Benchmark `lifeboat prune` against `restic prune` on the same backup history.
#
# Usage: bench/prune_vs_restic.sh [--size-mib 1024] [--snapshots 50] [--keep 25]
#                                 [--mutate 20] [--seed 1] [--workdir /tmp/lb-prunebench]
#                                 [--fresh]
# Env:   LIFEBOAT  lifeboat binary (default ./build/lifeboat, relative to the repo root)
#        RESTIC    restic binary (default: restic from PATH; 0.14 or newer)
#
# History: a tree from bench/gen_tree.py (--size-mib, --seed) is backed up --snapshots times
# into a lifeboat repository and a restic repository (v2, compression auto), with
# `gen_tree.py --mutate PCT` between snapshots, so both hold the same history. Then both
# forget all but the newest --keep snapshots. With the defaults about 40-45% of the
# repository is garbage (the large files of the tree barely change; most churn is in the
# small files). The history is saved under WORKDIR/pristine/ and reused by later runs with
# the same parameters (--fresh rebuilds it), e.g. to compare two lifeboat binaries.
#
# Measured, per tool (lifeboat twice: with its password, and with a key file), on a fresh hard-linked copy of the pristine repository (both tools
# only ever create and delete repository files, never rewrite one) after dropping the page
# cache: wall time and peak RSS of `prune` with its default settings (/usr/bin/time -f
# '%e %M'), repository size (du -sb) before and after, and after a second prune (untimed).
# Each pruned repository is then checked (`check`). The markdown table is printed and
# written to WORKDIR/results.md; command output goes to WORKDIR/logs/.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MIB=1024
SNAPSHOTS=50
KEEP=25
MUTATE=20
SEED=1
WORKDIR=/tmp/lb-prunebench
FRESH=0

usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "prune_vs_restic: ERROR: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --size-mib) SIZE_MIB=${2:?}; shift 2 ;;
    --snapshots) SNAPSHOTS=${2:?}; shift 2 ;;
    --keep) KEEP=${2:?}; shift 2 ;;
    --mutate) MUTATE=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    --workdir) WORKDIR=${2:?}; shift 2 ;;
    --fresh) FRESH=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
for v in SIZE_MIB SNAPSHOTS KEEP; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--${v,,} must be a positive integer"
done
[[ $SEED =~ ^[0-9]+$ ]] || die "--seed must be a non-negative integer"
[[ $MUTATE =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--mutate must be a percentage"
((KEEP < SNAPSHOTS)) || die "--keep must be below --snapshots"

LIFEBOAT=${LIFEBOAT:-./build/lifeboat}
[[ $LIFEBOAT = /* ]] || LIFEBOAT="$REPO_ROOT/${LIFEBOAT#./}"
RESTIC=${RESTIC:-restic}
TIME=/usr/bin/time
GEN="$REPO_ROOT/bench/gen_tree.py"
[[ -x $LIFEBOAT ]] || die "no lifeboat binary at $LIFEBOAT (build it, or set LIFEBOAT=...)"
command -v "$RESTIC" >/dev/null || die "restic not found (apt-get install restic)"
[[ -x $TIME ]] || die "$TIME not found (apt-get install time)"
command -v python3 >/dev/null || die "python3 not found"

mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd -P)   # absolute: both tools record absolute paths
TREE=$WORKDIR/tree
PRISTINE=$WORKDIR/pristine
LOGDIR=$WORKDIR/logs
RESULTS=$WORKDIR/results.md
MARKER=$PRISTINE/history.marker
mkdir -p "$LOGDIR"

PWFILE=$WORKDIR/password
if [[ ! -s $PWFILE ]]; then (umask 077 && head -c 24 /dev/urandom | base64 >"$PWFILE"); fi
export RESTIC_PASSWORD_FILE=$PWFILE LIFEBOAT_PASSWORD_FILE=$PWFILE
unset RESTIC_PASSWORD RESTIC_REPOSITORY LIFEBOAT_PASSWORD LIFEBOAT_REPO LIFEBOAT_TEST_FAST_KDF 2>/dev/null || true

# tool_argv TOOL DIR: sets ARGV to the command prefix that runs TOOL on the repository
# DIR/repo-TOOL with its cache in DIR/cache-TOOL (an argv, so /usr/bin/time can run it).
tool_argv() {
  case $1 in
    restic) ARGV=(env "RESTIC_CACHE_DIR=$2/cache-restic" "$RESTIC" -r "$2/repo-restic") ;;
    lifeboat) ARGV=(env "LIFEBOAT_CACHE_DIR=$2/cache-lifeboat" "$LIFEBOAT" --repo "$2/repo-lifeboat") ;;
    # The same repository opened with a key file: no scrypt, so the peak RSS is prune's own.
    lifeboat-keyfile) ARGV=(env "LIFEBOAT_CACHE_DIR=$2/cache-lifeboat" "LIFEBOAT_KEY_FILE=$PRISTINE/lifeboat.keyfile" "$LIFEBOAT" --repo "$2/repo-lifeboat") ;;
    *) die "unknown tool $1" ;;
  esac
}
tool_cmd() {
  local ARGV
  tool_argv "$1" "$2"
  shift 2
  "${ARGV[@]}" "$@"
}

# quiet WHAT CMD...: runs CMD with its output in the log; aborts on failure.
quiet() {
  local what=$1
  shift
  "$@" >"$LOGDIR/$what.log" 2>&1 || { tail -n 30 "$LOGDIR/$what.log" >&2; die "$what failed (log: $LOGDIR/$what.log)"; }
}

count_snapshots() {  # restic or lifeboat --json snapshot list on stdin
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(len(d))'
}

# ---------------------------------------------------------------- history
WANT_MARKER="gen=$(sha256sum "$GEN" | cut -c1-16) size_mib=$SIZE_MIB seed=$SEED snapshots=$SNAPSHOTS keep=$KEEP mutate=$MUTATE lifeboat-format=$("$LIFEBOAT" --version 2>/dev/null | head -n1) restic=$("$RESTIC" version | awk '{print $2}')"
avail_mib=$(df -Pm "$WORKDIR" | awk 'NR==2 {print $4}')
if ((FRESH == 0)) && [[ -f $MARKER ]] && [[ $(cat "$MARKER") == "$WANT_MARKER" ]]; then
  log "reusing the history in $PRISTINE ($WANT_MARKER)"
  # Room for what one prune writes before it deletes (repacked data, new index).
  need_mib=$((SIZE_MIB * 2))
  ((avail_mib >= need_mib)) || die "need ~$need_mib MiB free in $WORKDIR, have $avail_mib"
else
  # The tree, two repositories of ~3.5x the tree each (defaults), slack for the prunes.
  need_mib=$(awk -v s="$SIZE_MIB" -v n="$SNAPSHOTS" -v m="$MUTATE" 'BEGIN {printf "%d", s * (3.5 + 2 * (1 + n * m / 100 * 0.3))}')
  ((avail_mib >= need_mib)) ||
    die "not enough free space in $WORKDIR: need ~$need_mib MiB, only $avail_mib MiB (use --workdir or a smaller --size-mib)"
  log "workdir $WORKDIR: $avail_mib MiB free, ~$need_mib MiB needed; building the history"
  rm -rf "$PRISTINE" "$TREE"
  mkdir -p "$PRISTINE"
  python3 "$GEN" --out "$TREE" --size-mib "$SIZE_MIB" --seed "$SEED" --force >"$LOGDIR/gen.log"
  quiet restic-init tool_cmd restic "$PRISTINE" init --repository-version 2
  quiet lifeboat-init tool_cmd lifeboat "$PRISTINE" init
  : >"$PRISTINE/backup-times.tsv"
  for ((i = 1; i <= SNAPSHOTS; i++)); do
    if ((i > 1)); then
      python3 "$GEN" --out "$TREE" --size-mib "$SIZE_MIB" --seed "$SEED" --mutate "$MUTATE" >>"$LOGDIR/gen.log"
    fi
    for tool in restic lifeboat; do
      t0=$(date +%s.%N)
      case $tool in
        restic) quiet "restic-backup-$i" tool_cmd restic "$PRISTINE" backup -q "$TREE" ;;
        lifeboat) quiet "lifeboat-backup-$i" tool_cmd lifeboat "$PRISTINE" -q backup files "$TREE" ;;
      esac
      printf '%s\t%s\t%s\n' "$tool" "$i" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')" \
        >>"$PRISTINE/backup-times.tsv"
    done
    if ((i % 5 == 0 || i == 1)); then
      log "snapshot $i/$SNAPSHOTS: repositories $(du -sm "$PRISTINE/repo-restic" | cut -f1) MiB (restic)," \
        "$(du -sm "$PRISTINE/repo-lifeboat" | cut -f1) MiB (lifeboat)"
    fi
  done
  quiet restic-forget tool_cmd restic "$PRISTINE" forget --keep-last "$KEEP"
  quiet lifeboat-forget tool_cmd lifeboat "$PRISTINE" forget --keep-last "$KEEP"
  for tool in restic lifeboat; do
    n=$(tool_cmd "$tool" "$PRISTINE" --json snapshots 2>/dev/null | count_snapshots) || n="?"
    [[ $n == "$KEEP" ]] || die "$tool lists $n snapshots after forget, want $KEEP"
  done
  echo "$WANT_MARKER" >"$MARKER"
fi
if [[ ! -s $PRISTINE/lifeboat.keyfile ]]; then
  quiet lifeboat-keyfile tool_cmd lifeboat "$PRISTINE" key add --generate-key-file "$PRISTINE/lifeboat.keyfile"
fi
TREE_FILES=$(find "$TREE" -type f | wc -l)
TREE_MIB=$(du -sm "$TREE" | cut -f1)

# ---------------------------------------------------------------- measuring
declare -A V
DROP_OK=0
drop_caches() {
  sync
  if (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then DROP_OK=$((DROP_OK + 1)); fi
}

RUN=$WORKDIR/run
for tool in restic lifeboat lifeboat-keyfile; do
  rm -rf "$RUN"
  mkdir -p "$RUN"
  # Repository: hard links (never rewritten in place); cache: a real copy.
  base=${tool%-keyfile}
  cp -al "$PRISTINE/repo-$base" "$RUN/repo-$base"
  [[ ! -d $PRISTINE/cache-$base ]] || cp -a "$PRISTINE/cache-$base" "$RUN/cache-$base"
  V[$tool:before]=$(du -sb "$RUN/repo-$base" | cut -f1)
  if [[ $tool == lifeboat ]]; then
    tool_cmd lifeboat "$RUN" --json prune --dry-run >"$LOGDIR/lifeboat-dry-run.json" 2>"$LOGDIR/lifeboat-dry-run.err" ||
      die "lifeboat prune --dry-run failed"
    V[garbage]=$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print("%.0f%% (%.0f of %.0f MiB)" % (100 * d["bytes_unreferenced"] / d["bytes_total"], d["bytes_unreferenced"] / 2**20, d["bytes_total"] / 2**20))' "$LOGDIR/lifeboat-dry-run.json")
  fi
  drop_caches
  log "$tool: prune ($((V[$tool:before] / 1048576)) MiB repository)"
  tool_argv "$tool" "$RUN"
  if ! "$TIME" -f '%e %M' -o "$LOGDIR/$tool-prune.time" "${ARGV[@]}" prune \
    >"$LOGDIR/$tool-prune.log" 2>&1; then
    tail -n 30 "$LOGDIR/$tool-prune.log" >&2
    die "$tool prune failed (log: $LOGDIR/$tool-prune.log)"
  fi
  read -r "V[$tool:secs]" "V[$tool:rss]" < <(tail -n1 "$LOGDIR/$tool-prune.time")
  V[$tool:after]=$(du -sb "$RUN/repo-$base" | cut -f1)
  log "  ${V[$tool:secs]} s, peak RSS $((V[$tool:rss] / 1024)) MiB; repository $((V[$tool:after] / 1048576)) MiB"
  quiet "$tool-prune2" tool_cmd "$tool" "$RUN" prune
  V[$tool:after2]=$(du -sb "$RUN/repo-$base" | cut -f1)
  log "  after a second prune: $((V[$tool:after2] / 1048576)) MiB; checking"
  quiet "$tool-check" tool_cmd "$tool" "$RUN" check
  n=$(tool_cmd "$tool" "$RUN" --json snapshots 2>/dev/null | count_snapshots) || n="?"
  [[ $n == "$KEEP" ]] || die "$tool lists $n snapshots after prune, want $KEEP"
done
rm -rf "$RUN"

# ---------------------------------------------------------------- report
mib() { awk -v b="$1" 'BEGIN {printf "%.0f", b / 1048576}'; }
ratio() { awk -v r="$1" -v l="$2" 'BEGIN {if (r + 0 == 0) print "n/a"; else printf "%.2f", l / r}'; }
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
reclaimed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f (%.0f%%)", (a - b) / 1048576, 100 * (a - b) / a}'; }
backup_total() { awk -v t="$1" '$1 == t {s += $3} END {printf "%.0f", s}' "$PRISTINE/backup-times.tsv"; }

{
  echo "## lifeboat vs restic: prune"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), host: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo), $(df -PT "$WORKDIR" | awk 'NR==2 {print $2}')"
  echo "- history: $SNAPSHOTS snapshots of a $TREE_MIB MiB tree ($TREE_FILES files at the end; bench/gen_tree.py --size-mib $SIZE_MIB --seed $SEED, --mutate $MUTATE between snapshots), then forget --keep-last $KEEP in both; backups took $(backup_total restic) s (restic) and $(backup_total lifeboat) s (lifeboat) in all"
  echo "- garbage before prune (lifeboat prune --dry-run): ${V[garbage]}"
  echo "- restic: $("$RESTIC" version | head -n1), repository v2, \`restic prune\` (default --max-unused 5%)"
  echo "- lifeboat: $("$LIFEBOAT" --version 2>/dev/null | head -n1) ($LIFEBOAT), commit $(git -C "$REPO_ROOT" rev-parse -q --verify --short HEAD 2>/dev/null || echo none)$(git -C "$REPO_ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes'), \`lifeboat prune\` (default --max-unused 30%)"
  echo "- page cache dropped before each timed prune: $( ((DROP_OK == 3)) && echo yes || echo "no (not permitted)")"
  echo
  echo "| metric | restic | lifeboat | ratio (lifeboat/restic) |"
  echo "|---|---|---|---|"
  row "prune wall time (s)" "${V[restic:secs]}" "${V[lifeboat:secs]}"
  row "prune wall time, lifeboat with a key file (s)" "${V[restic:secs]}" "${V[lifeboat-keyfile:secs]}"
  row "prune peak RSS (MiB)" "$((V[restic:rss] / 1024))" "$((V[lifeboat:rss] / 1024))"
  row "prune peak RSS, lifeboat with a key file (MiB)" "$((V[restic:rss] / 1024))" "$((V[lifeboat-keyfile:rss] / 1024))"
  row "repo size before prune (MiB)" "$(mib "${V[restic:before]}")" "$(mib "${V[lifeboat:before]}")"
  row "repo size after prune (MiB)" "$(mib "${V[restic:after]}")" "$(mib "${V[lifeboat:after]}")"
  printf '| reclaimed by prune (MiB) | %s | %s | |\n' "$(reclaimed "${V[restic:before]}" "${V[restic:after]}")" \
    "$(reclaimed "${V[lifeboat:before]}" "${V[lifeboat:after]}")"
  row "repo size after a second prune (MiB)" "$(mib "${V[restic:after2]}")" "$(mib "${V[lifeboat:after2]}")"
} >"$RESULTS"

echo
cat "$RESULTS"
echo
log "results written to $RESULTS (logs: $LOGDIR)"
