#!/usr/bin/env bash
# mld-server and mld-connect against their clients: who may connect (loopback, unix:PATH, or
# --allow-remote), the connection cap and handshake timeout flags, a session whose flusher fails
# (its connection closes, mld-connect exits 1, and a new session resumes from the last checkpoint),
# mld-connect failing when the server dies mid-session, and (where a cgroup pids controller is
# writable) a thread limit that the server survives. Every process is ended by its PID; every wait
# is bounded.
source "$(dirname "$0")/lib.sh"

init='{"action":"initialize","shardId":"shardId-1","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}'
recs='{"action":"processRecords","records":[{"data":"YQ==","partitionKey":"k","sequenceNumber":"1","subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}'
statuses='{"action":"status","responseFor":"initialize"}
{"action":"status","responseFor":"processRecords"}'

server_pid=
start_server() { # port-file, mld-server options...
  rm -f "$1"
  local port_file="$1"; shift
  "$SHARDFLOW" mld-server --port-file "$port_file" "$@" 2>>"$WORK/server.err" & server_pid=$!
  wait_for test -s "$port_file"
}
stop_server() { # signal; returns the server's exit code
  local rc=0
  kill "-$1" "$server_pid"
  wait "$server_pid" || rc=$?
  return $rc
}

# A whole session through mld-connect ADDRESS; prints what came back.
session_via() {
  printf '%s\n%s\n' "$init" "$recs" | timeout -s KILL 60 "$SHARDFLOW" mld-connect "$1" 2>>"$WORK/connect.err"
}

# -- who may connect --------------------------------------------------------------------------------
for addr in 0.0.0.0:0 10.1.2.3:7400 '[::]:0' '[::ffff:10.0.0.1]:0' example.com:7400; do
  rc=0
  "$SHARDFLOW" mld-server --flusher null --listen "$addr" 2>"$WORK/err" || rc=$?
  check "--listen $addr is refused without --allow-remote (exit 2)" test $rc -eq 2
  check "... and the message names --allow-remote" grep -q -- "--allow-remote" "$WORK/err"
done
rc=0
"$SHARDFLOW" mld-server --flusher null --allow-remote --listen 192.0.2.1:0 2>"$WORK/err" || rc=$?
check "--allow-remote lets a non-loopback address through (binding it then fails here: exit 1)" \
  test $rc -eq 1
check "... at bind time" grep -q "cannot listen on 192.0.2.1" "$WORK/err"

loopbacks=(127.0.0.2:0 localhost:0)
if grep -q ' lo$' /proc/net/if_inet6 2>/dev/null; then loopbacks+=('[::1]:0'); fi
for addr in "${loopbacks[@]}"; do
  start_server "$WORK/port" --flusher null --listen "$addr"
  host=${addr%:0}
  out=$(session_via "$host:$(cat "$WORK/port")") && rc=0 || rc=$?
  check "a loopback address ($addr) serves a session" test "$out" = "$statuses"
  check "... and mld-connect exits 0 after a session the daemon ended" test $rc -eq 0
  stop_server TERM && rc=0 || rc=$?
  check "... and the server stops on SIGTERM with 0" test $rc -eq 0
done

# -- a Unix socket ----------------------------------------------------------------------------------
sock="$WORK/mld.sock"
start_server "$WORK/port" --flusher null --listen "unix:$sock"
check "the socket exists" test -S "$sock"
check "the socket is mode 0600" test "$(stat -c %a "$sock")" = 600
out=$(session_via "unix:$sock") && rc=0 || rc=$?
check "a session over unix:PATH works" test "$out" = "$statuses"
check "... and mld-connect exits 0" test $rc -eq 0
rc=0
"$SHARDFLOW" mld-server --flusher null --listen "unix:$sock" 2>"$WORK/err" || rc=$?
check "a second server on the live socket is refused (exit 1)" test $rc -eq 1
check "... saying why" grep -q "another server is listening" "$WORK/err"
stop_server TERM && rc=0 || rc=$?
check "the server stops with 0" test $rc -eq 0
check "the socket file is removed at exit" test ! -e "$sock"

start_server "$WORK/port" --flusher null --listen "unix:$sock"
stop_server KILL || true
check "a killed server leaves its socket file" test -S "$sock"
start_server "$WORK/port" --flusher null --listen "unix:$sock"
out=$(session_via "unix:$sock") && rc=0 || rc=$?
check "a new server replaces the stale socket file and serves" test "$out" = "$statuses"
stop_server TERM || true

: >"$WORK/file"
rc=0
"$SHARDFLOW" mld-server --flusher null --listen "unix:$WORK/file" 2>"$WORK/err" || rc=$?
check "a path that is not a socket is refused (exit 1) and left alone" test $rc -eq 1 -a -f "$WORK/file"

# -- the handshake timeout and the connection cap ---------------------------------------------------
threads_of() { ls "/proc/$1/task" | wc -l; }
more_threads_than() { [ "$(threads_of "$1")" -gt "$2" ]; }

