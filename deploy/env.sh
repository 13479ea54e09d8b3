# The environment that points the project at the local services (what the caller
# has not set already). Sourced.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export DATABASE_URL="${DATABASE_URL:-postgres://montecarlo:montecarlo@127.0.0.1:$MC_PG_PORT/montecarlo}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$MC_REDIS_PORT/0}"
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-$REDIS_URL}"
export KEYS_REDIS_URL="${KEYS_REDIS_URL:-redis://127.0.0.1:$MC_REDIS_PORT/1}"
export REDIS_CLUSTER_URL="${REDIS_CLUSTER_URL:-redis://127.0.0.1:${MC_CLUSTER_PORTS%% *}/0}"
export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$MC_KAFKA_PORT}"
