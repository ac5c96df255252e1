#!/usr/bin/env bash
# HTTP API figures against a local tansu broker (started here unless
# PINSTREAM_BENCH_BROKERS names one), with oha (cargo install oha) as the
# load tool:
#  1. query latency p50/p99 at QPS requests/s over 32 connections for SECONDS
#     seconds, on /v1/queries/<each answer query in turn>, while the daemon
#     processes RATE records/s produced by the emulator;
#  2. ingest throughput through POST /topics/<topic> with 100-record batches
#     (records/s = requests/s x 100), 32 connections.
#
#   benches/http.sh [QPS] [RATE] [SECONDS]   (defaults 2000, 10000, 20)
set -euo pipefail
cd "$(dirname "$0")/.."
QPS=${1:-2000}; RATE=${2:-10000}; SECONDS_=${3:-20}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinstream-target}"
command -v oha >/dev/null || { echo "oha not installed: cargo install oha --locked"; exit 1; }
cargo build --release --quiet --bin pinstream
BIN="${PINSTREAM_BIN:-$CARGO_TARGET_DIR/release/pinstream}"
WORK=$(mktemp -d)
cleanup() { kill ${PROD:-} ${DAEMON:-} ${TANSU_PID:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
if [ -z "${PINSTREAM_BENCH_BROKERS:-}" ]; then
  command -v tansu >/dev/null || { echo "tansu not installed: cargo install tansu --locked --features dynostore,libsql"; exit 1; }
  PORT=19493
  (cd "$WORK" && exec tansu broker --listener-url tcp://127.0.0.1:$PORT --advertised-listener-url tcp://127.0.0.1:$PORT \
     --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1) & TANSU_PID=$!
  for i in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.2; done
  PINSTREAM_BENCH_BROKERS=127.0.0.1:$PORT
fi
B=$PINSTREAM_BENCH_BROKERS; P=hb$$; HTTP=127.0.0.1:18482
echo "broker $B; machine $(nproc) cores; oha $(oha --version | head -1)"
"$BIN" emulate --brokers "$B" --prefix $P --posts 2000 --create-topics 3 >/dev/null 2>&1
"$BIN" run --brokers "$B" --prefix $P --state-dir "$WORK/state" --http $HTTP 2>"$WORK/daemon.log" & DAEMON=$!
for i in $(seq 1 100); do curl -sf http://$HTTP/ready >/dev/null && break; sleep 0.2; done
"$BIN" emulate --brokers "$B" --prefix $P --posts 100000000 --seed 7 --rate "$RATE" >/dev/null 2>&1 & PROD=$!
sleep 3

# 1. Query latency under processing load. oha takes one URL; each answer
# query gets an equal share of the time.
QUERIES=$(curl -s http://$HTTP/v1/queries | python3 -c 'import json,sys; print(" ".join(q["name"] for q in json.load(sys.stdin) if q["answer"]))')
N=$(echo $QUERIES | wc -w); PER=$(( SECONDS_ / N > 1 ? SECONDS_ / N : 2 ))
for q in $QUERIES; do
  oha --no-tui --output-format json -q "$QPS" -c 32 -z ${PER}s "http://$HTTP/v1/queries/$q" > "$WORK/q-$q.json"
done
python3 - "$WORK" $QUERIES <<'PY'
import json, sys
work, names = sys.argv[1], sys.argv[2:]
tot = ok = 0; p50s = []; p99s = []; rps = []
for n in names:
    r = json.load(open(f"{work}/q-{n}.json"))
    s = r["summary"]; p = r["latencyPercentiles"]
    codes = r.get("statusCodeDistribution", {})
    tot += sum(codes.values()); ok += codes.get("200", 0)
    p50s.append(p["p50"] * 1000); p99s.append(p["p99"] * 1000); rps.append(s["requestsPerSec"])
    print(f"query {n:32s} {s['requestsPerSec']:8.0f} req/s  p50 {p['p50']*1000:6.2f} ms  p99 {p['p99']*1000:6.2f} ms")
print(f"queries: {ok}/{tot} answered 200; worst p50 {max(p50s):.2f} ms, worst p99 {max(p99s):.2f} ms, mean rate {sum(rps)/len(rps):.0f} req/s")
PY
grep -o 'pinstream_records_in_total{[^}]*} [0-9]*' <(curl -s http://$HTTP/metrics) | sed 's/^/daemon consumed while queried: /'
kill $PROD; wait $PROD 2>/dev/null || true; PROD=

# 2. Ingest throughput, 100-record batches of real-looking geo rows.
python3 - > "$WORK/batch.json" <<'PY'
import json
rows = [{"ind": 1000 + i, "timestamp": "2020-08-28 03:52:47", "latitude": -89.9787, "longitude": -173.293, "country": "Albania"} for i in range(100)]
print(json.dumps({"records": [{"value": r} for r in rows]}))
PY
oha --no-tui --output-format json -n 3000 -c 32 -m POST -T application/vnd.kafka.json.v2+json -D "$WORK/batch.json" \
  "http://$HTTP/topics/$P.geo" > "$WORK/ingest.json"
python3 - "$WORK/ingest.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = r["summary"]; p = r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
print(f"ingest: {codes} {s['requestsPerSec']:.0f} req/s x 100 = {s['requestsPerSec']*100:.0f} records/s; p50 {p['p50']*1000:.1f} ms, p99 {p['p99']*1000:.1f} ms")
PY
