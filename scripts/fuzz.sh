#!/usr/bin/env bash
# Fuzzing with libFuzzer (swiftc -sanitize=fuzzer,address): the CSV reader, the validators and
# detector, the sandbox SQL parser and checker, the rows cursor decoder, and the page reader
# over damaged version files. Each target is
# built from the module sources it exercises (imports between Kaifang modules dropped, as one
# module) plus its harness in fuzz/targets/, then run for SECONDS from the committed seed
# corpus in fuzz/corpus/<target>/. A crash leaves its input in fuzz/out/<target>/ and fails the
# script; copy it to fuzz/regressions/<target>/ (FuzzRegressionTests replays that folder).
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]       (default: 60 s, every target)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}; shift || true
TARGETS=("$@"); [ ${#TARGETS[@]} -gt 0 ] || TARGETS=(csv validators sql cursor pagereader)
core=(Sources/KaifangCore/*.swift)
declare -A SOURCES=(
  [csv]="Sources/Ingest/CSVReader.swift Sources/Ingest/ByteSource.swift"
  [validators]="Sources/Masking/Validators.swift Sources/Masking/Detector.swift Sources/Masking/Normalize.swift"
  [sql]="Sources/Sandbox/SQLSyntax.swift Sources/Sandbox/QueryChecker.swift Sources/Sandbox/SandboxPolicy.swift"
  [cursor]=""
  [pagereader]="Sources/VersionFormat/TableFile.swift Sources/VersionFormat/BTreeFile.swift"
)
# System libraries a target's sources import (a module map over the system header).
declare -A SYSTEM=(
  [pagereader]="GRDBSQLite:sqlite3.h:sqlite3"
)
# C targets a fuzz target's sources import: compiled with the same sanitizers, and given a
# module map so `import <Target>` finds them.
declare -A CTARGETS=(
  [csv]="CByteScan"
)
status=0
for t in "${TARGETS[@]}"; do
  build=fuzz/out/$t/build; mkdir -p "$build" "fuzz/out/$t/corpus"
  rm -f "$build"/*.swift
  for f in "${core[@]}" ${SOURCES[$t]} "fuzz/targets/$t.swift"; do
    sed -E '/^import (KaifangCore|Masking|Ingest|Storage|Sandbox|Audit)$/d' "$f" > "$build/$(basename "$(dirname "$f")")_$(basename "$f")"
  done
  cflags=(); objects=(); links=()
  for spec in ${SYSTEM[$t]:-}; do
    IFS=: read -r module header lib <<<"$spec"
    mkdir -p "$build/$module"
    printf 'module %s [system] {\n  header "/usr/include/%s"\n  link "%s"\n  export *\n}\n' "$module" "$header" "$lib" > "$build/$module/module.modulemap"
    cflags+=(-I "$build/$module")
    links+=(-l"$lib")
  done
  for c in ${CTARGETS[$t]:-}; do
    mkdir -p "$build/$c"
    printf 'module %s {\n  umbrella "%s"\n  export *\n}\n' "$c" "$PWD/Sources/$c/include" > "$build/$c/module.modulemap"
    for src in Sources/$c/*.c; do
      clang -O2 -g -fsanitize=fuzzer-no-link,address -I "Sources/$c/include" -c "$src" -o "$build/$c/$(basename "$src" .c).o"
      objects+=("$build/$c/$(basename "$src" .c).o")
    done
    cflags+=(-I "$build/$c")
  done
  swiftc -sanitize=fuzzer,address -parse-as-library -O -g -module-name KaifangFuzz "${cflags[@]}" "$build"/*.swift "${objects[@]}" "${links[@]}" -o "$build/fuzz-$t" 2>&1 \
    | grep -v "Cannot export local symbol" || true
  echo "== $t: ${SECS}s"
  if ! "$build/fuzz-$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="fuzz/out/$t/" "fuzz/out/$t/corpus" "fuzz/corpus/$t" > "fuzz/out/$t/log.txt" 2>&1; then
    echo "!! $t found a failure: $(ls fuzz/out/$t/ | grep -E '^(crash|timeout|oom|leak)-' | head -3)"; tail -30 "fuzz/out/$t/log.txt"; status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "fuzz/out/$t/log.txt" | tr '\n' ' '; echo
  fi
done
exit $status
