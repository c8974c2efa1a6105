#!/usr/bin/env python3
"""Generate Kaifang's synthetic sample datasets (nobody's real data), seeded and repeatable.

    python3 scripts/gen_datasets.py                      # rewrites datasets/ (the committed samples)
    python3 scripts/gen_datasets.py --residents 1000000 --only residents --out bench/data
                                                        # a large residents file for benchmarks

Resident IDs carry correct GB 11643 check characters (ISO 7064 MOD 11-2), USCCs correct
GB 32100 check characters, phones the 1[3-9] prefix. The manifests are written beside the CSVs.
"""
import argparse
import csv
import datetime as dt
import json
import os
import random

# Jiangsu county-level division codes and names (public administrative codes, GB/T 2260).
DISTRICTS = [
    ("320102", "南京市", "玄武区"), ("320104", "南京市", "秦淮区"), ("320105", "南京市", "建邺区"),
    ("320106", "南京市", "鼓楼区"), ("320111", "南京市", "浦口区"), ("320113", "南京市", "栖霞区"),
    ("320114", "南京市", "雨花台区"), ("320115", "南京市", "江宁区"), ("320213", "无锡市", "梁溪区"),
    ("320505", "苏州市", "虎丘区"), ("320506", "苏州市", "吴中区"), ("320508", "苏州市", "姑苏区"),
]
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
COMPOUND_SURNAMES = ["欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙"]
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华志强文斌海燕晓红玉兰凤英")
STREETS = ["中山路", "北京东路", "汉中路", "龙蟠路", "珠江路", "长江路", "太平南路", "解放路", "人民路", "干将路", "学前街", "凤凰街"]
SERVICES = ["低保", "临时救助", "养老服务补贴", "残疾人补贴", "医疗救助", "住房保障"]
INDUSTRIES = ["制造业", "信息技术", "批发零售", "建筑业", "交通运输", "住宿餐饮", "金融业", "科研服务", "文化体育"]
COMPANY_WORDS = ["华泰", "苏宁", "金陵", "紫金", "扬子", "江南", "钟山", "秦淮", "太湖", "东吴", "石城", "鼎盛", "恒通", "瑞丰"]
COMPANY_KINDS = ["科技", "贸易", "建设", "物流", "餐饮", "信息", "实业", "文化"]
STATIONS = [("玄武湖", "玄武区"), ("草场门", "鼓楼区"), ("中华门", "秦淮区"), ("奥体中心", "建邺区"),
            ("仙林大学城", "栖霞区"), ("浦口", "浦口区"), ("江宁彩虹桥", "江宁区"), ("雨花台", "雨花台区")]

AIR_START = dt.datetime(2026, 6, 1, 0, 0)

ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]
ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]


def resident_id_check(first17: str) -> str:
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS)) % 11]


def resident_id(rng, region: str, birth: dt.date, male: bool) -> str:
    seq = rng.randrange(0, 500) * 2 + (1 if male else 0)
    if seq == 0:  # 000 is never issued
        seq = 2
    body = f"{region}{birth:%Y%m%d}{seq:03d}"
    return body + resident_id_check(body)


def org_code(rng) -> str:
    body = "".join(str(rng.randrange(10)) for _ in range(8))
    c = 11 - sum(int(ch) * w for ch, w in zip(body, ORG_WEIGHTS)) % 11
    return body + ("X" if c == 10 else "0" if c == 11 else str(c))


def uscc_check(first17: str) -> str:
    s = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(first17, USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - s % 31) % 31]


def uscc(rng, region: str) -> str:
    body = "91" + region + org_code(rng)
    return body + uscc_check(body)


def person_name(rng) -> str:
    surname = rng.choice(COMPOUND_SURNAMES) if rng.random() < 0.04 else rng.choice(SURNAMES)
    return surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2, 2])))


# Unallocated mobile segments the draw below can produce, and the allocated one next to each.
UNALLOCATED = {"154": "155", "179": "178"}


def phone(rng) -> str:
    number = "1" + str(rng.choice([3, 5, 7, 8, 9])) + "".join(str(rng.randrange(10)) for _ in range(9))
    return UNALLOCATED.get(number[:3], number[:3]) + number[3:]


