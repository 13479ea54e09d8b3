"""Schemathesis against the app's own OpenAPI schema, over HTTP (pytest-django's live
server) on the real PostgreSQL: valid and invalid examples of every operation, a
bounded number with a fixed seed. No response is a 5xx, every response is documented
and matches the schema, what the schema forbids is refused and what it allows of a
pending job's id is answered.
"""

from __future__ import annotations

import json

import pytest
import requests
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from schemathesis.specs.openapi import checks as openapi_checks

from tests import factories

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261202,
        "generation": {"mode": "all", "max-examples": 40, "database": "none"},
    }
)


# What /schema serves, made by the same generator when the tests are collected
# (schemathesis's lazy fixture loading does not run on pytest 9); the first test
# checks the served schema is this one.
OPENAPI = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))
schema = schemathesis.openapi.from_dict(OPENAPI, config=CONFIG)


def test_the_fuzzed_schema_is_the_one_the_app_serves(live_server):
    response = requests.get(
        f"{live_server.url}/schema",
        headers={**factories.auth_headers("read"), "Accept": "application/vnd.oai.openapi+json"},
        timeout=10,
    )
    assert response.status_code == 200 and response.json() == OPENAPI


@schema.parametrize()
def test_the_api_keeps_its_schema(case, live_server):
    # every scope, so that what is tested is the input, not the key
    headers = factories.auth_headers()
    case.call_and_validate(
        base_url=live_server.url,
        headers=headers,
        # a valid shape the engine still refuses (a permutation longer than the history,
        # a sample count above the limit) is a 400 with reasons, not a schema failure
        excluded_checks=[openapi_checks.positive_data_acceptance],
    )
