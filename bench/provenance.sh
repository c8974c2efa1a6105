#!/usr/bin/env bash
# Benchmark: what the license fingerprint costs serving (docs/provenance.md). One data directory
# holds the same data twice, as conditional datasets that differ only in their manifest: `fp`
# declares fingerprint tolerances on its numbers, `plain` does not. A licensee (one rows license
# for each) reads both through one server (release build), alternately, in the same run:
#   - the whole CSV export (curl, MB/s), ROUNDS rounds;
#   - a page of 100 rows at 64 connections (wrk -t2 -c64), ROUNDS rounds of DUR seconds.
# Two tables: the 1 000 000-row residents (10 columns, benefit_amount marked at 0.01) and
# WIDE_ROWS rows of the 17-column wide table (long Chinese addresses; monthly_income marked at 1,
# benefit_amount at 0.01, household_size at 1). Reports medians and the ratio fp / plain.
# Writes bench/out/provenance.txt.
#
#   bench/provenance.sh            (ROUNDS=5 DUR=4 WIDE_ROWS=300000 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${KAIFANG_RELEASE_BIN:-.build-release/release/kaifang}
ROUNDS=${ROUNDS:-5}
DUR=${DUR:-4}
WIDE_ROWS=${WIDE_ROWS:-300000}
PORT=18120
mkdir -p bench/out
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 2; }
[ -x "$BIN" ] || swift build -c release --static-swift-stdlib --product kaifang --scratch-path .build-release
[ -f bench/data/residents/residents.csv ] || python3 scripts/gen_datasets.py --residents 1000000 --only residents --out bench/data >/dev/null
[ -f "bench/data/wide-$WIDE_ROWS/residents_wide.csv" ] || python3 bench/gen_wide.py "$WIDE_ROWS" "bench/data/wide-$WIDE_ROWS" >/dev/null

T=$(mktemp -d)
cleanup() { [ -n "${SPID:-}" ] && kill "$SPID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
D=$T/data
"$BIN" init --data-dir "$D" >/dev/null

# manifest SRC ID MARKS: the manifest with the id set, every fingerprint removed, then MARKS
# ("field=tolerance,…") declared.
manifest() {
  python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
src, ident, marks = sys.argv[1], sys.argv[2], sys.argv[3]
m = json.load(open(src))
m["id"] = ident
m["tier"] = "conditional"
tol = dict(x.split("=") for x in marks.split(",") if x)
for f in m["fields"]:
    f.pop("fingerprint", None)
    if f["name"] in tol:
        f["fingerprint"] = {"tolerance": float(tol[f["name"]])}
print(json.dumps(m, ensure_ascii=False))
EOF
}
WIDE=bench/data/wide-$WIDE_ROWS
if [ ! -f "$WIDE/dataset.json" ]; then echo "no $WIDE/dataset.json" >&2; exit 2; fi
read -r KEYID KEY < <("$BIN" key create --data-dir "$D" --role developer --name bench --json | python3 -c "import json,sys; k = json.load(sys.stdin); print(k['id'], k['key'])")
load() {  # CSV SRC_MANIFEST ID MARKS
  manifest "$2" "$3" "$4" > "$T/$3.json"
  "$BIN" dataset import "$1" --manifest "$T/$3.json" --data-dir "$D" >/dev/null
  "$BIN" dataset publish "$3" --tier conditional --data-dir "$D" >/dev/null
  "$BIN" license grant --data-dir "$D" --key "$KEYID" --dataset "$3" --use rows --purpose "benchmark of fingerprinted serving" >/dev/null
}
load bench/data/residents/residents.csv bench/data/residents/dataset.json residents-fp "benefit_amount=0.01"
load bench/data/residents/residents.csv bench/data/residents/dataset.json residents-plain ""
load "$WIDE/residents_wide.csv" "$WIDE/dataset.json" wide-fp "monthly_income=1,benefit_amount=0.01,household_size=1"
load "$WIDE/residents_wide.csv" "$WIDE/dataset.json" wide-plain ""

"$BIN" serve --data-dir "$D" --port $PORT --key-rate 0 --exports-per-day 0 >/dev/null 2>"$T/serve.log" &
SPID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
H="Authorization: Bearer $KEY"
# The fingerprinted export really differs from the plain one, and only in the marked fields.
curl -sf -H "$H" "http://127.0.0.1:$PORT/v1/datasets/residents-fp/rows?_limit=1" | grep -q '"fingerprinted_fields":\["benefit_amount"\]' \
  || { echo "residents-fp is not served fingerprinted" >&2; exit 1; }

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
export_mbs() {  # ID → MB/s of one whole CSV export
  curl -s -H "$H" -o /dev/null -w '%{size_download} %{time_total}\n' "http://127.0.0.1:$PORT/v1/datasets/$1/export?format=csv" \
    | awk '{printf "%.1f", $1 / $2 / 1e6}'
}
page_rps() {  # ID → requests/s of 100-row pages at 64 connections
  wrk -t2 -c64 -d"${DUR}s" -H "$H" "http://127.0.0.1:$PORT/v1/datasets/$1/rows?_limit=100" | awk '/Requests\/sec/ {print $2}'
}
{
  echo "fingerprinted vs plain serving, same server, alternating, $ROUNDS rounds ($(date -u +%F), $(nproc) cores)"
  for t in residents wide; do
    export_mbs "$t-fp" >/dev/null; export_mbs "$t-plain" >/dev/null   # warm the page cache
    fe=(); pe=(); fr=(); pr=()
    for _ in $(seq 1 "$ROUNDS"); do
      pe+=("$(export_mbs "$t-plain")"); fe+=("$(export_mbs "$t-fp")")
      pr+=("$(page_rps "$t-plain")"); fr+=("$(page_rps "$t-fp")")
    done
    mfe=$(median "${fe[@]}"); mpe=$(median "${pe[@]}"); mfr=$(median "${fr[@]}"); mpr=$(median "${pr[@]}")
    printf '%-9s export CSV: plain %6s MB/s, fingerprinted %6s MB/s, ratio %.2f   (rounds: %s | %s)\n' \
      "$t" "$mpe" "$mfe" "$(echo "$mfe / $mpe" | bc -l)" "${pe[*]}" "${fe[*]}"
    printf '%-9s rows page : plain %8s req/s, fingerprinted %8s req/s, ratio %.2f   (rounds: %s | %s)\n' \
      "$t" "$mpr" "$mfr" "$(echo "$mfr / $mpr" | bc -l)" "${pr[*]}" "${fr[*]}"
  done
} | tee bench/out/provenance.txt
