#!/usr/bin/env bash
# Identity resolution, measured: one generated till population (population.py), resolved by
# till-crm (`till-crm import --dry-run`, the shipped defaults), by the exact-match rule most POS
# use (exact_match.py) and by Splink 5 at its best threshold (splink_peer.py), each scored
# against the truth (score.py), side by side, in one run.
#
#   Benchmarks/identity/bench.sh [--people 6000] [--seed 1] [--runs 5] [--no-splink]
#
# Times are medians of --runs runs (this machine is shared; single times mislead). Splink runs
# once: it is installed from PyPI into a virtual environment under .build-identity/ (not a
# dependency of the project). Outputs are kept in Benchmarks/out/identity/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/opt/swift/usr/bin:$PATH

people=6000 seed=1 runs=5 splink=1
while [ $# -gt 0 ]; do
    case "$1" in
        --people) people=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --no-splink) splink=0; shift ;;
        *) echo "bench.sh: unknown option $1 (see the comment at the top of the script)" >&2; exit 2 ;;
    esac
done

out=Benchmarks/out/identity
mkdir -p "$out"
swift build -c release --product till-crm >/dev/null
tillcrm=.build/release/till-crm

python3 Benchmarks/identity/population.py --people "$people" --seed "$seed" --out "$out/records.csv" --truth "$out/truth.csv"

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "== till-crm (shipped defaults): till-crm import --dry-run, $runs runs"
: > "$out/till-crm.times"
for _ in $(seq "$runs"); do
    rm -rf "$out/crm"
    start=$(date +%s.%N)
    "$tillcrm" import "$out/records.csv" --data-dir "$out/crm" --dry-run --clusters-out "$out/till-crm.csv" --json > "$out/till-crm.json" 2>/dev/null || true
    end=$(date +%s.%N)
    awk "BEGIN { print $end - $start }" >> "$out/till-crm.times"
done
tillcrm_time=$(median < "$out/till-crm.times")
python3 -c "import json; r = json.load(open('$out/till-crm.json')); print(f\"  rows {r['rows']}, bad {len(r['bad'])}, read {r['read_seconds']:.2f} s, resolved {r['resolve_seconds']:.2f} s (last run)\")"

echo "== exact match (email OR phone OR card), $runs runs"
: > "$out/exact.times"
for _ in $(seq "$runs"); do
    start=$(date +%s.%N)
    python3 Benchmarks/identity/exact_match.py "$out/records.csv" "$out/exact.csv" 2>/dev/null
    end=$(date +%s.%N)
    awk "BEGIN { print $end - $start }" >> "$out/exact.times"
done
exact_time=$(median < "$out/exact.times")

splink_time=""
if [ "$splink" = 1 ]; then
    echo "== Splink 5.0.0 (DuckDB), best threshold"
    venv=.build-identity/venv
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import splink" 2>/dev/null; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "splink==5.0.0"
    fi
    "$venv/bin/python" Benchmarks/identity/splink_peer.py "$out/records.csv" "$out/truth.csv" "$out/splink.csv" 2> "$out/splink.log" || {
        echo "Splink failed; its log: $out/splink.log" >&2; exit 1; }
    grep "^splink" "$out/splink.log" | sed 's/^/  /'
    splink_time=$(sed -n 's/^splink 5.0.0: best threshold [0-9.]*; \([0-9.]*\) s.*/\1/p' "$out/splink.log")
fi

echo
python3 - "$out" "$tillcrm_time" "$exact_time" "$splink_time" <<'EOF'
import json, subprocess, sys
out, times = sys.argv[1], {"till-crm": sys.argv[2], "exact match": sys.argv[3], "Splink 5 (best threshold)": sys.argv[4]}
files = {"till-crm": "till-crm.csv", "exact match": "exact.csv", "Splink 5 (best threshold)": "splink.csv"}
rows = []
for name, file in files.items():
    if not times[name]:
        continue
    result = json.loads(subprocess.check_output([sys.executable, "Benchmarks/identity/score.py", f"{out}/truth.csv", f"{out}/{file}", "--json"]))
    rows.append((name, result, float(times[name])))
    print(subprocess.check_output([sys.executable, "Benchmarks/identity/score.py", f"{out}/truth.csv", f"{out}/{file}", "--name", name]).decode())
records, people = rows[0][1]["records"], rows[0][1]["people"]
print(f"{records} records of {people} people")
print(f"| {'resolver':<26} | pair P | pair R | pair F1 | B3 P   | B3 R   | B3 F1  | false merges | people split | seconds |")
print(f"|{'-' * 28}|--------|--------|---------|--------|--------|--------|--------------|--------------|---------|")
for name, r, seconds in rows:
    print(f"| {name:<26} | {r['pair_precision']:.4f} | {r['pair_recall']:.4f} | {r['pair_f1']:.4f}  | {r['bcubed_precision']:.4f} | "
          f"{r['bcubed_recall']:.4f} | {r['bcubed_f1']:.4f} | {100 * r['false_merge_share']:11.2f}% | {100 * r['people_split_share']:11.2f}% | {seconds:7.2f} |")
goals = rows[0][1]
print()
print("goals at till-crm's defaults: pair F1 >= 0.95: %s; B-cubed F1 >= 0.96: %s; false merges <= 3%%: %s; 25,000 records in <= 2 s: %s" % (
    "met" if goals["pair_f1"] >= 0.95 else "MISSED", "met" if goals["bcubed_f1"] >= 0.96 else "MISSED",
    "met" if goals["false_merge_share"] <= 0.03 else "MISSED",
    "met" if rows[0][2] / goals["records"] * 25000 <= 2 else "MISSED (%.2f s per 25,000)" % (rows[0][2] / goals["records"] * 25000)))
EOF
