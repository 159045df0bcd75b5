#!/usr/bin/env bash
# The TOML config is strict (an unknown key, a wrong type, a syntax error: exit 2 naming the file,
# line and key), --config goes before or after the subcommand, and the precedence is
# flag > environment > file > default.
source "$(dirname "$0")/lib.sh"

"$SHARDFLOW" generate "$WORK/s" --shards 2 --records 100 2>/dev/null

usage_error() { # description, expected message, config text, arguments...
  local what="$1" message="$2" text="$3"; shift 3
  printf '%b' "$text" > "$WORK/c.toml"
  set +e
  "$SHARDFLOW" "$@" > /dev/null 2> "$WORK/err"
  local rc=$?
  set -e
  check "$what: exit 2" test $rc -eq 2
  check "$what: the message names the file, line and key" grep -qF "$message" "$WORK/err" \
    || cat "$WORK/err"
}

usage_error "an unknown key in [run]" \
  "$WORK/c.toml:2: \"batch-sise\" in [run] is not an option of this command (did you mean batch-size?)" \
  '[run]\nbatch-sise = 500\n' --config "$WORK/c.toml" run "$WORK/s" --flusher null --progress off
usage_error "a librdkafka property librdkafka refuses" \
  "$WORK/c.toml:2: --property: librdkafka property bogus.x=1 refused for the Kafka client: No such configuration property" \
  '[kafka.run]\nproperty = ["bogus.x=1"]\n' --config "$WORK/c.toml" kafka run --brokers 127.0.0.1:1 \
  --topic t --group g --flusher null
usage_error "a broken table header" "$WORK/c.toml:1:5: not valid TOML" \
  '[run\nbatch-size = 5\n' run "$WORK/s" --flusher null --config "$WORK/c.toml"
usage_error "a wrong type" \
  "$WORK/c.toml:3: \"batch-size\" in [run] must be an integer, not a string" \
  '[run]\nfollow = false\nbatch-size = "500"\n' --config "$WORK/c.toml" run "$WORK/s" --flusher null
usage_error "a run option at the top level" \
  "$WORK/c.toml:1: \"batch-size\" at the top level is not an option of this command; it is one of run: write it in [run]" \
  'batch-size = 500\n' --config "$WORK/c.toml" run "$WORK/s" --flusher null
usage_error "a value the option refuses" "$WORK/c.toml:2: --batch-size: " \
  '[run]\nbatch-size = 0\n' --config "$WORK/c.toml" run "$WORK/s" --flusher null

# Precedence, seen through put's --format: a line of text is bad input (3) as ndjson, fine as text.
put_text() { # expected exit code, description, put arguments...
  local want="$1" what="$2"; shift 2
  rm -rf "$WORK/p"
  set +e
  echo "hello" | "$@" > /dev/null 2> "$WORK/err"
  local rc=$?
  set -e
  check "$what (exit $want)" test $rc -eq "$want" || cat "$WORK/err"
}
printf '[put]\nformat = "text"\nshards = 2\n' > "$WORK/put.toml"
put_text 3 "the default is ndjson" "$SHARDFLOW" put "$WORK/p" --shards 2
put_text 0 "the file beats the default" "$SHARDFLOW" --config "$WORK/put.toml" put "$WORK/p"
put_text 0 "--config after the subcommand" "$SHARDFLOW" put "$WORK/p" --config "$WORK/put.toml"
put_text 3 "the environment beats the file" \
  env SHARDFLOW_FORMAT=ndjson "$SHARDFLOW" put "$WORK/p" --config "$WORK/put.toml"
put_text 0 "a flag beats the environment" \
  env SHARDFLOW_FORMAT=ndjson "$SHARDFLOW" put "$WORK/p" --shards 2 --format text
put_text 0 "the environment beats the default" \
  env SHARDFLOW_FORMAT=text SHARDFLOW_PUT_SHARDS=2 "$SHARDFLOW" put "$WORK/p"

# A good file runs: global options at the top level, run's in [run].
printf 'log-format = "json"\n[run]\nflusher = "null"\nprogress = "off"\nbatch-size = 50\n' \
  > "$WORK/run.toml"
set +e
"$SHARDFLOW" run "$WORK/s" --config "$WORK/run.toml" > /dev/null 2> "$WORK/err"
rc=$?
set -e
check "a good config file runs (exit 0)" test $rc -eq 0 || cat "$WORK/err"

# --shards is a count for generate and put, a list for run: each command has its own variable, and a
# bare SHARDFLOW_SHARDS left over from one narrows no other (it is not read, and a warning says so).
"$SHARDFLOW" generate "$WORK/e3" --shards 3 --records 30 2> /dev/null
set +e
SHARDFLOW_SHARDS=1 "$SHARDFLOW" run "$WORK/e3" --flusher null --progress off 2> "$WORK/e3.err"
rc=$?
set -e
check "a bare SHARDFLOW_SHARDS does not narrow a run (exit 0, 3 of 3 shards)" \
  test $rc -eq 0 -a "$(grep -c "3 of 3 shards at their end" "$WORK/e3.err")" -eq 1
check "... and a warning names the run's variable" \
  grep -q "SHARDFLOW_SHARDS is not read by .run.: .* its variable here is SHARDFLOW_RUN_SHARDS" \
  "$WORK/e3.err"
"$SHARDFLOW" generate "$WORK/e4" --shards 3 --records 30 2> /dev/null
SHARDFLOW_RUN_SHARDS=1 "$SHARDFLOW" run "$WORK/e4" --flusher null --progress off 2> "$WORK/e4.err"
check "SHARDFLOW_RUN_SHARDS=1 runs shard 1 only" grep -q "1 of 1 shard at their end" "$WORK/e4.err"
SHARDFLOW_GENERATE_SHARDS=2 "$SHARDFLOW" generate "$WORK/e5" --records 10 2> /dev/null
check "SHARDFLOW_GENERATE_SHARDS=2 generates 2 shards" \
  test "$(ls "$WORK"/e5/shard-*.ndjson | wc -l)" -eq 2
finish