def residents_manifest():
    return {
        "id": "residents",
        "title": "居民服务记录 Resident service records",
        "description": "民政服务对象及救助补贴发放记录（合成数据）。Social-assistance recipients and benefit payments (synthetic).",
        "department": "省民政厅",
        "topic": "social",
        "update_frequency": "monthly",
        "license": "有条件开放：经审批后在许可范围内使用 (conditional: use within an approved license)",
        "tier": "conditional",
        "should_open": True,
        "entity": "id_number",
        "spatial": [code for code, _, _ in DISTRICTS],
        "temporal": {"start": "2025-01-01", "end": "2026-06-30"},
        "fields": [
            {"name": "id_number", "title": "身份证号", "type": "string", "semantic": "resident_id", "level": "L4"},
            {"name": "name", "title": "姓名", "type": "string", "semantic": "person_name", "level": "L3"},
            {"name": "phone", "title": "手机号", "type": "string", "semantic": "phone", "level": "L3"},
            {"name": "address", "title": "住址", "type": "string", "semantic": "address", "level": "L3"},
            {"name": "birth_date", "title": "出生日期", "type": "date", "semantic": "date", "level": "L2", "qi": True},
            {"name": "gender", "title": "性别", "type": "string", "semantic": "category", "level": "L2", "qi": True},
            {"name": "district", "title": "所属区县", "type": "string", "semantic": "category", "level": "L1", "qi": True},
            {"name": "service_type", "title": "服务类型", "type": "string", "semantic": "category", "level": "L1"},
            {"name": "benefit_amount", "title": "补贴金额(元)", "type": "number", "semantic": "amount", "level": "L2", "min": 0, "max": 100000, "fingerprint": {"tolerance": 0.01}},
            {"name": "service_date", "title": "服务日期", "type": "date", "semantic": "date", "level": "L1"},
        ],
    }


def write_residents(rng, n, out):
    today = dt.date(2026, 6, 30)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([fld["name"] for fld in residents_manifest()["fields"]])
        for _ in range(n):
            code, city, district = rng.choice(DISTRICTS)
            birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 66))
            male = rng.random() < 0.5
            addr = f"江苏省{city}{district}{rng.choice(STREETS)}{rng.randrange(1, 400)}号{rng.randrange(1, 30)}栋{rng.randrange(101, 2999)}室"
            amount = round(rng.choice([300, 500, 800, 1200, 2000]) * rng.uniform(0.5, 2.5), 2)
            served = today - dt.timedelta(days=rng.randrange(0, 540))
            w.writerow([resident_id(rng, code, birth, male), person_name(rng), phone(rng), addr, birth.isoformat(),
                        "男" if male else "女", district, rng.choice(SERVICES), f"{amount:.2f}", served.isoformat()])


def enterprises_manifest():
    return {
        "id": "enterprises",
        "title": "企业登记信息 Enterprise registry",
        "description": "市场主体登记基本信息（合成数据）。Registered enterprises (synthetic).",
        "department": "省市场监督管理局",
        "topic": "economy",
        "update_frequency": "daily",
        "license": "CC BY 4.0",
        "tier": "open",
        "should_open": True,
        "spatial": [code for code, _, _ in DISTRICTS],
        "temporal": {"start": "1995-01-01"},
        "fields": [
            {"name": "uscc", "title": "统一社会信用代码", "type": "string", "semantic": "uscc", "level": "L1"},
            {"name": "company_name", "title": "企业名称", "type": "string", "semantic": "text", "level": "L1"},
            {"name": "legal_representative", "title": "法定代表人", "type": "string", "semantic": "person_name", "level": "L3"},
            {"name": "registered_capital", "title": "注册资本(万元)", "type": "number", "semantic": "amount", "level": "L1", "min": 0},
            {"name": "industry", "title": "行业", "type": "string", "semantic": "category", "level": "L1"},
            {"name": "district", "title": "所属区县", "type": "string", "semantic": "category", "level": "L1"},
            {"name": "established", "title": "成立日期", "type": "date", "semantic": "date", "level": "L1"},
        ],
        "primary_key": ["uscc"],
    }


