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
BIN="${PINSTREAM_BIN:-$CARGO_TARGET_DIR/release/pinstream}"
if [ ! -d "$DIR/topics" ]; then
  rm -rf "$DIR"
  "$BIN" emulate --posts "$POSTS" --archive "$DIR" --seed 100
fi
echo "archive: $DIR ($(du -sb "$DIR" | cut -f1) bytes, $(find "$DIR" -type f | wc -l) objects)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
RECORDS=""
run() { # label, extra args...
  local label=$1; shift
  out=$( { /usr/bin/time -f 'time: wall_s=%e max_rss_kb=%M' "$BIN" replay --archive "$DIR" "$@" >/dev/null; } 2>&1 )
  stats=$(grep '^stats:' <<<"$out" | sed 's/^stats: //')
  wall=$(grep '^time:' <<<"$out" | sed 's/.*wall_s=\([0-9.]*\).*/\1/')
  rss=$(grep '^time:' <<<"$out" | sed 's/.*max_rss_kb=\([0-9]*\).*/\1/')
  records=$(sed 's/.*records=\([0-9]*\).*/\1/' <<<"$stats")
  bytes=$(sed 's/.*bytes=\([0-9]*\).*/\1/' <<<"$stats")
  echo "$label: $(awk -v r="$records" -v b="$bytes" -v w="$wall" -v m="$rss" 'BEGIN{printf "%d records in %.2f s wall = %.0f records/s, %.1f MB/s, peak RSS %.0f MB", r, w, r/w, b/1e6/w, m/1024}')"
  echo "    pinstream's own figures: $stats"
}
for i in $(seq 1 "$RUNS"); do
  run "run $i (temporary state)"
done
STATE=$(mktemp -d)
run "kept state (--state-dir, durable)" --state-dir "$STATE/state"
rm -rf "$STATE"
