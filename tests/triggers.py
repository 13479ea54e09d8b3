"""A database that refuses some writes, for tests of what a failed write leaves behind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def refusing(table: str, event: str, condition: str, message: str, *params: object) -> Iterator[None]:
    """A trigger that raises ``message`` (SQLSTATE 40001, "retry me") for each row of
    ``table`` the ``event`` touches where ``condition`` (on NEW) holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE OR REPLACE FUNCTION mc_test_refuse() RETURNS trigger AS $$
            BEGIN
              IF {condition} THEN RAISE EXCEPTION '{message}' USING ERRCODE = '40001'; END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql""",
            list(params),
        )
        cursor.execute(
            f"CREATE TRIGGER mc_test_refuse BEFORE {event} ON {table} FOR EACH ROW EXECUTE FUNCTION mc_test_refuse()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS mc_test_refuse ON {table}")
