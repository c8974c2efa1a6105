#!/usr/bin/env bash
# Starts the demo server, opens every portal page in headless Chromium (Debian `chromium`,
# installed if missing), saves screenshots at desktop and phone widths, and fails on a page
# error, a dead link, or personal data in a public page. Screenshots go to $SCREENSHOTS (default:
# a temporary folder, printed at the end); nothing in the repository is written. The README's
# screenshot is refreshed by `make screenshot`, which runs this check with SCREENSHOTS set and
# copies one page.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
  [ "$(id -u)" -eq 0 ] || { echo "portal-check: install chromium and fonts-noto-cjk (Debian) first" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi
PY=$(bash scripts/pyenv.sh)
BIN=${KAIFANG_BIN:-.build/debug/kaifang}
[ -x "$BIN" ] || swift build --product kaifang
DIR=$(mktemp -d)
OUT=${SCREENSHOTS:-$(mktemp -d -t kaifang-screenshots.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PORT=$("$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$BIN" demo --port "$PORT" --data-dir "$DIR" --key-rate 0 --anonymous-rate 0 --anonymous-exports-per-day 0 > "$DIR/demo.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
"$PY" scripts/portal_check.py "http://127.0.0.1:$PORT" "$BIN" "$OUT"
echo "portal-check: screenshots in $OUT"
