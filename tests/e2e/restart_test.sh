#!/usr/bin/env bash
# Restarts under `run`'s defaults: an output that is full for a moment is waited out (the default
# backoff), one that stays full makes the shard give up (the runtime's outcome; the root does not
# start it again) and the run exit 1 naming it, in bounded time; backoff settings that could never
# give up are refused. The full disks are small tmpfs mounts in a mount namespace of our own (needs
# root; skipped otherwise).
source "$(dirname "$0")/lib.sh"

"$SHARDFLOW" generate "$WORK/s" --shards 1 --records 3000 --data-bytes 100 2> /dev/null

set +e
"$SHARDFLOW" run "$WORK/s" --backoff-max 10s --period 60s --flusher null > /dev/null 2> "$WORK/never.err"
rc=$?
set -e
check "backoff that can never exhaust the intensity is a usage error (2)" test $rc -eq 2
check "... saying why" grep -q "would never give up" "$WORK/never.err"
set +e
"$SHARDFLOW" run "$WORK/s" --backoff-min 10s --backoff-max 1s --flusher null > /dev/null \
  2> "$WORK/minmax.err"
rc=$?
set -e
check "a backoff minimum above its maximum is a usage error (2)" test $rc -eq 2
check "... naming both" grep -q -- "--backoff-min 10s is longer than --backoff-max 1s" \
  "$WORK/minmax.err"

if [ "$(id -u)" -ne 0 ] || ! unshare -m true 2> /dev/null; then
  echo "skipped: full outputs (need root and unshare -m)"
  finish
  exit 0
fi

# A full output that frees up again while the shard is being restarted: the run completes.
mkdir -p "$WORK/out1"
set +e
timeout 120 unshare -m bash -c '
  bin=$1 stream=$2 out=$3 work=$4
  mount -t tmpfs -o size=512k tmpfs "$out" || exit 99
  head -c 450000 /dev/zero > "$out/filler"
  "$bin" run "$stream" --flusher "file:$out/data" --batch-size 100 --progress off \
    > /dev/null 2> "$work/transient.err" &
  pid=$!
  # Wait (bounded) for the first failure, then free the space while restarts back off.
  for _ in $(seq 1 600); do
    grep -q "No space left on device" "$work/transient.err" && break
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
  done
  rm -f "$out/filler"
  wait "$pid"
  echo $? > "$work/transient.rc"
  cat "$out"/data/*.ndjson > "$work/transient.out" 2> /dev/null
' _ "$SHARDFLOW" "$WORK/s" "$WORK/out1" "$WORK"
ns=$?
set -e
check "the first tmpfs was mounted" test "$ns" -eq 0
check "the output did fill up" grep -q "No space left on device" "$WORK/transient.err"
check "a run whose output frees up again completes (exit 0)" test "$(cat "$WORK/transient.rc")" = 0
check "... with every record in the output" \
  test "$(sort -u "$WORK/transient.out" | wc -l)" -eq 3000

# An output that stays full: the shard gives up after its restarts and the run fails, naming it.
rm -f "$WORK/s/checkpoints.db"*
mkdir -p "$WORK/out2"
start=$SECONDS
set +e
timeout 170 unshare -m bash -c '
  bin=$1 stream=$2 out=$3 work=$4
  mount -t tmpfs -o size=64k tmpfs "$out" || exit 99
  "$bin" run "$stream" --flusher "file:$out/data" --batch-size 100 --progress off --json \
    > "$work/lasting.json"
' _ "$SHARDFLOW" "$WORK/s" "$WORK/out2" "$WORK" 2> "$WORK/lasting.err"
rc=$?
set -e
elapsed=$((SECONDS - start))
echo "a lasting full output ended the run after ${elapsed}s with exit $rc"
check "a run whose output stays full fails (exit 1, not killed by the time limit)" test $rc -eq 1
check "... naming the shard" grep -q "shard-00000" "$WORK/lasting.err"
check "... which the runtime's outcome says gave up" grep -q "shard shard-00000 gave up" "$WORK/lasting.err"
check "... also in the JSON summary" grep -q '"outcome":"gave_up"' "$WORK/lasting.json"
check "... after waiting a while for the output to free up (at least 10 s)" test "$elapsed" -ge 10
finish
