#!/usr/bin/env bash
# pinstream replay side by side with DuckDB, Polars, chDB (embedded
# ClickHouse), PySpark and the floors, on the same archive, same answers.
#
#   benches/compare.sh [--posts N] [--rounds R] [--no-spark]
#
# Generates N posts (default 1,000,000; flush size 500, 3 partitions per
# topic, seed 100) once under $BENCH_DIR (default /tmp/pinstream-bench),
# warms the page cache, then runs R rounds (default 3) of
#   pinstream replay (temporary state) | pinstream replay --state-dir (durable)
#   | DuckDB | Polars | chDB | floor: read | floor: parse
# alternating within each round (A B C ... A B C ...), and PySpark local[2]
# once (it is slow). Every engine answers the eight questions with 2
# threads; the script checks that all answers agree (counts exact, medians
# within 1% rank) and exits 1 naming the difference if not. Then prints one
# table: median wall time, records/s, MB/s, peak RSS, CPU time and the ratio
# to `pinstream replay`, and the issue's goals as met / NOT met.
#
# Needs: python3 with duckdb, polars, chdb, pyspark (pip install duckdb
# polars chdb pyspark) and Java for PySpark; GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
POSTS=1000000
ROUNDS=3
SPARK=1
while [ $# -gt 0 ]; do
  case "$1" in
    --posts) POSTS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --no-spark) SPARK=0; shift ;;
    *) echo "usage: benches/compare.sh [--posts N] [--rounds R] [--no-spark]" >&2; exit 2 ;;
  esac
done
[ -x /usr/bin/time ] || { echo "compare.sh needs GNU time (apt-get install time)" >&2; exit 2; }
python3 -c 'import duckdb, polars, chdb' 2>/dev/null \
  || { echo "compare.sh needs: python3 -m pip install duckdb polars chdb pyspark" >&2; exit 2; }
if [ "$SPARK" = 1 ]; then
  python3 -c 'import pyspark' 2>/dev/null && command -v java >/dev/null \
    || { echo "compare.sh needs pyspark and java (or pass --no-spark)" >&2; exit 2; }
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinstream-target}"
# One build of the binary and the floor program, in the README's target dir.
FLOOR=$(cargo build --release --bin pinstream --bench floor --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "floor" and m.get("executable"):
        print(m["executable"])')
[ -x "$FLOOR" ] || { echo "could not build the floor program (cargo build --release --bench floor)" >&2; exit 1; }
BIN="${PINSTREAM_BIN:-$CARGO_TARGET_DIR/release/pinstream}"
DIR=${BENCH_DIR:-/tmp/pinstream-bench}/posts-$POSTS
if [ ! -d "$DIR/topics" ]; then
  rm -rf "$DIR"
  "$BIN" emulate --posts "$POSTS" --archive "$DIR" --seed 100 --partitions 3 --flush-size 500 >/dev/null
fi
OUT=$(mktemp -d /tmp/pinstream-compare.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
echo "archive: $DIR ($(du -sb "$DIR" | cut -f1) bytes, $(find "$DIR" -type f | wc -l) objects)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(python3 -c 'import duckdb, polars, chdb; print("duckdb", duckdb.__version__, "polars", polars.__version__, "chdb", chdb.__version__)')"
find "$DIR" -type f -exec cat {} + >/dev/null   # page cache warm

REF=benches/reference
# name|command (the answers go to $OUT/<name>.json where the engine gives them)
ENGINES=(
  "pinstream replay|$BIN replay --archive $DIR > $OUT/pinstream.json"
  "pinstream replay --state-dir|$BIN replay --archive $DIR --state-dir $OUT/state > $OUT/durable.json"
  "DuckDB|python3 $REF/duckdb_answers.py $DIR $OUT/duckdb.json"
  "Polars|python3 $REF/polars_answers.py $DIR $OUT/polars.json"
  "chDB|python3 $REF/chdb_answers.py $DIR $OUT/chdb.json"
  "floor: read|$FLOOR read $DIR 2"
  "floor: parse|$FLOOR parse $DIR 2"
)
RUNS=$OUT/runs.tsv
run() { # name, command
  local t="$OUT/time.txt"
  # The durable replay starts from an empty state dir: the previous run's
  # (about 250 MB) is removed before the clock starts, and its dirty pages
  # written back, so neither the removal nor that writeback is timed (they
  # were, inside the durable cell, and moved it by up to 0.2 of a run).
  if [ -d "$OUT/state" ]; then rm -rf "$OUT/state"; sync; fi
  if ! /usr/bin/time -o "$t" -f '%e %M %U %S' bash -c "$2" 2>"$OUT/stderr.txt"; then
    echo "FAILED: $1" >&2; tail -20 "$OUT/stderr.txt" >&2; exit 1
  fi
  printf '%s\t%s\n' "$1" "$(tail -1 "$t" | tr ' ' '\t')" >>"$RUNS"
  if [ "$1" = "pinstream replay" ]; then grep '^stats:' "$OUT/stderr.txt" >"$OUT/stats.txt" || true; fi
}
for r in $(seq 1 "$ROUNDS"); do
  for e in "${ENGINES[@]}"; do
    echo "round $r/$ROUNDS: ${e%%|*}"
    run "${e%%|*}" "${e#*|}"
  done
done
ANSWERS=("$OUT/durable.json" "$OUT/duckdb.json" "$OUT/polars.json" "$OUT/chdb.json")
if [ "$SPARK" = 1 ]; then
  echo "once: PySpark local[2]"
  run "PySpark local[2]" "python3 $REF/pyspark_answers.py $DIR $OUT/pyspark.json"
  ANSWERS+=("$OUT/pyspark.json")
fi
python3 $REF/check_answers.py "$DIR" "$OUT/pinstream.json" "${ANSWERS[@]}"
python3 $REF/summarize.py "$RUNS" "$OUT/stats.txt"
