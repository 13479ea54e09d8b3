"""The Redis that holds our own keys (heartbeats, locks): one node or a cluster.

Chosen by settings: ``REDIS_CLUSTER=true`` makes ``KEYS_REDIS_URL`` the address of
one or more cluster nodes (comma-separated), and redis-py's ``RedisCluster`` starts from
the first that answers and finds the rest, follows MOVED
redirections and re-reads the topology after a failover. Single-key commands route
by slot; keys that must live together share a hash tag (``{hb}`` below).
One client per process, created lazily so it is never shared across a fork.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import redis
from django.conf import settings
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from simulations.process import PerProcess

KeysRedis = redis.Redis | RedisCluster


def keys_redis() -> KeysRedis:
    return _client.get()


def reset_keys_redis() -> None:
    """Forget the client (after a settings change in tests)."""
    _client.reset()


def _connect() -> KeysRedis:
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), 8)
    common = dict(socket_timeout=2.0, socket_connect_timeout=2.0, decode_responses=True, retry=retry)
    if settings.KEYS_REDIS_CLUSTER:
        urls = [url.strip() for url in settings.KEYS_REDIS_URL.split(",") if url.strip()]
        # every listed node is a place to start from (credentials and TLS from the first URL)
        nodes = [ClusterNode(parsed.hostname or "localhost", parsed.port or 6379) for parsed in map(urlsplit, urls)]
        return RedisCluster.from_url(urls[0], startup_nodes=nodes, **common)
    return redis.Redis.from_url(settings.KEYS_REDIS_URL, health_check_interval=15, **common)


_client: PerProcess[KeysRedis] = PerProcess(_connect)
