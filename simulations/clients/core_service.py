"""HTTP client for the platform's Core Service: trade histories and funded accounts.

Endpoints (JSON):
- ``GET /api/assessments/{id}/trades`` and ``GET /api/funded-accounts/{id}/trades``
  -> ``{"trades": [{"pnl": 12.5, "closedAt": "2026-01-05T10:00:00Z"}, ...]}``
- ``GET /api/funded-accounts?status=active&page=N``
  -> ``{"results": [{"id": "FA-1", ...}], "next": <page number or null>}``

Connect/read timeouts on every call, retries with exponential backoff on connection
errors and 429/5xx (urllib3 ``Retry``), and one error type for everything that goes
wrong, so a job fails with a clear reason instead of crashing its worker.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Iterator, Optional
from urllib.parse import quote

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from simulations.engine import EngineValidationError, TradeHistory


class CoreServiceError(Exception):
    """The Core Service could not be reached, or answered something unusable."""


class CoreServiceClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: str = "",
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=backoff,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def trade_history(
        self, *, assessment_id: Optional[str] = None, funded_account_id: Optional[str] = None
    ) -> TradeHistory:
        """The trades of a funded account (preferred when both are given) or an assessment."""
        if funded_account_id:
            path = f"/api/funded-accounts/{quote(str(funded_account_id), safe='')}/trades"
        elif assessment_id:
            path = f"/api/assessments/{quote(str(assessment_id), safe='')}/trades"
        else:
            raise CoreServiceError("need an assessment id or a funded account id")
        body = self._get(path)
        trades = body.get("trades") if isinstance(body, dict) else None
        if not isinstance(trades, list):
            raise CoreServiceError(f"Core Service answered {path} without a 'trades' list")
        try:
            history = TradeHistory.from_records(trades)
            history.validate()
            return history
        except EngineValidationError as exc:
            raise CoreServiceError(f"Core Service sent an unusable trade history: {exc}") from exc

    def active_funded_accounts(self) -> Iterator[str]:
        """Ids of every active funded account, following pagination."""
        page: Optional[Any] = 1
        seen_pages = 0
        while page is not None:
            body = self._get("/api/funded-accounts", params={"status": "active", "page": page})
            results = body.get("results") if isinstance(body, dict) else None
            if not isinstance(results, list):
                raise CoreServiceError("Core Service answered /api/funded-accounts without 'results'")
            for account in results:
                if not isinstance(account, dict) or not account.get("id"):
                    raise CoreServiceError("Core Service sent a funded account without an id")
                yield str(account["id"])
            page = body.get("next")
            seen_pages += 1
            if seen_pages > 10_000:
                raise CoreServiceError("Core Service pagination does not end")

    def _get(self, path: str, params: Optional[dict[str, Any]] = None) -> Any:
        url = self.base_url + path
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise CoreServiceError(f"Core Service unreachable at {url}: {exc.__class__.__name__}") from exc
        if response.status_code == 404:
            raise CoreServiceError(f"Core Service has no {path}")
        if response.status_code >= 400:
            raise CoreServiceError(f"Core Service answered {path} with HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise CoreServiceError(f"Core Service answered {path} with something that is not JSON") from exc


def core_service_client() -> CoreServiceClient:
    """This thread's client for the configured Core Service, kept for the next call.

    A client holds a connection pool: built anew for every job, each history fetch paid
    for a new session and a new TCP connection (keep-alive never helped). One per
    thread, since ``requests.Session`` is not documented as thread-safe, and one per
    process, since a pooled socket must not be shared with a forked child. A change of
    the settings (tests point them elsewhere) builds a new one.
    """
    key = (
        os.getpid(), settings.CORE_SERVICE_URL, settings.CORE_SERVICE_TOKEN, settings.CORE_SERVICE_CONNECT_TIMEOUT,
        settings.CORE_SERVICE_READ_TIMEOUT, settings.CORE_SERVICE_RETRIES, settings.CORE_SERVICE_BACKOFF,
    )
    cached = getattr(_clients, "entry", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    if cached is not None and cached[0][0] == key[0]:
        cached[1].session.close()  # settings changed; a forked child leaves its parent's pool alone
    client = CoreServiceClient(
        settings.CORE_SERVICE_URL,
        token=settings.CORE_SERVICE_TOKEN,
        connect_timeout=settings.CORE_SERVICE_CONNECT_TIMEOUT,
        read_timeout=settings.CORE_SERVICE_READ_TIMEOUT,
        retries=settings.CORE_SERVICE_RETRIES,
        backoff=settings.CORE_SERVICE_BACKOFF,
    )
    _clients.entry = (key, client)
    return client


_clients = threading.local()
