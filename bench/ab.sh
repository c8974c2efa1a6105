#!/usr/bin/env bash
# A/B of server builds on the benchmark data: every binary serves bench/data/api-datadir on its
# own port at the same time, and short `wrk -t2 -c64` runs alternate between them, so the drift
# of this shared virtual machine's speed (±25 % within minutes) hits all alike. Reports per
# binary: requests/s, server CPU per request (from /proc/<pid>/stat) and the p99 of each run.
# The first round is a warm-up and not counted. Run bench/api.sh once first (it makes the data).
#
#   bench/ab.sh QUERY ROUNDS SECONDS BIN[:ENV=VALUE[:ENV2=VALUE2]] BIN2[...] ...
#   QUERY: page | filtered | last
#   e.g.   bench/ab.sh filtered 7 3 /tmp/kaifang-old .build-release/release/kaifang
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 4 ] || { sed -n '2,10p' "$0"; exit 2; }
Q=$1; N=$2; DUR=$3; shift 3
DIR=bench/data/api-datadir
[ -f "$DIR/catalog.sqlite" ] || { echo "no $DIR: run bench/api.sh first" >&2; exit 2; }
case $Q in
  page) P="/v1/datasets/residents/rows?_limit=100" ;;
  filtered) P="/v1/datasets/residents/rows?_limit=100&district=%E7%8E%84%E6%AD%A6%E5%8C%BA&service_type__in=%E4%BD%8E%E4%BF%9D,%E5%8C%BB%E7%96%97%E6%95%91%E5%8A%A9" ;;
  last) P="/v1/datasets/residents/rows?_limit=100&_cursor=$(python3 -c "
import base64, json; print(base64.urlsafe_b64encode(json.dumps([-1,0,'n',0,'999900']).encode()).decode().rstrip('='))")" ;;
  *) echo "QUERY is page, filtered or last" >&2; exit 2 ;;
esac
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT
port=18100
for spec in "$@"; do
  bin=${spec%%:*}; envs=""
  [ "$spec" != "$bin" ] && envs=$(echo "${spec#*:}" | tr ":" " ")
  env $envs "$bin" serve --data-dir "$DIR" --port $port --key-rate 0 --anonymous-rate 0 --anonymous-exports-per-day 0 >/dev/null 2>&1 &
  pids+=($!)
  port=$((port + 1))
done
for i in $(seq 0 $(($# - 1))); do
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$((18100 + i))/healthz" >/dev/null && break; sleep 0.2; done
done
declare -A REQ CPU P99
for r in $(seq 1 "$N"); do
  i=0
  for spec in "$@"; do
    pid=${pids[$i]}
    t0=$(awk '{print $14 + $15}' /proc/$pid/stat)
    out=$(wrk -t2 -c64 -d"${DUR}s" --latency "http://127.0.0.1:$((18100 + i))$P")
    t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    if [ "$r" -gt 1 ]; then
      REQ[$spec]=$(( ${REQ[$spec]:-0} + n )); CPU[$spec]=$(( ${CPU[$spec]:-0} + t1 - t0 )); P99[$spec]="${P99[$spec]:-} $p99"
    fi
    i=$((i + 1))
  done
done
hz=$(getconf CLK_TCK)
for spec in "$@"; do
  printf '%-50s %s: %6d req/s, server CPU %4d µs/request, p99 of each run:%s\n' "$spec" "$Q" \
    $(( ${REQ[$spec]} / ((N - 1) * DUR) )) $(( ${CPU[$spec]} * 1000000 / hz / ${REQ[$spec]} )) "${P99[$spec]}"
done
