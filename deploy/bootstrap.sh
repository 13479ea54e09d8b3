#!/usr/bin/env bash
# Create .venv and install requirements.txt into it; reinstall only when it changed.
source "$(dirname "$0")/lib.sh"

VENV="${MC_VENV:-$MC_ROOT/.venv}"
STAMP="$VENV/.requirements.sha256"

if ! command -v python3 >/dev/null; then apt_install python3 python3-venv python3-pip; fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$VENV"; }
fi
want=$(sha256sum "$MC_ROOT/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -r "$MC_ROOT/requirements.txt"
  echo "$want" > "$STAMP"
fi
