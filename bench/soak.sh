#!/usr/bin/env bash
# Soak: drives the live server (release build, demo data) with wrk at a fixed rate for a bounded
# time with a mix of catalog, rows, export, portal, stats and sandbox jobs, and reports
# throughput, p50/p99, errors, jobs run, and the server's RSS after a one-minute warm-up and at
# the end. Fails when RSS grew more than 10 % or a request failed. Writes bench/out/soak.txt.
#
#   bench/soak.sh [MINUTES] [RATE]     (defaults: 10 minutes, 200 requests/s)
set -euo pipefail
cd "$(dirname "$0")/.."
MIN=${1:-10}
RATE=${2:-200}
BIN=${KAIFANG_RELEASE_BIN:-.build-release/release/kaifang}
CONN=16
DELAY=$(( CONN * 1000 / RATE ))
mkdir -p bench/out
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ -x "$BIN" ] || swift build -c release --static-swift-stdlib --product kaifang --scratch-path .build-release
DIR=$(mktemp -d)
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$BIN" demo --port "$PORT" --data-dir "$DIR" --key-rate 0 --anonymous-rate 0 --exports-per-day 0 --anonymous-exports-per-day 0 > "$DIR/demo.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
PARTNER=$(awk '/partner key:/ {print $3}' "$DIR/demo.log")
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
SECONDS_TOTAL=$(( MIN * 60 ))
export SOAK_DELAY_MS=$DELAY SOAK_PARTNER_KEY=$PARTNER
START_RSS=$(rss)
( sleep 60; rss > "$DIR/rss-warm" ) &
OUT=$(wrk -t2 -c$CONN -d${SECONDS_TOTAL}s --timeout 10s -s bench/soak.lua "http://127.0.0.1:$PORT")
sleep 2
END_RSS=$(rss)
WARM_RSS=$(cat "$DIR/rss-warm")
JOBS=$(sqlite3 "$DIR/catalog.sqlite" "SELECT status || ' ' || COUNT(*) FROM jobs GROUP BY status" | paste -sd, -)
GROWTH=$(python3 -c "print(f'{($END_RSS - $WARM_RSS) / $WARM_RSS * 100:.1f}')")
{
  echo "soak: $MIN min at $RATE req/s target ($CONN connections, ${DELAY} ms between requests each), $(nproc) cores"
  echo "$OUT" | grep -E "Requests/sec|requests [0-9]"
  echo "jobs: $JOBS"
  echo "server RSS: start $((START_RSS / 1024)) MiB, after 1 min $((WARM_RSS / 1024)) MiB, end $((END_RSS / 1024)) MiB (growth after warm-up $GROWTH %)"
} | tee bench/out/soak.txt
python3 - "$GROWTH" "$OUT" <<'PY'
import re, sys
growth = float(sys.argv[1]); out = sys.argv[2]
m = re.search(r"non-2xx/3xx (\d+), socket errors (\d+)", out)
bad = int(m.group(1)) + int(m.group(2)) if m else 1
if growth > 10: sys.exit(f"RSS grew {growth} % (limit 10 %)")
if bad: sys.exit(f"{bad} failed requests")
PY
