#!/usr/bin/env bash
# Benchmark: mask the 1 000 000-row residents file through the public view with `kaifang mask`
# (release build, one process, one core), next to DuckDB (threads=1) and pandas doing the same
# job, in the same run. Reports rows/s, MB/s and peak RSS; writes bench/out/mask.json.
#
#   bench/mask.sh [ROWS]        (default 1000000; the file is made by scripts/gen_datasets.py)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
DATA=bench/data/residents
BIN=${KAIFANG_RELEASE_BIN:-.build-release/release/kaifang}
mkdir -p bench/out

if [ ! -f "$DATA/residents.csv" ] || [ "$(($(wc -l < "$DATA/residents.csv") - 1))" != "$ROWS" ]; then
  python3 scripts/gen_datasets.py --residents "$ROWS" --only residents --out bench/data >/dev/null
fi
if [ ! -x "$BIN" ]; then
  swift build -c release --static-swift-stdlib --product kaifang --scratch-path .build-release
fi
python3 -c "import duckdb, pandas" 2>/dev/null || python3 -m pip install -q duckdb pandas

CSV=$DATA/residents.csv
MB=$(python3 -c "import os; print(os.path.getsize('$CSV') / 1e6)")
cat "$CSV" > /dev/null   # warm the page cache for every contender alike

# A crash must not pass for a fast run: check the output once, and every exit status.
lines=$("$BIN" mask "$CSV" --manifest "$DATA/dataset.json" --view public | wc -l)
[ "$lines" = "$((ROWS + 1))" ] || { echo "kaifang mask wrote $lines lines, expected $((ROWS + 1))" >&2; exit 1; }

run_kaifang() {
  local out
  out=$( { /usr/bin/time -f '%e %M' taskset -c 0 "$BIN" mask "$CSV" --manifest "$DATA/dataset.json" --view public > /dev/null || echo FAILED; } 2>&1 )
  if echo "$out" | grep -q FAILED; then echo "kaifang mask failed: $out" >&2; exit 1; fi
  echo "{\"peer\": \"kaifang\", \"seconds\": $(echo "$out" | tail -1 | cut -d' ' -f1), \"rows\": $ROWS, \"peak_rss_mib\": $(echo "$out" | tail -1 | awk '{printf "%.1f", $2/1024}')}"
}

results=()
# Best of 5: this virtual machine's speed moves by a quarter between runs; both peers get the
# same number of tries, alternating, so a slow spell hits both.
for i in 1 2 3 4 5; do
  results+=("$(run_kaifang)")
  results+=("$(taskset -c 0 python3 bench/mask_peers.py "$CSV" duckdb)")
done
for i in 1; do results+=("$(taskset -c 0 python3 bench/mask_peers.py "$CSV" pandas)"); done

printf '%s\n' "${results[@]}" | python3 -c "
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
best = {}
for r in rows:
    if r['peer'] not in best or r['seconds'] < best[r['peer']]['seconds']:
        best[r['peer']] = r
mb = $MB
k = best['kaifang']
print(f'{\"peer\":10} {\"seconds\":>8} {\"rows/s\":>12} {\"MB/s\":>8} {\"peak MiB\":>9} {\"kaifang is\":>11}')
for name in ['kaifang', 'duckdb', 'pandas']:
    r = best.get(name)
    if not r: continue
    ratio = r['seconds'] / k['seconds']
    print(f\"{name:10} {r['seconds']:8.2f} {r['rows'] / r['seconds']:12,.0f} {mb / r['seconds']:8.1f} {r['peak_rss_mib']:9.1f} {ratio:10.1f}x\")
json.dump({'rows': $ROWS, 'mb': mb, 'best': best, 'runs': rows}, open('bench/out/mask.json', 'w'), indent=2)
"
