#!/usr/bin/env bash
# Builds the wire-protocol fuzz target and runs it for a fixed time over the seed corpus.
# Usage: Fuzz/run.sh [SECONDS]   (CI runs it for 60 s; crashes land in Fuzz/out/)
# FUZZ_SEED=N fixes libFuzzer's seed: CI does, so a red run can be repeated exactly and a
# finding never turns an unrelated change red. Without it, every run explores afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
mkdir -p Fuzz/out .build
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name TillCoreFuzz \
    Sources/TillCore/*.swift Tests/TillCoreTests/JSONAgreement.swift Fuzz/WireFuzz.swift -o .build/fuzz-wire
# FUZZ_CORPUS_OUT=DIR keeps the inputs this run found (CI's fresh-seed run reports them).
if [ -n "${FUZZ_CORPUS_OUT:-}" ]; then
    work="$FUZZ_CORPUS_OUT"
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
# New inputs go to the scratch dir; the committed seed corpus is read only.
seed=()
if [ -n "${FUZZ_SEED:-}" ]; then seed=(-seed="$FUZZ_SEED"); fi
.build/fuzz-wire "${seed[@]}" -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 \
    -artifact_prefix=Fuzz/out/ "$work" Fuzz/corpus
