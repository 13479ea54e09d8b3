#!/usr/bin/env bash
# Run the whole service on this machine: PostgreSQL, Redis and Kafka (started if they
# are not running), then web, worker, beat, the Kafka bridge and a stand-in for the
# platform's Core Service. Prints the URLs and an admin login; Ctrl-C stops everything
# it started. Settings come from the environment as everywhere (.env.example); the
# ports of this script's own processes:
#   MC_WEB_PORT (8000, nginx in front of gunicorn), MC_GUNICORN_PORT (8001),
#   MC_WEB_METRICS_PORT (9101), MC_CORE_PORT (28080), MC_WORKER_METRICS_PORT (9100),
#   MC_BRIDGE_METRICS_PORT (9108); MC_ADMIN_USER (admin), MC_ADMIN_PASSWORD (made up).
source "$(dirname "$0")/lib.sh"
"$MC_ROOT/deploy/bootstrap.sh"
"$MC_ROOT/deploy/nginx.sh" install
cd "$MC_ROOT"

web_port="${MC_WEB_PORT:-8000}"
gunicorn_port="${MC_GUNICORN_PORT:-8001}"
web_metrics="${MC_WEB_METRICS_PORT:-9101}"
core_port="${MC_CORE_PORT:-28080}"
worker_metrics="${MC_WORKER_METRICS_PORT:-9100}"
bridge_metrics="${MC_BRIDGE_METRICS_PORT:-9108}"
run_dir="$MC_VAR_DIR/run"
mkdir -p "$run_dir/logs"

# The services this script starts are the ones it stops; a running one is left running.
started_services=()
for service in postgres redis kafka; do
  if ! "$MC_ROOT/deploy/$service.sh" status >/dev/null 2>&1; then
    "$MC_ROOT/deploy/$service.sh" start
    started_services+=("$service")
  fi
done
source "$MC_ROOT/deploy/env.sh"
export CORE_SERVICE_URL="${CORE_SERVICE_URL:-http://127.0.0.1:$core_port}"
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-localhost,127.0.0.1,[::1]}"
export PYTHONUNBUFFERED=1
py=.venv/bin/python

pids=()
stop_all() {
  trap - INT TERM EXIT
  log "stopping"
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  local i
  for ((i = ${#started_services[@]} - 1; i >= 0; i--)); do "$MC_ROOT/deploy/${started_services[i]}.sh" stop; done
  log "stopped"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND...: in its own process group (so a stop reaches its children), logging to a file
start() {
  local name="$1"; shift
  setsid "$@" >>"$run_dir/logs/$name.log" 2>&1 &
  pids+=("$!")
}

$py manage.py migrate --noinput -v0
admin_user="${MC_ADMIN_USER:-admin}"
admin_password="${MC_ADMIN_PASSWORD:-$($py -c 'import secrets; print(secrets.token_urlsafe(12))')}"
MC_ADMIN_USER="$admin_user" MC_ADMIN_PASSWORD="$admin_password" $py manage.py shell -v0 -c "
import os
from django.contrib.auth import get_user_model
user, _ = get_user_model().objects.get_or_create(username=os.environ['MC_ADMIN_USER'])
user.is_staff = user.is_superuser = True
user.set_password(os.environ['MC_ADMIN_PASSWORD'])
user.save()"
# a key for calling the API from this machine (a client "local" with every scope)
api_key="$($py manage.py api_keys create local --scopes submit,read,cancel,operate --quiet)"

rm -rf "$run_dir/metrics-web" "$run_dir/metrics-worker"
mkdir -p "$run_dir/metrics-web" "$run_dir/metrics-worker"
start core-service $py -m tests.fakes.core_service --port "$core_port"
start web env PROMETHEUS_MULTIPROC_DIR="$run_dir/metrics-web" WEB_BIND="127.0.0.1:$gunicorn_port" \
  WEB_METRICS_PORT="$web_metrics" $py -m gunicorn -c deploy/gunicorn.conf.py montecarlo.wsgi
start proxy "$MC_ROOT/deploy/nginx.sh" run "$web_port" "127.0.0.1:$gunicorn_port" "$run_dir/nginx"
start worker env PROMETHEUS_MULTIPROC_DIR="$run_dir/metrics-worker" WORKER_METRICS_PORT="$worker_metrics" \
  $py -m celery -A montecarlo worker -Q simulations,maintenance -c "${WORKER_CONCURRENCY:-2}" -n "local@%h" --loglevel INFO
start beat $py -m celery -A montecarlo beat -S django_celery_beat.schedulers:DatabaseScheduler \
  --schedule "$run_dir/celerybeat-schedule" --loglevel INFO
start bridge env BRIDGE_METRICS_PORT="$bridge_metrics" $py manage.py kafka_bridge

wait_for "the web app" 60 curl -sf "http://127.0.0.1:$web_port/health"
wait_for "the worker" 120 $py manage.py worker_alive --node "local@$(hostname)" --timeout 2
wait_for "the Kafka bridge" 60 curl -sf "http://127.0.0.1:$bridge_metrics/metrics"
cat <<EOF

Monte Carlo risk service is running (logs in $run_dir/logs):
  API       http://127.0.0.1:$web_port/simulations
  admin     http://127.0.0.1:$web_port/admin/   user $admin_user, password $admin_password
  API key   $api_key   (header: Authorization: Api-Key <key>)
  schema    http://127.0.0.1:$web_port/schema
  health    http://127.0.0.1:$web_port/health  http://127.0.0.1:$web_port/ready
  metrics   http://127.0.0.1:$web_metrics/metrics (web)  http://127.0.0.1:$worker_metrics/metrics (worker)  http://127.0.0.1:$bridge_metrics/metrics (bridge)
  Core Service stand-in  $CORE_SERVICE_URL (funded accounts F-1..F-3, assessments A-1..A-3)
Try:
  curl -s http://127.0.0.1:$web_port/simulations -H "Authorization: Api-Key $api_key" -H 'content-type: application/json' -d '{"assessmentId": "A-1"}'
Press Ctrl-C to stop.
EOF
while true; do
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { log "a process exited (pid $pid); see $run_dir/logs"; exit 1; }
  done
  sleep 1
done
