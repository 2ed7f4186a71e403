#!/usr/bin/env bash
# Sets up and runs every test: installs dependencies (Debian packages), builds the release
# binary and the tests, runs unit and integration tests, then builds the unit tests with
# ASan+UBSan and runs them too. Exit status is non-zero if anything fails.
#
#   bash scripts/test.sh            # everything
#   LIFEBOAT_SKIP_ASAN=1 bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
jobs=$(nproc)

echo "== build (release) =="
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIFEBOAT_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

echo "== unit and integration tests =="
(cd build && ctest --output-on-failure -j"$jobs" --timeout 900)

if [ "${LIFEBOAT_SKIP_ASAN:-0}" != 1 ]; then
  echo "== unit tests under ASan+UBSan =="
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLIFEBOAT_SANITIZE=ON \
    -DLIFEBOAT_WERROR=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j"$jobs" -L unit --timeout 900)
fi
echo "== all tests passed =="
