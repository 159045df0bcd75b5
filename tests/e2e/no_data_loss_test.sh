#!/usr/bin/env bash
# No data loss at the edges: put on a full disk, a checkpoint beyond the end of its shard file, a
# shard file truncated under `run --follow`, and a record line over --max-record-size. (The restart
# defaults are tested by their behaviour in restart_test.sh.)
source "$(dirname "$0")/lib.sh"

# Waits (at most $1 seconds, polling) until the command after it succeeds.
wait_until() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

checkpoint_is() { test "$(checkpoint_of "$1" "$2" 2> /dev/null)" = "$3"; } # db shard offset

ends_in_newline() { [ ! -s "$1" ] || [ "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" = '\n' ]; }

# -- put on a full disk: a 256 KiB tmpfs in a mount namespace of our own (needs root) --------------
if [ "$(id -u)" -eq 0 ] && unshare -m true 2> /dev/null; then
  for i in $(seq 1 4000); do
    printf '{"user":"u%d","n":%d,"pad":"0123456789012345678901234567890123456789"}\n' $((i % 7)) "$i"
  done > "$WORK/big.ndjson"
  printf '{"user":"late","n":1}\n{"user":"late","n":2}\n' > "$WORK/small.ndjson"
  mkdir -p "$WORK/tmpfs"
  set +e
  unshare -m bash -c '
    bin=$1 dir=$2 work=$3
    mount -t tmpfs -o size=256k tmpfs "$dir" || exit 99
    "$bin" put "$dir/s" --shards 1 < /dev/null 2> /dev/null || exit 98
    head -c 65536 /dev/zero > "$dir/filler"
    "$bin" put "$dir/s" --key user < "$work/big.ndjson" 2> "$work/put-full.err"
    echo $? > "$work/put-full.rc"
    cp "$dir/s/shard-00000.ndjson" "$work/after-full.ndjson"
    rm "$dir/filler"
    "$bin" put "$dir/s" --key user < "$work/small.ndjson" 2> "$work/put-late.err"
    echo $? > "$work/put-late.rc"
    cp -r "$dir/s" "$work/full-copy"
  ' _ "$SHARDFLOW" "$WORK/tmpfs" "$WORK"
  ns=$?
  set -e
  check "the tmpfs was mounted" test "$ns" -eq 0
  check "put on a full disk fails as an unusable output (1)" test "$(cat "$WORK/put-full.rc")" = 1
  check "it says why" grep -q "No space left on device" "$WORK/put-full.err"
  check "it leaves no partial line" ends_in_newline "$WORK/after-full.ndjson"
  check "the next put succeeds" test "$(cat "$WORK/put-late.rc")" = 0
  set +e
  "$SHARDFLOW" run "$WORK/full-copy" --flusher "file:$WORK/full-out" --progress off > /dev/null \
    2> "$WORK/full-run.err"
  rc=$?
  set -e
  check "the stream is readable after the full disk (exit 0)" test $rc -eq 0
  check "both records of the next put are in the output" \
    test "$(grep -c '\\"user\\":\\"late\\"' "$WORK"/full-out/*.ndjson)" -eq 2
else
  echo "skipped: put on a full disk (needs root and unshare -m)"
fi

# -- a checkpoint beyond the end of its shard file ----------------------------------------------------
"$SHARDFLOW" generate "$WORK/s" --shards 1 --records 300 2> /dev/null
"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/out" --progress off > /dev/null 2>&1
cp_before=$(checkpoint_of "$WORK/s/checkpoints.db" shard-00000)
head -n 100 "$WORK/s/shard-00000.ndjson" > "$WORK/first100"
cat "$WORK/first100" > "$WORK/s/shard-00000.ndjson"
set +e
"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/out" --progress off > /dev/null 2> "$WORK/beyond.err"
rc=$?
set -e
check "a checkpoint beyond the end is bad input (3)" test $rc -eq 3
check "it says so" grep -q "lies beyond the end of the file" "$WORK/beyond.err"
check "... and how to start such a file over" \
  grep -q "once its shard's row is gone from $WORK/s/checkpoints.db" "$WORK/beyond.err"
check "the checkpoint stays" test "$(checkpoint_of "$WORK/s/checkpoints.db" shard-00000)" = "$cp_before"

# -- a shard file truncated under run --follow -----------------------------------------------------
"$SHARDFLOW" generate "$WORK/f" --shards 1 --records 300 2> /dev/null
last=$(stat -c %s "$WORK/f/shard-00000.ndjson") # the checkpoint after the last line
"$SHARDFLOW" run "$WORK/f" --follow --flusher "file:$WORK/fout" --checkpoint-interval 0 \
  --flush-interval 100ms --heartbeat-interval 100ms --progress off > /dev/null 2> "$WORK/follow.err" &
pid=$!
check "the follower checkpoints the last record" \
  wait_until 60 checkpoint_is "$WORK/f/checkpoints.db" shard-00000 "$last"
truncate -s "$(stat -c %s "$WORK/first100")" "$WORK/f/shard-00000.ndjson"
check "it notices the truncation" wait_until 30 grep -q "truncated or replaced" "$WORK/follow.err"
kill -TERM "$pid"
set +e
wait "$pid"
rc=$?
set -e
check "it ends as bad input (3)" test $rc -eq 3
check "the checkpoint stays where it was" \
  test "$(checkpoint_of "$WORK/f/checkpoints.db" shard-00000)" = "$last"

# -- a record line over --max-record-size --------------------------------------------------------
"$SHARDFLOW" put "$WORK/m" --shards 1 --format text < <(echo short; head -c 3000 /dev/zero | tr '\0' y; echo; echo after) 2> /dev/null
set +e
"$SHARDFLOW" run "$WORK/m" --flusher "file:$WORK/mout" --max-record-size 1k --progress off \
  > /dev/null 2> "$WORK/max.err"
rc=$?
set -e
check "a line over --max-record-size is bad input (3)" test $rc -eq 3
check "the message names file and line" grep -q "shard-00000.ndjson:2: the line is longer than 1024 bytes" "$WORK/max.err"
set +e
"$SHARDFLOW" run "$WORK/m" --flusher "file:$WORK/mout" --max-record-size 1k --bad-input dead-letter \
  --progress off > /dev/null 2> "$WORK/max2.err"
rc=$?
set -e
check "under dead-letter the run finishes" test $rc -eq 0
check "the long line is in the dead-letter file" test "$(wc -c < "$WORK/m/dead-letter/shard-00000.ndjson")" -gt 3000
check "the line after it is in the output" grep -q '"d":"after"' "$WORK"/mout/*.ndjson

# -- put --format text takes text only: the line is the partition key, a JSON string ---------------
set +e
printf 'caf\xc3\xa9\nbin\xff\xfe\n' | "$SHARDFLOW" put "$WORK/t" --shards 1 --format text > /dev/null 2> "$WORK/text.err"
rc=$?
set -e
check "a text line that is not UTF-8 is bad input (3)" test $rc -eq 3
check "put names it" grep -q "<stdin>:2: not valid UTF-8" "$WORK/text.err"
check "the line before it is in, as a record line" \
  "$SHARDFLOW" run "$WORK/t" --flusher "file:$WORK/tout" --progress off > /dev/null 2>&1

finish
