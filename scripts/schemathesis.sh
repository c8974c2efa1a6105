#!/usr/bin/env bash
# Property-based API testing: schemathesis (PyPI; test tooling only, from the virtual environment scripts/pyenv.sh keeps) generates requests from
# openapi/openapi.yaml and checks the live server's answers: no 5xx, only documented status
# codes and content types, bodies that match their schemas. Starts its own demo server on a
# free port over a temporary data directory, with a developer key and a publisher key.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash scripts/pyenv.sh)
SCHEMATHESIS="$(dirname "$PY")/schemathesis"
BIN=${KAIFANG_BIN:-.build/debug/kaifang}
[ -x "$BIN" ] || swift build --product kaifang
DIR=$(mktemp -d)
PORT=$("$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$BIN" demo --port "$PORT" --data-dir "$DIR" --key-rate 0 --anonymous-rate 0 --exports-per-day 0 --anonymous-exports-per-day 0 > "$DIR/demo.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
KEY=$(awk '/developer key:/ {print $3}' "$DIR/demo.log")
PUBLISHER=$(awk '/publisher key:/ {print $3}' "$DIR/demo.log")
# Three passes: anonymous, as a developer, and as the publisher of residents' department (whose
# uploads reach the import).
for auth in "" "Authorization: Bearer $KEY" "Authorization: Bearer $PUBLISHER"; do
  args=()
  [ -n "$auth" ] && args=(-H "$auth")
  "$SCHEMATHESIS" run openapi/openapi.yaml --url "http://127.0.0.1:$PORT" "${args[@]}" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing --max-examples "${SCHEMATHESIS_EXAMPLES:-40}" --seed 1 -w 2 --warnings off
done
