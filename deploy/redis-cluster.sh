#!/usr/bin/env bash
# A local Redis Cluster, 3 masters + 3 replicas, for heartbeats, locks and caches
# (never the Celery broker: kombu has no cluster transport).
# install | start | stop | status | kill-master (stops one master, for failover tests).
source "$(dirname "$0")/lib.sh"

DIR="$MC_VAR_DIR/redis-cluster"
read -r -a PORTS <<<"$MC_CLUSTER_PORTS"

install() { apt_install redis-server redis-tools; }

# A node's ports (its own and its cluster bus port, +10000) lie in Linux's ephemeral
# range, so a passing outgoing connection can hold one for a moment: a node that could
# not bind is started again, up to three times.
start_node() {
  local port="$1" d="$DIR/$1" attempt
  mkdir -p "$d"
  redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
  for attempt in 1 2 3; do
    redis-server --port "$port" --bind 127.0.0.1 --dir "$d" --daemonize yes \
      --pidfile "$d/redis.pid" --logfile "$d/redis.log" \
      --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout 2000 --appendonly no --save '' \
      --maxmemory-policy noeviction
    for _ in $(seq 1 50); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
      sleep 0.2
    done
    log "cluster node $port did not start (attempt $attempt): $(tail -1 "$d/redis.log" 2>/dev/null)"
    sleep 2
  done
  die "cluster node $port not ready after 3 attempts (log: $d/redis.log)"
}

# Creates the cluster from fresh nodes; a failed attempt names the nodes that are down
# (with their logs' last lines), resets the rest and starts again, up to three times.
create() {
  local addrs=() attempt p
  for p in "${PORTS[@]}"; do addrs+=("127.0.0.1:$p"); done
  for attempt in 1 2 3; do
    log "creating cluster on ${PORTS[*]}"
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >/dev/null && return 0
    for p in "${PORTS[@]}"; do
      if redis-cli -p "$p" ping >/dev/null 2>&1; then
        redis-cli -p "$p" cluster reset hard >/dev/null
      else
        log "node $p is down (attempt $attempt): $(tail -3 "$DIR/$p/redis.log" 2>/dev/null | tr '\n' ' ')"
        start_node "$p"
      fi
    done
  done
  die "could not create the cluster after 3 attempts (logs: $DIR/*/redis.log)"
}

replicas_ok() { [ "$(redis-cli -p "${PORTS[0]}" cluster nodes 2>/dev/null | grep -c slave)" -ge $(( ${#PORTS[@]} / 2 )) ]; }

cluster_ok() { redis-cli -p "${PORTS[0]}" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; }

start() {
  install
  for p in "${PORTS[@]}"; do start_node "$p"; done
  if ! cluster_ok; then
    local known; known=$(redis-cli -p "${PORTS[0]}" cluster info | awk -F: '/cluster_known_nodes/{print $2}' | tr -d '\r')
    [ "${known:-1}" -le 1 ] && create
    wait_for "redis cluster" 60 cluster_ok
  fi
  # failover needs every master's replica attached
  wait_for "cluster replicas" 60 replicas_ok
  log "up: redis cluster on 127.0.0.1:${PORTS[0]}..${PORTS[-1]}"
}

stop() {
  for p in "${PORTS[@]}"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  log "stopped"
}

# Forget the cluster's state so the next start creates it anew.
reset() { stop; rm -rf "$DIR"; }

status() { cluster_ok && echo ok; }

"${1:-start}"
