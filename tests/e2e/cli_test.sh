#!/usr/bin/env bash
# What a user sees of the command line: --version, "did you mean" for a mistyped subcommand or
# option, log lines with a timestamp and a level (--log-level, --log-format json), plurals, and
# kpl-agg --key reading the JSON as put --key does.
source "$(dirname "$0")/lib.sh"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"

version=$(sed -n 's/^project(shardflow VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")
set +e
"$SHARDFLOW" --version > "$WORK/out" 2>&1; rc=$?
set -e
check "--version exits 0" test $rc -eq 0
check "--version prints shardflow $version" test "$(cat "$WORK/out")" = "shardflow $version"

mistyped() { # description, expected message, arguments...
  local what="$1" message="$2"; shift 2
  set +e
  "$SHARDFLOW" "$@" > /dev/null 2> "$WORK/err" < /dev/null; local rc=$?
  set -e
  check "$what: exit 2" test $rc -eq 2
  check "$what: $message" grep -qF -- "$message" "$WORK/err" || cat "$WORK/err"
}
mistyped "a mistyped subcommand" 'unknown subcommand "rn" (did you mean run?)' rn "$WORK/s"
mistyped "a mistyped option" "unknown option --batch-sise (did you mean --batch-size?)" \
  run "$WORK/s" --batch-sise 5
mistyped "a mistyped global option" "unknown option --log-levl (did you mean --log-level?)" \
  put "$WORK/s" --log-levl debug
mistyped "a mistyped nested subcommand" 'unknown subcommand "propertes" (did you mean properties?)' \
  mld propertes
mistyped "mld without a flusher" "--flusher is required: where the records go" mld
mistyped "mld-server without a flusher" "--flusher is required" mld-server --listen 127.0.0.1:0
mistyped "mld properties for no known daemon" "--kcl: 4 not in {1,2,3}" mld properties --kcl 4
mistyped "mld properties at a timestamp it is not given" \
  "--initial-position AT_TIMESTAMP needs --initial-position-timestamp" \
  mld properties --initial-position AT_TIMESTAMP
check "... without warning first about placeholders of a file it does not print" \
  not_grep "placeholders" "$WORK/err"
mistyped "mld properties with a stream ARN for KCL 1" "KCL 1.x has no streamArn" \
  mld properties --kcl 1 --stream-arn arn:aws:kinesis:us-east-1:123456789012:stream/s
set +e
SHARDFLOW_BATCH_SIZE=lots "$SHARDFLOW" run "$WORK/s" > /dev/null 2> "$WORK/err"; rc=$?
set -e
check "a bad value from the environment: exit 2" test $rc -eq 2
check "... naming the variable" grep -qF "(from the environment: SHARDFLOW_BATCH_SIZE=lots)" "$WORK/err" \
  || cat "$WORK/err"
check "... saying it is not a number" grep -qF -- "--batch-size: lots is not a number (1 to 16777216)" "$WORK/err"
mistyped "kafka put to no broker" "--brokers: name at least one broker" \
  kafka put --brokers '' --topic t /dev/null
mistyped "generate with no keys" "--keys: 0 is not in the range 1 to" generate "$WORK/g0" --keys 0
"$SHARDFLOW" mld properties > /dev/null 2> "$WORK/err"
check "mld properties names its placeholders" grep -qF \
  "placeholders for stream my-stream (--stream or --stream-arn), application my-shardflow-app" "$WORK/err"
"$SHARDFLOW" mld properties --stream s --app a --region eu-west-1 > /dev/null 2> "$WORK/err"
check "... and says nothing when it is given every value" test ! -s "$WORK/err"
mistyped "a number out of range" "--batch-size: 0 is not in the range 1 to 16777216" run "$WORK/s" --batch-size 0
set +e
SHARDFLOW_FOLLOW=maybe "$SHARDFLOW" run "$WORK/s" > /dev/null 2> "$WORK/err"; rc=$?
set -e
check "a flag's bad value from the environment: exit 2, naming the variable" \
  grep -qF -- "--follow: maybe is not a valid value (from the environment: SHARDFLOW_FOLLOW=maybe)" "$WORK/err"

# Log lines: a timestamp and a level; plurals; --log-level drops; json is one object a line.
stamp='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
echo '{"k":1}' | "$SHARDFLOW" put "$WORK/p" --shards 2 2> "$WORK/err"
check "put's line has a timestamp and a level" grep -qE "$stamp info shardflow put: " "$WORK/err"
check "put counts in the singular" grep -qF "put: 1 record into $WORK/p (2 shards)" "$WORK/err"
echo '{"k":1}' | "$SHARDFLOW" --log-level warning put "$WORK/p" 2> "$WORK/err"
check "--log-level warning drops put's info line" test ! -s "$WORK/err"
printf '{"k":1}\n{"k":2}\n' | "$SHARDFLOW" put "$WORK/p" --log-format json 2> "$WORK/err"
check "--log-format json writes one object a line" \
  grep -qE '^\{"time":"[0-9T:.-]+Z","level":"info","message":"2 records into .* \(2 shards\)"\}$' \
  "$WORK/err"
set +e
"$SHARDFLOW" --log-level loud put "$WORK/p" < /dev/null > /dev/null 2>&1; rc=$?
set -e
check "an unknown level is a usage error" test $rc -eq 2
"$SHARDFLOW" --log-format json mld --flusher null < /dev/null > /dev/null 2> "$WORK/err"
check "the mld worker's lines are json too" \
  grep -qE '^\{"time":"[^"]+","level":"info","message":"session ended: 0 records, ' "$WORK/err"
check "mld --flusher null warns that nothing is written" \
  grep -qE '"level":"warning","message":"--flusher null: nothing is written' "$WORK/err"
set +e
"$SHARDFLOW" mld-connect nonsense > /dev/null 2> "$WORK/err"; rc=$?
set -e
check "mld-connect refuses a bad address (exit 2)" test $rc -eq 2
check "... in a log line naming the address" \
  grep -qE "$stamp error shardflow mld-connect: address: \"nonsense\" is neither" "$WORK/err"
"$SHARDFLOW" mld --help > "$WORK/help"
check "a duration option's help says that a bare number is seconds" \
  grep -q "a bare number is seconds" "$WORK/help"

# kpl-agg --key: the same key with or without a space after the colon (the aggregate's first
# bytes: the magic f3899ac2, then the partition key table's one entry "17": 0a 02 31 37).
first_bytes() { base64 -d | head -c 8 | od -An -tx1 | tr -d ' \n'; }
printf '{"user": 17}\n{"user":17}\n' | "$SHARDFLOW" kpl-agg --key user --records 1 \
  > "$WORK/agg" 2> "$WORK/err"
check "kpl-agg packs both lines" test "$(wc -l < "$WORK/agg")" -eq 2
check "the key of {\"user\": 17} is 17" test "$(sed -n 1p "$WORK/agg" | first_bytes)" = f3899ac20a023137
check "the key of {\"user\":17} is 17" test "$(sed -n 2p "$WORK/agg" | first_bytes)" = f3899ac20a023137
set +e
printf '{"user":17}\n{"name":"x"}\n' | "$SHARDFLOW" kpl-agg --key user > /dev/null 2> "$WORK/err"
rc=$?
set -e
check "a line without the field is bad input (exit 3)" test $rc -eq 3
check "... naming the line and the field" \
  grep -qF '<stdin>:2: no field "user" for the partition key' "$WORK/err"
finish
