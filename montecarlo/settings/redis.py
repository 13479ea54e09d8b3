"""Redis for our own keys (heartbeats, locks, caches): a single node or a cluster."""

from __future__ import annotations

from .env import env

# redis://host:port/db for a single node; with REDIS_CLUSTER=true the URL names any
# cluster node and redis-py RedisCluster discovers the rest.
KEYS_REDIS_URL = env.str("KEYS_REDIS_URL", default=env.str("REDIS_URL", default="redis://127.0.0.1:26379/1"))
KEYS_REDIS_CLUSTER = env.bool("REDIS_CLUSTER", default=False)

WORKER_HEARTBEAT_INTERVAL = env.float("WORKER_HEARTBEAT_INTERVAL", default=10.0)
WORKER_HEARTBEAT_TTL = env.int("WORKER_HEARTBEAT_TTL", default=30)
