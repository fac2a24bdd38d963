#!/usr/bin/env bash
# Runs the whole test suite N times (default 10) with two busy loops loading both cores, and
# prints one line per run: the check that a test depending on timing, not on state, shows up.
# Usage: .ci/under-load.sh [N]   (after `swift build --build-tests`)
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
runs="${1:-10}"
( while :; do :; done ) & busy1=$!
( while :; do :; done ) & busy2=$!
trap 'kill $busy1 $busy2 2>/dev/null' EXIT
mkdir -p .build/under-load
failed=0
for i in $(seq 1 "$runs"); do
    start=$(date +%s)
    timeout 1200 swift test --skip-build > ".build/under-load/run-$i.log" 2>&1 || failed=$((failed + 1))
    echo "run $i: $(( $(date +%s) - start )) s, $(grep -E 'Test run with' ".build/under-load/run-$i.log" | tail -1)"
done
echo "$((runs - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
