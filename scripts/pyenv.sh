#!/usr/bin/env bash
# Prints the path of the Python that runs Kaifang's test tools (OpenAPI validator, schemathesis,
# the portal check), after making sure it exists: a virtual environment in .venv/ (or
# $KAIFANG_VENV) with the pinned versions of scripts/requirements-test.txt. Created once and
# again only when that file changes; the system Python is never installed into (Debian 12
# refuses that, PEP 668). On Debian the venv module is the package python3-venv.
#
#   PY=$(bash scripts/pyenv.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${KAIFANG_VENV:-$PWD/.venv}
REQ=scripts/requirements-test.txt
stamp="$VENV/.requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$VENV/bin/python"
  exit 0
fi
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "pyenv: installing python3-venv" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  else
    echo "pyenv: $PYTHON has no venv module: install it as root (apt-get install python3-venv)" >&2
    exit 1
  fi
fi
echo "pyenv: creating $VENV from $REQ" >&2
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV" >&2
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ" >&2
echo "$want" > "$stamp"
echo "$VENV/bin/python"
