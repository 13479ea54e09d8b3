"""Names on the wire: camelCase out, camelCase or snake_case in, by one library.

djangorestframework-camel-case converts the API's bodies; the same functions convert
what arrives by other ways (Kafka events, stored inputs) before the engine, which
speaks Python's snake_case, sees it, and the engine's field names in error reports.
"""

from __future__ import annotations

import functools
from typing import Any

from djangorestframework_camel_case.util import camel_to_underscore, camelize_re, underscore_to_camel

# The library's conversion, remembered: a history repeats a few keys a million times,
# and each conversion is a regular expression (≈ 5 µs).
snake_name = functools.lru_cache(maxsize=4096)(camel_to_underscore)


def snake_keys(data: Any) -> Any:
    """The same data with every mapping's keys in snake_case (nested ones too): the
    library's ``underscoreize`` for JSON's values, with the names remembered. Its own
    walk converts every key again (≈ 0.1 ms for a job's config, ≈ 7 µs here), and a job
    is converted four times between the request and the engine."""
    if isinstance(data, dict):
        return {snake_name(key) if isinstance(key, str) else key: snake_keys(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [snake_keys(item) for item in data]
    return data


def snake_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: each object's keys in snake_case as it is
    decoded, instead of a second walk over the whole document."""
    return {snake_name(key): value for key, value in pairs}


def camel_name(path: str) -> str:
    """A dotted field path as the API spells it: ``config.rules.max_drawdown`` ->
    ``config.rules.maxDrawdown`` (camelCase stays as it is)."""
    return camelize_re.sub(underscore_to_camel, path)


def camel_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """Field reasons keyed by the API's names."""
    return {camel_name(field): reasons for field, reasons in errors.items()}


MAX_DEPTH = 32  # a request is at most {"jobs": [{"trades": [{...}]}]}: five levels


def depth_of(data: Any) -> int:
    """How deeply lists and objects nest in ``data``, counted without recursion (so
    data too deep for Python's own walkers gets an answer), up to ``MAX_DEPTH`` + 1.
    Only containers are visited: a history's numbers and strings cost a type check."""
    if not isinstance(data, (dict, list)):
        return 0
    deepest, stack = 1, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        for child in value.values() if isinstance(value, dict) else value:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return deepest


def nul_paths(data: Any, prefix: str) -> list[str]:
    """Paths of strings (keys too) with a NUL character, which PostgreSQL's JSON refuses."""
    found, stack = [], [(prefix, data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                found.append(path)
        elif isinstance(value, dict):
            for key, child in value.items():
                if "\x00" in str(key):
                    found.append(path)
                stack.append((f"{path}.{key}", child))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(value))
    return sorted(set(found))
