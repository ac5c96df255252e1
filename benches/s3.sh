#!/usr/bin/env bash
# S3 replay vs local replay of the same archive, and objects/s at a small
# flush size.
#
#   benches/s3.sh [POSTS] [FLUSH_SIZE] [RUNS]   (defaults: 100000 posts, flush size 500, 2 runs)
#
# Generates the archive with `pinstream emulate` under $BENCH_DIR (default
# /tmp/pinstream-bench), uploads it to an S3-compatible server (the one at
# $PINSTREAM_BENCH_S3, else a moto server started here on 127.0.0.1 and
# stopped after), then alternates `pinstream replay --archive DIR` and
# `--archive s3://…` RUNS times and prints wall time (GNU time), objects/s
# and the S3/local ratio. With FLUSH_SIZE 1 every record is one object
# (100,000 posts ≈ 390,000 objects: the upload alone takes a long time on
# moto; use fewer posts there).
set -euo pipefail
cd "$(dirname "$0")/.."
POSTS=${1:-100000}
FLUSH=${2:-500}
RUNS=${3:-2}
DIR=${BENCH_DIR:-/tmp/pinstream-bench}/s3-posts-$POSTS-flush-$FLUSH
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinstream-target}"
export PATH="$HOME/.pyenv/shims:$PATH"
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/pinstream"
if [ ! -d "$DIR/topics" ]; then
  rm -rf "$DIR"
  "$BIN" emulate --posts "$POSTS" --archive "$DIR" --seed 100 --flush-size "$FLUSH"
fi
OBJECTS=$(find "$DIR/topics" -type f | wc -l)
echo "archive: $DIR ($(du -sb "$DIR" | cut -f1) bytes, $OBJECTS objects)"

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
ENDPOINT=${PINSTREAM_BENCH_S3:-}
MOTO_PID=""
if [ -z "$ENDPOINT" ]; then
  PORT=19600
  while (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do PORT=$((PORT + 1)); done
  moto_server -H 127.0.0.1 -p "$PORT" >/tmp/pinstream-bench-moto.log 2>&1 &
  MOTO_PID=$!
  trap 'kill $MOTO_PID 2>/dev/null' EXIT
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  ENDPOINT="http://127.0.0.1:$PORT"
fi
BUCKET="pinstream-bench-$POSTS-$FLUSH-$$"
echo "S3 server: $ENDPOINT, bucket $BUCKET"
up_start=$(date +%s.%N)
python3 - "$ENDPOINT" "$BUCKET" "$DIR" <<'EOF'
import os, sys, boto3
from concurrent.futures import ThreadPoolExecutor
endpoint, bucket, root = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
s3.create_bucket(Bucket=bucket)
paths = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
def put(p):
    with open(p, "rb") as fh:
        s3.put_object(Bucket=bucket, Key=os.path.relpath(p, root), Body=fh.read())
with ThreadPoolExecutor(8) as ex:
    list(ex.map(put, paths))
EOF
echo "upload: $OBJECTS objects in $(awk -v a="$up_start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"

wall() { # archive, extra args... -> seconds
  local a=$1; shift
  { /usr/bin/time -f '%e' "$BIN" replay --archive "$a" --quiet "$@" >/dev/null; } 2>&1 | tail -1
}
for i in $(seq 1 "$RUNS"); do
  l=$(wall "$DIR")
  s=$(wall "s3://$BUCKET" --s3-endpoint "$ENDPOINT")
  awk -v i="$i" -v l="$l" -v s="$s" -v n="$OBJECTS" 'BEGIN{
    printf "round %d: local %.2f s (%.0f objects/s), S3 %.2f s (%.0f objects/s), S3/local %.2f\n", i, l, n/l, s, n/s, s/l}'
done
