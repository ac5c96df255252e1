#!/usr/bin/env bash
# Live daemon figures against a local tansu broker (started here unless
# PINSTREAM_BENCH_BROKERS names one):
#  1. throughput with the producer far ahead: POSTS posts produced first, then
#     the daemon consumes them (records/s over its active time), next to the
#     raw rate of a bare rdkafka consumer on the same topics (the ceiling);
#  2. end-to-end latency (Kafka produce timestamp -> state commit durable),
#     p50/p99, at a fixed offered load of RATE records/s for SECONDS seconds,
#     and the daemon's peak RSS.
#
#   benches/live.sh [POSTS] [RATE] [SECONDS] [INTERVAL_MS]
#   (defaults 100000, 10000, 30, 1000: the commit interval of step 2)
#   ROUNDS=n alternating bare/daemon rounds of step 1 (default 3; the
#   medians are compared)
#   PINSTREAM_BIN=path runs that binary instead of the one built here (to
#   pair two builds; every script in benches/ takes it).
set -euo pipefail
cd "$(dirname "$0")/.."
POSTS=${1:-100000}; RATE=${2:-10000}; SECONDS_=${3:-30}; INTERVAL=${4:-1000}; ROUNDS=${ROUNDS:-3}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinstream-target}"
cargo build --release --quiet --bin pinstream --example bare_consumer
BIN="${PINSTREAM_BIN:-$CARGO_TARGET_DIR/release/pinstream}"; BARE="$CARGO_TARGET_DIR/release/examples/bare_consumer"
WORK=$(mktemp -d); trap 'kill ${TANSU_PID:-} 2>/dev/null; rm -rf "$WORK"' EXIT
if [ -z "${PINSTREAM_BENCH_BROKERS:-}" ]; then
  command -v tansu >/dev/null || { echo "tansu not installed: cargo install tansu --locked --features dynostore,libsql"; exit 1; }
  PORT=19492
  (cd "$WORK" && exec tansu broker --listener-url tcp://127.0.0.1:$PORT --advertised-listener-url tcp://127.0.0.1:$PORT \
     --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1) & TANSU_PID=$!
  for i in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.2; done
  PINSTREAM_BENCH_BROKERS=127.0.0.1:$PORT
fi
B=$PINSTREAM_BENCH_BROKERS
echo "broker $B; machine $(nproc) cores"

P=tp$$
"$BIN" emulate --brokers "$B" --prefix $P --posts "$POSTS" --create-topics 3 2>&1 | tail -1
TOTAL=$("$BIN" emulate --posts "$POSTS" --archive "$WORK/count" 2>&1 | sed 's/.*= \([0-9,]*\) records.*/\1/' | tr -d ,)
# Alternating rounds (bare, daemon, bare, daemon, ...): on a shared 2-core
# machine one pair's ratio moves by 20 points; the median of each side is
# what is compared. Each daemon round starts from an empty state dir, so it
# reads every record again.
for r in $(seq 1 "$ROUNDS"); do
  "$BARE" "$B" $P "$TOTAL" | tee -a "$WORK/bare.txt"
  rm -rf "$WORK/s1"
  /usr/bin/time -f 'daemon peak RSS %M kB' "$BIN" run --brokers "$B" --prefix $P --state-dir "$WORK/s1" --stop-when-idle 2 2>&1 \
    | grep -E '^stats:|RSS' | sed 's/^/daemon (producer ahead): /' | tee -a "$WORK/daemon.txt"
done
median() { sed -n 's/.* records_per_s=\([0-9]*\).*/\1/p' "$1" | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : int((v[NR/2]+v[NR/2+1])/2))}'; }
MB=$(median "$WORK/bare.txt"); MD=$(median "$WORK/daemon.txt")
awk -v d="$MD" -v b="$MB" -v r="$ROUNDS" 'BEGIN{printf "throughput (median of %d rounds): daemon %d / bare consumer %d records/s = %.1f%%\n", r, d, b, 100*d/b}'

P=lt$$
"$BIN" emulate --brokers "$B" --prefix $P --posts 1 --create-topics 3 >/dev/null 2>&1
( /usr/bin/time -f 'daemon peak RSS %M kB' "$BIN" run --brokers "$B" --prefix $P --state-dir "$WORK/s2" --commit-interval-ms "$INTERVAL" 2>&1 \
    | grep -E '^stats:|RSS' | sed "s/^/daemon at $RATE records\/s, commit interval $INTERVAL ms: /" ) & RUN=$!
# Beside the daemon, the bare consumer on the same records: the broker's and
# client library's share of the transit (it stops 5 s after the last record).
( "$BARE" "$B" $P 100000000000 5 | sed "s/^bare consumer:/bare consumer at $RATE records\/s:/" ) & BARE_PID=$!
sleep 2
POSTS2=$(awk -v r="$RATE" -v s="$SECONDS_" 'BEGIN{printf "%d", r*s/3.9}')
"$BIN" emulate --brokers "$B" --prefix $P --posts "$POSTS2" --rate "$RATE" 2>&1 | tail -1
sleep 3
pkill -TERM -f "run --brokers $B --prefix $P " || true
wait $RUN || true
wait $BARE_PID || true
