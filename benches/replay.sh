#!/usr/bin/env bash
# Replay throughput and peak RSS on a generated archive.
#
#   benches/replay.sh [POSTS] [RUNS]     (defaults: 1000000 posts, 3 runs)
#
# Generates POSTS posts (1,000,000 posts ≈ 3.9 M records ≈ 1 GB of plain
# JSON lines, 3 partitions per topic, flush size 500) once under
# $BENCH_DIR (default /tmp/pinstream-bench), then replays it RUNS times
# with a fresh temporary state each time and prints, per run, the figures
# pinstream measures itself (records/s, MB/s, peak RSS from VmHWM) and the
# wall time and max RSS that GNU time measures from outside.
set -euo pipefail
cd "$(dirname "$0")/.."
POSTS=${1:-1000000}
RUNS=${2:-3}
DIR=${BENCH_DIR:-/tmp/pinstream-bench}/posts-$POSTS
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinstream-target}"
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/pinstream"
if [ ! -d "$DIR/topics" ]; then
  rm -rf "$DIR"
  "$BIN" emulate --posts "$POSTS" --archive "$DIR" --seed 100
fi
echo "archive: $DIR ($(du -sb "$DIR" | cut -f1) bytes, $(find "$DIR" -type f | wc -l) objects)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
for i in $(seq 1 "$RUNS"); do
  out=$( { /usr/bin/time -f 'time: wall_s=%e max_rss_kb=%M' "$BIN" replay --archive "$DIR" >/dev/null; } 2>&1 )
  echo "run $i: $(grep '^stats:' <<<"$out" | sed 's/^stats: //')  $(grep '^time:' <<<"$out" | sed 's/^time: //')"
done
