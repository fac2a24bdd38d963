#!/bin/bash
# idle_demo.sh BIN: context switches of tilld --demo's threads alive throughout 10 s of idle
BIN=$1; D=$(mktemp -d)
$BIN --demo --socket $D/s.sock --state-dir $D/state --log-level error & PID=$!
sleep 3
snap() { for t in /proc/$PID/task/*; do echo "$(basename $t) $(awk '/ctxt_switches/ {s+=$2} END {print s}' $t/status 2>/dev/null)"; done; }
snap > $D/a; sleep 10; snap > $D/b
join $D/a $D/b | awk '{d+=$3-$2; n++} END {printf "%d context switches in 10 s idle over %d threads alive throughout\n", d, n}' | sed "s/^/$(basename $BIN) --demo: /"
kill $PID; wait $PID 2>/dev/null; rm -rf $D