def write_enterprises(rng, n, out):
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([fld["name"] for fld in enterprises_manifest()["fields"]])
        for _ in range(n):
            code, city, district = rng.choice(DISTRICTS)
            name = f"{city[:-1]}{rng.choice(COMPANY_WORDS)}{rng.choice(COMPANY_KINDS)}有限公司"
            est = dt.date(1995, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 31))
            w.writerow([uscc(rng, code), name, person_name(rng), rng.choice([10, 50, 100, 200, 500, 1000, 5000]),
                        rng.choice(INDUSTRIES), district, est.isoformat()])


def air_manifest(hours):
    last = AIR_START + dt.timedelta(hours=hours - 1)
    return {
        "id": "air-quality",
        "title": "空气质量小时数据 Hourly air quality",
        "description": "南京市国控站点逐小时空气质量监测数据（合成数据）。Hourly readings of monitoring stations (synthetic).",
        "department": "省生态环境厅",
        "topic": "environment",
        "update_frequency": "hourly",
        "license": "CC BY 4.0",
        "tier": "open",
        "should_open": True,
        "spatial": ["320100"],
        "temporal": {"start": AIR_START.date().isoformat(), "end": last.date().isoformat()},
        "fields": [
            {"name": "station", "title": "监测站点", "type": "string", "semantic": "category", "level": "L1"},
            {"name": "district", "title": "所属区县", "type": "string", "semantic": "category", "level": "L1"},
            {"name": "observed_at", "title": "监测时间", "type": "datetime", "semantic": "datetime", "level": "L1"},
            {"name": "aqi", "title": "空气质量指数", "type": "integer", "semantic": "count", "level": "L1", "min": 0, "max": 500},
            {"name": "pm25", "title": "PM2.5(μg/m³)", "type": "number", "semantic": "amount", "level": "L1", "min": 0},
            {"name": "pm10", "title": "PM10(μg/m³)", "type": "number", "semantic": "amount", "level": "L1", "min": 0},
            {"name": "no2", "title": "二氧化氮(μg/m³)", "type": "number", "semantic": "amount", "level": "L1", "min": 0},
            {"name": "o3", "title": "臭氧(μg/m³)", "type": "number", "semantic": "amount", "level": "L1", "min": 0},
        ],
        "primary_key": ["station", "observed_at"],
    }


def write_air(rng, hours, out):
    start = AIR_START
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([fld["name"] for fld in air_manifest(hours)["fields"]])
        for h in range(hours):
            t = start + dt.timedelta(hours=h)
            base = 35 + 20 * abs(((t.hour - 8) % 24) - 12) / 12
            for station, district in STATIONS:
                pm25 = max(1.0, rng.gauss(base, 8))
                pm10 = pm25 * rng.uniform(1.3, 1.9)
                no2 = max(1.0, rng.gauss(30, 10))
                o3 = max(1.0, rng.gauss(80 - base / 2, 15))
                aqi = min(500, int(max(pm25 / 75 * 100, pm10 / 150 * 100, o3 / 200 * 100)))
                w.writerow([station, district, t.strftime("%Y-%m-%d %H:%M:%S"), aqi, f"{pm25:.1f}", f"{pm10:.1f}", f"{no2:.1f}", f"{o3:.1f}"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "datasets"))
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--residents", type=int, default=2000)
    ap.add_argument("--enterprises", type=int, default=1000)
    ap.add_argument("--air-hours", type=int, default=240)
    ap.add_argument("--only", choices=["residents", "enterprises", "air-quality"])
    args = ap.parse_args()
    jobs = [("residents", residents_manifest, lambda rng, p: write_residents(rng, args.residents, p)),
            ("enterprises", enterprises_manifest, lambda rng, p: write_enterprises(rng, args.enterprises, p)),
            ("air-quality", lambda: air_manifest(args.air_hours), lambda rng, p: write_air(rng, args.air_hours, p))]
    for name, manifest, write in jobs:
        if args.only and args.only != name:
            continue
        rng = random.Random(f"{args.seed}-{name}")
        folder = os.path.join(args.out, name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "dataset.json"), "w", encoding="utf-8") as f:
            json.dump(manifest(), f, ensure_ascii=False, indent=2)
            f.write("\n")
        write(rng, os.path.join(folder, f"{name}.csv"))
        print(f"wrote {folder}")


if __name__ == "__main__":
    main()
