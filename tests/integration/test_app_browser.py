"""The Streamlit tester app served by `streamlit run` and rendered by a real headless Chromium against the live Ray
Serve service: the page shows the service's decision and probability for the applicant named in the URL, without
an error; its screenshot is kept (pytest's tmp dir and the small project's reports/app_screenshot.png)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest

from scoring.ray_runtime import free_port
from scoring.serving import request_schema
from serve.loopback import wait_until_answering

from ..conftest import REPO, SETTINGS
from .browser import CHROMIUM, Browser
from .conftest import stop_process

pytestmark = pytest.mark.integration

RENDERED = (
    "document.body.innerText.includes('Decision for applicant') "
    "&& !document.querySelector('[data-testid=\"stStatusWidget\"]') "
    "&& document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] canvas, "
    "[data-testid=\"stVegaLiteChart\"] svg').length >= 11"
)
"""Streamlit has finished the run: the decision is there, the 'running' widget gone, the 11 charts drawn (gauge,
reasons, nine population histograms)."""


@pytest.fixture(scope="module")
def streamlit_app(live_service, tiny_project, tmp_path_factory):
    """`streamlit run app/streamlit_app.py` on a free port, pointed at the live service and the small project."""
    url = live_service.url
    port = free_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    log = open(log_path, "w")  # noqa: SIM115
    env = {**os.environ, "SCORING_API_URL": url, "PROJECT_ROOT": str(tiny_project),
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/streamlit_app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=log)
    app_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{app_url}/_stcore/health", 60, lambda: process.poll() is None, log_path)
        assert httpx.get(f"{app_url}/_stcore/health", timeout=5).text == "ok"
        yield app_url
    finally:
        stop_process(process)
        log.close()


def test_the_page_shows_the_services_decision_in_a_real_browser(streamlit_app, live_service, tiny_project,
                                                                  tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package `chromium`): the browser test needs one")
    service_url = live_service.url
    applicants = pd.read_parquet(tiny_project / SETTINGS.paths.prepared_table("application_test"))
    identifier = int(applicants["SK_ID_CURR"].iloc[0])
    body = request_schema.records(applicants.iloc[[0]])[0]
    expected = httpx.post(f"{service_url}/score", json=body, timeout=30).json()

    with Browser(width=1400, height=2000) as browser:
        browser.open(f"{streamlit_app}/?applicant={identifier}")
        browser.wait_for(RENDERED, timeout=90)
        text, dom = browser.text(), browser.dom()
        browser.fit_height('[data-testid="stMain"]')
        browser.wait_for(RENDERED, timeout=30)
        shot = browser.screenshot(tmp_path / "app_screenshot.png")

    assert f"Decision for applicant {identifier}" in text
    assert expected["decision"].capitalize() in text
    assert f"probability of default {expected['probability']:.2%}" in text
    assert f"threshold {expected['threshold']:.1%}" in text
    assert "Where this applicant stands in the test population" in text
    assert 'data-testid="stException"' not in dom and "Traceback" not in text
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    kept = tiny_project / "reports" / "app_screenshot.png"
    shutil.copyfile(shot, kept)
    print(f"screenshot: {shot} (copied to {kept})")


def test_chromium_flags_do_not_need_a_display(tmp_path: Path):
    """The fixture's Chromium starts headless and answers DevTools; no X server, no network."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with Browser(width=400, height=300) as browser:
        browser.open("data:text/html,<h1 id=t>hello</h1>")
        browser.wait_for("document.getElementById('t')", settle=0)
        assert browser.text().strip() == "hello"
