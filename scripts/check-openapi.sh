#!/usr/bin/env bash
# Validates openapi/openapi.yaml against the OpenAPI 3.1 schema with openapi-spec-validator
# (PyPI; test tooling only, never part of the product), from the virtual environment
# scripts/pyenv.sh keeps.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash scripts/pyenv.sh)
"$PY" - <<'PYCODE'
import sys, yaml
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
spec, _ = read_from_filename("openapi/openapi.yaml")
validate(spec)
paths = spec["paths"]
print(f"openapi/openapi.yaml: valid OpenAPI {spec['openapi']}, {len(paths)} paths")
PYCODE
