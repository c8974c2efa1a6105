#!/usr/bin/env bash
# The Swift part of `make test`: every test on the embedded store, then — when
# scripts/with-postgres.sh gave a cluster — the end-to-end suite again on the shared store.
#   scripts/swift-test.sh SWIFT [swift test options…]
set -euo pipefail
SWIFT=${1:-swift}; shift || true
"$SWIFT" test "$@"
if [ -n "${KAIFANG_TEST_POSTGRES:-}" ]; then
  echo "== the end-to-end suite again, on the shared store (PostgreSQL)"
  KAIFANG_TEST_STORE=postgres "$SWIFT" test --skip-build --filter KaifangServerTests
fi
