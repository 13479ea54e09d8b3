"""API clients and their keys from the command line.

    manage.py api_keys create NAME --scopes submit,read,cancel   a client (or its new scopes) and a new key
        [--budget SAMPLES]                                        its work budget (trade samples queued at most)
    manage.py api_keys list                                       clients, scopes and keys (prefixes only)
    manage.py api_keys rotate NAME                                a new key; the client's older keys revoked
    manage.py api_keys revoke PREFIX                              revoke one key

A key is printed once, when it is made; only its hash is kept.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from simulations.errors import InvalidInput
from simulations.models import ApiClient
from simulations.services import access


class Command(BaseCommand):
    help = "Create, list, rotate and revoke API clients' keys."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="a client (or its new scopes) and a new key")
        create.add_argument("name")
        create.add_argument(
            "--scopes", default="submit,read,cancel", help=f"comma-separated, of {','.join(access.ALL_SCOPES)}"
        )
        create.add_argument(
            "--budget",
            type=int,
            default=None,
            help="trade samples queued at most (default API_CLIENT_MAX_QUEUED_SAMPLES)",
        )
        create.add_argument("--quiet", action="store_true", help="print the key alone")
        actions.add_parser("list", help="clients, their scopes and key prefixes")
        rotate = actions.add_parser("rotate", help="a new key; the older ones revoked")
        rotate.add_argument("name")
        revoke = actions.add_parser("revoke", help="revoke the key with this prefix")
        revoke.add_argument("prefix")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            getattr(self, f"_{opts['action']}")(opts)
        except InvalidInput as exc:
            raise CommandError(str(exc)) from exc

    def _create(self, opts: dict[str, Any]) -> None:
        scopes = [s.strip() for s in opts["scopes"].split(",") if s.strip()]
        client = access.create_client(name=opts["name"], scopes=scopes, work_budget=opts["budget"])
        _, secret = access.issue_key(client=client)
        self.stdout.write(secret if opts["quiet"] else f"client {client.name} ({', '.join(client.scopes)}): {secret}")

    def _list(self, opts: dict[str, Any]) -> None:
        for client in ApiClient.objects.prefetch_related("keys"):
            keys = ", ".join(f"{k.prefix}{' (revoked)' if k.revoked else ''}" for k in client.keys.all()) or "none"
            budget = client.work_budget if client.work_budget is not None else "default"
            self.stdout.write(f"{client.name}\t{','.join(client.scopes)}\tbudget: {budget}\tkeys: {keys}")

    def _rotate(self, opts: dict[str, Any]) -> None:
        client = ApiClient.objects.filter(name=opts["name"]).first()
        if client is None:
            raise CommandError(f"no client {opts['name']}")
        _, secret = access.rotate_keys(client=client)
        self.stdout.write(f"client {client.name}: {secret} (older keys revoked)")

    def _revoke(self, opts: dict[str, Any]) -> None:
        key = access.revoke_key(prefix=opts["prefix"])
        self.stdout.write(f"revoked {key.prefix} of {key.client.name}")
