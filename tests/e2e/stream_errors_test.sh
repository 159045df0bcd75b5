#!/usr/bin/env bash
# Local stream errors that name the problem: a missing shard file says which file and how many
# shards the stream has; a stream directory that cannot be read is an I/O error (1), not "not a
# local stream"; a checkpoint that falls inside a line (the file was replaced) stops its shard as bad
# input (3) and keeps the checkpoint.
source "$(dirname "$0")/lib.sh"

# -- a missing shard file ------------------------------------------------------------------------
"$SHARDFLOW" generate "$WORK/s" --shards 4 --records 400 2> /dev/null
rm "$WORK/s/shard-00002.ndjson"
set +e
"$SHARDFLOW" run "$WORK/s" --flusher null --progress off > /dev/null 2> "$WORK/missing.err"
rc=$?
set -e
check "a missing shard file is bad input (exit 3)" test $rc -eq 3
check "... not a start failure" bash -c "! grep -q start_failed \"$WORK/missing.err\""
check "... naming the file and the stream's shard count" grep -qF \
  "$WORK/s/shard-00002.ndjson: no such file; the stream's shardflow-stream says 4 shards" \
  "$WORK/missing.err"

# -- a stream directory that cannot be read (as an unprivileged user: root reads anything) ----------
if [ "$(id -u)" -eq 0 ] && command -v setpriv > /dev/null; then
  "$SHARDFLOW" generate "$WORK/u" --shards 1 --records 10 2> /dev/null
  chmod 755 "$WORK" # mktemp's 700 would hide the whole tree; only the stream is to be unreadable
  chmod 000 "$WORK/u"
  set +e
  setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$SHARDFLOW" run "$WORK/u" --flusher null --progress off > /dev/null 2> "$WORK/unreadable.err"
  rc=$?
  set -e
  chmod 755 "$WORK/u"
  chmod 700 "$WORK"
  check "an unreadable stream directory is an I/O error (1)" test $rc -eq 1
  check "... saying why" grep -q "shardflow-stream: Permission denied" "$WORK/unreadable.err"
  check "... not that it is no stream" test "$(grep -c "is not a local stream" "$WORK/unreadable.err")" -eq 0
else
  echo "skipped: an unreadable stream directory (needs root and setpriv)"
fi

# -- a checkpoint inside a line ----------------------------------------------------------------------
"$SHARDFLOW" generate "$WORK/r" --shards 1 --records 100 2> /dev/null
"$SHARDFLOW" run "$WORK/r" --flusher null --progress off > /dev/null 2>&1
cp_before=$(checkpoint_of "$WORK/r/checkpoints.db" shard-00000)
{ printf 'x'; cat "$WORK/r/shard-00000.ndjson"; } > "$WORK/replaced" # one byte longer, shifted
cat "$WORK/replaced" > "$WORK/r/shard-00000.ndjson"
set +e
"$SHARDFLOW" run "$WORK/r" --flusher null --progress off > /dev/null 2> "$WORK/inside.err"
rc=$?
set -e
check "a checkpoint inside a line is bad input (3)" test $rc -eq 3
check "... saying so" grep -q "the checkpoint (byte $cp_before) is not at the start of a line" \
  "$WORK/inside.err"
check "... and the checkpoint stays" \
  test "$(checkpoint_of "$WORK/r/checkpoints.db" shard-00000)" = "$cp_before"

# run on a path that is a file, or that does not exist: exit 3, saying which.
echo x > "$WORK/afile"
set +e
"$SHARDFLOW" run "$WORK/afile" --flusher null --progress off 2> "$WORK/afile.err"
rc_file=$?
"$SHARDFLOW" run "$WORK/none" --flusher null --progress off 2> "$WORK/none.err"
rc_none=$?
set -e
check "run on a file exits 3, saying it is a file" \
  test $rc_file -eq 3 -a "$(grep -c "afile is a file, not a directory" "$WORK/afile.err")" -eq 1
check "run on a missing path exits 3, saying it does not exist" \
  test $rc_none -eq 3 -a "$(grep -c "none does not exist" "$WORK/none.err")" -eq 1
finish
