#!/usr/bin/env python3
"""The public-view masking job of bench/mask.sh, done by DuckDB (SQL substr/regexp) and by
pandas, on one core. Prints one JSON line per peer: {"peer", "seconds", "rows", "peak_rss_mib"}.

    mask_peers.py CSV duckdb|pandas [MANIFEST] [OUT]

The job (the public view of docs/policy.md, per field semantic and level, read from the
manifest): resident IDs suppressed, person names → surname + stars, phones → 138****1234,
addresses cut after the district, L2 dates → year, L2 amounts → their order-of-magnitude band;
other columns kept. DuckDB writes to OUT (default /dev/null), so bench/mask.sh can check that
it did the same job byte for byte. pandas does the 10-column residents file only.
"""
import json
import resource
import sys
import time

csv_path = sys.argv[1]
which = sys.argv[2]
manifest_path = sys.argv[3] if len(sys.argv) > 3 else None
out_path = sys.argv[4] if len(sys.argv) > 4 else "/dev/null"


def report(peer, seconds, rows):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peer": peer, "seconds": round(seconds, 3), "rows": rows, "peak_rss_mib": round(rss, 1)}))


COMPOUND = "('欧阳','司马','诸葛','上官','东方','皇甫','尉迟','公孙','慕容','长孙')"
# Mobile numbers in an allocated segment (13x, 145–149, 150–153, 155–159, 162, 165–167, 170–178,
# 18x, 190–193, 195–199): others are masked whole, as Kaifang does.
MOBILE = r"1(3[0-9]|4[5-9]|5[0-35-9]|6[2567]|7[0-8]|8[0-9]|9[0-35-9])[0-9]{8}"


def public_expr(f):
    """The DuckDB expression of one field's public view."""
    c, sem, level = f["name"], f.get("semantic"), f.get("level")
    if sem == "resident_id":
        return f"NULL AS {c}"
    if sem == "person_name":
        return (f"CASE WHEN length({c}) >= 3 AND substr({c}, 1, 2) IN {COMPOUND} THEN substr({c}, 1, 2) || repeat('*', length({c}) - 2) "
                f"ELSE substr({c}, 1, 1) || repeat('*', length({c}) - 1) END AS {c}")
    if sem == "phone":
        return f"CASE WHEN regexp_matches({c}, '^{MOBILE}$') THEN substr({c}, 1, 3) || '****' || substr({c}, 8, 4) ELSE '***********' END AS {c}"
    if sem == "address":
        return f"coalesce(nullif(regexp_extract({c}, '^([^0-9路街巷弄号道镇乡村组]*[省市区县旗州盟])', 1), ''), '***') AS {c}"
    if sem == "date" and level == "L2":
        return f"strftime({c}, '%Y') AS {c}"
    if sem == "amount" and level == "L2":
        # The band [lo, lo + m) of the value's magnitude m, each bound written as an integer when
        # it is one and otherwise in its shortest form (0.9-1, 0.07-0.08).
        mag = f"pow(10, floor(log10(abs({c}))))"
        lo = f"(floor({c} / {mag}) * {mag})"
        fmt = lambda x: f"CASE WHEN {x} = round({x}) THEN ({x})::BIGINT::VARCHAR ELSE ({x})::VARCHAR END"
        return f"CASE WHEN {c} = 0 THEN '0' ELSE {fmt(lo)} || '-' || {fmt(f'({lo} + {mag})')} END AS {c}"
    return c


if which == "duckdb":
    import duckdb
    fields = json.load(open(manifest_path or csv_path.rsplit("/", 1)[0] + "/dataset.json", encoding="utf-8"))["fields"]
    text = [f["name"] for f in fields if f.get("semantic") in ("resident_id", "phone")]
    types = ", ".join(f"'{c}': 'VARCHAR'" for c in text)
    con = duckdb.connect()
    con.execute("SET threads = 1")
    start = time.perf_counter()
    con.execute(f"""
        COPY (
          SELECT {", ".join(public_expr(f) for f in fields)}
          FROM read_csv('{csv_path}', header = true, types = {{{types}}})
        ) TO '{out_path}' (FORMAT CSV, HEADER)
    """)
    seconds = time.perf_counter() - start
    rows = con.execute(f"SELECT count(*) FROM read_csv('{csv_path}', header = true)").fetchone()[0]
    report("duckdb", seconds, rows)
elif which == "pandas":
    import numpy as np
    import pandas as pd
    start = time.perf_counter()
    rows = 0
    compound = ('欧阳', '司马', '诸葛', '上官', '东方', '皇甫', '尉迟', '公孙', '慕容', '长孙')
    with open('/dev/null', 'w') as sink:
        header = True
        for df in pd.read_csv(csv_path, dtype=str, chunksize=200_000):
            rows += len(df)
            df['id_number'] = None
            n = df['name'].fillna('')
            keep = np.where(n.str[:2].isin(compound) & (n.str.len() >= 3), 2, 1)
            df['name'] = [s[:k] + '*' * (len(s) - k) for s, k in zip(n, keep)]
            p = df['phone'].fillna('')
            ok = p.str.fullmatch(MOBILE)
            df['phone'] = np.where(ok, p.str[:3] + '****' + p.str[7:], '***********')
            a = df['address'].fillna('').str.extract(r'^([^0-9路街巷弄号道镇乡村组]*[省市区县旗州盟])', expand=False)
            df['address'] = a.fillna('***')
            df['birth_date'] = df['birth_date'].str[:4]
            v = df['benefit_amount'].astype(float)
            mag = np.power(10, np.floor(np.log10(np.abs(v.replace(0, 1)))))
            lo = np.floor(v / mag) * mag
            df['benefit_amount'] = lo.astype('int64').astype(str) + '-' + (lo + mag).astype('int64').astype(str)
            df.to_csv(sink, index=False, header=header)
            header = False
    report("pandas", time.perf_counter() - start, rows)
