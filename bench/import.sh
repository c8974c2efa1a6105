#!/usr/bin/env bash
# Benchmark: import the 1 000 000-row residents CSV with `kaifang dataset import` (release
# build: every value validated, one transaction, a fresh version file, indexes and ANALYZE
# after the load) next to, in the same run:
#   - the sqlite3 CLI doing the same job: `.import` into a typed table of the same columns, one
#     transaction, a fresh file, then the same six indexes and ANALYZE (validates nothing);
#   - the sqlite3 CLI's bare `.import` (every column TEXT, no index);
#   - DuckDB's read_csv into a table (1 thread);
#   - Kaifang's own import without the version's quality report (KAIFANG_BENCH_NO_QUALITY=1),
#     alternating with the full import: what the report adds (bench/quality.sh does more rounds).
# Writes bench/out/import.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${KAIFANG_RELEASE_BIN:-.build-release/release/kaifang}
DATA=bench/data/residents
mkdir -p bench/out
[ -x "$BIN" ] || swift build -c release --static-swift-stdlib --product kaifang --scratch-path .build-release
[ -f "$DATA/residents.csv" ] || python3 scripts/gen_datasets.py --residents 1000000 --only residents --out bench/data >/dev/null
python3 -c "import duckdb" 2>/dev/null || python3 -m pip install -q duckdb
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3; }
CSV=$DATA/residents.csv
ROWS=$(($(wc -l < "$CSV") - 1))
cat "$CSV" > /dev/null
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

best() { sort -n | head -1; }
kaifang_run() {
  rm -rf "$T/k"; "$BIN" init --data-dir "$T/k" >/dev/null
  /usr/bin/time -f %e "$BIN" dataset import "$CSV" --id residents --manifest "$DATA/dataset.json" --data-dir "$T/k" 2>&1 >/dev/null | tail -1
}
sqlite_run() {
  rm -f "$T/s.db"
  /usr/bin/time -f %e sqlite3 "$T/s.db" -cmd ".mode csv" ".import $CSV rows" 2>&1 | tail -1
}
# The same table and indexes a Kaifang version file has (see Storage/VersionWriter.swift): the
# rowid stands for _row, which every SQLite index carries anyway.
sqlite_same_run() {
  rm -f "$T/s2.db"
  cat > "$T/same.sql" <<SQL
CREATE TABLE rows ("id_number" TEXT, "name" TEXT, "phone" TEXT, "address" TEXT, "birth_date" TEXT, "gender" TEXT, "district" TEXT, "service_type" TEXT, "benefit_amount" REAL, "service_date" TEXT);
.mode csv
.import --skip 1 $CSV rows
PRAGMA threads = 2;
CREATE INDEX "ix_birth_date" ON rows ("birth_date");
CREATE INDEX "ix_gender" ON rows ("gender");
CREATE INDEX "ix_district" ON rows ("district");
CREATE INDEX "ix_service_type" ON rows ("service_type");
CREATE INDEX "ix_benefit_amount" ON rows ("benefit_amount");
CREATE INDEX "ix_service_date" ON rows ("service_date");
ANALYZE;
SQL
  /usr/bin/time -f %e sqlite3 "$T/s2.db" < "$T/same.sql" 2>&1 >/dev/null | tail -1
}
duck_run() {
  python3 - "$CSV" <<'PY'
import duckdb, sys, time
con = duckdb.connect(); con.execute("SET threads = 1")
t = time.perf_counter(); con.execute(f"CREATE TABLE rows AS SELECT * FROM read_csv('{sys.argv[1]}', header = true)")
print(f"{time.perf_counter() - t:.2f}")
PY
}
for i in 1 2 3; do kaifang_run >> "$T/with.t"; KAIFANG_BENCH_NO_QUALITY=1 kaifang_run >> "$T/without.t"; done
k=$(best < "$T/with.t"); q=$(best < "$T/without.t")
s=$(for i in 1 2 3; do sqlite_run; done | best)
s2=$(for i in 1 2 3; do sqlite_same_run; done | best)
d=$(for i in 1 2 3; do duck_run; done | best)
{
  printf '%-28s %8s %12s\n' "importer" "seconds" "rows/s"
  for pair in "kaifang dataset import:$k" "kaifang, no quality report:$q" "sqlite3 same job:$s2" "sqlite3 .import (bare):$s" "duckdb read_csv (1 thread):$d"; do
    name=${pair%%:*}; sec=${pair##*:}
    printf '%-28s %8s %12.0f\n' "$name" "$sec" "$(echo "$ROWS / $sec" | bc -l)"
  done
} | tee bench/out/import.txt
awk -v a="$k" -v b="$q" 'BEGIN {printf "quality report: import %.3f× of one without it (best of 3 each)\n", a / b}' | tee -a bench/out/import.txt
