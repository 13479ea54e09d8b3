"""PostgreSQL in every real deployment; SQLite only for the server-free quick start."""

from __future__ import annotations

from .env import VAR_DIR, env

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'quickstart.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes may share the quick-start file: wait for the write lock.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # The covering index's INCLUDE column is PostgreSQL's; on SQLite the index works without it.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
