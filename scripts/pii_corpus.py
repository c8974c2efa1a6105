#!/usr/bin/env python3
"""An independent corpus for `kaifang pii scan`: labelled values made from the standards
(GB 11643 resident IDs, GB 32100 credit codes with their GB 11714 organization codes, Luhn bank
cards, allocated mobile segments, RFC 5321 e-mail limits, IPv4/IPv6 with zone ids, plates,
passports, landlines) and values that only look like them, generated here with no code shared
with Kaifang's validators. Scores what the scanner says against each label and prints the share
right per class and overall.

A valid value is right when the scanner names its type and calls it valid; an invalid one (a
wrong check digit, an unallocated segment, a date that never was, the sequence 000, an address
past RFC 5321's limits) or a value that is no identifier at all is right when the scanner does
not call it a valid value of any type.

    scripts/pii_corpus.py [KAIFANG_BINARY] [--seed N] [--per-class N]
"""
import argparse
import datetime
import json
import random
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("binary", nargs="?", default=".build/debug/kaifang")
ap.add_argument("--seed", type=int, default=20261205)
ap.add_argument("--per-class", type=int, default=400)
args = ap.parse_args()
rng = random.Random(args.seed)
print(f"seed {args.seed}", file=sys.stderr)

REGIONS = ["110101", "110105", "310104", "320102", "320106", "320583", "330106", "440305", "440106", "510107", "420111", "610113", "370202", "500103"]
W18 = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def id_check(body17):
    return "10X98765432"[sum(int(c) * w for c, w in zip(body17, W18)) % 11]


def date_between(a, b):
    return a + datetime.timedelta(days=rng.randrange((b - a).days))


def resident_id(valid=True, fault=None):
    d = date_between(datetime.date(1930, 1, 1), datetime.date(2008, 12, 31)).strftime("%Y%m%d")
    seq = f"{rng.randint(1, 999):03d}"
    if fault == "date":
        d = rng.choice(["18990612", "20310101", "19900230", "20010431", "19911329"])
    if fault == "seq":
        seq = "000"
    body = rng.choice(REGIONS) + d + seq
    check = id_check(body)
    if fault == "check":
        check = rng.choice([c for c in "0123456789X" if c != check])
    return body + check


USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_W = [pow(3, i, 31) for i in range(17)]
ORG_W = [3, 7, 9, 10, 5, 8, 4, 2]


def org_check(body8):
    v = [int(c) if c.isdigit() else ord(c) - 55 for c in body8]
    r = 11 - sum(a * b for a, b in zip(v, ORG_W)) % 11
    return "X" if r == 10 else "0" if r == 11 else str(r)


def uscc(fault=None, lower=False):
    org8 = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
    oc = org_check(org8)
    if fault == "org":
        oc = rng.choice([c for c in "0123456789X" if c != oc])
    body = rng.choice("159") + rng.choice("123") + rng.choice(REGIONS) + org8 + oc
    s = sum(USCC_CHARS.index(c) * w for c, w in zip(body, USCC_W)) % 31
    check = USCC_CHARS[(31 - s) % 31]
    if fault == "check":
        check = rng.choice([c for c in USCC_CHARS if c != check])
    v = body + check
    return v.lower() if lower else v


def luhn_digit(body):
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def bank_card(fault=None):
    body = rng.choice(["622202", "621700", "622848", "625807", "436742"]) + "".join(rng.choice("0123456789") for _ in range(rng.choice([9, 12])))
    check = luhn_digit(body)
    if fault:
        check = str((int(check) + rng.randint(1, 9)) % 10)
    return body + check


ALLOCATED = [str(x) for x in list(range(130, 140)) + [145, 147, 149] + [150, 151, 152, 153, 155, 156, 157, 158, 159]
             + [162, 165, 166, 167] + list(range(170, 179)) + list(range(180, 190)) + [190, 191, 192, 193, 195, 196, 197, 198, 199]]


def phone(fault=None):
    seg = rng.choice(["110", "120", "127", "154", "100"]) if fault else rng.choice(ALLOCATED)
    n = seg + "".join(rng.choice("0123456789") for _ in range(8))
    form = rng.randrange(5)
    if form == 1:
        return "+86 " + n[:3] + " " + n[3:7] + " " + n[7:]
    if form == 2:
        return "0086" + n
    if form == 3:
        return n[:3] + "-" + n[3:7] + "-" + n[7:]
    if form == 4:
        return "+86" + n
    return n


def email(fault=None):
    word = lambda k: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(k))
    domain = rng.choice(["example.com", "mail.js.gov.cn", "nju.edu.cn", "163.com", "qq.com"])
    if fault == "long-local":
        return word(65) + "@" + domain
    if fault == "dots":
        return word(4) + ".." + word(3) + "@" + domain
    if fault == "lead-dot":
        return "." + word(5) + "@" + domain
    if fault == "label":
        return word(5) + "@" + word(64) + ".com"
    if fault == "total":
        return word(60) + "@" + ".".join(word(60) for _ in range(4)) + ".com"
    kind = rng.randrange(4)
    if kind == 1:
        return word(4) + "." + word(5) + "@" + domain
    if kind == 2:
        return word(5) + "+" + word(3) + "@" + domain
    if kind == 3:
        return '"' + word(3) + " " + word(4) + '"@' + domain
    return word(rng.randint(1, 20)) + "@" + domain


