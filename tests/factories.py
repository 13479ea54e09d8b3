"""Test data."""

from __future__ import annotations

import random
from typing import Any


def trades(
    n: int = 60, *, seed: int = 1, mean: float = 20.0, sd: float = 150.0, dated: bool = False
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        trade: dict[str, Any] = {"pnl": round(rng.gauss(mean, sd), 2)}
        if dated:
            trade["closedAt"] = f"2026-03-{1 + i // 4:02d}T{10 + i % 4}:00:00Z"
        out.append(trade)
    return out


def config(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "paths": 2000,
        "seed": 42,
        "startingBalance": 50_000,
        "rules": {"profitTarget": 2_500, "maxDrawdown": 2_000},
    }
    base.update(overrides)
    return base


def api_client(*scopes: str, name: str | None = None):
    """A DRF test client whose requests carry a new key of a new API client with these
    scopes (default: all). ``.record`` is the client, ``.secret`` the key."""
    import uuid

    from rest_framework.test import APIClient

    from simulations.services import access

    record = access.create_client(name=name or f"test-{uuid.uuid4().hex[:8]}", scopes=scopes or access.ALL_SCOPES)
    _, secret = access.issue_key(client=record)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    api.record, api.secret = record, secret
    return api


def auth_headers(*scopes: str) -> dict[str, str]:
    """Headers for ``requests`` calls to a live server, with a new client's key."""
    return {"Authorization": f"Api-Key {api_client(*scopes).secret}"}
