#!/usr/bin/env bash
# Benchmark: sandbox jobs against the bare engine underneath. A data directory holds the ROWS-row
# residents dataset (10 columns, long Chinese addresses) twice (`residents` and `residents-b`,
# the same people, for a join), published conditional, and a partner key with a sandbox license
# on both. Each typical job runs through `kaifang job submit` (check, queue, child process,
# every disclosure rule, result, audit) and, alternately in the same run, as the same query run
# by the `sqlite3` CLI on the same version files (output to /dev/null), both as the partner
# wrote it and as the runner plans it. Reports per job the medians of ROUNDS rounds, the ratios,
# and the job's peak RSS (largest of the CLI and its child).
# Writes bench/out/sandbox-ROWS.txt.
#
#   bench/sandbox.sh                 (ROWS=1000000 ROUNDS=5)
#   ROWS=10000000 ROUNDS=3 bench/sandbox.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${KAIFANG_RELEASE_BIN:-.build-release/release/kaifang}
ROWS=${ROWS:-1000000}
ROUNDS=${ROUNDS:-5}
mkdir -p bench/out
command -v sqlite3 >/dev/null || { echo "sqlite3 is needed: apt-get install -y sqlite3" >&2; exit 2; }
[ -x "$BIN" ] || swift build -c release --static-swift-stdlib --product kaifang --scratch-path .build-release
if [ "$ROWS" = 1000000 ]; then DATA=bench/data/residents; else DATA=bench/data/residents-$ROWS; fi
if [ ! -f "$DATA/residents.csv" ]; then
  G=$(mktemp -d -p bench/data)
  python3 scripts/gen_datasets.py --residents "$ROWS" --only residents --out "$G" >/dev/null
  rm -rf "$DATA"; mv "$G/residents" "$DATA"; rm -rf "$G"
fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
D=$T/data
"$BIN" init --data-dir "$D" >/dev/null
for id in residents residents-b; do
  python3 -c "import json,sys; m=json.load(open(sys.argv[1])); m['id']=sys.argv[2]; print(json.dumps(m, ensure_ascii=False))" "$DATA/dataset.json" "$id" > "$T/$id.json"
  "$BIN" dataset import "$DATA/residents.csv" --manifest "$T/$id.json" --data-dir "$D" >/dev/null
  "$BIN" dataset publish "$id" --tier conditional --data-dir "$D" >/dev/null