def ip(fault=None):
    if fault == "v4":
        return ".".join(str(rng.randint(0, 255)) for _ in range(3)) + "." + str(rng.randint(256, 999))
    if fault == "v6":
        return "2001:db8::" + format(rng.randrange(65536), "x") + "::1"
    kind = rng.randrange(3)
    if kind == 0:
        return ".".join(str(rng.randint(0, 255)) for _ in range(4))
    groups = [format(rng.randrange(65536), "x") for _ in range(8)]
    if kind == 1:
        return ":".join(groups)
    return "fe80::" + groups[0] + ":" + groups[1] + "%" + rng.choice(["eth0", "en1", "wlan0", "3"])


PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def plate(fault=None, lower=False):
    p = rng.choice(PROVINCES)
    city = rng.choice("ABCDEFGHJKLMN")
    if fault == "short":
        return p + city + "".join(rng.choice("0123456789") for _ in range(4))
    if fault == "io":
        return p + city + rng.choice("IO") + "".join(rng.choice("0123456789") for _ in range(4))
    if rng.randrange(3) == 0:
        serial = rng.choice("DF") + "".join(rng.choice("0123456789") for _ in range(5))  # new energy
    else:
        serial = rng.choice(PLATE_LETTERS + "0123456789") + "".join(rng.choice("0123456789") for _ in range(4))
    v = p + city + serial
    return v.lower() if lower else v


def passport(fault=None, lower=False):
    v = rng.choice("EG") + "".join(rng.choice("0123456789") for _ in range(7 if fault else 8))
    return v.lower() if lower else v


AREA = ["010", "021", "022", "023", "025", "0512", "0755", "020", "0571", "028"]


def landline():
    a = rng.choice(AREA)
    n = rng.choice("2345678") + "".join(rng.choice("0123456789") for _ in range(7 if len(a) == 3 else rng.choice([6, 7])))
    return rng.choice([a + "-" + n, "(" + a + ")" + n, a + n])


def not_pii():
    return rng.choice([
        lambda: rng.choice(["张伟", "王芳", "李娜", "南京市玄武区中山路18号", "低保", "医疗救助", "江苏省"]),
        lambda: date_between(datetime.date(1990, 1, 1), datetime.date(2026, 1, 1)).isoformat(),
        lambda: f"{rng.randint(1, 99999)}.{rng.randint(0, 99):02d}",
        lambda: str(rng.randint(1, 10**6)),
        lambda: "ORD-" + str(rng.randint(10**5, 10**6)),
    ])()


CLASSES = {
    # class: (make, expected type or None when the value must not be called valid)
    "resident_id": (lambda: resident_id(), "resident_id"),
    "resident_id, wrong check digit": (lambda: resident_id(fault="check"), None),
    "resident_id, date that never was": (lambda: resident_id(fault="date"), None),
    "resident_id, sequence 000": (lambda: resident_id(fault="seq"), None),
    "uscc": (lambda: uscc(), "uscc"),
    "uscc, lower case": (lambda: uscc(lower=True), "uscc"),
    "uscc, wrong check": (lambda: uscc(fault="check"), None),
    "uscc, wrong organization-code check": (lambda: uscc(fault="org"), None),
    "bank_card": (lambda: bank_card(), "bank_card"),
    "bank_card, Luhn broken": (lambda: bank_card(fault=True), None),
    "phone (bare, +86, 0086, spaced, hyphens)": (lambda: phone(), "phone"),
    "phone, unallocated segment": (lambda: phone(fault=True), None),
    "email (plain, dotted, tagged, quoted)": (lambda: email(), "email"),
    "email, local part over 64": (lambda: email("long-local"), None),
    "email, two dots": (lambda: email("dots"), None),
    "email, leading dot": (lambda: email("lead-dot"), None),
    "email, label over 63": (lambda: email("label"), None),
    "email, over 254": (lambda: email("total"), None),
    "ip (v4, v6, v6 with zone)": (lambda: ip(), "ip"),
    "ip, v4 octet over 255": (lambda: ip("v4"), None),
    "ip, v6 with two ::": (lambda: ip("v6"), None),
    "license_plate (incl. new energy)": (lambda: plate(), "license_plate"),
    "license_plate, lower case": (lambda: plate(lower=True), "license_plate"),
    "license_plate, too short": (lambda: plate("short"), None),
    "license_plate, I or O in serial": (lambda: plate("io"), None),
    "passport": (lambda: passport(), "passport"),
    "passport, lower case": (lambda: passport(lower=True), "passport"),
    "passport, 7 digits": (lambda: passport(fault=True), None),
    "landline": (lambda: landline(), "landline"),
    "not an identifier": (lambda: not_pii(), None),
}

rows = [(name, make(), expected) for name, (make, expected) in CLASSES.items() for _ in range(args.per_class)]
out = subprocess.run([args.binary, "pii", "scan"], input="\n".join(v for _, v, _ in rows) + "\n",
                     capture_output=True, text=True, check=True).stdout.splitlines()
assert len(out) == len(rows), (len(out), len(rows))
right, wrong_examples = {}, {}
for (name, value, expected), line in zip(rows, out):
    d = json.loads(line)
    ok = (d["type"] == expected and d["valid"]) if expected else not d["valid"]
    r = right.setdefault(name, [0, 0])
    r[0] += ok
    r[1] += 1
    if not ok:
        wrong_examples.setdefault(name, []).append((value, d))
total = sum(r[0] for r in right.values())
for name, (k, n) in right.items():
    flag = "" if k == n else "   e.g. " + "; ".join(f"{v!r} -> {d['type']}/{d['valid']}" for v, d in wrong_examples[name][:2])
    print(f"{k / n:7.1%}  {name}{flag}")
print(f"{total / len(rows):7.1%}  overall ({total} of {len(rows)} values, {len(CLASSES)} classes)")
