"""Fixtures of the worker-side tests."""

from __future__ import annotations

import os

import pytest

from simulations.keys_redis import reset_keys_redis


@pytest.fixture(params=["single", "cluster"])
def keys_backend(request, settings):
    """The keys Redis as one node, then as the 6-node Redis Cluster."""
    if request.param == "cluster":
        settings.KEYS_REDIS_CLUSTER = True
        settings.KEYS_REDIS_URL = os.environ["REDIS_CLUSTER_URL"]
    reset_keys_redis()
    yield request.param
    reset_keys_redis()
