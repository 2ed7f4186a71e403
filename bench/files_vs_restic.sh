#!/usr/bin/env bash
# Benchmark lifeboat against restic on the same generated file tree, in one run.
#
# Usage: bench/files_vs_restic.sh [--size-mib 1024] [--workdir /tmp/lb-bench]
#                                 [--runs 1] [--seed 1]
# Env:   LIFEBOAT  lifeboat binary (default ./build/lifeboat, relative to the repo root)
#        RESTIC    restic binary (default: restic from PATH)
#
# For each tool and run it measures, with /usr/bin/time -f '%e %M':
#   (a) full backup into a fresh repository, (b) re-backup of the unchanged tree,
#   (c) restore of the latest snapshot into an empty directory,
# plus (d) the repository size (du -sb) after (b). Page caches are dropped
# before each timed step when permitted. Every restore is compared with the
# source tree (diff -r); a mismatch aborts the benchmark. With --runs N the
# median of the N values is reported. The markdown table is printed and
# written to WORKDIR/results.md; raw values go to WORKDIR/raw.tsv and command
# output to WORKDIR/logs/.
#
# Layout of WORKDIR: tree/ (generated data, reused across invocations when
# tree.marker matches), password (mode 600), repo-<tool>/, restore-<tool>/,
# cache/<tool>/, logs/.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MIB=1024
WORKDIR=/tmp/lb-bench
RUNS=1
SEED=1

usage() { sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "files_vs_restic: ERROR: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --size-mib) SIZE_MIB=${2:?}; shift 2 ;;
    --workdir) WORKDIR=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ $SIZE_MIB =~ ^[1-9][0-9]*$ ]] || die "--size-mib must be a positive integer"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $SEED =~ ^[0-9]+$ ]] || die "--seed must be a non-negative integer"

