#!/usr/bin/env python3
"""Opens every portal page of a running Kaifang server in headless Chromium (Debian's
`chromium`), saves screenshots at desktop and phone widths, and fails when

  - a page with charts does not have each of them, with gridlines and points, in the DOM
    Chromium built,
  - a page does not answer 200 or Chromium fails to render it,
  - a link on a page is dead (an internal href answering 4xx/5xx; exports of data the anonymous
    visitor may not read are expected to answer 401/403 and are not linked),
  - any text on a public page validates as a resident ID, phone or bank card
    (checked with `kaifang pii scan`, the platform's own validators).

usage: portal_check.py BASE_URL KAIFANG_BIN OUT_DIR
"""
import html.parser
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request

base, kaifang, out = sys.argv[1], sys.argv[2], sys.argv[3]
PAGES = ["/", "/datasets", "/datasets?tier=open", "/datasets?q=%E7%A9%BA%E6%B0%94", "/datasets/residents",
         "/datasets/enterprises", "/datasets/air-quality", "/sandbox", "/scorecards", "/docs/api", "/signup", "/account", "/review", "/departments/%E7%9C%81%E6%B0%91%E6%94%BF%E5%8E%85",
         "/requests", "/requests/1", "/requests/2", "/showcases", "/departments/%E7%9C%81%E5%B8%82%E5%9C%BA%E7%9B%91%E7%9D%A3%E7%AE%A1%E7%90%86%E5%B1%80"]
# Pages with server-drawn SVG charts: how many charts Chromium must have laid out.
CHARTS = {"/scorecards": 4}
SIZES = {"desktop": "1280,900", "phone": "390,844"}
CHROME = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
          "--disable-dev-shm-usage", "--user-data-dir=" + out + "/chrome-profile"]


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.text, self.skip = [], [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "style"):
            self.skip += 1
        for key in ("href", "src", "action"):
            if a.get(key):
                self.links.append(a[key])

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.text.append(data)


def status(url, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as r:
            r.read(1 << 16)
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


failures = []
checked_links = {}
for path in PAGES:
    url = base + path
    code = status(url)
    if code != 200:
        failures.append(f"{path}: answered {code}")
        continue
    dom = subprocess.run(CHROME + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    if dom.returncode != 0 or "<html" not in dom.stdout:
        failures.append(f"{path}: Chromium could not render it ({dom.returncode}): {dom.stderr[-300:]}")
        continue
    if path in CHARTS:
        # Each chart is an <svg class="chart"> in the DOM Chromium built, with its gridlines
        # and at least one point per department.
        charts = re.findall(r'<svg[^>]*class="chart"[^>]*>(.*?)</svg>', dom.stdout, re.S)
        if len(charts) != CHARTS[path]:
            failures.append(f"{path}: {len(charts)} charts rendered, {CHARTS[path]} expected")
        for i, body in enumerate(charts):
            if body.count("<line") < 5 or "<circle" not in body:
                failures.append(f"{path}: chart {i + 1} has no gridlines or no points")
    name = re.sub(r"[^a-z0-9]+", "-", path.strip("/").lower()) or "home"
    for size, window in SIZES.items():
        shot = subprocess.run(CHROME + [f"--window-size={window}", f"--screenshot={out}/{name}-{size}.png", url],
                              capture_output=True, text=True, timeout=120)
        if shot.returncode != 0:
            failures.append(f"{path}: screenshot at {size} failed: {shot.stderr[-300:]}")
    page = Page()
    page.feed(dom.stdout)
    for link in page.links:
        if link.startswith("#") or link.startswith("mailto:"):
            continue
        if link.startswith("http") and not link.startswith(base):
            failures.append(f"{path}: links outside the server: {link}")
            continue
        target = link if link.startswith("http") else base + link
        if target not in checked_links:
            checked_links[target] = status(target, "POST" if "/apply" in target else "GET")
        code = checked_links[target]
        if "/apply" in target:
            ok = code in (401, 400)   # the form needs a key: answered, not dead
        else:
            ok = code < 400
        if not ok:
            failures.append(f"{path}: dead link {link} ({code})")
    # Personal values: every run of 11+ ID-like characters, and every whitespace token.
    text = " ".join(page.text)
    candidates = set(re.findall(r"[0-9Xx+\-\s]{11,24}", text)) | set(text.split())
    candidates = [c.strip() for c in candidates if sum(ch.isdigit() for ch in c) >= 11]
    if candidates:
        scan = subprocess.run([kaifang, "pii", "scan"], input="\n".join(candidates) + "\n", capture_output=True, text=True)
        for value, line in zip(candidates, scan.stdout.splitlines()):
            d = json.loads(line)
            if d["valid"] and d["type"] in ("resident_id", "phone", "bank_card"):
                failures.append(f"{path}: text validates as a {d['type']} (value withheld)")
    print(f"checked {path}: {len(page.links)} links, {len(candidates)} number-like strings")

print(f"{len(PAGES)} pages, {len(checked_links)} distinct links, screenshots in {out}")
if failures:
    print("\n".join("FAIL " + f for f in failures))
    sys.exit(1)
print("portal check passed")
