#!/usr/bin/env bash
# schemathesis (PyPI) against /openapi.json of a running daemon (`demo`, its
# in-process broker, real HTTP server), once without a token and once with
# one: no 5xx, and every response matches the document (status codes,
# content types, JSON schemas). Bounded by --max-time and a timeout.
#
#   tests/schemathesis.sh         (.ci/run installs schemathesis if missing)
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinstream-target}"
BIN="$CARGO_TARGET_DIR/release/pinstream"
ST=$(command -v schemathesis || command -v st) || { echo "schemathesis FAILED: not installed (pip install schemathesis)"; exit 1; }
fail() { echo "schemathesis FAILED: $*" >&2; exit 1; }
WORK=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

round() { # label, extra demo args...
  local label=$1; shift
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$BIN" demo --rate 300 --http "127.0.0.1:$port" "$@" >"$WORK/demo.out" 2>"$WORK/demo.err" &
  PID=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
    kill -0 "$PID" 2>/dev/null || fail "$label: demo exited: $(tail -5 "$WORK/demo.err")"
    sleep 0.2
  done
  local auth=()
  [ "$label" = "token" ] && auth=(-H "Authorization: Bearer st-token")
  timeout 300 "$ST" run "http://127.0.0.1:$port/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples 40 --max-time 60 --seed 1 --workers 1 "${auth[@]}" >"$WORK/st.log" 2>&1
  local code=$?
  kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=""
  tail -25 "$WORK/st.log"
  [ "$code" -eq 0 ] || fail "$label: schemathesis exit $code (log above)"
  echo "schemathesis $label: ok"
}
round open
round token --http-token st-token
