"""The Streamlit tester app (app/streamlit_app.py) run by Streamlit's AppTest against the real Ray Serve service of the
small pipeline: what it shows equals what the service answers, the form's rules are the contract's, the service's
422 answers are shown field by field, and a service that is down gives a clear message, never an exception."""
from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app import charts, form
from scoring import contract
from scoring.ray_runtime import free_port
from scoring.serving import request_schema

from ..conftest import REPO, SETTINGS

pytestmark = pytest.mark.integration

APP = REPO / "app" / "streamlit_app.py"
SUBMIT = "Score this applicant"


@pytest.fixture(scope="module")
def applicants(tiny_project) -> pd.DataFrame:
    return pd.read_parquet(tiny_project / SETTINGS.paths.prepared_table("application_test"))


@pytest.fixture
def service_url(live_service, tiny_project, monkeypatch) -> str:
    url = live_service.url
    monkeypatch.setenv("SCORING_API_URL", url)
    monkeypatch.setenv("PROJECT_ROOT", str(tiny_project))
    return url


def start_app(applicant: int | str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=90)
    if applicant is not None:
        at.query_params["applicant"] = str(applicant)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def page_text(at: AppTest) -> str:
    return "\n".join(e.value for e in [*at.markdown, *at.caption, *at.error, *at.warning, *at.success])


def body_of(applicants: pd.DataFrame, identifier: int) -> dict:
    return request_schema.records(applicants[applicants["SK_ID_CURR"] == identifier])[0]


def service_score(url: str, body: dict | str, reasons: int) -> httpx.Response:
    raw = body if isinstance(body, str) else json.dumps(body)
    return httpx.post(f"{url}/score", params={"reasons": reasons}, content=raw,
                      headers={"content-type": "application/json"}, timeout=30)


def reasons_shown(at: AppTest) -> int:
    return int(at.slider[0].value)


def one_of_each_decision(url: str, applicants: pd.DataFrame) -> dict[str, int]:
    found: dict[str, int] = {}
    for body in request_schema.records(applicants.head(300)):
        found.setdefault(service_score(url, body, 0).json()["decision"], body["SK_ID_CURR"])
        if len(found) == 2:
            return found
    pytest.fail(f"the first 300 test applicants are all {list(found)}")


def assert_shows_the_service_answer(at: AppTest, url: str, body: dict) -> None:
    expected = service_score(url, body, reasons_shown(at)).json()
    shown = at.session_state["last_score"]
    assert shown["probability"] == expected["probability"]
    assert shown["decision"] == expected["decision"]
    assert [r["feature"] for r in shown["reasons"]] == [r["feature"] for r in expected["reasons"]]
    text = page_text(at)
    banner = next(m.value for m in at.markdown if 'class="decision"' in m.value)
    assert f"Decision for applicant {body['SK_ID_CURR']}" in banner
    assert expected["decision"].capitalize() in banner
    assert (charts.RED if expected["decision"] == "refused" else charts.GREEN) in banner
    assert f"{expected['probability']:.2%}" in banner and f"{expected['threshold']:.2%}" in banner
    metric = next(m for m in at.metric if m.label == "Probability of default")
    assert metric.value == f"{expected['probability']:.2%}"
    for reason in expected["reasons"]:
        assert reason["sentence"] in text


def test_picking_an_applicant_scores_it_as_the_service_does(service_url, applicants):
    decisions = one_of_each_decision(service_url, applicants)
    at = start_app(decisions["refused"])
    assert at.selectbox(key="applicant").value == decisions["refused"]
    assert_shows_the_service_answer(at, service_url, body_of(applicants, decisions["refused"]))

    at.selectbox(key="applicant").set_value(decisions["granted"]).run()
    assert not at.exception
    assert at.query_params["applicant"] == str(decisions["granted"])
    assert_shows_the_service_answer(at, service_url, body_of(applicants, decisions["granted"]))


def test_the_form_starts_from_the_applicants_values_and_an_edit_is_scored(service_url, applicants):
    identifier = int(applicants["SK_ID_CURR"].iloc[5])
    at = start_app(identifier)
    body = body_of(applicants, identifier)
    income = at.number_input(key=form.widget_key(str(identifier), "AMT_INCOME_TOTAL"))
    assert income.value == body["AMT_INCOME_TOTAL"]
    income.set_value(body["AMT_INCOME_TOTAL"] * 3)
    next(b for b in at.button if b.label == SUBMIT).click().run()
    assert not at.exception
    assert_shows_the_service_answer(at, service_url, {**body, "AMT_INCOME_TOTAL": body["AMT_INCOME_TOTAL"] * 3})


