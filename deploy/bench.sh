#!/usr/bin/env bash
# Run a benchmark against the real services: deploy/bench.sh engine|charts|logs|batch_writes|end_to_end|api_requests [args]
source "$(dirname "$0")/lib.sh"
"$MC_ROOT/deploy/bootstrap.sh"
name="${1:?usage: deploy/bench.sh engine|charts|logs|batch_writes|end_to_end|api_requests [args]}"; shift
if [ "$name" != engine ] && [ "$name" != charts ] && [ "$name" != logs ]; then
  # only what the benchmark talks to: an idle Kafka JVM alone costs a core ~20%
  if [ "$name" = batch_writes ]; then "$MC_ROOT/deploy/postgres.sh" start; else "$MC_ROOT/deploy/services.sh" up; fi
  source "$MC_ROOT/deploy/env.sh"
  # benchmarks own Redis database 7 as their broker
  export CELERY_BROKER_URL="redis://127.0.0.1:$MC_REDIS_PORT/7"
  (cd "$MC_ROOT" && .venv/bin/python manage.py migrate --noinput -v0)
fi
cd "$MC_ROOT"
exec .venv/bin/python -m "benchmarks.$name" "$@"
