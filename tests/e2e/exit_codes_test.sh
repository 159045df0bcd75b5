#!/usr/bin/env bash
# Exit codes through the binary: an I/O failure (a full disk) is 1, never 3 ("bad input"); a missing
# input file is bad input (3); a bad command line is 2. A full disk leaves no half-made stream.
source "$(dirname "$0")/lib.sh"

for i in $(seq 1 2000); do
  printf '{"id":%d,"pad":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}\n' "$i"
done > "$WORK/input.ndjson"

# Runs the command with a file size limit of $1 KiB (0: no file can grow): its writes fail with EFBIG
# as on a full disk (SIGXFSZ ignored). Its stderr comes back through a pipe, which no limit affects;
# the exit code is in $rc.
limited() { # kib command...
  local kib="$1"; shift
  rc=0
  err=$( (trap '' XFSZ; ulimit -f "$kib"; exec "$@") 2>&1 ) || rc=$?
}

set +e
limited 0 "$SHARDFLOW" put "$WORK/new" --shards 2 "$WORK/input.ndjson"
check "a full disk while put creates a stream exits 1 (not 3)" test $rc -eq 1
check "... saying what could not be written" grep -q "cannot write" <<< "$err"
check "... and leaves no half-made stream behind" test ! -e "$WORK/new/shardflow-stream"
"$SHARDFLOW" put "$WORK/new" --shards 2 "$WORK/input.ndjson" 2> "$WORK/err1"; rc=$?
check "once there is room, put creates it (0)" test $rc -eq 0
check "... with every record" test "$(cat "$WORK"/new/shard-*.ndjson | wc -l)" -eq 2000

limited 16 "$SHARDFLOW" put "$WORK/new" "$WORK/input.ndjson"
check "a full disk while put appends exits 1 (not 3)" test $rc -eq 1
check "... naming the shard file" grep -q "cannot write .*shard-0000[01].ndjson" <<< "$err"

"$SHARDFLOW" put "$WORK/new" "$WORK/no-such-file" 2> "$WORK/err2"; rc=$?
check "a missing input file is bad input (3)" test $rc -eq 3
check "... named" grep -q "no-such-file" "$WORK/err2"
"$SHARDFLOW" put "$WORK/new" "$WORK" 2> "$WORK/err3"; rc=$?
check "an input that cannot be read (a directory) is an I/O failure (1)" test $rc -eq 1
"$SHARDFLOW" put "$WORK/new" --format yaml < /dev/null 2> /dev/null; rc=$?
check "a bad option is a usage error (2)" test $rc -eq 2
"$SHARDFLOW" --help > "$WORK/help" 2>&1
check "--help documents the exit codes" grep -q "3 bad input" "$WORK/help"

# mld-server shares run's signal policy: a second signal exits at once with 130. Both are sent while
# the server is stopped, so they arrive one after the other whatever the first one starts.
"$SHARDFLOW" mld-server --flusher null --listen 127.0.0.1:0 --port-file "$WORK/port" 2> "$WORK/server.err" &
pid=$!
for _ in $(seq 1 500); do [ -s "$WORK/port" ] && break; sleep 0.02; done
check "mld-server came up" test -s "$WORK/port"
kill -STOP $pid
kill -INT $pid
kill -TERM $pid
kill -CONT $pid
wait $pid; rc=$?
check "a second signal stops mld-server at once (130)" test $rc -eq 130
check "... saying so" grep -q "shardflow mld-server: stopping at once" "$WORK/server.err"

# Inputs that are not files: an istream reads a directory as empty, and kafka put and kpl-agg then
# exited 0 having read nothing. Checked before anything is produced (the broker is never reached).
"$SHARDFLOW" kafka put --brokers 127.0.0.1:1 --topic t "$WORK" 2> "$WORK/kdir.err"; rc=$?
check "kafka put of a directory exits 1" test $rc -eq 1
check "... naming it" grep -q "cannot read $WORK: Is a directory" "$WORK/kdir.err"
"$SHARDFLOW" kafka put --brokers 127.0.0.1:1 --topic t "$WORK/input.ndjson" "$WORK/nope" \
  2> "$WORK/knope.err"; rc=$?
check "kafka put of a missing file exits 3, before the files before it are produced" test $rc -eq 3
check "... naming it" grep -q "cannot read $WORK/nope: No such file or directory" "$WORK/knope.err"
"$SHARDFLOW" kpl-agg < "$WORK" > /dev/null 2> "$WORK/agg.err"; rc=$?
check "kpl-agg with a directory on stdin exits 1" test $rc -eq 1
check "... saying so" grep -q "cannot read <stdin>: Is a directory" "$WORK/agg.err"

# kafka run checks where its JSON summary goes before it starts (it found out at its end).
k=(kafka run --brokers 127.0.0.1:1 --topic t --group g --connect-timeout 30s)
timeout 20 "$SHARDFLOW" "${k[@]}" --flusher stdout --json - > /dev/null 2> "$WORK/kj.err"; rc=$?
check "kafka run --flusher stdout --json - is a usage error (2)" test $rc -eq 2
check "... saying why" grep -q "the records are on stdout" "$WORK/kj.err"
timeout 20 "$SHARDFLOW" "${k[@]}" --flusher null --json "$WORK/nope/s.json" 2> "$WORK/kj2.err"; rc=$?
check "kafka run --json into a missing directory fails at once (1)" test $rc -eq 1
check "... naming the file" grep -q "cannot write the JSON summary to $WORK/nope/s.json" "$WORK/kj2.err"
set -e
finish