start_server "$WORK/port" --flusher null --listen 127.0.0.1:0 --handshake-timeout 300ms
port=$(cat "$WORK/port")
started=$(date +%s%N) # before the connection: a slow fork of date must not shorten the time seen
exec {idle}<>"/dev/tcp/127.0.0.1/$port"
timeout -s KILL 30 cat <&"$idle" >/dev/null && rc=0 || rc=$?
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
exec {idle}>&-
check "a connection that sends nothing is closed by --handshake-timeout (not by our 30 s limit)" \
  test $rc -eq 0
check "... after at least the timeout, well within 30 s (${elapsed_ms} ms)" \
  test $elapsed_ms -ge 300 -a $elapsed_ms -lt 30000
stop_server TERM || true

start_server "$WORK/port" --flusher null --listen 127.0.0.1:0 --max-connections 1 --handshake-timeout 0
port=$(cat "$WORK/port")
base=$(threads_of "$server_pid")
exec {idle}<>"/dev/tcp/127.0.0.1/$port"
check "the idle connection holds the only session (its thread started)" \
  wait_for more_threads_than "$server_pid" "$base"
: >"$WORK/connect.err"
out=$(session_via "127.0.0.1:$port") && rc=0 || rc=$?
check "beyond --max-connections a connection is reset at once: mld-connect exits 1" test $rc -eq 1
check "... saying so" grep -q "broke the connection" "$WORK/connect.err"
check "... and the server logged the refusal" grep -q "max-connections" "$WORK/server.err"
# The refusal again, with the daemon's side over before the server accepts (the server is stopped
# meanwhile): mld-connect must fail all the same. Closing at once used to look like the end of a
# session the daemon had ended first, so mld-connect exited 0 when its lines went out first (a race
# that a loaded machine, e.g. ctest -j2, won now and then).
connect_threads() { ls "/proc/$1/task" 2>/dev/null | wc -l; }
stdin_copied() { [ "$(connect_threads "$1")" -eq 1 ]; } # its stdin-to-socket thread has ended
kill -STOP "$server_pid"
printf '%s\n%s\n' "$init" "$recs" | timeout -s KILL 60 "$SHARDFLOW" mld-connect "127.0.0.1:$port" \
  >"$WORK/out" 2>"$WORK/connect.err" & connect_pid=$!
check "the connector sent the daemon's lines and saw its stdin end while the server was stopped" \
  wait_for stdin_copied "$connect_pid"
kill -CONT "$server_pid"
rc=0
wait "$connect_pid" || rc=$?
check "... and still exits 1 when the server refuses the connection" test $rc -eq 1
exec {idle}>&-
stop_server TERM || true

# -- a session whose flusher fails ------------------------------------------------------------------
# A session is the stdio worker over a socket: when its flusher fails, it closes the connection
# without answering the batch, and the daemon re-leases the shard from its last checkpoint.
record() { # data-base64 sequence-number
  printf '{"data":"%s","partitionKey":"k","sequenceNumber":"%s","subSequenceNumber":0,"action":"record"}' \
    "$1" "$2"
}
batch() { printf '{"action":"processRecords","records":[%s],"millisBehindLatest":0}' "$1"; }
checkpoint_at() { printf '{"action":"checkpoint","sequenceNumber":"%s","subSequenceNumber":0}' "$1"; }
reply_to() { printf '{"action":"checkpoint","sequenceNumber":"%s","subSequenceNumber":0,"error":null}' "$1"; }
null_checkpoint='{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}'
status_for() { printf '{"action":"status","responseFor":"%s"}' "$1"; }
start_server "$WORK/port" --listen 127.0.0.1:0 --flusher "file:$WORK/flushed" --flush-interval 0 \
  --checkpoint-interval 0 --crash-after 3
port=$(cat "$WORK/port")
mkfifo "$WORK/failing-in"
: >"$WORK/connect.err"
timeout -s KILL 60 "$SHARDFLOW" mld-connect "127.0.0.1:$port" <"$WORK/failing-in" >"$WORK/out" \
  2>"$WORK/connect.err" & connect_pid=$!
exec {daemon}>"$WORK/failing-in"
# a and b are checkpointed at 2; c fails the flusher (the third record, --crash-after 3).
printf '%s\n%s\n%s\n%s\n' "$init" "$(batch "$(record YQ== 1),$(record Yg== 2)")" \
  "$(reply_to 2)" "$(batch "$(record Yw== 3)")" >&"$daemon"
rc=0
wait "$connect_pid" || rc=$?
exec {daemon}>&-
check "a session whose flusher fails closes its connection while the daemon waits: mld-connect exits 1" \
  test $rc -eq 1
check "... saying that the server closed first" \
  grep -q "closed the connection before the daemon" "$WORK/connect.err"
check "... after answering only what came before the failure, checkpointed at 2" \
  test "$(cat "$WORK/out")" = "$(status_for initialize)
