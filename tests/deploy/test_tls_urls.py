"""TLS to Redis and PostgreSQL is asked for in their URLs, and the URLs reach the
clients as they are: a real Redis serving TLS only (a certificate made for the test),
reached by the keys client and the Celery broker connection through ``rediss://``; and
the test PostgreSQL, which serves no TLS, refused when the URL says ``sslmode=require``.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from simulations.keys_redis import keys_redis, reset_keys_redis
from tests.net import free_port

pytestmark = [pytest.mark.integration]


def make_certificates(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it."""
    ca_key, ca, key, csr, cert = (tmp / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = tmp / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    for cmd in (
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca]
        + ["-days", "2", "-subj", "/CN=montecarlo test CA"],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert]
        + ["-days", "2", "-extfile", ext],
    ):
        subprocess.run([str(c) for c in cmd], check=True, capture_output=True)
    return ca, cert, key


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory) -> Iterator[tuple[int, Path]]:
    tmp = tmp_path_factory.mktemp("tls")
    ca, cert, key = make_certificates(tmp)
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca)]
        + ["--tls-auth-clients", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            redis.Redis.from_url(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}").ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline and proc.poll() is None, "TLS redis-server did not start"
            time.sleep(0.1)
    yield port, ca
    proc.terminate()
    proc.wait(10)


def test_the_keys_client_speaks_tls_from_a_rediss_url(tls_redis, settings):
    port, ca = tls_redis
    settings.KEYS_REDIS_CLUSTER = False
    settings.KEYS_REDIS_URL = f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={ca}"
    reset_keys_redis()
    try:
        client = keys_redis()
        key = f"tls-test:{uuid.uuid4().hex}"
        client.set(key, "ok", ex=30)
        assert client.get(key) == "ok"
        assert type(client.connection_pool.get_connection()).__name__ == "SSLConnection"
        # the control: the port speaks TLS only, so plain Redis gets nowhere
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)).ping()
    finally:
        reset_keys_redis()


def test_the_celery_broker_connection_speaks_tls_from_a_rediss_url(tls_redis):
    from montecarlo.celery import app

    port, ca = tls_redis
    url = f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={ca}"
    with app.connection_for_write(url) as conn:
        queue = conn.SimpleQueue(f"tls-test-{uuid.uuid4().hex[:8]}")
        queue.put({"hello": "tls"})
        message = queue.get(timeout=5)
        assert message.payload == {"hello": "tls"}
        message.ack()
        queue.close()


@pytest.mark.django_db
def test_postgres_tls_options_in_the_url_reach_the_driver(settings):
    """The test PostgreSQL serves no TLS: ``sslmode=require`` from the URL must make the
    connection fail, and ``sslmode=disable`` must not."""
    import environ
    from django.db import connection

    base = connection.settings_dict
    url = f"postgres://{base['USER']}:{base['PASSWORD']}@{base['HOST']}:{base['PORT']}/{base['NAME']}"
    for mode, works in (("disable", True), ("require", False)):
        parsed = environ.Env.db_url_config(f"{url}?sslmode={mode}")
        assert parsed["OPTIONS"] == {"sslmode": mode}
        kwargs = dict(
            dbname=parsed["NAME"],
            user=parsed["USER"],
            password=parsed["PASSWORD"],
            host=parsed["HOST"],
            port=parsed["PORT"],
            connect_timeout=5,
            **parsed["OPTIONS"],
        )
        if works:
            psycopg.connect(**kwargs).close()
        else:
            with pytest.raises(psycopg.OperationalError, match="SSL"):
                psycopg.connect(**kwargs)
