#!/usr/bin/env bash
# Benchmark and exactness check: the changes between two versions of a 1 000 000-row wide
# dataset (18 columns: a record id, then the 17 of residents-wide with long Chinese addresses).
# Version 2 drops every 200th record, changes the monthly income of every 97th, and adds 5 000
# new records. In the same run:
#   - `kaifang dataset import` of version 2 into a fresh data directory (no earlier version: the
#     import alone), best of three;
#   - the comparison Kaifang makes when version 2 is imported after version 1 (VersionDiff: its
#     own timing, as `kaifang dataset import` prints it), best of three;
#   - the peer: the sqlite3 CLI computing the same counts over the two version files with SQL
#     (ATTACH both; added and removed by NOT EXISTS on the key, changed by a join comparing every
#     common column with IS NOT), best of three. Its counts are the independent computation the
#     diff must equal, exactly.
# Writes bench/out/changes.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${KAIFANG_RELEASE_BIN:-.build-release/release/kaifang}
WIDE=bench/data/residents-wide
[ -x "$BIN" ] || swift build -c release --static-swift-stdlib --product kaifang --scratch-path .build-release
[ -f "$WIDE/residents_wide.csv" ] || python3 bench/gen_wide.py >/dev/null
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
python3 - "$WIDE" "$T" <<'PY'
import csv, json, sys
wide, out = sys.argv[1], sys.argv[2]
m = json.load(open(f"{wide}/dataset.json"))
m["id"] = "households"
m["fields"].insert(0, {"name": "record_id", "title": "记录编号", "type": "integer", "level": "L1"})
m["primary_key"] = ["record_id"]
json.dump(m, open(f"{out}/dataset.json", "w"), ensure_ascii=False)
with open(f"{wide}/residents_wide.csv", newline="", encoding="utf-8") as f, \
     open(f"{out}/v1.csv", "w", newline="", encoding="utf-8") as a, open(f"{out}/v2.csv", "w", newline="", encoding="utf-8") as b:
    r = csv.reader(f); w1 = csv.writer(a); w2 = csv.writer(b)
    header = next(r)
    income = header.index("monthly_income")
    w1.writerow(["record_id"] + header); w2.writerow(["record_id"] + header)
    kept = []
    for i, row in enumerate(r, start=1):
        w1.writerow([i] + row)
        if i % 200 == 0:
            continue
        if i % 97 == 0:
            row = list(row); row[income] = f"{float(row[income]) + 1:.2f}"
        w2.writerow([i] + row)
        if len(kept) < 5000:
            kept.append(row)
    for k, row in enumerate(kept):
        w2.writerow([2_000_000 + k] + row)
PY
ROWS=$(($(wc -l < "$T/v2.csv") - 1))
best() { sort -n | head -1; }
import_alone() {
  rm -rf "$T/a"; "$BIN" init --data-dir "$T/a" >/dev/null
  /usr/bin/time -f %e "$BIN" dataset import "$T/v2.csv" --id households --manifest "$T/dataset.json" --data-dir "$T/a" 2>&1 >/dev/null | tail -1
}
diff_run() {
  rm -rf "$T/d"; "$BIN" init --data-dir "$T/d" >/dev/null
  "$BIN" dataset import "$T/v1.csv" --id households --manifest "$T/dataset.json" --data-dir "$T/d" >/dev/null
  "$BIN" dataset import "$T/v2.csv" --id households --manifest "$T/dataset.json" --data-dir "$T/d" > "$T/import2.txt"
  sed -n 's/.*compared in \([0-9.]*\) s.*/\1/p' "$T/import2.txt"
}
COLS=$(python3 -c "import json; print(' OR '.join(f'o.\"{f[\"name\"]}\" IS NOT n.\"{f[\"name\"]}\"' for f in json.load(open('$T/dataset.json'))['fields'] if f['name'] != 'record_id'))")
peer_run() {
  cat > "$T/peer.sql" <<SQL
ATTACH '$T/d/versions/households/1.sqlite' AS a;
ATTACH '$T/d/versions/households/2.sqlite' AS b;
SELECT (SELECT count(*) FROM b.rows n WHERE NOT EXISTS (SELECT 1 FROM a.rows o WHERE o.record_id = n.record_id)),
       (SELECT count(*) FROM a.rows o WHERE NOT EXISTS (SELECT 1 FROM b.rows n WHERE n.record_id = o.record_id)),
       (SELECT count(*) FROM a.rows o JOIN b.rows n ON n.record_id = o.record_id WHERE $COLS);
SQL
  /usr/bin/time -f %e -o "$T/peer.time" sqlite3 ":memory:" < "$T/peer.sql" > "$T/peer.out"
  cat "$T/peer.time"
}
alone=$(for i in 1 2 3; do import_alone; done | best)
diffs=$(for i in 1 2 3; do diff_run; done | best)
peer=$(for i in 1 2 3; do peer_run; done | best)
ours=$(python3 -c "
import json, sqlite3
c = sqlite3.connect('$T/d/catalog.sqlite')
d = json.loads(c.execute(\"SELECT changes_json FROM versions WHERE dataset_id = 'households' AND number = 2\").fetchone()[0])
print(f\"{d['added']}|{d['removed']}|{d['changed']}\")")
theirs=$(tr -d '\n' < "$T/peer.out")
{
  echo "rows: $ROWS (version 2), 18 columns"
  printf '%-44s %8s\n' "job" "seconds"
  printf '%-44s %8s\n' "kaifang dataset import (version 2 alone)" "$alone"
  printf '%-44s %8s\n' "kaifang changes (VersionDiff)" "$diffs"
  printf '%-44s %8s\n' "sqlite3 CLI, the same counts in SQL" "$peer"
  echo "changes/import: $(echo "$diffs / $alone" | bc -l | cut -c1-5); sqlite3/kaifang changes: $(echo "$peer / $diffs" | bc -l | cut -c1-5)"
  echo "added|removed|changed — kaifang: $ours; sqlite3: $theirs"
  [ "$ours" = "$theirs" ] && echo "exact: the counts agree" || { echo "MISMATCH"; exit 1; }
} | tee bench/out/changes.txt
