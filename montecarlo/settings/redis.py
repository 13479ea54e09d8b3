"""Redis for our own keys (heartbeats, locks, caches): a single node or a cluster."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .env import env

# redis://host:port/db for a single node; with REDIS_CLUSTER=true one or more cluster
# nodes, comma-separated: redis-py's RedisCluster starts from the first that answers and
# discovers the rest, so a process starts while any one of them is down.
KEYS_REDIS_URL = env.str("KEYS_REDIS_URL", default=env.str("REDIS_URL", default="redis://127.0.0.1:26379/1"))
KEYS_REDIS_CLUSTER = env.bool("REDIS_CLUSTER", default=False)
if "," in KEYS_REDIS_URL and not KEYS_REDIS_CLUSTER:
    raise ImproperlyConfigured("KEYS_REDIS_URL lists several nodes: that is a cluster, set REDIS_CLUSTER=true")

WORKER_HEARTBEAT_INTERVAL = env.float("WORKER_HEARTBEAT_INTERVAL", default=10.0)
WORKER_HEARTBEAT_TTL = env.int("WORKER_HEARTBEAT_TTL", default=30)
