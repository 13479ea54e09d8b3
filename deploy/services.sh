#!/usr/bin/env bash
# Install and start (or stop) every service the tests use, idempotently:
# PostgreSQL, Redis (broker), the Redis Cluster and Kafka.   services.sh up|down|status
source "$(dirname "$0")/lib.sh"
here="$MC_ROOT/deploy"
case "${1:-up}" in
  up)     for s in postgres redis redis-cluster kafka; do "$here/$s.sh" start; done ;;
  down)   for s in kafka redis-cluster redis postgres; do "$here/$s.sh" stop; done ;;
  status) for s in postgres redis redis-cluster kafka; do printf '%s: ' "$s"; "$here/$s.sh" status || true; done ;;
  *)      die "usage: services.sh up|down|status" ;;
esac
