#!/usr/bin/env bash
# The Redis exporter (Debian's prometheus-redis-exporter), in the foreground, as the tests
# run it. One exporter serves every Redis it is asked about (Prometheus's multi-target
# pattern, /scrape?target=redis://host:port, see deploy/prometheus/prometheus.yml): the
# broker, with its queue lists, and each node of the keys' cluster.
#   deploy/redis-exporter.sh install
#   deploy/redis-exporter.sh run PORT      listen on 127.0.0.1:PORT
source "$(dirname "$0")/lib.sh"

install() { command -v prometheus-redis-exporter >/dev/null || apt_install prometheus-redis-exporter; }

case "${1:-}" in
  install) install ;;
  run)
    [ $# -eq 2 ] || die "usage: deploy/redis-exporter.sh run PORT"
    install
    exec prometheus-redis-exporter -web.listen-address "127.0.0.1:$2" -redis.addr "" -ping-on-connect
    ;;
  *) die "usage: deploy/redis-exporter.sh install | run PORT" ;;
esac