LIFEBOAT=${LIFEBOAT:-./build/lifeboat}
[[ $LIFEBOAT = /* ]] || LIFEBOAT="$REPO_ROOT/${LIFEBOAT#./}"
RESTIC=${RESTIC:-restic}
TIME=/usr/bin/time

[[ -x $TIME ]] || die "$TIME not found (apt-get install time)"
command -v "$RESTIC" >/dev/null || die "restic not found (apt-get install restic)"
command -v python3 >/dev/null || die "python3 not found"

TOOLS=(restic)
if [[ -x $LIFEBOAT ]]; then
  TOOLS+=(lifeboat)
else
  echo "files_vs_restic: NOTE: lifeboat binary not found at $LIFEBOAT" \
       "(build it, or set LIFEBOAT=...); skipping lifeboat, measuring restic only." >&2
fi

mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd -P)   # absolute, symlink-free: tools store absolute paths
TREE="$WORKDIR/tree"
MARKER="$WORKDIR/tree.marker"
LOGDIR="$WORKDIR/logs"
RAW="$WORKDIR/raw.tsv"
RESULTS="$WORKDIR/results.md"
mkdir -p "$LOGDIR"

# ---------------------------------------------------------------- tree
tree_fingerprint() {
  (cd "$TREE" && find . -type f -printf '%P %s %T@\n' | LC_ALL=C sort | sha256sum | cut -d' ' -f1)
}
GEN="$REPO_ROOT/bench/gen_tree.py"
WANT_MARKER="gen=$(sha256sum "$GEN" | cut -c1-16) size_mib=$SIZE_MIB seed=$SEED"
reuse_tree=no
if [[ -f $MARKER && -d $TREE ]] && [[ $(head -n1 "$MARKER") == "$WANT_MARKER" ]] &&
   [[ $(sed -n 2p "$MARKER") == "$(tree_fingerprint)" ]]; then
  reuse_tree=yes
fi

# Free space: tree + two repositories (<= ~0.7x each) + one restore at a time.
avail_mib=$(df -Pm "$WORKDIR" | awk 'NR==2 {print $4}')
if [[ $reuse_tree == yes ]]; then need_mib=$((SIZE_MIB * 3)); else need_mib=$((SIZE_MIB * 4)); fi
if (( avail_mib < need_mib )); then
  die "not enough free space in $WORKDIR: need ~${need_mib} MiB, only ${avail_mib} MiB available" \
      "(use --workdir on a bigger filesystem or a smaller --size-mib)"
fi
log "workdir $WORKDIR: ${avail_mib} MiB free, ~${need_mib} MiB needed"

if [[ $reuse_tree == yes ]]; then
  log "reusing tree $TREE ($WANT_MARKER)"
else
  log "generating ${SIZE_MIB} MiB tree (seed $SEED) in $TREE"
  rm -f "$MARKER"
  python3 "$GEN" --out "$TREE" --size-mib "$SIZE_MIB" --seed "$SEED" --force
  printf '%s\n%s\n' "$WANT_MARKER" "$(tree_fingerprint)" > "$MARKER"
fi
TREE_FILES=$(find "$TREE" -type f | wc -l)
TREE_BYTES=$(find "$TREE" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')

# ---------------------------------------------------------------- secrets & env
PWFILE="$WORKDIR/password"
if [[ ! -s $PWFILE ]]; then
  (umask 077 && head -c 24 /dev/urandom | base64 > "$PWFILE")
fi
chmod 600 "$PWFILE"
export RESTIC_PASSWORD_FILE="$PWFILE" LIFEBOAT_PASSWORD_FILE="$PWFILE"
unset RESTIC_PASSWORD RESTIC_REPOSITORY LIFEBOAT_PASSWORD 2>/dev/null || true

# Run a tool with its cache kept inside WORKDIR (restic: RESTIC_CACHE_DIR;
# lifeboat: XDG_CACHE_HOME, in case it keeps one).
tool_argv() {  # sets ARGV to the command prefix for tool $1
  case "$1" in
    restic) ARGV=(env "RESTIC_CACHE_DIR=$WORKDIR/cache/restic" "$RESTIC") ;;
    lifeboat) ARGV=(env "XDG_CACHE_HOME=$WORKDIR/cache/lifeboat" "$LIFEBOAT") ;;
    *) die "unknown tool $1" ;;
  esac
}
tool_cmd() { local ARGV; tool_argv "$1"; shift; "${ARGV[@]}" "$@"; }

# ---------------------------------------------------------------- measuring
DROP_OK=0
DROP_FAIL=0
drop_caches() {
  sync
  if (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then
    DROP_OK=$((DROP_OK + 1))
  else
    DROP_FAIL=$((DROP_FAIL + 1))
  fi
}

declare -A VALUES   # "tool:metric" -> space-separated values (one per run)
record() { VALUES["$1:$2"]+="$3 "; printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$RUN" "$3" >> "$RAW"; }

# measure TOOL STEP ARGS... : time `tool_cmd TOOL ARGS...` after dropping caches.
measure() {
  local tool=$1 step=$2; shift 2
  local key="$tool-$step-run$RUN" secs rss ARGV
  tool_argv "$tool"
  drop_caches
  log "$tool: $step (run $RUN)"
  if ! "$TIME" -f '%e %M' -o "$LOGDIR/$key.time" \
       "${ARGV[@]}" "$@" > "$LOGDIR/$key.log" 2>&1; then
    tail -n 30 "$LOGDIR/$key.log" >&2
    die "$tool $step failed (full output: $LOGDIR/$key.log)"
  fi
  read -r secs rss < <(tail -n1 "$LOGDIR/$key.time")
  log "  ${secs}s, peak RSS $((rss / 1024)) MiB"
  record "$tool" "$step-s" "$secs"
  record "$tool" "$step-rss-kib" "$rss"
}

# Run the command untimed, output to the log; abort on failure.
quiet() {
  local tool=$1 what=$2; shift 2
  tool_cmd "$tool" "$@" > "$LOGDIR/$tool-$what-run$RUN.log" 2>&1 ||
    { tail -n 30 "$LOGDIR/$tool-$what-run$RUN.log" >&2; die "$tool $what failed"; }
}

count_snapshots() {  # JSON list, or object with a "snapshots" list, on stdin
  python3 -c 'import json,sys; d=json.load(sys.stdin); d=d.get("snapshots", d) if isinstance(d, dict) else d; print(len(d))'
}

bench_tool() {
  local tool=$1 repo="$WORKDIR/repo-$1" out="$WORKDIR/restore-$1" n
  rm -rf "$repo" "$out" "$WORKDIR/cache/$tool"
  mkdir -p "$WORKDIR/cache/$tool"
  case "$tool" in
    restic)
      quiet restic init -r "$repo" init --repository-version 2
      measure restic full-backup -r "$repo" backup "$TREE"
      measure restic rebackup -r "$repo" backup "$TREE"
      n=$(tool_cmd restic -r "$repo" snapshots --json | count_snapshots) ;;
    lifeboat)
      quiet lifeboat init init --repo "$repo"
      measure lifeboat full-backup backup files "$TREE" --repo "$repo"
      measure lifeboat rebackup backup files "$TREE" --repo "$repo"
      n=$(tool_cmd lifeboat snapshots --repo "$repo" --json 2>>"$LOGDIR/$tool-snapshots-run$RUN.log" |
          count_snapshots 2>>"$LOGDIR/$tool-snapshots-run$RUN.log") || n="?" ;;
  esac
  [[ $n == 2 ]] || echo "files_vs_restic: WARNING: $tool lists $n snapshots, expected 2" >&2
  record "$tool" repo-bytes "$(du -sb "$repo" | cut -f1)"

  mkdir -p "$out"
  case "$tool" in
    restic) measure restic restore -r "$repo" restore latest --target "$out" ;;
    lifeboat) measure lifeboat restore restore latest --target "$out" --repo "$repo" ;;
  esac
  # Both tools re-root the absolute source path under the target.
  log "$tool: verifying restore against the source"
  [[ -d "$out$TREE" ]] || die "$tool restore produced no $out$TREE"
  if ! diff -r --no-dereference -q "$TREE" "$out$TREE" > "$LOGDIR/$tool-verify-run$RUN.log" 2>&1; then
    head -n 20 "$LOGDIR/$tool-verify-run$RUN.log" >&2
    die "RESTORE MISMATCH: $tool restore differs from the source tree (see $LOGDIR/$tool-verify-run$RUN.log)"
  fi
  rm -rf "$out"   # keep free space for the other tool
}

# ---------------------------------------------------------------- run
printf 'tool\tmetric\trun\tvalue\n' > "$RAW"
for ((RUN = 1; RUN <= RUNS; RUN++)); do
  # Alternate the tool order between runs so neither always goes first.
  if (( RUN % 2 == 1 )); then order=("${TOOLS[@]}"); else
    order=(); for ((i = ${#TOOLS[@]} - 1; i >= 0; i--)); do order+=("${TOOLS[i]}"); done
  fi
  for tool in "${order[@]}"; do bench_tool "$tool"; done
done

# ---------------------------------------------------------------- report
median() {  # median of the space-separated numbers in $1
  tr ' ' '\n' <<< "$1" | grep . | sort -g |
    awk '{v[NR] = $1} END {if (NR == 0) exit 1; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
value() {  # value TOOL METRIC DIVISOR -> median / divisor, or empty if not measured
  local v=${VALUES["$1:$2"]:-}
  [[ -n $v ]] || return 0
  awk -v m="$(median "$v")" -v d="$3" 'BEGIN {printf "%.2f", m / d}'
}
row() {  # row LABEL METRIC DIVISOR
  local r l ratio
  r=$(value restic "$2" "$3"); l=$(value lifeboat "$2" "$3")
  ratio=$(awk -v r="$r" -v l="$l" 'BEGIN {if (l == "" || r == "" || r + 0 == 0) print "n/a"; else printf "%.2f", l / r}')
  printf '| %s | %s | %s | %s |\n' "$1" "${r:-n/a}" "${l:-n/a}" "$ratio"
}

if (( DROP_FAIL == 0 )); then caches="yes (before all $DROP_OK timed steps)"
elif (( DROP_OK == 0 )); then caches="NO (not permitted; timings include page-cache effects)"
else caches="partially ($DROP_OK ok, $DROP_FAIL failed)"; fi
lb_version="not measured (binary missing)"
if [[ " ${TOOLS[*]} " == *" lifeboat "* ]]; then
  lb_version=$("$LIFEBOAT" --version 2>/dev/null | head -n1) || true
  lb_version="${lb_version:-unknown} ($LIFEBOAT)"
fi

{
  echo "## lifeboat vs restic: files backup"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), host: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo), kernel $(uname -r)"
  echo "- workdir: $WORKDIR ($(df -PT "$WORKDIR" | awk 'NR==2 {print $2}'))"
  echo "- tree: $TREE_FILES files, $(awk -v b="$TREE_BYTES" 'BEGIN {printf "%.1f", b / 1048576}') MiB (bench/gen_tree.py --size-mib $SIZE_MIB --seed $SEED), ~half compressible"
  echo "- restic: $("$RESTIC" version | head -n1) (repository v2, compression auto)"
  echo "- lifeboat: $lb_version, commit $(git -C "$REPO_ROOT" rev-parse -q --verify --short HEAD 2>/dev/null || echo none)"
  echo "- runs: $RUNS (median reported); page caches dropped: $caches"
  echo "- every restore verified identical to the source (diff -r); timed steps do not include a final"
  echo "  sync, so data a tool leaves in the page cache without fsync is not counted (restic fsyncs"
  echo "  repository files on backup but not restored files)"
  echo
  echo "| metric | restic | lifeboat | ratio (lifeboat/restic) |"
  echo "|---|---|---|---|"
  row "full backup (s)" full-backup-s 1
  row "unchanged re-backup (s)" rebackup-s 1
  row "restore (s)" restore-s 1
  row "repo size (MiB)" repo-bytes 1048576
  row "peak RSS full backup (MiB)" full-backup-rss-kib 1024
  row "peak RSS re-backup (MiB)" rebackup-rss-kib 1024
  row "peak RSS restore (MiB)" restore-rss-kib 1024
} > "$RESULTS"

echo
cat "$RESULTS"
echo
log "results written to $RESULTS (raw values: $RAW, logs: $LOGDIR)"
