#!/usr/bin/env bash
# The heavy crash matrix: 20 SIGKILLs at random moments (startup, commit,
# shutdown) while the emulator produces 1,000,000 posts into a tansu broker;
# the answers after the last restart must equal a replay of the same
# deliveries. CI runs the light version (3 kills, 50,000 posts) as a test.
#
#   benches/crash_matrix.sh [KILLS] [POSTS] [SEED]
#
# Needs `tansu` on PATH; starts its own broker (memory storage) on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinstream-target}"
KILLS=${1:-20}; POSTS=${2:-1000000}; SEED=${3:-17}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
(cd "$DIR" && exec tansu broker --listener-url tcp://127.0.0.1:$PORT --advertised-listener-url tcp://127.0.0.1:$PORT \
   --storage-engine memory://tansu/ >"$DIR/tansu.log" 2>&1) &
TANSU=$!
trap 'kill $TANSU 2>/dev/null; wait $TANSU 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.2; done
echo "crash matrix: $KILLS kills, $POSTS posts, seed $SEED, tansu on $PORT"
/usr/bin/time -f 'crash matrix: wall_s=%e' env PINSTREAM_TEST_BROKERS=127.0.0.1:$PORT \
  PINSTREAM_CRASH_KILLS=$KILLS PINSTREAM_CRASH_POSTS=$POSTS PINSTREAM_CRASH_SEED=$SEED \
  cargo test --release --test tansu_crash_matrix -- --nocapture
