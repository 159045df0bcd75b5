#!/usr/bin/env bash
# tests/e2e/kafka_test.sh - `shardflow kafka put` and `shardflow kafka run` through the binary,
# against librdkafka's mock cluster served by a process of its own (tests/kafka/mock_serve.cpp; the
# mock listens on loopback). Lines put are all in the output; the JSON summary's committed offsets
# add up to every record; a clean stop and a rerun after more puts writes each record exactly once
# (the stop commits while the group is stable); a bad -X property is a usage error naming it; an
# unreachable cluster fails the job (exit 1) after --connect-timeout, and `kafka put` to it exits 1
# within its --connect-timeout; librdkafka's lines are in shardflow's log format.
#
#   kafka_test.sh path/to/shardflow path/to/kafka_mock_serve
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh" "$1"
MOCK="${2:?usage: $0 path/to/shardflow path/to/kafka_mock_serve}"

"$MOCK" events:4 > "$WORK/mock.out" 2> "$WORK/mock.err" &
mock_pid=$!
run_pid=
read_pid=
cleanup() {
  [ -z "$run_pid" ] || kill -KILL "$run_pid" 2> /dev/null || true
  [ -z "$read_pid" ] || kill -KILL "$read_pid" 2> /dev/null || true
  kill -TERM "$mock_pid" 2> /dev/null || true
  wait "$mock_pid" 2> /dev/null || true
  [ "${KEEP:-}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

# Waits (at most $2 tenths of a second) until the command $1 succeeds.
await() {
  local i
  for ((i = 0; i < $2; i++)); do
    if eval "$1"; then return 0; fi
    sleep 0.1
  done
  eval "$1"
}

await '[ -s "$WORK/mock.out" ]' 100
brokers=$(sed -n 's/^bootstraps //p' "$WORK/mock.out")
check "the mock cluster is up" test -n "$brokers"
X=(-X session.timeout.ms=4000 -X heartbeat.interval.ms=500 -X auto.offset.reset=earliest
   -X log_level=3)

lines_out() { cat "$WORK"/out/*.ndjson 2> /dev/null | wc -l; }
committed_sum() { grep -o '"events-[0-9]*":[0-9]*' "$1" | awk -F: '{ s += $2 } END { print s + 0 }'; }

# Runs the group until the output holds $1 lines, then stops it with SIGTERM; returns its status.
run_until() {
  "$SHARDFLOW" kafka run --brokers "$brokers" --topic events --group g-e2e \
    --flusher "file:$WORK/out" --flush-interval 100ms --checkpoint-interval 100ms \
    --heartbeat-interval 100ms --json "$2" "${X[@]}" 2>> "$WORK/run.err" &
  run_pid=$!
  await "[ \$(lines_out) -ge $1 ]" 600 || true
  kill -TERM "$run_pid"
  local rc=0
  wait "$run_pid" || rc=$?
  run_pid=
  return $rc
}

seq 0 1999 | sed 's/.*/{"user":&,"n":"rec-&"}/' > "$WORK/in1.ndjson"
rc=0
"$SHARDFLOW" kafka put --brokers "$brokers" --topic events --key user "${X[@]:6}" \
  "$WORK/in1.ndjson" 2> "$WORK/put.err" || rc=$?
check "kafka put exits 0" test $rc -eq 0
check "kafka put says how many" grep -q "put 2000 records to events" "$WORK/put.err"
printf '{"user":"b1"}\n{"user":"b2"}\nnot json\n{"user":"b4"}\n' > "$WORK/bad.ndjson"
rc=0
"$SHARDFLOW" kafka put --brokers "$brokers" --topic badput --key user "$WORK/bad.ndjson" \
  2> "$WORK/badput.err" || rc=$?
check "kafka put stops at a line without its key: exit 3" test $rc -eq 3
check "... once the lines before it are delivered, saying so" \
  grep -q "bad.ndjson:3: not a JSON object (of the 2 lines before it, 2 delivered)" "$WORK/badput.err"

rc=0
run_until 2000 "$WORK/summary1.json" || rc=$?
check "kafka run stops on SIGTERM with exit 0" test $rc -eq 0
check "every record is in the output" test "$(data_of "$WORK"/out/*.ndjson | sort -u | wc -l)" -eq 2000
check "the committed offsets add up to every record" test "$(committed_sum "$WORK/summary1.json")" -eq 2000

seq 2000 2499 | sed 's/.*/{"user":&,"n":"rec-&"}/' > "$WORK/in2.ndjson"
"$SHARDFLOW" kafka put --brokers "$brokers" --topic events --key user "$WORK/in2.ndjson" \
  2>> "$WORK/put.err"
rc=0
run_until 2500 "$WORK/summary2.json" || rc=$?
check "the rerun exits 0" test $rc -eq 0
check "the rerun resumes at the committed offsets: each record once" test "$(lines_out)" -eq 2500
check "... and every record" test "$(data_of "$WORK"/out/*.ndjson | sort -u | wc -l)" -eq 2500
check "the rerun committed everything" test "$(committed_sum "$WORK/summary2.json")" -eq 2500

# The Kafka flusher through the binary: events -> topic copy (group g-copy), then copy -> files.
copied() { cat "$WORK"/copy-out/*.ndjson 2> /dev/null | wc -l; }
rc=0
"$SHARDFLOW" kafka run --brokers "$brokers" --topic events --group g-copy \
  --flusher "kafka:$brokers/copy" --flush-interval 100ms --checkpoint-interval 100ms \
  --heartbeat-interval 100ms --json "$WORK/copy1.json" "${X[@]}" 2>> "$WORK/run.err" &
run_pid=$!
"$SHARDFLOW" kafka run --brokers "$brokers" --topic copy --group g-read \
  --flusher "file:$WORK/copy-out" --flush-interval 100ms --checkpoint-interval 100ms \
  --heartbeat-interval 100ms "${X[@]}" 2>> "$WORK/run.err" &
read_pid=$!
await '[ "$(copied)" -ge 2500 ]' 600 || true
kill -TERM "$run_pid" "$read_pid"
wait "$run_pid" || rc=$?
wait "$read_pid" || rc=$?
run_pid=
read_pid=
check "kafka:BROKERS/TOPIC: the output topic holds every record" \
  test "$(data_of "$WORK"/copy-out/*.ndjson | sort -u | wc -l)" -eq 2500
check "... and both jobs stop with exit 0" test $rc -eq 0
check "... having produced every record" test "$(committed_sum "$WORK/copy1.json")" -eq 2500

rc=0
"$SHARDFLOW" kafka run --brokers "$brokers" --topic events --group g-bad --flusher null \
  -X no.such.property=1 2> "$WORK/bad.err" || rc=$?
check "a bad -X property is a usage error (2)" test $rc -eq 2
check "... naming it" grep -q "no.such.property" "$WORK/bad.err"

# A cluster that never answers (a loopback port nothing listens on) is retried
# until --connect-timeout, then the job fails with exit 1 naming the brokers and the bound.
closed_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rc=0
timeout 60 "$SHARDFLOW" kafka run --brokers "127.0.0.1:$closed_port" --topic events --group g-none \
  --flusher null --connect-timeout 2s 2> "$WORK/none.err" || rc=$?
check "an unreachable cluster fails the job after --connect-timeout (1)" test $rc -eq 1
check "... naming the brokers and the bound" \
  grep -q "127.0.0.1:$closed_port was not reached for .* connect timeout (2.0 s)" "$WORK/none.err"

ours='^[0-9-]{10}T[0-9:.]{12}Z' # core/log.hpp's text line: TIME LEVEL PROGRAM: MESSAGE
check "... librdkafka's lines in shardflow's log format" \
  grep -Eq "$ours (error|warning|info) shardflow kafka run: kafka consumer: librdkafka [A-Z]+: " \
  "$WORK/none.err"
check "... and none of its raw %N|...|rdkafka lines" bash -c "! grep -q '^%[0-9]|' '$WORK/none.err'"

# kafka put to it: each record's delivery is bounded by --connect-timeout (librdkafka's 300 s
# message.timeout.ms otherwise), exit 1 with what was delivered and librdkafka's last error.
rc=0
printf '{"user":1}\n{"user":2}\n' | timeout 60 "$SHARDFLOW" kafka put \
  --brokers "127.0.0.1:$closed_port" --topic events --key user --connect-timeout 2s \
  2> "$WORK/put-none.err" || rc=$?
check "kafka put to an unreachable cluster exits 1 within --connect-timeout" test $rc -eq 1
check "... saying 0 of 2 delivered within the bound, with the last error" \
  grep -q "stdin: 0 of 2 delivered to 127.0.0.1:$closed_port (topic events) within 2 s: .*last \
error: .*Connection refused" \
  "$WORK/put-none.err"
check "... librdkafka's lines in shardflow's log format" \
  grep -Eq "$ours error shardflow kafka put: kafka producer: librdkafka FAIL: " \
  "$WORK/put-none.err"
check "... and none of its raw lines" bash -c "! grep -q '^%[0-9]|' '$WORK/put-none.err'"

printf '[kafka.run]\ngroup = "g-toml"\nproperty = ["session.timeout.ms=6000", "nokey"]\n' \
  > "$WORK/kafka.toml"
rc=0
"$SHARDFLOW" --config "$WORK/kafka.toml" kafka run --brokers "$brokers" --topic events \
  --flusher null 2> "$WORK/toml.err" || rc=$?
check "librdkafka properties come from the config file too ([kafka.run] property)" \
  grep -q "property 'nokey' is not key=value" "$WORK/toml.err"
check "... a bad one is a usage error (2)" test $rc -eq 2

[ "$failures" -eq 0 ] || { echo "--- run.err"; tail -20 "$WORK/run.err"; }
finish
