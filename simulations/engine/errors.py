"""Errors the engine raises for input it cannot simulate."""

from __future__ import annotations


class EngineValidationError(ValueError):
    """Input that cannot be simulated, with reasons per field.

    ``errors`` maps a field's path (snake_case, e.g. ``rules.max_drawdown``) to a
    list of human-readable reasons, so callers can answer with a 400 that names
    every problem at once (the service spells the paths the API's way).
    """

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = {field: list(reasons) for field, reasons in errors.items()}
        summary = "; ".join(f"{f}: {', '.join(r)}" for f, r in self.errors.items())
        super().__init__(summary)

    @classmethod
    def single(cls, field: str, reason: str) -> EngineValidationError:
        return cls({field: [reason]})
