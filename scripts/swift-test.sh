#!/usr/bin/env bash
# The Swift part of `make test`: every test on the embedded store, then — when
# scripts/with-postgres.sh gave a cluster — the end-to-end suite again on the shared store.
#   scripts/swift-test.sh SWIFT [swift test options…]
set -euo pipefail
SWIFT=${1:-swift}; shift || true
# The replica test drives three server processes against the clock (leases, rate limits): it
# runs on its own, after the rest, so the parallel suites do not starve it of threads.
"$SWIFT" test "$@" --skip ReplicaTests
if [ -n "${KAIFANG_TEST_POSTGRES:-}" ]; then
  echo "== three replicas over one PostgreSQL store"
  "$SWIFT" test --skip-build --filter ReplicaTests
  echo "== the end-to-end suite again, on the shared store (PostgreSQL)"
  KAIFANG_TEST_STORE=postgres "$SWIFT" test --skip-build --filter KaifangServerTests
fi
