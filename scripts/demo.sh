#!/usr/bin/env bash
# The README's first command: installs what the build needs (when missing), builds, starts
# tilld with simulated devices, and shows its events live. Ctrl-C stops both.
#   scripts/demo.sh            interactive: a live view of every event
#   scripts/demo.sh --check    for CI: start, simulate a scan, see its event, stop
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
scripts/setup.sh build

socket=${TILLD_SOCKET:-/tmp/tilld.sock}
state=${TILLD_DEMO_STATE:-/tmp/tilld-state}
log=${TILLD_DEMO_LOG:-/tmp/tilld-demo.log}
echo "demo: building (the first build takes a few minutes)"
swift build --product tilld >/dev/null
swift build --product tillctl >/dev/null
bin=$(swift build --show-bin-path)

"$bin/tilld" --demo --socket "$socket" --state-dir "$state" >"$log" 2>&1 &
tilld_pid=$!
watch_pid=
stop() {
    [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null
    kill "$tilld_pid" 2>/dev/null
    wait "$tilld_pid" 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 100); do
    if grep -q " ready" "$log" 2>/dev/null; then break; fi
    if ! kill -0 "$tilld_pid" 2>/dev/null; then
        echo "demo: tilld stopped at start; its log ($log):" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done
export TILLD_SOCKET="$socket"

if [ "${1:-}" = "--check" ]; then
    "$bin/tillctl" devices
    events=$(mktemp)
    timeout 10 "$bin/tillctl" watch 'scanner.*' >"$events" &
    watcher=$!
    sleep 0.5
    "$bin/tillctl" simulate scan 4006381333931
    for _ in $(seq 1 50); do grep -q "scanner.data" "$events" && break; sleep 0.1; done
    kill "$watcher" 2>/dev/null || true
    if grep -q "scanner.data" "$events"; then
        echo "demo: OK (a simulated scan came back as scanner.data)"
        rm -f "$events"
        exit 0
    fi
    echo "demo: the simulated scan never came back as an event; tilld's log ($log):" >&2
    cat "$log" >&2
    exit 1
fi

cat <<HELP
tilld is running with simulated devices (log: $log, state: $state).
In another terminal, try:
    export TILLD_SOCKET=$socket
    $bin/tillctl simulate scan 4006381333931
    $bin/tillctl print test && cat $state/demo/sim-printer.txt
    $bin/tillctl drawer open
Every event shows below, as it happens. Ctrl-C stops tilld.

HELP
# In the background and waited for, so Ctrl-C or a TERM stops both programs at once.
"$bin/tillctl" watch &
watch_pid=$!
wait "$watch_pid"
