# Private PostgreSQL and MariaDB servers for tests (bash; source after common.sh). Installed from Debian
# when missing (scripts/deps.sh), started in $TMP on free loopback ports, never as a system service;
# stopped by the EXIT trap of common.sh (their pids are registered with bg-style bookkeeping).
#   pg_start      -> PG_DSN, PG_PORT, PG_DATA     pg_stop / pg_restart
#   mysql_start   -> MYSQL_DSN, MYSQL_PORT, MYSQL_HOST, MYSQL_DB, MYSQL_USER
PG_BIN=
_db_pids=()
_db_cleanup() {
  [ -n "${PG_DATA:-}" ] && [ -n "$PG_BIN" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1
  local p; for p in "${_db_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  _cleanup
}
trap _db_cleanup EXIT

pg_start() {
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -z "$PG_BIN" ]; then "$ROOT/scripts/deps.sh" postgresql >/dev/null 2>&1; PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1); fi
  [ -x "$PG_BIN/initdb" ] || { echo "# postgresql is not installed"; return 1; }
  PG_DATA=$TMP/pg
  mkdir -p "$PG_DATA" && chown postgres "$PG_DATA" && chmod 700 "$PG_DATA"
  chmod o+x "$TMP"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U lookout >/dev/null 2>&1 || { echo "# initdb failed"; return 1; }
  PG_PORT=$(free_port)
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 30 \
    -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null 2>&1 \
    || { echo "# postgres did not start"; sed "s/^/#   /" "$PG_DATA/server.log" | tail; return 1; }
  PG_DSN="host=127.0.0.1 port=$PG_PORT user=lookout dbname=postgres"
}
pg_stop() { runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1; }
pg_restart() {
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 30 \
    -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null 2>&1
}

mysql_start() {
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || "$ROOT/scripts/deps.sh" mariadb-server >/dev/null 2>&1
  local bin=/usr/sbin/mariadbd
  [ -x "$bin" ] || { echo "# mariadb-server is not installed"; return 1; }
  local d=$TMP/mysql
  mkdir -p "$d"
  mariadb-install-db --no-defaults --datadir="$d/data" --user=root --auth-root-authentication-method=normal \
    >"$TMP/mysql-install.log" 2>&1 || { echo "# mariadb-install-db failed"; tail "$TMP/mysql-install.log" | sed 's/^/#   /'; return 1; }
  MYSQL_PORT=$(free_port)
  "$bin" --no-defaults --datadir="$d/data" --socket="$d/sock" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
    --user=root --skip-grant-tables --innodb-flush-log-at-trx-commit=2 --pid-file="$d/pid" >"$TMP/mysql.log" 2>&1 &
  _db_pids+=($!)
  local i
  for ((i = 0; i < 300; i++)); do [ -S "$d/sock" ] && break; sleep 0.1; done
  [ -S "$d/sock" ] || { echo "# mariadbd did not start"; tail "$TMP/mysql.log" | sed 's/^/#   /'; return 1; }
  mariadb --no-defaults -S "$d/sock" -e "CREATE DATABASE IF NOT EXISTS lookout" || return 1
  MYSQL_HOST=127.0.0.1 MYSQL_DB=lookout MYSQL_USER=root
  MYSQL_DSN="mysql://root@127.0.0.1:$MYSQL_PORT/lookout"
}
