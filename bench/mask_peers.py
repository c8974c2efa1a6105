#!/usr/bin/env python3
"""The public-view masking job of bench/mask.sh, done by DuckDB (SQL substr/regexp) and by
pandas, on one core. Prints one JSON line per peer: {"peer", "seconds", "rows", "peak_rss_mib"}.

The job (the residents public view of docs/policy.md): id_number suppressed, name → surname + stars,
phone → 138****1234, address cut after the district, birth_date → year, benefit_amount → its
order-of-magnitude band; other columns kept.
"""
import json
import resource
import sys
import time

csv_path = sys.argv[1]
which = sys.argv[2]


def report(peer, seconds, rows):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peer": peer, "seconds": round(seconds, 3), "rows": rows, "peak_rss_mib": round(rss, 1)}))


if which == "duckdb":
    import duckdb
    con = duckdb.connect()
    con.execute("SET threads = 1")
    start = time.perf_counter()
    con.execute(f"""
        COPY (
          SELECT NULL AS id_number,
                 CASE WHEN length(name) >= 3 AND substr(name, 1, 2) IN ('欧阳','司马','诸葛','上官','东方','皇甫','尉迟','公孙','慕容','长孙')
                      THEN substr(name, 1, 2) || repeat('*', length(name) - 2)
                      ELSE substr(name, 1, 1) || repeat('*', length(name) - 1) END AS name,
                 CASE WHEN regexp_matches(phone, '^1[3-9][0-9]{{9}}$') THEN substr(phone, 1, 3) || '****' || substr(phone, 8, 4)
                      ELSE '***********' END AS phone,
                 coalesce(nullif(regexp_extract(address, '^([^0-9路街巷弄号道镇乡村组]*[省市区县旗州盟])', 1), ''), '***') AS address,
                 strftime(birth_date, '%Y') AS birth_date,
                 gender, district, service_type,
                 CASE WHEN benefit_amount = 0 THEN '0'
                      ELSE (floor(benefit_amount / pow(10, floor(log10(abs(benefit_amount))))) * pow(10, floor(log10(abs(benefit_amount)))))::BIGINT::VARCHAR
                           || '-' || ((floor(benefit_amount / pow(10, floor(log10(abs(benefit_amount))))) + 1) * pow(10, floor(log10(abs(benefit_amount)))))::BIGINT::VARCHAR
                 END AS benefit_amount,
                 service_date
          FROM read_csv('{csv_path}', header = true, types = {{'id_number': 'VARCHAR', 'phone': 'VARCHAR'}})
        ) TO '/dev/null' (FORMAT CSV, HEADER)
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
            ok = p.str.fullmatch(r'1[3-9]\d{9}')
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