done
KID=$("$BIN" key create --role partner --name bench --json --data-dir "$D" | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
for id in residents residents-b; do
  "$BIN" license grant --key "$KID" --dataset "$id" --use sandbox --purpose "benchmark of sandbox jobs" --data-dir "$D" >/dev/null
done
A=$D/versions/residents/1.sqlite
B=$D/versions/residents-b/1.sqlite
cat "$A" "$B" > /dev/null   # the page cache, for both contenders alike

# name | mode | job SQL | the same query for sqlite3 (tables: rows, b.rows) | the statement as the
# runner plans it (GROUP BY keys kept from index use where SQLite would walk an index and look
# every row up; dp: the per-person statement), for sqlite3 with the job's engine settings (one
# sorter helper thread, a 128 MiB memory map): the engine at the same work, without the rules
JOBS=(
  "one key|aggregate|SELECT district, COUNT(*) AS n, AVG(benefit_amount) AS v FROM residents GROUP BY district|SELECT district, COUNT(*) AS n, AVG(benefit_amount) AS v FROM rows GROUP BY district|SELECT district, COUNT(*) AS n, AVG(benefit_amount) AS v FROM rows GROUP BY +district"
  "two keys|aggregate|SELECT district, service_type, COUNT(*) AS n, AVG(benefit_amount) AS v FROM residents GROUP BY district, service_type|SELECT district, service_type, COUNT(*) AS n, AVG(benefit_amount) AS v FROM rows GROUP BY district, service_type|SELECT district, service_type, COUNT(*) AS n, AVG(benefit_amount) AS v FROM rows GROUP BY +district, +service_type"
  "filtered count|aggregate|SELECT service_type, COUNT(*) AS n FROM residents WHERE district = '玄武区' AND gender = '女' GROUP BY service_type|SELECT service_type, COUNT(*) AS n FROM rows WHERE district = '玄武区' AND gender = '女' GROUP BY service_type|SELECT service_type, COUNT(*) AS n FROM rows WHERE district = '玄武区' AND gender = '女' GROUP BY +service_type"
  "join of two datasets|aggregate|SELECT a.district, COUNT(*) AS n, AVG(b.benefit_amount) AS v FROM residents a JOIN residents_b b ON a.id_number = b.id_number GROUP BY a.district|SELECT a.district, COUNT(*) AS n, AVG(b.benefit_amount) AS v FROM rows a JOIN b.rows b ON a.id_number = b.id_number GROUP BY a.district|SELECT a.district, COUNT(*) AS n, AVG(b.benefit_amount) AS v FROM rows a JOIN b.rows b ON a.id_number = b.id_number GROUP BY a.district"
  "dp mode|dp|SELECT district, COUNT(*) AS n, AVG(benefit_amount) AS v FROM residents GROUP BY district|SELECT district, COUNT(*) AS n, AVG(benefit_amount) AS v FROM rows GROUP BY district|SELECT k, COUNT(*), TOTAL(min(max(s, 0), 100000)) FROM (SELECT district AS k, TOTAL(benefit_amount) AS s FROM rows GROUP BY id_number) GROUP BY k ORDER BY k"
  "many groups|aggregate|SELECT birth_date, district, COUNT(*) AS n FROM residents GROUP BY birth_date, district HAVING COUNT(*) >= 25|SELECT birth_date, district, COUNT(*) AS n FROM rows GROUP BY birth_date, district HAVING COUNT(*) >= 25|SELECT birth_date, district, COUNT(*) AS n FROM rows GROUP BY +birth_date, +district HAVING COUNT(*) >= 25"
)
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
  echo "sandbox jobs vs bare sqlite3 $(sqlite3 --version | cut -d' ' -f1), $ROWS rows, $ROUNDS rounds alternating ($(date -u +%F), $(nproc) cores)"
  for job in "${JOBS[@]}"; do
    IFS='|' read -r name mode sql bare planned <<<"$job"
    extra=(); [ "$mode" = dp ] && extra=(--mode dp --epsilon 0.05)
    jt=(); bt=(); pt=(); rss=0; status=""
    for _ in $(seq 1 "$ROUNDS"); do
      out=$( { /usr/bin/time -f "%e %M" "$BIN" job submit --key "$KID" --sql "$sql" "${extra[@]}" --json --data-dir "$D" > "$T/out.json" || true; } 2>&1 | tail -1)
      jt+=("${out% *}"); m=${out#* }; [ "$m" -gt "$rss" ] && rss=$m
      status=$(python3 -c "import json; j=json.load(open('$T/out.json'))['job']; d=j.get('detail') or {}; print(j['status'], d.get('rows_suppressed', ''), d.get('reason', '') or '')" 2>/dev/null || echo "?")
      bt+=("$( { /usr/bin/time -f "%e" sqlite3 "$A" "ATTACH '$B' AS b; $bare;" > /dev/null; } 2>&1 | tail -1)")
      pt+=("$( { /usr/bin/time -f "%e" sqlite3 "$A" "PRAGMA threads = 1; PRAGMA mmap_size = 134217728; ATTACH '$B' AS b; PRAGMA b.mmap_size = 134217728; $planned;" > /dev/null; } 2>&1 | tail -1)")
    done
    mj=$(median "${jt[@]}"); mb=$(median "${bt[@]}"); mp=$(median "${pt[@]}")
    printf '%-22s job %6.2f s  sqlite3 %6.2f s  ratio %5.2f  | as planned %6.2f s  ratio %5.2f  | job peak RSS %4d MiB  [%s]  (rounds %s | %s | %s)\n' \
      "$name" "$mj" "$mb" "$(echo "$mj / $mb" | bc -l)" "$mp" "$(echo "$mj / $mp" | bc -l)" $((rss / 1024)) "$status" "${jt[*]}" "${bt[*]}" "${pt[*]}"
  done
} | tee "bench/out/sandbox-$ROWS.txt"
