"""Names on the wire: camelCase out, camelCase or snake_case in, by one library.

djangorestframework-camel-case converts the API's bodies; the same functions convert
what arrives by other ways (Kafka events, stored inputs) before the engine, which
speaks Python's snake_case, sees it, and the engine's field names in error reports.
"""

from __future__ import annotations

from typing import Any

from djangorestframework_camel_case.util import camelize_re, underscore_to_camel, underscoreize


def snake_keys(data: Any) -> Any:
    """The same data with every mapping's keys in snake_case (nested ones too)."""
    return underscoreize(data)


def camel_name(path: str) -> str:
    """A dotted field path as the API spells it: ``config.rules.max_drawdown`` ->
    ``config.rules.maxDrawdown`` (camelCase stays as it is)."""
    return camelize_re.sub(underscore_to_camel, path)


def camel_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """Field reasons keyed by the API's names."""
    return {camel_name(field): reasons for field, reasons in errors.items()}
