#!/usr/bin/env bash
# mld-server --metrics: a fake daemon (this script, over mld-connect) feeds one shard and answers its
# checkpoints, once with ThrottlingException; /metrics then counts the records, bytes, flushes,
# checkpoints, the error by kind, millisBehindLatest and, after a second session for the shard, a
# restart; /healthz and /readyz answer. `mld --metrics` refuses a non-loopback address. Every
# process is ended by its PID; every wait is bounded.
source "$(dirname "$0")/lib.sh"

server_pid=
cleanup_server() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; }
trap 'cleanup_server; [ "${KEEP:-}" = 1 ] || rm -rf "$WORK"' EXIT

start_server() { # mld-server options...; sets port (metrics) and server_port
  local attempt
  for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    rm -f "$WORK/port"
    "$SHARDFLOW" mld-server --listen 127.0.0.1:0 --port-file "$WORK/port" --metrics "127.0.0.1:$port" \
      "$@" 2>>"$WORK/server.err" &
    server_pid=$!
    for _ in $(seq 1 500); do
      if [ -s "$WORK/port" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
        server_port=$(cat "$WORK/port")
        return 0
      fi
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.02
    done
    cleanup_server
  done
  return 1
}

metric() { # name{labels}: its value in the last scrape
  awk -v n="$1" '$1 == n {print $2}' "$WORK/metrics"
}
scrape() { curl -sf "http://127.0.0.1:$port/metrics" >"$WORK/metrics"; }

# The fake daemon's side of one session: send a line, or read one within 20 s and compare it.
send() { printf '%s\n' "$1" >&"${daemon[1]}"; }
expect() {
  local line=
  IFS= read -r -t 20 line <&"${daemon[0]}" || true
  [ "$line" = "$1" ] || { echo "  expected: $1"; echo "  got:      $line"; return 1; }
}

check "mld-server starts with --metrics" start_server --flusher "file:$WORK/out" \
  --checkpoint-interval 0 --flush-interval 0 --checkpoint-backoff 0
scrape
check "no shard yet: no per-shard counter" test -z "$(metric 'shardflow_records_total{shard="shardId-1"}')"
check "... the server's sessions are counted from 0" test "$(metric shardflow_mld_sessions_total)" = 0

init='{"action":"initialize","shardId":"shardId-1","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}'
rec() { printf '{"data":"%s","partitionKey":"k","sequenceNumber":"%s","subSequenceNumber":0}' "$1" "$2"; }
batch="{\"action\":\"processRecords\",\"millisBehindLatest\":1234,\"records\":[$(rec YWI= 1),$(rec Y2Q= 2),$(rec ZWY= 3)]}"
at3='{"action":"checkpoint","sequenceNumber":"3","subSequenceNumber":0}'
at_end='{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}'

coproc daemon { timeout -s KILL 60 "$SHARDFLOW" mld-connect "127.0.0.1:$server_port" 2>>"$WORK/connect.err"; }
connect_pid=$daemon_PID
send "$init"
check "the session is initialized" expect '{"action":"status","responseFor":"initialize"}'
send "$batch"
check "the batch is checkpointed at its last record" expect "$at3"
send "${at3%\}},\"error\":\"ThrottlingException\"}"
check "... retried after ThrottlingException" expect "$at3"
send "${at3%\}},\"error\":null}"
check "... and answered" expect '{"action":"status","responseFor":"processRecords"}'
scrape
check "records are counted per shard" test "$(metric 'shardflow_records_total{shard="shardId-1"}')" = 3
check "... their bytes" test "$(metric 'shardflow_bytes_total{shard="shardId-1"}')" = 6
check "... flushes" test "$(metric 'shardflow_flushes_total{shard="shardId-1"}')" -ge 1
check "... the confirmed checkpoint" \
  test "$(metric 'shardflow_mld_checkpoints_total{shard="shardId-1"}')" = 1
check "... the checkpoint error by kind" \
  test "$(metric 'shardflow_mld_checkpoint_errors_total{shard="shardId-1",kind="ThrottlingException"}')" = 1
check "... no other kind" \
  test "$(metric 'shardflow_mld_checkpoint_errors_total{shard="shardId-1",kind="other"}')" = 0
check "... millisBehindLatest" \
  test "$(metric 'shardflow_mld_millis_behind_latest{shard="shardId-1"}')" = 1234
check "... one active session" test "$(metric shardflow_mld_sessions_active)" = 1
check "... no restart yet" test "$(metric 'shardflow_restarts_total{shard="shardId-1"}')" = 0
check "... and the build" grep -q '^shardflow_build_info{version="' "$WORK/metrics"
send '{"action":"shardEnded"}'
check "the shard end is checkpointed" expect "$at_end"
send "${at_end%\}},\"error\":null}"
check "... and answered" expect '{"action":"status","responseFor":"shardEnded"}'
exec {daemon[1]}>&-
rc=0
wait "$connect_pid" || rc=$?
check "mld-connect ends cleanly when the daemon closes the session" test $rc -eq 0

# The daemon restarts the shard's worker: a second session for it is a restart.
printf '%s\n' "$init" | timeout -s KILL 60 "$SHARDFLOW" mld-connect "127.0.0.1:$server_port" \
  >/dev/null 2>>"$WORK/connect.err"
restarted() { scrape && test "$(metric 'shardflow_restarts_total{shard="shardId-1"}')" = 1; }
check "a second session for the shard counts as a restart" wait_for restarted
check "... the sessions are counted" test "$(metric shardflow_mld_sessions_total)" = 2
check "... and the checkpoints stay" \
  test "$(metric 'shardflow_mld_checkpoints_total{shard="shardId-1"}')" = 2
check "/healthz answers ok" test "$(curl -sf "http://127.0.0.1:$port/healthz")" = ok
check "/readyz is ready while the server listens" \
  grep -q '^listening; ' <(curl -sf "http://127.0.0.1:$port/readyz")
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=
check "mld-server stops on SIGTERM (exit 0)" test $rc -eq 0

rc=0
"$SHARDFLOW" mld --flusher null --metrics 10.1.2.3:9100 </dev/null >/dev/null 2>"$WORK/err" || rc=$?
check "mld --metrics on a non-loopback address is refused (exit 2)" test $rc -eq 2
check "... naming --allow-remote" grep -q -- "--allow-remote" "$WORK/err"
finish
