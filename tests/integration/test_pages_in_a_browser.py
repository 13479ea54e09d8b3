"""The pages as a person sees them: a real headless Chromium (Debian's, driven by
selenium through chromedriver) against the app over HTTP on the real PostgreSQL. It
signs in to the admin, opens a completed job and finds both charts drawn; it opens
``/docs`` and finds every operation of the schema."""

from __future__ import annotations

import io
import shutil

import pytest
from django.contrib.auth import get_user_model
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from simulations import services
from tests import factories

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "deploy/test.sh installs Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(arg)
    session = webdriver.Chrome(service=Service(driver), options=options)
    session.set_page_load_timeout(30)
    yield session
    session.quit()


def sign_in(browser, base: str) -> None:
    get_user_model().objects.create_superuser("ops", "ops@example.com", "a-long-password")
    browser.get(f"{base}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("ops")
    browser.find_element(By.NAME, "password").send_keys("a-long-password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 10).until(expected_conditions.presence_of_element_located((By.ID, "user-tools")))


def test_an_operator_sees_a_jobs_charts_in_the_admin(browser, live_server):
    job = services.create_job(
        assessment_id="BROWSER-1", trades=factories.trades(90), config=factories.config(), enqueue=False
    )
    services.run_job(job_id=job.id, worker_id="test:1")
    sign_in(browser, live_server.url)
    browser.get(f"{live_server.url}/admin/simulations/simulationjob/")
    assert "BROWSER-1" in browser.page_source and "P(pass)" in browser.page_source
    browser.get(f"{live_server.url}/admin/simulations/simulationjob/{job.id}/change/")
    charts = browser.find_elements(By.CSS_SELECTOR, ".mc-charts svg")
    assert len(charts) == 2
    for chart in charts:  # laid out, with the drawing inside
        assert chart.size["width"] > 300 and chart.size["height"] > 150
        assert chart.find_elements(By.CSS_SELECTOR, "path")
    shot = Image.open(io.BytesIO(charts[0].screenshot_as_png)).convert("RGB")
    colours = shot.getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50, "the chart's screenshot is blank"
    assert "95% interval" in browser.page_source


def test_the_docs_page_shows_every_operation(browser, live_server):
    sign_in(browser, live_server.url)
    browser.get(f"{live_server.url}/docs")
    WebDriverWait(browser, 20).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock-summary-path"))
    )
    shown = {
        (
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.lower(),
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"),
        )
        for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")
    }
    schema = factories.api_client("read").get("/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    expected = {(method, path) for path, ops in schema["paths"].items() for method in ops}
    assert shown == expected and len(expected) >= 8
