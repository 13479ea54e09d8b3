"""Who may do what: API keys per client with scopes, through Django's real stack on the
real PostgreSQL. No key is a 401, the wrong scope a 403, another client's job is not
there (404), idempotency keys are per client, the probes stay open."""

from __future__ import annotations

import datetime as dt
import io
import time

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from simulations import services
from simulations.models import ApiClient, ClientKey, SimulationJob
from simulations.services import access
from tests import factories

pytestmark = pytest.mark.django_db

BODY = {"assessmentId": "ACC-1", "trades": [{"pnl": 10.0}, {"pnl": -4.0}, {"pnl": 7.5}], "config": {"paths": 100}}


def test_without_a_valid_key_every_operation_is_a_401():
    job = services.create_job(assessment_id="ACC-0", trades=[1.0, -1.0], enqueue=False)
    anonymous, wrong = APIClient(), APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Api-Key nope.notakey")
    for api in (anonymous, wrong):
        for method, path in [
            ("post", "/simulations"),
            ("post", "/simulations/batch"),
            ("get", "/simulations"),
            ("get", f"/simulations/{job.id}"),
            ("post", f"/simulations/{job.id}/cancel"),
            ("get", "/workers"),
            ("get", "/schema"),
        ]:
            response = getattr(api, method)(path, BODY if method == "post" else None, format="json")
            assert response.status_code == 401, (path, response.content)
            assert response.json()["error"] == "unauthorized" and response["WWW-Authenticate"] == "Api-Key"
    assert SimulationJob.objects.count() == 1  # nothing was created


def test_the_probes_are_open_and_name_no_host():
    api = APIClient()
    assert api.get("/health").status_code == 200
    ready = api.get("/ready")
    assert ready.status_code in (200, 503)
    assert "127.0.0.1" not in ready.content.decode() and "localhost" not in ready.content.decode()


@pytest.mark.parametrize(
    "scopes, method, path, allowed",
    [
        (["read"], "post", "/simulations", False),
        (["submit"], "post", "/simulations", True),
        (["submit"], "get", "/simulations", False),
        (["read"], "get", "/simulations", True),
        (["read"], "post", "/simulations/batch", False),
        (["submit", "read"], "post", "/simulations/{job}/cancel", False),
        (["cancel"], "post", "/simulations/{job}/cancel", True),
        (["submit", "read", "cancel"], "get", "/workers", False),
        (["submit"], "get", "/schema", False),
        (["read"], "get", "/schema", True),
    ],
)
def test_each_operation_needs_its_scope(scopes, method, path, allowed):
    api = factories.api_client(*scopes)
    job = services.create_job(assessment_id="ACC-S", trades=[1.0, -1.0], enqueue=False, client=api.record)
    body = {"jobs": [BODY]} if path.endswith("batch") else BODY
    response = getattr(api, method)(path.format(job=job.id), body if method == "post" else None, format="json")
    if allowed:
        assert response.status_code < 400, response.content
    else:
        assert response.status_code == 403 and response.json()["error"] == "forbidden", response.content


def test_a_client_sees_and_cancels_only_its_own_jobs_and_an_operator_sees_all():
    alice, bob = factories.api_client("submit", "read", "cancel"), factories.api_client("submit", "read", "cancel")
    operator = factories.api_client("read", "operate")
    mine = alice.post("/simulations", BODY, format="json").json()["jobId"]
    theirs = bob.post("/simulations", {**BODY, "assessmentId": "ACC-2"}, format="json").json()["jobId"]
    system = services.create_job(assessment_id="ACC-K", trades=[1.0], enqueue=False)  # as Kafka's jobs are
    assert system.client.name == access.SYSTEM_CLIENT and system.client.is_system

    assert alice.get(f"/simulations/{mine}").status_code == 200
    assert alice.get(f"/simulations/{theirs}").status_code == 404
    assert alice.post(f"/simulations/{theirs}/cancel").status_code == 404
    assert SimulationJob.objects.get(pk=theirs).status == "pending"  # untouched
    assert [j["id"] for j in alice.get("/simulations").json()["jobs"]] == [mine]
    seen = {j["id"] for j in operator.get("/simulations").json()["jobs"]}
    assert seen == {mine, theirs, str(system.id)}
    assert operator.get(f"/simulations/{theirs}").status_code == 200
    assert alice.post(f"/simulations/{mine}/cancel").status_code == 200


