# Sourced by the API benchmarks: the release `kaifang` ($BIN), wrk, the 1 000 000-row residents
# file ($DATA) and a data directory ($DIR) with it imported and published open (the public view,
# anonymous; k-anonymity is not the point here). Builds or generates what is missing.
BIN=${KAIFANG_RELEASE_BIN:-.build-release/release/kaifang}
DATA=bench/data/residents
DIR=bench/data/api-datadir
mkdir -p bench/out
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ -x "$BIN" ] || swift build -c release --static-swift-stdlib --product kaifang --scratch-path .build-release
[ -f "$DATA/residents.csv" ] || python3 scripts/gen_datasets.py --residents 1000000 --only residents --out bench/data >/dev/null
if [ ! -f "$DIR/catalog.sqlite" ]; then
  rm -rf "$DIR"
  "$BIN" init --data-dir "$DIR" >/dev/null
  "$BIN" dataset import "$DATA/residents.csv" --id residents --manifest "$DATA/dataset.json" --data-dir "$DIR" >/dev/null
  "$BIN" dataset publish residents --tier open --force --reason "benchmark" --data-dir "$DIR" >/dev/null
fi
