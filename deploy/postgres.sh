#!/usr/bin/env bash
# PostgreSQL 15 on a project-local data dir and port: install | start | stop | status.
source "$(dirname "$0")/lib.sh"

PGDATA="$MC_VAR_DIR/postgres"
PGLOG="$MC_VAR_DIR/postgres.log"
PG_USER=montecarlo PG_PASSWORD=montecarlo PG_DB=montecarlo

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] || die "PostgreSQL binaries not found"
  echo "$dir"
}
# The server refuses to run as root, so it runs as the Debian 'postgres' user.
as_pg() { runuser -u postgres -- "$@"; }

install() { apt_install postgresql postgresql-contrib; }

start() {
  install
  local bin; bin=$(pg_bin)
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    log "initdb $PGDATA"
    mkdir -p "$PGDATA"; chown postgres:postgres "$PGDATA"; chmod 700 "$PGDATA"
    as_pg "$bin/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 >/dev/null
    cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDATA'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  fi
  if ! as_pg "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    touch "$PGLOG"; chown postgres:postgres "$PGLOG"
    # the port on the command line, not in the data directory: a checkout keeps its data
    # when MC_PG_PORT changes
    as_pg "$bin/pg_ctl" -D "$PGDATA" -l "$PGLOG" -o "-p $MC_PG_PORT" -w -t 60 start >/dev/null
  fi
  wait_for postgres 60 "$bin/pg_isready" -h 127.0.0.1 -p "$MC_PG_PORT"
  local psql=("$bin/psql" -h 127.0.0.1 -p "$MC_PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'")" != 1 ]; then
    "${psql[@]}" -c "CREATE ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_PASSWORD'"
  fi
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname='$PG_DB'")" != 1 ]; then
    "${psql[@]}" -c "CREATE DATABASE $PG_DB OWNER $PG_USER"
  fi
  log "up: postgres://$PG_USER:***@127.0.0.1:$MC_PG_PORT/$PG_DB"
}

stop() {
  [ -s "$PGDATA/PG_VERSION" ] || return 0
  as_pg "$(pg_bin)/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
  log "stopped"
}

status() { "$(pg_bin)/pg_isready" -h 127.0.0.1 -p "$MC_PG_PORT"; }

"${1:-start}"