$(checkpoint_at 2)
$(status_for processRecords)"
check "... and the server logged the failure" grep -q "session-[0-9]* failed" "$WORK/server.err"
# The daemon's re-lease: a new session from the checkpoint at 2 gets c again, and ends the shard.
relet='{"action":"initialize","shardId":"shardId-1","sequenceNumber":"2","subSequenceNumber":0}'
out=$(printf '%s\n%s\n%s\n%s\n%s\n' "$relet" "$(batch "$(record Yw== 3)")" "$(reply_to 3)" \
  '{"action":"shardEnded"}' '{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}' |
  timeout -s KILL 60 "$SHARDFLOW" mld-connect "127.0.0.1:$port" 2>>"$WORK/connect.err") && rc=0 || rc=$?
check "a new session for the shard resumes from its last checkpoint and ends it" test $rc -eq 0
check "... answering every action" test "$out" = "$(status_for initialize)
$(checkpoint_at 3)
$(status_for processRecords)
$null_checkpoint
$(status_for shardEnded)"
has_all() { local d; for d in "$@"; do grep -rq -- "\"d\":\"$d\"" "$WORK/flushed" || return 1; done; }
check "... and every record is in the output (a, b, c)" has_all a b c
stop_server TERM || true

# -- the daemon ends the session while a checkpoint reply is awaited -------------------------------
# Its outcome is unknown, so the session fails (as the stdio worker exits 1); the connector had sent
# its end already, so the server resets the connection: a close would look like a session that went
# well, and mld-connect would exit 0.
start_server "$WORK/port" --listen 127.0.0.1:0 --flusher null --checkpoint-interval 0 \
  --flush-interval 0
: >"$WORK/connect.err"
out=$(printf '%s\n%s\n' "$init" "$(batch "$(record YQ== 1)")" |
  timeout -s KILL 60 "$SHARDFLOW" mld-connect "127.0.0.1:$(cat "$WORK/port")" 2>"$WORK/connect.err") \
  && rc=0 || rc=$?
check "end of input while a checkpoint reply is awaited: mld-connect exits 1" test $rc -eq 1
check "... saying the server broke the connection" grep -q "broke the connection" "$WORK/connect.err"
check "... and the server logged why" grep -q "end of input while waiting for the reply" "$WORK/server.err"
check "... the session asked for its checkpoint first" test "$(printf '%s' "$out" | tail -n 1)" = "$(checkpoint_at 1)"
stop_server TERM || true

# -- mld-connect when the server dies mid-session ---------------------------------------------------
start_server "$WORK/port" --flusher null --listen 127.0.0.1:0
mkfifo "$WORK/in"
: >"$WORK/connect.err"
timeout -s KILL 60 "$SHARDFLOW" mld-connect "127.0.0.1:$(cat "$WORK/port")" <"$WORK/in" \
  >"$WORK/out" 2>"$WORK/connect.err" & connect_pid=$!
exec {daemon}>"$WORK/in"
echo "$init" >&"$daemon"
check "the session is initialized" wait_for grep -q initialize "$WORK/out"
stop_server KILL || true
rc=0
wait "$connect_pid" || rc=$?
check "mld-connect exits 1 when the server dies before the daemon ended the session" test $rc -eq 1
check "... with a clear line on stderr" grep -q "closed the connection before the daemon ended" \
  "$WORK/connect.err"
exec {daemon}>&-

# -- a thread limit (cgroup v1/v2 pids.max), where this machine lets us set one ---------------------
cg=
for root in /sys/fs/cgroup/pids /sys/fs/cgroup; do
  if [ -w "$root" ] && [ -e "$root/cgroup.procs" ] && mkdir "$root/shardflow-e2e-$$" 2>/dev/null; then
    cg="$root/shardflow-e2e-$$"
    [ -e "$cg/pids.max" ] || { rmdir "$cg"; cg=; }
    [ -n "$cg" ] && break
  fi
done
if [ -z "$cg" ]; then
  echo "skipped: no writable cgroup pids controller here (the C++ test injects thread failures)"
else
  rm -f "$WORK/port"
  bash -c 'echo $$ > "$1/cgroup.procs" && exec "$2" mld-server --listen 127.0.0.1:0 --port-file "$3" \
             --handshake-timeout 0 --flusher null' _ "$cg" "$SHARDFLOW" "$WORK/port" 2>>"$WORK/server.err" &
  server_pid=$!
  wait_for test -s "$WORK/port"
  port=$(cat "$WORK/port")
  base=$(cat "$cg/pids.current")
  echo $((base + 4)) >"$cg/pids.max"
  idle_fds=()
  for i in $(seq 12); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$port"
    idle_fds+=("$fd")
  done
  check "beyond the thread limit the server logs that a thread cannot start" \
    wait_for grep -q "cannot start a thread" "$WORK/server.err"
  check "... and keeps running" kill -0 "$server_pid"
  for fd in "${idle_fds[@]}"; do exec {fd}>&-; done
  pids_at_most() { [ "$(cat "$cg/pids.current")" -le "$1" ]; }
  check "the idle sessions end" wait_for pids_at_most "$base"
  out=$(session_via "127.0.0.1:$port") && rc=0 || rc=$?
  check "a real session works afterwards, under the same limit" test "$out" = "$statuses"
  stop_server TERM && rc=0 || rc=$?
  check "the server stops with 0" test $rc -eq 0
  rmdir "$cg"
fi
finish
