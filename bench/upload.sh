#!/usr/bin/env bash
# Benchmark: a department's publisher uploading the 1 000 000-row residents CSV over loopback
# HTTP (POST /v1/datasets/residents/versions, curl streaming the file) against the steward's
# `kaifang dataset import` of the same file into the same data directory, alternating, in one
# run (release build). Also: the same upload gzip-compressed (compressed beforehand), the
# server's peak resident memory (VmHWM) across all uploads next to the CLI import's, and a
# control server left with glibc's malloc defaults (KAIFANG_BENCH_MALLOC_DEFAULTS=1).
# Writes bench/out/upload.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${KAIFANG_RELEASE_BIN:-.build-release/release/kaifang}
DATA=bench/data/residents
ROUNDS=${ROUNDS:-3}
mkdir -p bench/out
[ -x "$BIN" ] || swift build -c release --static-swift-stdlib --product kaifang --scratch-path .build-release
[ -f "$DATA/residents.csv" ] || python3 scripts/gen_datasets.py --residents 1000000 --only residents --out bench/data >/dev/null
CSV=$DATA/residents.csv
T=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$T"' EXIT
gzip -c "$CSV" > "$T/residents.csv.gz"
cat "$CSV" "$T/residents.csv.gz" > /dev/null

K="$T/k"
"$BIN" init --data-dir "$K" >/dev/null
"$BIN" dataset import "$CSV" --id residents --manifest "$DATA/dataset.json" --data-dir "$K" >/dev/null 2>&1
DEPT=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['department'])" "$DATA/dataset.json")
"$BIN" department add "$DEPT" --data-dir "$K" >/dev/null
PUB=$("$BIN" key create --role publisher --department "$DEPT" --name bench --data-dir "$K" 2>/dev/null)
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$BIN" serve --data-dir "$K" --port "$PORT" --key-rate 0 --sandbox-workers 0 > "$T/serve.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
base_rss=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)

cli() { /usr/bin/time -f "%e %M" "$BIN" dataset import "$CSV" --id residents --data-dir "$K" 2>&1 >/dev/null | tail -1; }
upload() { # file, extra header
  local out
  out=$(curl -sS -o "$T/answer.json" -w "%{http_code} %{time_total}" -X POST -T "$1" \
    -H "Authorization: Bearer $PUB" -H "Content-Type: text/csv" ${2:+-H "$2"} \
    "http://127.0.0.1:$PORT/v1/datasets/residents/versions")
  [ "${out%% *}" = 201 ] || { echo "upload failed: $out $(cat "$T/answer.json")" >&2; exit 1; }
  echo "${out#* }"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

: > "$T/cli"; : > "$T/up"; : > "$T/gz"; : > "$T/cli_rss"
for r in $(seq 1 "$ROUNDS"); do
  read -r secs rss < <(cli); echo "$secs" >> "$T/cli"; echo "$rss" >> "$T/cli_rss"
  upload "$CSV" >> "$T/up"
  upload "$T/residents.csv.gz" "Content-Encoding: gzip" >> "$T/gz"
done
peak=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
after=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
# Control: the same uploads into a server left with glibc's malloc defaults (an arena per
# thread, a moving mmap threshold), for what the server's settings save.
kill $PID; wait $PID 2>/dev/null || true
KAIFANG_BENCH_MALLOC_DEFAULTS=1 "$BIN" serve --data-dir "$K" --port "$PORT" --key-rate 0 --sandbox-workers 0 > "$T/serve.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
: > "$T/ctl"
for r in $(seq 1 "$ROUNDS"); do upload "$CSV" >> "$T/ctl"; done
ctl_peak=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
ctl_after=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
# Every upload made a version with the CLI's content.
shas=$("$BIN" dataset versions residents --data-dir "$K" | awk 'NR > 2 {print $3}' | sort -u | wc -l)

c=$(median < "$T/cli"); u=$(median < "$T/up"); g=$(median < "$T/gz")
{
  echo "upload of $(($(wc -l < "$CSV") - 1)) rows ($(($(stat -c %s "$CSV") >> 20)) MiB CSV, $(($(stat -c %s "$T/residents.csv.gz") >> 20)) MiB gzip), $ROUNDS rounds, medians, $(date -u +%F)"
  echo "kaifang dataset import (CLI):    $(paste -sd' ' "$T/cli") s -> median $c s; peak RSS $(($(median < "$T/cli_rss") >> 10)) MiB"
  echo "POST .../versions (text/csv):    $(paste -sd' ' "$T/up") s -> median $u s; ratio to CLI $(python3 -c "print(f'{$u/$c:.2f}')")"
  echo "POST .../versions (gzip):        $(paste -sd' ' "$T/gz") s -> median $g s; ratio to CLI $(python3 -c "print(f'{$g/$c:.2f}')")"
  echo "server RSS: $((base_rss >> 10)) MiB at start, peak $((peak >> 10)) MiB over $((2 * ROUNDS)) uploads, $((after >> 10)) MiB after"
  echo "control, glibc's malloc defaults: $(paste -sd' ' "$T/ctl") s; peak $((ctl_peak >> 10)) MiB over $ROUNDS uploads, $((ctl_after >> 10)) MiB after"
  echo "distinct content hashes over all $((1 + 4 * ROUNDS)) versions: $shas (1 = every upload stored what the CLI stored)"
} | tee bench/out/upload.txt
