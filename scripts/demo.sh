#!/usr/bin/env bash
# lifeboat's main job on a built-in default: installs what it needs, builds lifeboat, makes a
# throwaway sample of an application's "uploaded files and generated PDFs", backs it up into
# a local encrypted repository, changes the data, backs up again, restores both points in
# time and proves each restore is byte-for-byte what was there, then verifies the repository.
#
#   bash scripts/demo.sh                 # work dir under /tmp, removed at the end
#   LIFEBOAT_DEMO_KEEP=1 bash scripts/demo.sh   # keep the work dir to look around
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/install-deps.sh >/dev/null
if [ ! -x build/lifeboat ] || [ -n "$(find src CMakeLists.txt -newer build/lifeboat -print -quit)" ]; then
  echo "== building lifeboat =="
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)" >/dev/null
fi
lb="$root/build/lifeboat"

work=$(mktemp -d /tmp/lifeboat-demo.XXXXXX)
cleanup() { [ "${LIFEBOAT_DEMO_KEEP:-0}" = 1 ] && echo "work dir kept: $work" || rm -rf "$work"; }
trap cleanup EXIT

export LIFEBOAT_REPO="$work/repo"
export LIFEBOAT_PASSWORD_FILE="$work/password"
export LIFEBOAT_CACHE_DIR="$work/cache"
( umask 077; head -c 24 /dev/urandom | base64 > "$LIFEBOAT_PASSWORD_FILE" )

echo "== sample data: uploaded files and generated PDFs (64 MiB) =="
python3 bench/gen_tree.py --out "$work/app" --size-mib 64 --seed 7 >/dev/null
data="$work/app"
find "$data" -type f | wc -l | xargs echo "files:"

echo "== lifeboat init =="
"$lb" init
echo "== backup 1 =="
"$lb" backup files "$data" --tag uploads --tag pdfs
cp -a "$data" "$work/expected-1"

echo "== the application changes its data =="
python3 bench/gen_tree.py --out "$data" --mutate 10 --seed 7 >/dev/null
echo "== backup 2 (only changed files are read) =="
"$lb" backup files "$data" --tag uploads --tag pdfs
"$lb" snapshots

first=$("$lb" snapshots --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
echo "== restore the first point in time and verify =="
"$lb" restore "$first" --target "$work/restore-1"
diff -r "$work/expected-1" "$work/restore-1$data" && echo "restore of snapshot ${first:0:8}: identical to the data at backup 1"
echo "== restore latest and verify =="
"$lb" restore latest --target "$work/restore-2"
diff -r "$data" "$work/restore-2$data" && echo "restore of latest: identical to the current data"
echo "== what changed between the two backups =="
"$lb" diff "$first" latest | tail -1
echo "== verify every blob in the repository =="
"$lb" check --read-data
echo "demo: OK"
