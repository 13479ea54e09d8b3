"""A small local HTTP server that speaks the Core Service's API, for tests and local runs.

It is the one thing we mock: the platform's Core Service cannot run here.
``python -m tests.fakes.core_service --port 28080 --accounts 3`` serves a few active
funded accounts and assessments (``A-1`` ...) with the sample history, for
``deploy/run.sh``.
Serves ``/api/assessments/{id}/trades``, ``/api/funded-accounts/{id}/trades`` and
``/api/funded-accounts?status=active&page=N``; tests set the data and can make
it fail (status codes, garbage, slowness) per path.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse


class FakeCoreService:
    def __init__(self, port: int = 0) -> None:
        self.assessment_trades: dict[str, list[Any]] = {}
        self.account_trades: dict[str, list[Any]] = {}
        self.active_accounts: list[str] = []
        self.account_rule_sets: dict[str, str] = {}  # account -> the rule set the platform names
        self.page_size = 2
        self.any_history: list[Any] | None = None  # set: every assessment and account has this history
        # path -> list of behaviours consumed one per request: int status, "garbage", ("sleep", s)
        self.faults: dict[str, list[Any]] = {}
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeCoreService:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _route(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any | None]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) == 4 and parts[:2] == ["api", "assessments"] and parts[3] == "trades":
            trades = self.assessment_trades.get(parts[2], self.any_history)
            return (
                (200, {"assessmentId": parts[2], "trades": trades})
                if trades is not None
                else (404, {"detail": "not found"})
            )
        if len(parts) == 4 and parts[:2] == ["api", "funded-accounts"] and parts[3] == "trades":
            trades = self.account_trades.get(parts[2], self.any_history)
            return (
                (200, {"fundedAccountId": parts[2], "trades": trades})
                if trades is not None
                else (404, {"detail": "not found"})
            )
        if parts == ["api", "funded-accounts"]:
            page = int(query.get("page", ["1"])[0])
            start = (page - 1) * self.page_size
            chunk = self.active_accounts[start : start + self.page_size]
            more = start + self.page_size < len(self.active_accounts)
            results = [
                {
                    "id": a,
                    "status": "active",
                    **({"ruleSet": self.account_rule_sets[a]} if a in self.account_rule_sets else {}),
                }
                for a in chunk
            ]
            return 200, {"results": results, "next": page + 1 if more else None}
        return 404, {"detail": "no route"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as the real service (behind its load balancer) speaks: a new
            # TCP connection per request would put the fake's own cost into every job.
            # Headers and body leave in separate writes, so without TCP_NODELAY Nagle's
            # algorithm and the client's delayed ACK hold every response for ~40 ms.
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                fake.requests.append(parsed.path)
                queue = fake.faults.get(parsed.path)
                if queue:
                    fault = queue.pop(0)
                    if isinstance(fault, tuple) and fault[0] == "sleep":
                        time.sleep(fault[1])
                    elif fault == "garbage":
                        return self._send(200, b"<html>not json</html>", "text/html")
                    elif isinstance(fault, int):
                        return self._send(fault, b'{"detail": "injected"}')
                status, body = fake._route(parsed.path, parse_qs(parsed.query))
                self._send(status, json.dumps(body).encode())

            def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def main() -> None:
    import argparse
    import csv
    from pathlib import Path

    parser = argparse.ArgumentParser(description="a stand-in Core Service with sample data")
    parser.add_argument("--port", type=int, default=28080)
    parser.add_argument(
        "--accounts", type=int, default=3, help="active funded accounts F-1 ... and assessments A-1 ..."
    )
    parser.add_argument("--account-prefix", default="F-", help="the funded accounts' ids: <prefix>1 ...")
    parser.add_argument("--page-size", type=int, default=2, help="accounts per page of the active list")
    parser.add_argument("--trades", type=Path, help="a JSON list of trades, the history of every id")
    args = parser.parse_args()
    fake = FakeCoreService(args.port)
    fake.page_size = args.page_size
    if args.trades is not None:
        fake.any_history = json.loads(args.trades.read_text())
        fake.active_accounts = [f"{args.account_prefix}{i}" for i in range(1, args.accounts + 1)]
        print(f"Core Service stand-in on {fake.url}: {args.accounts} accounts", flush=True)  # noqa: T201
    else:
        sample = Path(__file__).resolve().parents[2] / "samples/trades.csv"
        with sample.open() as f:
            trades = [{k: v for k, v in row.items() if v} for row in csv.DictReader(f)]
        for i in range(1, args.accounts + 1):
            account = f"{args.account_prefix}{i}"
            fake.account_trades[account] = fake.assessment_trades[f"A-{i}"] = trades
            fake.active_accounts.append(account)
        print(f"Core Service stand-in on {fake.url}: accounts {', '.join(fake.active_accounts)}", flush=True)  # noqa: T201
    fake._server.serve_forever()


if __name__ == "__main__":
    main()
