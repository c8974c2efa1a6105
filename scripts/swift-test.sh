#!/usr/bin/env bash
# The Swift part of `make test`: every test on the embedded store, then — when
# scripts/with-postgres.sh gave a cluster — the end-to-end suite again on the shared store.
#   scripts/swift-test.sh SWIFT [swift build options…]
# Each pass has a time limit (SWIFT_TEST_LIMIT seconds, default 1800; a pass takes minutes):
# a pass that does not end by then is stopped, after the threads of its test process are
# printed (gdb), so a hang fails with the place it hangs instead of running on.
set -euo pipefail
SWIFT=${1:-swift}; shift || true
LIMIT=${SWIFT_TEST_LIMIT:-1800}
"$SWIFT" build --build-tests "$@"

pass() {
  "$SWIFT" test --skip-build "$@" &
  local runner=$! start=$SECONDS
  while kill -0 "$runner" 2>/dev/null; do
    if (( SECONDS - start > LIMIT )); then
      echo "swift-test: 'swift test $*' did not end within ${LIMIT}s; the threads of its test process:" >&2
      for p in $(pgrep -P "$runner" || true); do
        echo "== $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)" >&2
        if command -v gdb >/dev/null; then
          timeout 120 gdb -p "$p" -batch -ex 'set pagination off' -ex 'thread apply all bt 30' 2>&1 | grep -v -e '^\[New LWP' -e 'During symbol reading' -e '^warning: ' >&2 || true
        fi
        kill -9 "$p" 2>/dev/null || true
      done
      kill "$runner" 2>/dev/null || true
      wait "$runner" || true
      return 124
    fi
    sleep 2
  done
  wait "$runner"
}

# The replica test drives three server processes against the clock (leases, rate limits): it
# runs on its own, after the rest, so the parallel suites do not starve it of threads.
pass --skip ReplicaTests
if [ -n "${KAIFANG_TEST_POSTGRES:-}" ]; then
  echo "== three replicas over one PostgreSQL store"
  pass --filter ReplicaTests
  echo "== the end-to-end suite again, on the shared store (PostgreSQL)"
  KAIFANG_TEST_STORE=postgres pass --filter KaifangServerTests
fi
