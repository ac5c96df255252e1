#!/usr/bin/env bash
# Disk full and read-only state, on a real (small) tmpfs: a replay that runs
# out of space exits non-zero with a clear error, leaves a state that opens
# (an earlier commit, never half of one), and resumes to the right answers
# once space returns; on a read-only state, `answers` still works and a
# replay is refused with a clear error.
#
#   tests/disk_full.sh            (needs root for mount; .ci/run runs it)
#
# Bounded: every command has a timeout. Exits 0 on success, 1 with what
# broke; outside CI, without the right to mount, it says so and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinstream-target}"
BIN="$CARGO_TARGET_DIR/release/pinstream"
[ -x "$BIN" ] || { echo "disk_full: build first (cargo build --release)"; exit 1; }
WORK=$(mktemp -d)
MNT="$WORK/mnt"
mkdir -p "$MNT"
cleanup() { umount "$MNT" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "disk_full FAILED: $*" >&2; exit 1; }
if ! mount -t tmpfs -o size=6m tmpfs "$MNT" 2>/dev/null; then
  [ -n "${CI:-}" ] && fail "cannot mount a tmpfs (CI needs root)"
  echo "disk_full: skipped (cannot mount a tmpfs here; run as root)"; exit 0
fi
T() { timeout 300 "$@"; }
export PINSTREAM_HTTP=off
T "$BIN" emulate --posts 40000 --seed 21 --archive "$WORK/archive" >/dev/null 2>&1 || fail "emulate"
T "$BIN" replay --archive "$WORK/archive" --quiet > "$WORK/want.json" || fail "reference replay"

# 1. Out of space mid-replay: non-zero exit, clear error, no panic.
T "$BIN" replay --archive "$WORK/archive" --state-dir "$MNT/state" --commit-every 20000 \
  > "$WORK/full.out" 2> "$WORK/full.err"
code=$?
[ "$code" -ne 0 ] || fail "replay on a full disk exited 0"
[ "$code" -lt 100 ] || fail "replay on a full disk died (exit $code): $(tail -3 "$WORK/full.err")"
grep -qi "no space\|space left" "$WORK/full.err" || fail "no clear error on a full disk: $(tail -3 "$WORK/full.err")"
! grep -q "panicked" "$WORK/full.err" || fail "panic on a full disk: $(cat "$WORK/full.err")"
[ ! -s "$WORK/full.out" ] || fail "answers printed after a failed replay"
echo "full disk: exit $code, $(grep -m1 -i 'space' "$WORK/full.err")"

# 2. The state left behind opens (read-only open needs no space).
T "$BIN" positions --state-dir "$MNT/state" > "$WORK/pos" 2> "$WORK/pos.err" \
  || fail "state after the full disk does not open: $(cat "$WORK/pos.err")"
echo "state after it: $(wc -l < "$WORK/pos") partitions with positions"

# 3. Space returns: the replay resumes and the answers are right.
mount -o remount,size=512m "$MNT" || fail "remount bigger"
T "$BIN" replay --archive "$WORK/archive" --state-dir "$MNT/state" > "$WORK/got.json" 2> "$WORK/got.err" \
  || fail "replay after space returned: $(tail -3 "$WORK/got.err")"
cmp -s "$WORK/got.json" "$WORK/want.json" || fail "answers after the full disk differ from a clean replay"
echo "space back: answers equal a clean replay ($(grep -o 'already in state [0-9,]*' "$WORK/got.err" || echo 'nothing resumed'))"

# 4. Read-only state: answers work, a replay is refused clearly.
mount -o remount,ro "$MNT" || fail "remount read-only"
T "$BIN" answers --state-dir "$MNT/state" > "$WORK/ro.json" 2> "$WORK/ro.err" \
  || fail "answers on a read-only state: $(cat "$WORK/ro.err")"
cmp -s "$WORK/ro.json" "$WORK/want.json" || fail "answers on the read-only state differ"
T "$BIN" replay --archive "$WORK/archive" --state-dir "$MNT/state" > /dev/null 2> "$WORK/ro2.err"
code=$?
[ "$code" -eq 1 ] || fail "replay into a read-only state: exit $code"
grep -qi "read-only" "$WORK/ro2.err" || fail "no clear error on a read-only state: $(cat "$WORK/ro2.err")"
echo "read-only: answers ok; replay refused: $(grep -m1 -i 'read-only' "$WORK/ro2.err")"
echo "disk_full: ok"
