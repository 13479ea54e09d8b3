"""Charts of a result over HTTP, on the real PostgreSQL: SVG with its elements, PNG of
the asked size, a placeholder while there is no result, errors in JSON."""

from __future__ import annotations

import io

import pytest
from django.core.cache import cache
from PIL import Image

from simulations import services
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return factories.api_client("submit", "read")


@pytest.fixture
def done(api):
    body = {
        "assessmentId": "CH-1",
        "trades": factories.trades(80),
        "config": factories.config(paths=3000, rules={"profitTarget": 2500, "maxDrawdown": 2000, "ruinLevel": 45000}),
    }
    job_id = api.post("/simulations", body, format="json").json()["jobId"]
    services.run_job(job_id=job_id, worker_id="test:1")
    return job_id


def test_the_fan_as_svg_has_its_bands_and_rule_lines(api, done):
    response = api.get(f"/simulations/{done}/chart.svg")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert "immutable" in response["Cache-Control"]
    svg = response.content.decode()
    assert svg.startswith("<?xml") and "<svg" in svg
    for text in ("Equity over 80 trades", "median", "p5–p95", "target", "max drawdown floor", "ruin"):
        assert text in svg, text


def test_the_histogram_names_the_probabilities(api, done):
    svg = api.get(f"/simulations/{done}/chart.svg?chart=histogram").content.decode()
    assert "Final P&amp;L across 3,000 paths" in svg
    assert "P(pass)" in svg and "P(fail)" in svg and "P(ruin)" in svg


@pytest.mark.parametrize("chart", ["fan", "histogram"])
def test_a_png_has_the_asked_size_and_is_not_blank(api, done, chart):
    response = api.get(f"/simulations/{done}/chart.png?chart={chart}&width=640&height=360")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (640, 360)
    colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # drawn, not one flat colour


def test_a_chart_is_drawn_once_per_size(api, done, monkeypatch):
    from simulations import charts

    cache.clear()
    calls = []
    real = charts.render
    monkeypatch.setattr(charts, "render", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = api.get(f"/simulations/{done}/chart.svg").content
    assert api.get(f"/simulations/{done}/chart.svg").content == first and len(calls) == 1
    api.get(f"/simulations/{done}/chart.svg?width=500")
    assert len(calls) == 2


def test_a_job_without_a_result_gets_a_placeholder(api):
    job_id = api.post("/simulations", {"assessmentId": "CH-P"}, format="json").json()["jobId"]
    response = api.get(f"/simulations/{job_id}/chart.svg")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert "pending: no result yet" in response.content.decode()


@pytest.mark.parametrize(
    "path, status",
    [
        ("/simulations/8d3c5a52-0000-4000-8000-000000000000/chart.svg", 404),
        ("/simulations/not-a-uuid/chart.png", 404),
        ("/simulations/{done}/chart.svg?chart=pie", 400),
        ("/simulations/{done}/chart.svg?width=10", 400),
        ("/simulations/{done}/chart.svg?colour=red", 400),
        ("/simulations/{done}/chart.gif", 404),
    ],
)
def test_bad_chart_requests_are_json_errors(api, done, path, status):
    response = api.get(path.format(done=done), HTTP_ACCEPT="image/png")
    assert response.status_code == status, response.content[:200]
    assert response["Content-Type"].startswith("application/json")


def test_charts_need_the_read_scope_and_stay_within_the_client(api, done):
    assert factories.api_client("submit").get(f"/simulations/{done}/chart.svg").status_code == 403
    assert factories.api_client("read").get(f"/simulations/{done}/chart.svg").status_code == 404
