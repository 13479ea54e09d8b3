# Shared helpers for the local service scripts. Sourced, not run.
# Every service lives under $MC_VAR_DIR (default: <repo>/.var) on project-local
# ports, so several checkouts and the machine's own services never collide.
set -euo pipefail

MC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MC_VAR_DIR="${MC_VAR_DIR:-$MC_ROOT/.var}"
mkdir -p "$MC_VAR_DIR"

MC_PG_PORT="${MC_PG_PORT:-25432}"
MC_REDIS_PORT="${MC_REDIS_PORT:-26379}"
# Every port lies below Linux's ephemeral range (32768-60999): an outgoing connection
# can never hold one when a service binds it, at start or at a restart in a fault test.
# Cluster bus ports are port + 10000, so cluster ports stay below 22768.
MC_CLUSTER_PORTS="${MC_CLUSTER_PORTS:-21001 21002 21003 21004 21005 21006}"
MC_KAFKA_PORT="${MC_KAFKA_PORT:-29092}"
MC_KAFKA_CONTROLLER_PORT="${MC_KAFKA_CONTROLLER_PORT:-29093}"

# A secret key per machine for local runs (the settings refuse to start without one).
if [ -z "${SECRET_KEY:-}" ]; then
  if [ ! -s "$MC_VAR_DIR/secret_key" ]; then
    (umask 077; head -c 48 /dev/urandom | base64 | tr -d '\n/+=' > "$MC_VAR_DIR/secret_key")
  fi
  SECRET_KEY="$(cat "$MC_VAR_DIR/secret_key")"
  export SECRET_KEY
fi

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

apt_updated=0
# apt_install PKG... : install Debian packages that are missing, updating the index once.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "need Debian packages: ${missing[*]}"
  if [ "$apt_updated" -eq 0 ]; then
    apt-get update -q >/dev/null
    apt_updated=1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
}

# wait_for DESCRIPTION SECONDS COMMAND... : poll until COMMAND succeeds.
wait_for() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$deadline" ] && die "$what not ready after ${seconds}s"
    sleep 0.5
  done
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
