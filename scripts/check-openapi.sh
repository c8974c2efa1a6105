#!/usr/bin/env bash
# Validates openapi/openapi.yaml against the OpenAPI 3.1 schema with openapi-spec-validator
# (PyPI; test tooling only, never part of the product).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import openapi_spec_validator" 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check openapi-spec-validator >/dev/null
fi
python3 - <<'PY'
import sys, yaml
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
spec, _ = read_from_filename("openapi/openapi.yaml")
validate(spec)
paths = spec["paths"]
print(f"openapi/openapi.yaml: valid OpenAPI {spec['openapi']}, {len(paths)} paths")
PY
