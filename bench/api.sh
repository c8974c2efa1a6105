#!/usr/bin/env bash
# Benchmark: the rows API over the 1 000 000-row residents dataset, Kaifang (release build,
# masked public view) next to Datasette serving the same SQLite file (unmasked; with _nocount,
# _nosuggest and _nofacet, its fastest table page: about 1 s a page without them), in one run,
# driven by wrk on loopback: a page of 100 rows, a filtered page, at 64 connections; then a
# whole export with the server's peak memory. Writes bench/out/api.txt.
#
#   bench/api.sh [DURATION_SECONDS]     (default 15; ROUNDS=3 rounds, medians reported)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-15}
KPORT=18080
DPORT=18081
python3 -c "import datasette" 2>/dev/null || python3 -m pip install -q datasette
source bench/residents-datadir.sh
FILE=$DIR/$(sqlite3 "$DIR/catalog.sqlite" "SELECT file FROM versions WHERE dataset_id='residents' ORDER BY number DESC LIMIT 1")

cleanup() { kill "$KPID" "$DPID" 2>/dev/null || true; }
trap cleanup EXIT
"$BIN" serve --data-dir "$DIR" --port $KPORT --key-rate 0 --anonymous-rate 0 --anonymous-exports-per-day 0 > /dev/null 2>bench/out/kaifang-serve.log &
KPID=$!
datasette serve "$FILE" --port $DPORT --setting max_returned_rows 1000 --setting default_page_size 100 > /dev/null 2>&1 &
DPID=$!
for i in $(seq 1 50); do
  curl -sf "http://127.0.0.1:$KPORT/healthz" >/dev/null && curl -sf "http://127.0.0.1:$DPORT/-/versions.json" >/dev/null && break
  sleep 0.3
done
DB=$(basename "$FILE" .sqlite)
DISTRICT=%E7%8E%84%E6%AD%A6%E5%8C%BA   # 玄武区

declare -A URLS=(
  [kaifang_page]="http://127.0.0.1:$KPORT/v1/datasets/residents/rows?_limit=100"
  [datasette_page]="http://127.0.0.1:$DPORT/$DB/rows.json?_size=100&_shape=objects&_nocount=1&_nosuggest=1&_nofacet=1"
  [kaifang_filtered]="http://127.0.0.1:$KPORT/v1/datasets/residents/rows?_limit=100&district=$DISTRICT&service_type__in=%E4%BD%8E%E4%BF%9D,%E5%8C%BB%E7%96%97%E6%95%91%E5%8A%A9"
  [datasette_filtered]="http://127.0.0.1:$DPORT/$DB/rows.json?_size=100&_shape=objects&_nocount=1&_nosuggest=1&_nofacet=1&district=$DISTRICT&service_type__in=%E4%BD%8E%E4%BF%9D,%E5%8C%BB%E7%96%97%E6%95%91%E5%8A%A9"
)
# Last page of a million rows through the cursor (keyset): fetch its cursor first.
LAST=$(curl -s "http://127.0.0.1:$KPORT/v1/datasets/residents/rows?_limit=1&_cursor=$(python3 -c "
import base64, json; print(base64.urlsafe_b64encode(json.dumps([-1,0,'n',0,'999899']).encode()).decode().rstrip('='))")" | python3 -c "import sys, json; print(len(json.load(sys.stdin)['rows']))")
echo "cursor near the end answered with $LAST row(s)" > bench/out/api.txt
URLS[kaifang_last_page]="http://127.0.0.1:$KPORT/v1/datasets/residents/rows?_limit=100&_cursor=$(python3 -c "
import base64, json; print(base64.urlsafe_b64encode(json.dumps([-1,0,'n',0,'999900']).encode()).decode().rstrip('='))")"
URLS[datasette_last_page]="http://127.0.0.1:$DPORT/$DB/rows.json?_size=100&_shape=objects&_nocount=1&_nosuggest=1&_nofacet=1&_next=999900"

