"""The one way settings read the environment (django-environ): ``env``, which also
reads a ``.env`` file at the repository root when there is one."""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(environ.Env().str("MC_VAR_DIR", default=str(BASE_DIR / ".var")))

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")
