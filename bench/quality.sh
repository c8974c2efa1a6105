#!/usr/bin/env bash
# Benchmark: what the quality report adds to an import. Imports the 1 000 000-row residents CSV
# (10 columns, long Chinese addresses) with `kaifang dataset import` (release build), alternately
# with the report and without it (KAIFANG_BENCH_NO_QUALITY=1, the control), ROUNDS times each,
# in the same run; reports the best and median of each and their ratio. Writes bench/out/quality.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${KAIFANG_RELEASE_BIN:-.build-release/release/kaifang}
DATA=bench/data/residents
ROUNDS=${ROUNDS:-5}
mkdir -p bench/out
[ -x "$BIN" ] || swift build -c release --static-swift-stdlib --product kaifang --scratch-path .build-release
[ -f "$DATA/residents.csv" ] || python3 scripts/gen_datasets.py --residents 1000000 --only residents --out bench/data >/dev/null
CSV=$DATA/residents.csv
cat "$CSV" > /dev/null
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
run() {
  rm -rf "$T/k"; "$BIN" init --data-dir "$T/k" >/dev/null
  env "$@" /usr/bin/time -f %e "$BIN" dataset import "$CSV" --id residents --manifest "$DATA/dataset.json" --data-dir "$T/k" 2>&1 >/dev/null | tail -1
}
with=(); without=()
for _ in $(seq 1 "$ROUNDS"); do
  without+=("$(run KAIFANG_BENCH_NO_QUALITY=1)")
  with+=("$(run KAIFANG_BENCH_NO_QUALITY=0)")
done
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%s %s", a[1], a[int((NR+1)/2)]}'; }
read -r wb wm <<<"$(stats "${with[@]}")"
read -r ob om <<<"$(stats "${without[@]}")"
{
  echo "import of $(($(wc -l < "$CSV") - 1)) rows, $ROUNDS rounds each, alternating ($(date -u +%F))"
  echo "without the quality report: best $ob s, median $om s   (${without[*]})"
  echo "with the quality report:    best $wb s, median $wm s   (${with[*]})"
  awk -v a="$wb" -v b="$ob" -v c="$wm" -v d="$om" 'BEGIN {printf "ratio with/without: best %.3f, median %.3f\n", a / b, c / d}'
} | tee bench/out/quality.txt
