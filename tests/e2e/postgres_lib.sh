# tests/e2e/postgres_lib.sh - a PostgreSQL 15 server for an end-to-end test (sourced after lib.sh;
# the test may define on_exit, run first by the EXIT trap): initdb + pg_ctl in a temporary
# directory, 127.0.0.1 and a free port (start_pg again restarts it on the same port), password
# authentication (user shardflow, password secret), as user postgres under root; stopped by its
# PID (stop_pg, and the EXIT trap). Sets $port, $conn (a libpq connection string) and sql().
declare -F on_exit > /dev/null || on_exit() { :; }
PG_BIN=/usr/lib/postgresql/15/bin
PGDIR="$(mktemp -d "${TMPDIR:-/tmp}/shardflow-pg.XXXXXX")"
pg_pid=""
stop_pg() {
  [ -n "$pg_pid" ] || return 0
  kill -INT "$pg_pid" 2>/dev/null || true
  for _ in $(seq 1 1500); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.02; done
  kill -KILL "$pg_pid" 2>/dev/null || true
  pg_pid=""
}
trap 'on_exit; stop_pg; rm -rf "$PGDIR"; [ "${KEEP:-}" = 1 ] || rm -rf "$WORK"' EXIT
trap 'exit 1' INT TERM HUP PIPE # a signal still stops the server (through the EXIT trap)

as=()
if [ "$(id -u)" = 0 ]; then chown postgres "$PGDIR"; as=(runuser -u postgres --); fi
echo secret > "$PGDIR/pw"
"${as[@]}" "$PG_BIN/initdb" -D "$PGDIR/data" -U shardflow --auth=scram-sha-256 \
  --pwfile="$PGDIR/pw" -N -E UTF8 --locale=C > "$PGDIR/initdb.log" 2>&1
start_pg() { # on $port when set, else on a free port
  local attempt
  for attempt in 1 2 3 4 5; do
    if [ -z "${port:-}" ] || [ "$attempt" -gt 1 ]; then
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    fi
    if "${as[@]}" "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 30 \
         -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$PGDIR" \
         start > /dev/null; then
      pg_pid=$(head -1 "$PGDIR/data/postmaster.pid"); return 0
    fi
  done
  echo "FAILED: PostgreSQL did not start"; cat "$PGDIR/server.log"; exit 1
}
port=""
start_pg
conn="host=127.0.0.1 port=$port user=shardflow password=secret dbname=postgres"
sql() { PGPASSWORD=secret psql -h 127.0.0.1 -p "$port" -U shardflow -d postgres -At -c "$1"; }
