"""The real Ray Serve application on 127.0.0.1: same answers as in-process scoring, 4xx for bad input (never a 500),
still answering afterwards and under 64 concurrent clients, and the production log written by the replica."""
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pandas as pd
import pytest

from scoring.serving import request_schema
from serve.api import build_api

from ..conftest import SETTINGS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def applicants(tiny_project):
    return pd.read_parquet(tiny_project / SETTINGS.paths.prepared_table("application_test")).head(64)


@pytest.fixture(scope="module")
def in_process(tiny_project):
    return build_api(tiny_project, registry=False, production_log=False)


def test_served_answers_equal_in_process_scoring(live_service, applicants, in_process):
    url = live_service.url
    bodies = request_schema.records(applicants)
    with httpx.Client(base_url=url, timeout=30) as client:
        for body in bodies[:10]:
            served = client.post("/score", json=body)
            assert served.status_code == 200, served.text
            local = json.loads(in_process.handle("POST", "/score", json.dumps(body).encode()).body)
            assert served.json() == local
        batch = client.post("/score/batch", json={"applicants": bodies}, params={"reasons": 2})
        assert batch.status_code == 200
        assert [r["probability"] for r in batch.json()["results"][:10]] == [
            json.loads(in_process.handle("POST", "/score", json.dumps(b).encode()).body)["probability"]
            for b in bodies[:10]]


def test_bad_requests_are_refused_and_the_service_keeps_answering(live_service, applicants):
    url = live_service.url
    good = request_schema.records(applicants.head(1))[0]
    bad_bodies = [
        {**good, "AMT_INCOME_TOTAL": -1}, {**good, "CODE_GENDER": "Q"}, {**good, "EXTRA": 1},
        {k: v for k, v in good.items() if k != "AMT_CREDIT"}, {**good, "AMT_CREDIT": "much"},
    ]
    with httpx.Client(base_url=url, timeout=30) as client:
        for body in bad_bodies:
            answer = client.post("/score", json=body)
            assert answer.status_code == 422 and answer.json()["detail"][0]["rule"], answer.text
        raw = json.dumps(good).replace(f'"AMT_ANNUITY": {json.dumps(good["AMT_ANNUITY"])}', '"AMT_ANNUITY": NaN')
        assert client.post("/score", content=raw).status_code == 422
        assert client.post("/score", content=b"{broken").status_code == 422
        assert client.post("/score", content=b"x" * (2 * 1024 * 1024)).status_code == 413
        assert client.get("/nowhere").status_code == 404
        assert client.get("/health").json()["status"] == "ok"
        assert client.post("/score", json=good).status_code == 200


def test_64_concurrent_clients_all_answered_each_with_its_own_score(live_service, applicants, in_process):
    """Concurrent requests are scored together in the replica (@serve.batch): every client still gets its own
    applicant's answer, with the reasons count it asked for."""
    url = live_service.url
    bodies = request_schema.records(applicants)
    asks = [(body, i % 4) for i, body in enumerate(bodies * 2)]

    def score(ask):
        body, reasons = ask
        with httpx.Client(base_url=url, timeout=60) as client:
            return client.post("/score", json=body, params={"reasons": reasons})

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(score, asks))
    assert [a.status_code for a in answers] == [200] * len(answers)
    for (body, reasons), answer in zip(asks, answers):
        local = in_process.handle("POST", "/score", json.dumps(body).encode(), query=f"reasons={reasons}")
        assert answer.json() == json.loads(local.body)


def test_openapi_docs_and_model(live_service):
    url = live_service.url
    with httpx.Client(base_url=url, timeout=30) as client:
        spec = client.get("/openapi.json").json()
        assert "Applicant" in spec["components"]["schemas"]
        assert "text/html" in client.get("/docs").headers["content-type"]
        model = client.get("/model").json()
        assert 0 < model["threshold"] < 1 and model["features"]


def test_the_replica_writes_the_production_log(live_service, applicants):
    url, log_dir = live_service.url, live_service.log_dir
    body = request_schema.records(applicants.iloc[[5]])[0]
    httpx.post(f"{url}/score", json=body, timeout=30).raise_for_status()
    lines = [json.loads(line) for path in log_dir.glob("*.jsonl") for line in path.read_text().splitlines()]
    assert any(line["applicant"]["SK_ID_CURR"] == body["SK_ID_CURR"] for line in lines)