def test_the_form_has_the_contracts_rules(service_url, applicants):
    identifier = int(applicants["SK_ID_CURR"].iloc[0])
    at = start_app(identifier)
    table = contract.table(request_schema.APPLICANT_TABLE)
    prefix = f"{identifier}:"
    numbers = {w.key.removeprefix(prefix): w for w in at.number_input if w.key and w.key.startswith(prefix)}
    choices = {w.key.removeprefix(prefix): w for w in at.selectbox if w.key and w.key.startswith(prefix)}
    assert set(numbers) | set(choices) == set(table.names), "one widget per contract column"
    for name, widget in numbers.items():
        col = table.column(name)
        assert (widget.min, widget.max) == (col.min, col.max), name
        assert widget.label.endswith("*") == form.is_required(col), name
    for name, widget in choices.items():
        col = table.column(name)
        allowed = list(col.categories) if col.kind == "category" else [int(col.min), int(col.max)]
        assert widget.options == [form.choice_label(v) for v in ([None] if col.nullable else []) + allowed], name
    sentinels = {w.key.removeprefix(prefix).removesuffix(":na") for w in at.checkbox if w.key.startswith(prefix)}
    assert sentinels == {c.name for c in table.columns if c.sentinel is not None}


def test_the_form_cannot_send_a_value_outside_the_contract(service_url, applicants):
    """Streamlit's number input puts its value back when it breaks the widget's range (the contract's), so the form
    sends only valid numbers; a field named in 'Send as missing' goes as null."""
    identifier = int(applicants["SK_ID_CURR"].iloc[1])
    at = start_app(identifier)
    body = body_of(applicants, identifier)
    at.number_input(key=form.widget_key(str(identifier), "AMT_CREDIT")).set_value(-1500.0)
    at.multiselect(key=form.widget_key(str(identifier), "send-as-missing")).set_value(["EXT_SOURCE_2"])
    next(b for b in at.button if b.label == SUBMIT).click().run()
    assert not at.exception and not at.error
    sent = at.session_state["last_request"]
    assert sent["AMT_CREDIT"] == body["AMT_CREDIT"] and sent["EXT_SOURCE_2"] is None
    assert_shows_the_service_answer(at, service_url, {**body, "EXT_SOURCE_2": None})


def test_an_invalid_json_body_shows_each_field_and_rule(service_url, applicants):
    identifier = int(applicants["SK_ID_CURR"].iloc[2])
    at = start_app(identifier)
    broken = {**body_of(applicants, identifier), "AMT_CREDIT": -1500.0, "CODE_GENDER": "Q", "DAYS_BIRTH": 10}
    raw = next(t for t in at.text_area if t.key.startswith("raw:"))
    raw.set_value(json.dumps(broken))
    next(b for b in at.button if b.label == "Send this JSON").click().run()
    assert not at.exception
    answer = service_score(service_url, broken, 8)
    assert answer.status_code == 422
    problems = answer.json()["detail"]
    assert {p["field"] for p in problems} == {"AMT_CREDIT", "CODE_GENDER", "DAYS_BIRTH"}
    message = " ".join(e.value for e in at.error)
    for problem in problems:
        assert f"**{problem['field']}**: {problem['rule']}" in message
        assert json.dumps(problem["value"]) in message


def test_the_typical_applicant_is_scored_without_history(service_url, applicants):
    at = start_app("typical")
    assert not at.exception
    result = at.session_state["last_score"]
    assert result["SK_ID_CURR"] is None and result["history_found"] is False
    assert "scored on the application alone" in page_text(at)


def test_the_model_is_shown_in_the_sidebar(service_url, applicants, tiny_project):
    at = start_app()
    info = httpx.get(f"{service_url}/model", timeout=30).json()
    on_disk = json.loads((tiny_project / SETTINGS.paths.metrics_json).read_text())
    assert (info["threshold"], info["metrics"]["auc"]) == (on_disk["threshold"], on_disk["auc"]), \
        "the live service does not serve the small pipeline's model"
    metrics = {m.label: m.value for m in at.sidebar.metric}
    assert metrics["Threshold"] == f"{info['threshold']:.3f}"
    assert metrics["AUC"] == f"{info['metrics']['auc']:.3f}"


def test_a_service_that_is_down_gives_a_clear_message(tiny_project, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("SCORING_API_URL", url)
    monkeypatch.setenv("PROJECT_ROOT", str(tiny_project))
    at = start_app()
    messages = " ".join(e.value for e in at.error)
    assert f"The scoring service at {url} cannot be reached (connection refused)" in messages
    assert at.session_state["last_score"] is None
    assert not any('class="decision"' in m.value for m in at.markdown)
    assert len(at.number_input) > 50, "the form stays usable while the service is down"
