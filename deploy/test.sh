#!/usr/bin/env bash
# Quick start, command 2: install and start what the tests need, then run the whole
# suite: ruff (lint and format), mypy (strict on the engine), the import layers, pytest.
# Extra arguments go to pytest (e.g. deploy/test.sh tests/simulations -k api).
source "$(dirname "$0")/lib.sh"
"$MC_ROOT/deploy/bootstrap.sh"
cd "$MC_ROOT"
log "ruff check";      .venv/bin/ruff check --quiet .
log "ruff format";     .venv/bin/ruff format --check --quiet .
log "mypy";            .venv/bin/mypy
log "import layers";   .venv/bin/lint-imports --no-cache >/dev/null || { .venv/bin/lint-imports --no-cache; exit 1; }
apt_install prometheus  # promtool for the rules' unit tests, and a real server that scrapes the processes
"$MC_ROOT/deploy/redis-exporter.sh" install  # Redis and the cluster, for the fleet's scrape test
"$MC_ROOT/deploy/nginx.sh" install  # the proxy in front of gunicorn, for the web server's tests
apt_install chromium chromium-driver  # a real browser for the pages' tests
"$MC_ROOT/deploy/services.sh" up
source "$MC_ROOT/deploy/env.sh"
# The suite owns Redis databases 5 (broker) and 6 (keys) and flushes them.
export CELERY_BROKER_URL="redis://127.0.0.1:$MC_REDIS_PORT/5"
export KEYS_REDIS_URL="redis://127.0.0.1:$MC_REDIS_PORT/6"
export API_THROTTLE_REDIS_URL="redis://127.0.0.1:$MC_REDIS_PORT/4"
exec .venv/bin/python -m pytest "$@"
