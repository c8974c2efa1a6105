#!/usr/bin/env bash
# Benchmark: the rows API on the embedded store next to the shared store (PostgreSQL), in one
# run, over the 1 000 000-row residents dataset (masked public view, anonymous), driven by wrk
# on loopback at 64 connections: a page of 100 rows and a filtered page, on
#   - the embedded store (one `kaifang serve` on a data directory),
#   - the shared store, one replica,
#   - the shared store, three replicas on this machine (64 connections split 22/21/21; the
#     three wrk runs at once; req/s summed, p99 the worst of the three),
# and the audit appends per second the three replicas made (every request appends one read
# event). The PostgreSQL cluster is this script's own (scripts/with-postgres.sh) with fsync on
# and synchronous_commit off: commits reach the log without waiting for the disk, as the
# embedded store's WAL with synchronous=NORMAL; and checkpoints spaced as a write-heavy
# deployment spaces them (max_wal_size 8 GB, checkpoint_timeout 30 min, docs/deployment.md),
# with one checkpoint after the copy so the copy's writes do not land in a measured run.
# Writes bench/out/store.txt.
#
#   bench/store.sh [DURATION_SECONDS]     (default 15; ROUNDS=3 rounds, medians reported)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${KAIFANG_TEST_POSTGRES:-}" ]; then
  PG_DURABLE=1 PG_OPTIONS="-c max_wal_size=8GB -c checkpoint_timeout=30min" exec bash scripts/with-postgres.sh bash "$0" "$@"
fi
DUR=${1:-15}
ROUNDS=${ROUNDS:-3}
source bench/residents-datadir.sh
STORE=$KAIFANG_TEST_POSTGRES
WORK=$(mktemp -d -t kaifang-store-bench.XXXXXX)
start=$(date +%s.%N)
"$BIN" store copy --to "$STORE" --data-dir "$DIR" > "$WORK/copy.txt"
copy_seconds=$(echo "$(date +%s.%N) - $start" | bc)
psql "$STORE" -qc CHECKPOINT

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
LIMITS=(--key-rate 0 --anonymous-rate 0 --anonymous-exports-per-day 0 --sandbox-workers 0)
serve() {  # name port args…
  local name=$1 port=$2; shift 2
  "$BIN" serve --port "$port" "${LIMITS[@]}" "$@" > /dev/null 2> "bench/out/store-$name.log" &
  PIDS+=($!)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.2; done
  echo "$name did not start" >&2; exit 1
}
serve embedded 18180 --data-dir "$DIR"
serve pg1 18181 --store "$STORE" --data-dir "$WORK/r1"
serve pg2 18182 --store "$STORE" --data-dir "$WORK/r2"
serve pg3 18183 --store "$STORE" --data-dir "$WORK/r3"
DISTRICT=%E7%8E%84%E6%AD%A6%E5%8C%BA   # 玄武区
PAGE="/v1/datasets/residents/rows?_limit=100"
FILTERED="/v1/datasets/residents/rows?_limit=100&district=$DISTRICT&service_type__in=%E4%BD%8E%E4%BF%9D,%E5%8C%BB%E7%96%97%E6%95%91%E5%8A%A9"
# Warm every replica's cache of the version file (the first request fetches and verifies it).
for port in 18180 18181 18182 18183; do curl -sf "http://127.0.0.1:$port$PAGE" >/dev/null; curl -sf "http://127.0.0.1:$port$FILTERED" >/dev/null; done

# wrk's summary as "req/s p99_ms".
measure() {  # url connections
  wrk -t2 -c"$2" -d"${DUR}s" --latency "$1" | awk '
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p99=v}
    END {printf "%s %s\n", rps, p99}'
}
seq_now() { psql "$STORE" -Atc "SELECT coalesce(max(seq), 0) FROM audit_events"; }
declare -A RPS P99
OUT=bench/out/store.txt
{
  echo "bench/store.sh: ${DUR}s runs, ${ROUNDS} rounds, 64 connections, $(nproc) cores; $(cat "$WORK/copy.txt" | head -1)"
  echo "store copy of the 1 M-row data directory: ${copy_seconds}s"
} > "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  for req in page filtered; do
    path=$PAGE; [ $req = filtered ] && path=$FILTERED
    # The embedded and the one-replica runs take turns going first: what one leaves behind (its
    # WAL checkpoint, the machine's slow spells) does not always fall on the same one.
    order="18180:embedded 18181:pg1"; [ $((round % 2)) = 0 ] && order="18181:pg1 18180:embedded"
    for run in $order; do
      read -r r p <<<"$(measure "http://127.0.0.1:${run%%:*}$path" 64)"; RPS[${run#*:}_$req]+="$r "; P99[${run#*:}_$req]+="$p "
    done
    before=$(seq_now)
    measure "http://127.0.0.1:18181$path" 22 > "$WORK/a" & A=$!
    measure "http://127.0.0.1:18182$path" 21 > "$WORK/b" & B=$!
    measure "http://127.0.0.1:18183$path" 21 > "$WORK/c" & C=$!
    wait $A $B $C
    after=$(seq_now)
    r=$(cat "$WORK/a" "$WORK/b" "$WORK/c" | awk '{s += $1} END {printf "%.1f", s}')
    p=$(cat "$WORK/a" "$WORK/b" "$WORK/c" | awk '{if ($2 > m) m = $2} END {print m}')
    RPS[pg3_$req]+="$r "; P99[pg3_$req]+="$p "
    RPS[audit_$req]+="$(echo "($after - $before) / $DUR" | bc -l | xargs printf "%.0f") "
    last() { echo "$1" | awk '{print $NF}'; }
    echo "round $round $req: embedded $(last "${RPS[embedded_$req]}") pg1 $(last "${RPS[pg1_$req]}") pg3 $r req/s (p99 $p ms), audit $(( (after - before) / DUR )) events/s" >> "$OUT"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
  echo
  printf "%-9s %-22s %10s %9s %10s\n" request store "req/s" "p99 ms" "vs embedded"
  for req in page filtered; do
    e=$(echo "${RPS[embedded_$req]}" | median)
    for s in embedded pg1 pg3; do
      r=$(echo "${RPS[${s}_$req]}" | median); p=$(echo "${P99[${s}_$req]}" | median)
      label=$s; [ $s = pg1 ] && label="postgres, 1 replica"; [ $s = pg3 ] && label="postgres, 3 replicas"
      printf "%-9s %-22s %10.0f %9s %10s\n" "$req" "$label" "$r" "$p" "$(echo "$r / $e" | bc -l | xargs printf "%.2f")"
    done
    echo "$req: audit appends with three writers: $(echo "${RPS[audit_$req]}" | median) events/s (median)"
  done
} | tee -a "$OUT"
