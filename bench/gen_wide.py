#!/usr/bin/env python3
"""A wide residents table for the masking benchmark (bench/mask.sh): 17 columns, long Chinese
addresses (province, city, district, sub-district, road, estate, building, unit, room), two
person names and two phone numbers per row, seeded and repeatable. Synthetic: nobody's data.

    python3 bench/gen_wide.py ROWS OUT_DIR     (writes OUT_DIR/residents_wide.csv and dataset.json)
"""
import csv
import datetime as dt
import json
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from gen_datasets import DISTRICTS, SERVICES, STREETS, person_name, phone, resident_id, residents_manifest  # noqa: E402

SUBDISTRICTS = ["玄武门街道", "梅园新村街道", "新街口街道", "湖南路街道", "华侨路街道", "夫子庙街道", "沙洲街道",
                "东山街道", "淳化街道", "仙林街道", "江浦街道", "平江街道", "双塔街道", "苏锦街道", "长桥街道"]
ESTATES = ["紫金花园", "金陵世纪城", "银城东苑", "翠屏国际", "月牙湖花园", "南湖新村", "龙江小区", "苏州新城花园",
           "香樟园", "阳光水岸", "清江花苑", "万科金域蓝湾", "星河国际", "莫愁新寓", "凤凰和美"]
ETHNICITIES = ["汉族"] * 18 + ["回族", "满族"]
REMARKS = ["按月发放，已核实家庭收入情况", "经社区入户调查，符合救助条件", "动态管理，每季度复核一次",
           "因病致贫，附医疗费用票据", "独居老人，纳入定期探访名单", "家庭成员中有重度残疾人", ""]


def manifest():
    f = lambda name, title, typ, semantic, level, **kw: dict(name=name, title=title, type=typ, semantic=semantic, level=level, **kw)
    # The residents dataset's catalog entry, with a wider record.
    return dict(residents_manifest(),
        id="residents-wide",
        title="居民救助档案（宽表） Resident assistance files (wide)",
        description="民政救助对象档案，含详细住址、家庭与经办信息（合成数据）。Assistance recipients with long addresses (synthetic).",
        fields=[
            f("id_number", "身份证号", "string", "resident_id", "L4"),
            f("name", "姓名", "string", "person_name", "L3"),
            f("phone", "手机号", "string", "phone", "L3"),
            f("address", "住址", "string", "address", "L3"),
            f("birth_date", "出生日期", "date", "date", "L2", qi=True),
            f("gender", "性别", "string", "category", "L2", qi=True),
            f("ethnicity", "民族", "string", "category", "L1"),
            f("district", "所属区县", "string", "category", "L1", qi=True),
            f("subdistrict", "所属街道", "string", "category", "L1"),
            f("household_size", "家庭人口", "integer", "count", "L1", min=1, max=20),
            f("monthly_income", "家庭月收入(元)", "number", "amount", "L2", min=0, max=1000000),
            f("benefit_type", "救助类型", "string", "category", "L1"),
            f("benefit_amount", "补贴金额(元)", "number", "amount", "L2", min=0, max=100000),
            f("service_date", "服务日期", "date", "date", "L1"),
            f("caseworker", "经办人", "string", "person_name", "L3"),
            f("caseworker_phone", "经办人电话", "string", "phone", "L3"),
            f("remark", "备注", "string", "text", "L1"),
        ],
    )


def main():
    rows, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(20261204)
    today = dt.date(2026, 6, 30)
    m = manifest()
    with open(os.path.join(out, "dataset.json"), "w", encoding="utf-8") as f:
        json.dump(m, f, ensure_ascii=False, indent=2)
    with open(os.path.join(out, "residents_wide.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([fld["name"] for fld in m["fields"]])
        for _ in range(rows):
            code, city, district = rng.choice(DISTRICTS)
            sub = rng.choice(SUBDISTRICTS)
            birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 66))
            male = rng.random() < 0.5
            addr = (f"江苏省{city}{district}{sub}{rng.choice(STREETS)}{rng.randrange(1, 400)}号{rng.choice(ESTATES)}小区"
                    f"{rng.randrange(1, 30)}栋{rng.randrange(1, 6)}单元{rng.randrange(101, 2999)}室")
            income = round(rng.uniform(0, 6000), 2)
            amount = round(rng.choice([300, 500, 800, 1200, 2000]) * rng.uniform(0.5, 2.5), 2)
            served = today - dt.timedelta(days=rng.randrange(0, 540))
            w.writerow([resident_id(rng, code, birth, male), person_name(rng), phone(rng), addr, birth.isoformat(),
                        "男" if male else "女", rng.choice(ETHNICITIES), district, sub, rng.randrange(1, 7),
                        f"{income:.2f}", rng.choice(SERVICES), f"{amount:.2f}", served.isoformat(),
                        person_name(rng), phone(rng), rng.choice(REMARKS)])


if __name__ == "__main__":
    main()
