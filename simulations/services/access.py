"""API clients and their keys: create, issue, rotate, revoke. Keys are made and stored
(hashed) by djangorestframework-api-key; the secret is shown once, when it is issued."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from simulations.errors import InvalidInput
from simulations.models import ApiClient, ClientKey, Scope

SYSTEM_CLIENT = "system"  # owns the jobs from Kafka, the daily run and the command line
ALL_SCOPES = [scope.value for scope in Scope]


def system_client() -> ApiClient:
    client, _ = ApiClient.objects.get_or_create(
        name=SYSTEM_CLIENT, defaults={"is_system": True, "scopes": list(ALL_SCOPES)}
    )
    return client


def create_client(*, name: str, scopes: Iterable[str], work_budget: int | None = None) -> ApiClient:
    """A new client, or the client of that name with these scopes (and this work budget,
    when one is given: trade samples queued at most; ``None`` keeps it)."""
    scopes = sorted(set(scopes))
    errors: dict[str, list[str]] = {}
    if unknown := [s for s in scopes if s not in ALL_SCOPES]:
        errors["scopes"] = [f"unknown: {', '.join(unknown)}; any of {', '.join(ALL_SCOPES)}"]
    if not name.strip() or len(name) > 64:
        errors["name"] = ["1 to 64 characters"]
    if work_budget is not None and not 0 <= work_budget < 2**63:
        errors["budget"] = ["a number of trade samples, 0 or more"]
    if errors:
        raise InvalidInput(errors)
    client, created = ApiClient.objects.get_or_create(
        name=name, defaults={"scopes": scopes, "work_budget": work_budget}
    )
    changed = {"scopes": scopes} if client.scopes != scopes else {}
    if work_budget is not None and client.work_budget != work_budget:
        changed["work_budget"] = work_budget
    if not created and changed:
        for field, value in changed.items():
            setattr(client, field, value)
        client.save(update_fields=list(changed))
    return client


def issue_key(*, client: ApiClient, name: str = "") -> tuple[ClientKey, str]:
    """A new key for the client: the record, and the secret (shown this once)."""
    return ClientKey.objects.create_key(client=client, name=(name or client.name)[:50])


def rotate_keys(*, client: ApiClient) -> tuple[ClientKey, str]:
    """A new key for the client, and every older key of it revoked."""
    with transaction.atomic():
        ClientKey.objects.filter(client=client, revoked=False).update(revoked=True)
        return issue_key(client=client)


def revoke_key(*, prefix: str) -> ClientKey:
    """Revoke the key with this prefix (the part before the dot); it cannot be undone."""
    key = ClientKey.objects.filter(prefix=prefix).first()
    if key is None:
        raise InvalidInput({"prefix": [f"no key {prefix}"]})
    key.revoked = True
    key.save(update_fields=["revoked"])
    return key
