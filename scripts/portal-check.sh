#!/usr/bin/env bash
# Starts the demo server, opens every portal page in headless Chromium (Debian `chromium`,
# installed if missing), saves screenshots at desktop and phone widths to .screenshots/, and
# fails on a page error, a dead link, or personal data in a public page. Refreshes the
# dataset-page screenshot the README shows (docs/screenshots/dataset.png).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
  [ "$(id -u)" -eq 0 ] || { echo "portal-check: install chromium and fonts-noto-cjk (Debian) first" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi
BIN=${KAIFANG_BIN:-.build/debug/kaifang}
[ -x "$BIN" ] || swift build --product kaifang
DIR=$(mktemp -d)
OUT=.screenshots
rm -rf "$OUT" && mkdir -p "$OUT"
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$BIN" demo --port "$PORT" --data-dir "$DIR" --key-rate 0 --anonymous-rate 0 --anonymous-exports-per-day 0 > "$DIR/demo.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
python3 scripts/portal_check.py "http://127.0.0.1:$PORT" "$BIN" "$(pwd)/$OUT"
mkdir -p docs/screenshots
cp "$OUT/datasets-enterprises-desktop.png" docs/screenshots/dataset.png