# Waits until neither server uses the CPU (two 0.2 s samples with at most one tick each, at
# most 5 s): when wrk stops, Datasette still works through the requests it had queued — about
# half a second of a core and more — which would otherwise land in the next run's first second
# and its tail.
settle() {
  local prev now quiet=0
  prev=$(cat /proc/$KPID/stat /proc/$DPID/stat | awk '{s += $14 + $15} END {print s}')
  for _ in $(seq 1 25); do
    sleep 0.2
    now=$(cat /proc/$KPID/stat /proc/$DPID/stat | awk '{s += $14 + $15} END {print s}')
    if [ $((now - prev)) -le 1 ]; then quiet=$((quiet + 1)); [ $quiet -ge 2 ] && return; else quiet=0; fi
    prev=$now
  done
}

# ROUNDS rounds; in each, every request is measured on both servers back to back, so slow
# phases of this shared virtual machine hit both. Reported: each round, then the median
# req/s and p99 per request and the ratio of the medians.
ROUNDS=${ROUNDS:-3}
declare -A RPS P99
for round in $(seq 1 "$ROUNDS"); do
  for name in kaifang_page datasette_page kaifang_filtered datasette_filtered kaifang_last_page datasette_last_page; do
    curl -s -o /dev/null -w "%{http_code}" "${URLS[$name]}" | grep -q 200 || { echo "$name: not 200" >&2; exit 1; }
    settle
    wrk -t2 -c64 -d"${DUR}s" --timeout 10s --latency "${URLS[$name]}" > "bench/out/wrk-$name.txt"
    rps=$(awk '/Requests\/sec/ {print $2}' "bench/out/wrk-$name.txt")
    p99=$(awk '$1 == "99%" {v=$2; if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /us$/) {sub(/us$/, "", v); v=v/1000} else if (v ~ /s$/) {sub(/s$/, "", v); v=v*1000}; print v}' "bench/out/wrk-$name.txt")
    errs=$(awk '/Non-2xx|Socket errors/ {print}' "bench/out/wrk-$name.txt" | tr '\n' ' ')
    [ -z "$errs" ] || { echo "$name: $errs" >&2; exit 1; }
    RPS[$name]="${RPS[$name]:-} $rps"; P99[$name]="${P99[$name]:-} $p99"
    printf 'round %d  %-22s %10s req/s   p99 %8s ms\n' "$round" "$name" "$rps" "$p99" | tee -a bench/out/api.txt
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "medians of $ROUNDS rounds:" | tee -a bench/out/api.txt
for q in page filtered last_page; do
  kr=$(echo "${RPS[kaifang_$q]}" | median); kp=$(echo "${P99[kaifang_$q]}" | median)
  dr=$(echo "${RPS[datasette_$q]}" | median); dp=$(echo "${P99[datasette_$q]}" | median)
  printf '%-10s kaifang %8.0f req/s p99 %6.1f ms   datasette %6.0f req/s p99 %6.1f ms   ratio %5.1fx\n' \
    "$q" "$kr" "$kp" "$dr" "$dp" "$(echo "$kr / $dr" | bc -l)" | tee -a bench/out/api.txt
done

# Export of every row, masked, with the server's resident memory before and its peak after.
rss() { awk '/VmRSS/ {print $2}' /proc/$KPID/status; }
hwm() { awk '/VmHWM/ {print $2}' /proc/$KPID/status; }
settle
before=$(rss)
start=$(date +%s.%N)
lines=$(curl -s "http://127.0.0.1:$KPORT/v1/datasets/residents/export?format=csv" | wc -l)
end=$(date +%s.%N)
printf 'kaifang export: %s lines in %.2f s; server RSS before %d MiB, peak %d MiB\n' "$lines" "$(echo "$end - $start" | bc)" $((before / 1024)) $(( $(hwm) / 1024 )) | tee -a bench/out/api.txt
