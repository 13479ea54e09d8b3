#!/usr/bin/env bash
# Redis 7 as the Celery broker, on a project-local port: install | start | stop | status.
# noeviction: an evicted kombu binding key loses messages (Celery redis.rst "Caveats").
source "$(dirname "$0")/lib.sh"

DIR="$MC_VAR_DIR/redis"

install() { apt_install redis-server redis-tools; }

start() {
  install
  mkdir -p "$DIR"
  if ! redis-cli -p "$MC_REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --port "$MC_REDIS_PORT" --bind 127.0.0.1 --dir "$DIR" \
      --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" \
      --maxmemory-policy noeviction --appendonly yes --save ''
  fi
  wait_for redis 30 redis-cli -p "$MC_REDIS_PORT" ping
  log "up: redis://127.0.0.1:$MC_REDIS_PORT"
}

stop() {
  redis-cli -p "$MC_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  log "stopped"
}

status() { redis-cli -p "$MC_REDIS_PORT" ping; }

"${1:-start}"
