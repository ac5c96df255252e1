#!/usr/bin/env bash
# S3 replay vs local replay of the same archive, and objects/s at a small
# flush size.
#
#   benches/s3.sh [POSTS] [FLUSH_SIZE] [RUNS]   (defaults: 100000 posts, flush size 500, 2 runs)
#
# Generates the archive with `pinstream emulate` under $BENCH_DIR (default
# /tmp/pinstream-bench), puts it in an S3-compatible server started here on
# 127.0.0.1 and stopped after: s3s-fs when it is installed (the archive is
# hard-linked into its store), else moto (uploaded with boto3);
# PINSTREAM_BENCH_S3_SERVER=moto|s3s-fs chooses; PINSTREAM_BENCH_S3=URL
# uses a server already running (uploaded with boto3). Then it alternates
# `pinstream replay --archive DIR` and `--archive s3://…` RUNS times and
# prints wall time (GNU time), objects/s and the S3/local ratio. With
# FLUSH_SIZE 1 every record is one object (100,000 posts ≈ 390,000
# objects). Neither server scales there: moto's upload alone takes a long
# time, and s3s-fs walks the whole bucket for every ListObjectsV2 page
# (quadratic in the objects); use fewer posts.
set -euo pipefail
cd "$(dirname "$0")/.."
POSTS=${1:-100000}
FLUSH=${2:-500}
RUNS=${3:-2}
DIR=${BENCH_DIR:-/tmp/pinstream-bench}/s3-posts-$POSTS-flush-$FLUSH
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinstream-target}"
export PATH="$HOME/.cargo/bin:$HOME/.pyenv/shims:$PATH"
cargo build --release --quiet
BIN="${PINSTREAM_BIN:-$CARGO_TARGET_DIR/release/pinstream}"
if [ ! -d "$DIR/topics" ]; then
  rm -rf "$DIR"
  "$BIN" emulate --posts "$POSTS" --archive "$DIR" --seed 100 --flush-size "$FLUSH"
fi
OBJECTS=$(find "$DIR/topics" -type f | wc -l)
echo "archive: $DIR ($(du -sb "$DIR" | cut -f1) bytes, $OBJECTS objects)"

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
free_port() { local p=$1; while (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$((p + 1)); done; echo "$p"; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
ENDPOINT=${PINSTREAM_BENCH_S3:-}
SERVER=${PINSTREAM_BENCH_S3_SERVER:-}
if [ -z "$SERVER" ]; then
  if [ -n "$ENDPOINT" ]; then SERVER=given; elif command -v s3s-fs >/dev/null 2>&1; then SERVER=s3s-fs; else SERVER=moto; fi
fi
BUCKET="pinstream-bench-$POSTS-$FLUSH-$$"
SERVER_PID=""
ROOT=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; [ -n "$ROOT" ] && rm -rf "$ROOT"; return 0; }
trap cleanup EXIT
up_start=$(date +%s.%N)
case "$SERVER" in
  s3s-fs)
    # s3s-fs (crates.io, `cargo install s3s-fs@0.14.1 --locked --features
    # binary`) keeps
    # object K of bucket B as the file ROOT/B/K, so the archive goes into
    # its store by hard links: no upload, the same bytes as the local
    # directory. Every GET and LIST still goes through its S3 API
    # (signature check, ETag, HTTP). s3s-fs 0.14.1 is the last release that
    # builds with rustc 1.95.
    ROOT=$(mktemp -d "${BENCH_DIR:-/tmp/pinstream-bench}/s3s-root.XXXXXX")
    cp -al "$DIR" "$ROOT/$BUCKET"
    # What its PutObject also writes beside each object: the ETag (MD5).
    # Without it, every GET would hash the whole object first.
    python3 - "$ROOT" "$BUCKET" <<'EOF'
import base64, hashlib, json, os, sys
root, bucket = sys.argv[1:3]
enc = lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")
base = os.path.join(root, bucket)
for d, _, fs in os.walk(base):
    for f in fs:
        p = os.path.join(d, f)
        key = os.path.relpath(p, base)
        with open(p, "rb") as fh:
            etag = hashlib.md5(fh.read()).hexdigest()
        with open(os.path.join(root, f".bucket-{enc(bucket)}.object-{enc(key)}.internal.json"), "w") as out:
            json.dump({"e_tag": etag}, out)
EOF
    PORT=$(free_port 19600)
    s3s-fs --host 127.0.0.1 --port "$PORT" --access-key test --secret-key test "$ROOT" >/tmp/pinstream-bench-s3s.log 2>&1 &
    SERVER_PID=$!
    ENDPOINT="http://127.0.0.1:$PORT"
    wait_port "$PORT" || { cat /tmp/pinstream-bench-s3s.log; exit 1; }
    how="hard links into s3s-fs's store"
    ;;
  moto | given)
    if [ "$SERVER" = moto ]; then
      PORT=$(free_port 19600)
      moto_server -H 127.0.0.1 -p "$PORT" >/tmp/pinstream-bench-moto.log 2>&1 &
      SERVER_PID=$!
      ENDPOINT="http://127.0.0.1:$PORT"
      wait_port "$PORT" || { cat /tmp/pinstream-bench-moto.log; exit 1; }
    fi
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
    how="PutObject (boto3, 8 threads)"
    ;;
  *) echo "PINSTREAM_BENCH_S3_SERVER must be s3s-fs or moto" >&2; exit 2 ;;
esac
echo "S3 server: $SERVER at $ENDPOINT, bucket $BUCKET"
echo "upload: $OBJECTS objects by $how in $(awk -v a="$up_start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"

wall() { # archive, extra args... -> seconds
  local a=$1; shift
  { /usr/bin/time -f '%e %U %S' "$BIN" replay --archive "$a" --quiet "$@" >/dev/null; } 2>&1 | tail -1
}
for i in $(seq 1 "$RUNS"); do
  l=$(wall "$DIR")
  s=$(wall "s3://$BUCKET" --s3-endpoint "$ENDPOINT")
  # wall, then pinstream's own user and system CPU seconds (the rest of
  # the two cores went to the S3 server).
  awk -v i="$i" -v l="$l" -v s="$s" -v n="$OBJECTS" 'BEGIN{
    split(l, L, " "); split(s, S, " ")
    printf "round %d: local %.2f s (%.0f objects/s), S3 %.2f s (%.0f objects/s), S3/local %.2f; pinstream CPU local %.2f s, S3 %.2f s\n",
      i, L[1], n/L[1], S[1], n/S[1], S[1]/L[1], L[2]+L[3], S[2]+S[3]}'
done
