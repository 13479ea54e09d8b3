"""Production settings refuse to be unsafe: no shipped key, a start-up that stops on a
missing or published one, `check --deploy` clean with the documented production values,
JSON for a refused Host, and no wildcard hosts in the shipped manifests."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "api.example.com",
    "SECURE_PROXY_SSL": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_PRELOAD": "true",
    "SECURE_COOKIES": "true",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | env
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("key", ["", "short", "dev-only-insecure-key-change-me-0123456789abcdef"])
def test_without_debug_a_missing_short_or_published_key_stops_start_up(key):
    done = manage("check", DEBUG="false", SECRET_KEY=key)
    assert done.returncode != 0
    assert "SECRET_KEY must be a secret of 32 characters or more when DEBUG is off" in done.stderr


def test_with_debug_or_a_real_key_it_starts():
    assert manage("check", DEBUG="true").returncode == 0
    assert manage("check", DEBUG="false", SECRET_KEY=secrets.token_urlsafe(40)).returncode == 0


def test_check_deploy_is_clean_with_the_production_values():
    done = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_nothing_shipped_holds_a_usable_key_or_a_wildcard_host():
    env_example = (ROOT / ".env.example").read_text()
    assert not re.search(r"^SECRET_KEY=\S", env_example, re.M)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    values = yaml.safe_load((ROOT / "helm/montecarlo/values.yaml").read_text())
    hosts = [compose["x-app"]["environment"]["ALLOWED_HOSTS"], values["config"]["ALLOWED_HOSTS"]]
    assert all(h and "*" not in h for h in hosts), hosts
    assert "SECRET_KEY" not in compose["x-app"]["environment"]


@pytest.mark.django_db
def test_a_refused_host_is_answered_in_json_and_the_probes_answer_any_host(settings):
    settings.ALLOWED_HOSTS = ["api.example.com"]
    api = APIClient(HTTP_HOST="evil.example")
    refused = api.get("/simulations")
    assert refused.status_code == 400 and refused.json()["error"] == "bad_request"
    assert api.get("/health").status_code == 200  # the kubelet comes by pod IP
    assert api.get("/ready").status_code in (200, 503)


def test_kafka_clients_take_tls_and_sasl_from_the_settings(settings):
    from workers.kafka.clients import admin_config, consumer_config, producer_config

    settings.KAFKA_SECURITY = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "mc",
        "sasl.password": "pw",
        "ssl.ca.location": "",
    }
    for config in (admin_config(), producer_config(), consumer_config("g")):
        assert config["security.protocol"] == "SASL_SSL" and config["sasl.username"] == "mc"
        assert "ssl.ca.location" not in config  # unset settings are not passed


def test_the_bridges_session_timeout_and_static_membership_come_from_the_settings(settings):
    from workers.kafka.clients import consumer_config

    assert "group.instance.id" not in consumer_config("g")  # dynamic membership by default
    assert consumer_config("g")["session.timeout.ms"] == 10_000
    settings.KAFKA_GROUP_INSTANCE_ID, settings.KAFKA_SESSION_TIMEOUT_MS = "bridge-7f9c", 6_000
    config = consumer_config("g")
    assert config["group.instance.id"] == "bridge-7f9c" and config["session.timeout.ms"] == 6_000