def test_idempotency_keys_are_per_client_and_a_conflict_names_no_job():
    alice, bob = factories.api_client("submit"), factories.api_client("submit")
    a1 = alice.post("/simulations", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1").json()["jobId"]
    b1 = bob.post("/simulations", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1").json()["jobId"]
    assert a1 != b1  # the same key, two clients: two jobs
    assert alice.post("/simulations", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1").json()["jobId"] == a1
    other = {**BODY, "assessmentId": "ACC-9"}
    conflict = bob.post("/simulations", other, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert conflict.status_code == 409
    assert a1 not in conflict.content.decode() and b1 not in conflict.content.decode()


def test_keys_are_stored_hashed_rotated_and_revoked_from_the_command_line():
    out = io.StringIO()
    call_command("api_keys", "create", "desk", "--scopes", "submit,read", "--quiet", stdout=out)
    first = out.getvalue().strip()
    client = ApiClient.objects.get(name="desk")
    assert client.scopes == ["read", "submit"]
    stored = ClientKey.objects.get(client=client)
    assert first.startswith(stored.prefix + ".") and first.split(".", 1)[1] not in stored.hashed_key

    def works(secret: str) -> int:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
        return api.get("/simulations").status_code

    assert works(first) == 200
    out = io.StringIO()
    call_command("api_keys", "rotate", "desk", stdout=out)
    second = out.getvalue().split(": ", 1)[1].split()[0]
    assert works(second) == 200 and works(first) == 401
    out = io.StringIO()
    call_command("api_keys", "list", stdout=out)
    assert "desk\tread,submit" in out.getvalue() and "(revoked)" in out.getvalue()
    call_command("api_keys", "revoke", second.split(".")[0], stdout=io.StringIO())
    assert works(second) == 401


def test_operators_manage_clients_and_keys_in_the_admin(client):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "pw"))
    desk = access.create_client(name="desk-admin", scopes=["read"])
    access.issue_key(client=desk)
    assert client.get("/admin/simulations/apiclient/").status_code == 200
    page = client.get(f"/admin/simulations/apiclient/{desk.pk}/change/")
    assert page.status_code == 200 and "desk-admin" in page.content.decode()
    assert client.get("/admin/simulations/clientkey/").status_code == 200
    added = client.post("/admin/simulations/clientkey/add/", {"name": "new", "client": desk.pk}, follow=True)
    assert added.status_code == 200 and ClientKey.objects.filter(client=desk).count() == 2
    assert "The API key for new is:" in added.content.decode()  # shown once, on saving


def test_a_client_above_its_rate_gets_429_with_retry_after_and_others_go_on(settings):
    settings.API_RATE_LIMIT = "3/minute"
    busy, quiet = factories.api_client("read"), factories.api_client("read")
    assert [busy.get("/simulations").status_code for _ in range(3)] == [200, 200, 200]
    refused = busy.get("/simulations")
    assert refused.status_code == 429 and refused.json()["error"] == "throttled"
    assert "3/minute" in refused.json()["detail"] and "API_RATE_LIMIT" in refused.json()["detail"]
    assert 0 < int(refused["Retry-After"]) <= 60
    assert quiet.get("/simulations").status_code == 200  # a limit per client
    assert APIClient().get("/health").status_code == 200  # probes are never throttled


def test_the_limit_holds_for_requests_at_once_refusals_are_not_counted_and_the_window_slides(settings):
    """The real Redis script: 40 checks from 8 threads at once let exactly the limit through;
    the refused ones do not count; once the oldest leaves the window, one more passes."""
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from simulations.api.auth import ClientRateThrottle

    settings.API_RATE_LIMIT = "5/second"
    request = SimpleNamespace(user=factories.api_client("read").record)

    def check(_: int) -> tuple[bool, float | None]:
        throttle = ClientRateThrottle()
        allowed = throttle.allow_request(request, None)
        return allowed, None if allowed else throttle.wait()

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(check, range(40)))
    assert sum(allowed for allowed, _ in outcomes) == 5
    waits = [wait for allowed, wait in outcomes if not allowed]
    assert all(wait is not None and 0 <= wait <= 1.0 for wait in waits)
    time.sleep(max(w for w in waits if w is not None) + 0.05)  # the first five leave the window
    assert [check(0)[0] for _ in range(6)] == [True] * 5 + [False]


def test_the_rate_limit_fails_open_while_its_redis_is_away(settings):
    settings.API_RATE_LIMIT = "1/minute"
    settings.API_THROTTLE_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens
    api = factories.api_client("read")
    assert [api.get("/simulations").status_code for _ in range(3)] == [200, 200, 200]


def test_a_key_costs_one_query(django_assert_num_queries):
    api = factories.api_client("read")
    job = services.create_job(assessment_id="ACC-Q", trades=[1.0], enqueue=False, client=api.record)
    with django_assert_num_queries(2):  # the key with its client, then the job
        assert api.get(f"/simulations/{job.id}").status_code == 200


def test_the_key_lookup_reads_what_the_orm_reads_and_refuses_a_wrong_secret_or_a_revoked_key():
    client = access.create_client(name="lookup", scopes=["read", "submit"], work_budget=12_345)
    key, secret = access.issue_key(client=client, name="desk")
    ClientKey.objects.filter(pk=key.pk).update(expiry_date=timezone.now() - dt.timedelta(days=1))
    found = ClientKey.objects.get_from_key(secret)
    orm = ClientKey.objects.get_usable_keys().get(prefix=key.prefix)
    fields = [f.attname for f in ClientKey._meta.concrete_fields]
    assert [getattr(found, f) for f in fields] == [getattr(orm, f) for f in fields]
    assert found.has_expired and found.expiry_date.tzinfo is not None  # a datetime, not text
    client_fields = [f.attname for f in ApiClient._meta.concrete_fields]
    assert [getattr(found.client, f) for f in client_fields] == [getattr(orm.client, f) for f in client_fields]
    assert found.client.scopes == ["read", "submit"] and found.client.work_budget == 12_345  # JSON parsed
    assert not found._state.adding and found._state.db == "default"  # a loaded row, as the ORM's
    with pytest.raises(ClientKey.DoesNotExist):
        ClientKey.objects.get_from_key(f"{key.prefix}.{'x' * 32}")  # the prefix, another secret
    access.revoke_key(prefix=key.prefix)
    with pytest.raises(ClientKey.DoesNotExist):
        ClientKey.objects.get_from_key(secret)
