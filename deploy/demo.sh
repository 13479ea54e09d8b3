#!/usr/bin/env bash
# Quick start, command 1: one simulation end to end on embedded defaults
# (SQLite, no servers): create the job, claim it, simulate, store, print.
source "$(dirname "$0")/lib.sh"
"$MC_ROOT/deploy/bootstrap.sh"
cd "$MC_ROOT"
export DATABASE_URL="${DEMO_DATABASE_URL:-sqlite:///$MC_VAR_DIR/quickstart.sqlite3}"
.venv/bin/python manage.py migrate --noinput -v0
exec .venv/bin/python manage.py simulate samples/trades.csv --paths 100000 --seed 7 \
  --profit-target 6000 --max-drawdown 5000 --daily-loss-limit 2500 "$@"
