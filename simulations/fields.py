"""A JSON document stored compressed: results are written once, read whole, never queried.

A result is a few KB of JSON (percentiles, fan bands, histogram). Stored as ``jsonb``
it had to be parsed, TOAST-compressed and often moved out of line on every finished
job, which made the result the largest cost of a batch flush
(``benchmarks/batch_writes.py``). Compressed by the worker that computed it (zlib,
level 1: ~30 µs for 4 KB, ~2.6x smaller) it is an opaque ``bytea`` that stays inline
in the row; PostgreSQL only copies it. The price: SQL cannot look inside a result
(nothing does; list views read the few numbers they show from the decoded document).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from django.db import models

COMPRESSION_LEVEL = 1  # level 6 saves ~10% more for ~4x the CPU


def compress_json(document: Any) -> bytes:
    """Encode and compress; NaN or infinity is refused (it is not JSON)."""
    return zlib.compress(json.dumps(document, allow_nan=False, separators=(",", ":")).encode(), COMPRESSION_LEVEL)


def decompress_json(blob: bytes) -> Any:
    return json.loads(zlib.decompress(blob))


class CompressedJSONField(models.BinaryField):
    """Reads and writes Python JSON values; the column holds zlib-compressed JSON."""

    description = "JSON, zlib-compressed"

    def from_db_value(self, value: bytes | None, expression, connection) -> Any:
        return None if value is None else decompress_json(bytes(value))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return decompress_json(bytes(value))
        return value

    def get_prep_value(self, value: Any) -> bytes | None:
        if value is None or isinstance(value, (bytes, bytearray, memoryview)):
            return value  # None, or already compressed by the worker
        return compress_json(value)

    def value_to_string(self, obj) -> str:
        return json.dumps(self.value_from_object(obj))


class PlainJSONField(models.JSONField):
    """JSON kept as PostgreSQL ``json`` (its text, validated) instead of ``jsonb``.

    For outbox payloads: built by the batch flush's ``json_build_object``, read whole
    by the relay, never queried inside. ``jsonb`` made PostgreSQL convert every payload
    to its binary form on write, about 40% of a flush with two events per finished job
    (``benchmarks/batch_writes.py``). Other databases keep Django's default column.
    """

    def db_type(self, connection) -> str:
        return "json" if connection.vendor == "postgresql" else super().db_type(connection)

    def from_db_value(self, value: Any, expression, connection) -> Any:
        if value is None or isinstance(value, (dict, list, int, float, bool)):
            return value  # psycopg already decoded the json column
        return super().from_db_value(value, expression, connection)
