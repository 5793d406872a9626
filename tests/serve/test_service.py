"""The scoring service's graph and its HTTP layer in process, on the tiny model: answers equal the fitted pipeline's,
every bad input is a 4xx naming the field and the rule, and what was scored lands in the production log.
(tests/integration/test_ray_serve.py runs the same behind Ray Serve.)"""
import io

import joblib
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scoring import catalog, contract, features
from scoring.monitoring.production_log import read_production_log
from scoring.serving import request_schema
from scoring.serving.request_schema import MAX_SINGLE_BODY_BYTES
from serve.api import ScoringApi, build_api

from ..conftest import SETTINGS, TINY_THRESHOLD
from .conftest import reference_contributions


@pytest.fixture(scope="module")
def service(tiny_project, tmp_path_factory) -> ScoringApi:
    return build_api(tiny_project, registry=False, production_log=str(tmp_path_factory.mktemp("production")))


@pytest.fixture(scope="module")
def applicants(small_data):
    return small_data.tables["application_test"].head(200)


@pytest.fixture(scope="module")
def expected(tiny_project, small_data, applicants):
    """What the fitted pipeline says of these applicants (DataFrame path, sklearn pipeline)."""
    model = joblib.load(tiny_project / SETTINGS.paths.model)
    X = features.align(features.build_features(applicants, small_data.history), list(model.feature_names_in_))
    return model, X, model.predict_proba(X)[:, 1]


def post(service, body, path="/score", content_type=None, query="", accept=None):
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    reply = service.handle("POST", path, raw, content_type, query, accept)
    return reply.status, orjson.loads(reply.body) if reply.media_type.endswith("json") else reply.body


def one(applicants, i=0):
    return request_schema.records(applicants.iloc[[i]])[0]


def test_single_answers_equal_the_pipeline_model_and_its_shap(service, applicants, expected):
    model, X, proba = expected
    for i in (0, 7, 199):
        status, answer = post(service, one(applicants, i))
        assert status == 200, answer
        assert answer["SK_ID_CURR"] == int(applicants.SK_ID_CURR.iloc[i])
        assert answer["probability"] == pytest.approx(proba[i], abs=1e-6)
        assert answer["decision"] == ("refused" if proba[i] >= TINY_THRESHOLD else "granted")
        assert answer["threshold"] == TINY_THRESHOLD
        contribs = reference_contributions(model, X.iloc[[i]]).iloc[0]
        family = contribs.index.map(lambda f: catalog.entry(f).code)
        sums = contribs.groupby(family).sum()
        top = sums.abs().sort_values(ascending=False).index[:SETTINGS.reasons.default]
        assert [r["code"] for r in answer["reasons"]] == list(top)
        for reason in answer["reasons"]:
            assert reason["contribution"] == pytest.approx(sums[reason["code"]], abs=1e-4)
            members = contribs[family == reason["code"]]
            assert reason["feature"] == members.abs().idxmax()
            assert reason["sentence"].startswith(reason["text"]) and reason["feature"] not in reason["text"]
            assert ("raises" if reason["contribution"] > 0 else "lowers") in reason["sentence"]


def test_batch_json_and_arrow_equal_single_answers(service, applicants, expected):
    _, _, proba = expected
    body = {"applicants": request_schema.records(applicants)}
    status, answer = post(service, body, "/score/batch", query="reasons=3")
    assert status == 200 and answer["count"] == len(applicants)
    np.testing.assert_allclose([r["probability"] for r in answer["results"]], proba, atol=1e-6)
    assert all(len(r["reasons"]) == 3 for r in answer["results"])
    sink = io.BytesIO()
    table = pa.Table.from_pandas(applicants.drop(columns="TARGET", errors="ignore"), preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    status, arrow = post(service, sink.getvalue(), "/score/batch", "application/vnd.apache.arrow.stream",
                         "reasons=3")
    assert status == 200, arrow
    assert arrow["results"] == answer["results"]
    status, bare = post(service, sink.getvalue(), "/score/batch", "application/vnd.apache.arrow.stream", "reasons=0")
    assert bare["results"][5]["reasons"] == [] and bare["results"][5]["probability"] == answer["results"][5][
        "probability"]


@pytest.mark.parametrize("kind", ["application/vnd.apache.arrow.stream", "application/vnd.apache.parquet"])
def test_a_batch_answers_with_a_table_when_the_client_accepts_one(service, applicants, kind):
    body = {"applicants": request_schema.records(applicants.head(50))}
    _, answer = post(service, body, "/score/batch", query="reasons=3")
    status, raw = post(service, body, "/score/batch", query="reasons=3", accept=f"text/html, {kind};q=0.9")
    assert status == 200
    table = pa.ipc.open_stream(raw).read_all() if "arrow" in kind else pq.read_table(io.BytesIO(raw))
    frame = table.to_pandas()
    results = answer["results"]
    assert frame["SK_ID_CURR"].tolist() == [r["SK_ID_CURR"] for r in results]
    assert frame["probability"].tolist() == [r["probability"] for r in results]
    assert frame["decision"].tolist() == [r["decision"] for r in results]
    for i in (1, 2, 3):
        assert frame[f"reason_{i}_feature"].tolist() == [r["reasons"][i - 1]["feature"] for r in results]
        assert frame[f"reason_{i}_sentence"].tolist() == [r["reasons"][i - 1]["sentence"] for r in results]
        np.testing.assert_allclose(frame[f"reason_{i}_contribution"],
                                   [r["reasons"][i - 1]["contribution"] for r in results])


def test_an_unknown_applicant_is_scored_without_history(service, applicants, small_data, tiny_project):
    body = one(applicants)
    body["SK_ID_CURR"] = None
    status, answer = post(service, body)
    assert status == 200 and answer["history_found"] is False and answer["SK_ID_CURR"] is None
    model = joblib.load(tiny_project / SETTINGS.paths.model)  # no row in the lookup: no history, coverage flags 0
    X = features.build_features(applicants.head(1).assign(SK_ID_CURR=-1), small_data.history)
    assert (X.filter(like="HAS_") == 0).all(axis=None) and X.filter(like="BURO_").iloc[0].isna().any()
    proba = model.predict_proba(features.align(X, list(model.feature_names_in_)))[0, 1]
    # the service gives 6 decimals
    assert 0 <= answer["probability"] < 1 and answer["probability"] == pytest.approx(round(proba, 6), abs=1e-9)


def test_the_pensioner_sentinel_is_accepted_and_other_positive_days_are_not(service, applicants):
    body = one(applicants)
    body["DAYS_EMPLOYED"] = contract.DAYS_SENTINEL
    assert post(service, body)[0] == 200
    body["DAYS_EMPLOYED"] = 5
    status, answer = post(service, body)
    assert status == 422 and answer["detail"][0]["field"] == "DAYS_EMPLOYED"
    assert "365243" in answer["detail"][0]["rule"]


def mutate(body, **changes):
    out = dict(body)
    for key, value in changes.items():
        if value is KeyError:
            out.pop(key)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(("change", "field", "rule"), [
    ({"AMT_CREDIT": KeyError}, "AMT_CREDIT", "required field is missing"),
    ({"FAVOURITE_COLOUR": "blue"}, "FAVOURITE_COLOUR", "unknown field"),
    ({"AMT_INCOME_TOTAL": "a lot"}, "AMT_INCOME_TOTAL", "valid number"),
    ({"AMT_INCOME_TOTAL": -5}, "AMT_INCOME_TOTAL", contract.table("application_test").column(
        "AMT_INCOME_TOTAL").range_text()),
    ({"CNT_CHILDREN": 1.5}, "CNT_CHILDREN", "whole number"),
    ({"CODE_GENDER": "Q"}, "CODE_GENDER", "'F', 'M' or 'XNA'"),
    ({"EXT_SOURCE_2": 1.7}, "EXT_SOURCE_2", "must be between 0 and 1"),
    ({"NAME_CONTRACT_TYPE": None}, "NAME_CONTRACT_TYPE", "'Cash loans' or 'Revolving loans'"),
])
def test_each_bad_field_is_named_with_its_rule(service, applicants, change, field, rule):
    status, answer = post(service, mutate(one(applicants), **change))
    assert status == 422
    named = {p["field"]: p["rule"] for p in answer["detail"]}
    assert rule in named[field], answer


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_nan_and_infinity_are_refused(service, applicants, literal):
    raw = orjson.dumps(mutate(one(applicants), AMT_ANNUITY=12345.0)).replace(b"12345.0", literal)
    status, answer = post(service, raw)
    assert status == 422, answer
    assert answer["detail"][0]["field"] in ("AMT_ANNUITY", "body")


@pytest.mark.parametrize(("body", "field"), [(b"{not json", "body"), (b"[1, 2]", "body"), (b"", "body")])
def test_malformed_bodies_are_422(service, body, field):
    status, answer = post(service, body)
    assert status == 422 and answer["detail"][0]["field"] == field


def test_oversized_bodies_and_batches_are_413(service, applicants):
    status, answer = post(service, b" " * (MAX_SINGLE_BODY_BYTES + 1))
    assert status == 413 and "batch" in answer["detail"][0]["rule"]
    status, answer = post(service, {"applicants": [{"AMT_CREDIT": 1.0}] * (request_schema.MAX_BATCH + 1)},
                          "/score/batch")
    assert status == 413 and answer["detail"][0]["field"] == "applicants", answer


def test_a_batch_names_the_applicant_field_and_rule_and_scores_nothing(service, applicants):
    rows = request_schema.records(applicants.head(5))
    rows[3]["AMT_CREDIT"] = -1
    status, answer = post(service, {"applicants": rows}, "/score/batch")
    assert status == 422
    assert answer["detail"] == [{"field": "AMT_CREDIT", "applicant": 3, "value": -1, "rule": contract.table(
        "application_test").column("AMT_CREDIT").range_text()}]
    assert post(service, {"applicants": []}, "/score/batch")[0] == 422
    frame = applicants.head(5).drop(columns="TARGET", errors="ignore").copy()
    frame["CODE_GENDER"] = frame["CODE_GENDER"].astype(object)
    frame.loc[frame.index[2], "CODE_GENDER"] = "Q"
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    status, answer = post(service, buffer.getvalue(), "/score/batch", "application/vnd.apache.parquet")
    assert status == 422 and answer["detail"][0]["field"] == "CODE_GENDER" and answer["detail"][0]["applicant"] == 2
    status, answer = post(service, b"garbage", "/score/batch", "application/vnd.apache.parquet")
    assert status == 422 and "not a readable" in answer["detail"][0]["rule"]
    status, answer = post(service, b"a,b", "/score/batch", "text/csv")
    assert status == 415 and answer["detail"][0]["field"] == "content-type"


def test_routes_methods_and_query(service, applicants):
    assert service.handle("GET", "/nowhere").status == 404
    assert service.handle("GET", "/score").status == 405
    status, answer = post(service, one(applicants), query="reasons=many")
    assert status == 422 and answer["detail"][0]["field"] == "reasons"
    status, answer = post(service, one(applicants), query="reasons=0")
    assert status == 200 and answer["reasons"] == []
    model = orjson.loads(service.handle("GET", "/model").body)
    assert model["threshold"] == TINY_THRESHOLD and "auc" in model["metrics"]
    assert set(model["features"]) == set(service.service.engine.columns)


def test_the_openapi_document_is_the_contract(service):
    spec = orjson.loads(service.handle("GET", "/openapi.json").body)
    applicant = spec["components"]["schemas"]["Applicant"]
    table = contract.table("application_test")
    assert set(applicant["properties"]) == set(table.names)
    required = {c.name for c in table.columns if not c.nullable} - {"SK_ID_CURR"}
    assert set(applicant["required"]) == required
    assert applicant["properties"]["AMT_INCOME_TOTAL"]["minimum"] == 0
    assert {"type": "number", "minimum": 0, "maximum": 1} in [
        {k: v for k, v in option.items() if k in ("type", "minimum", "maximum")}
        for option in applicant["properties"]["EXT_SOURCE_1"]["anyOf"]]
    assert {"/score", "/score/batch", "/health", "/model"} <= set(spec["paths"])
    page = service.handle("GET", "/docs")
    assert page.status == 200 and b"EXT_SOURCE_1" in page.body and b"curl" in page.body


def logged(service) -> pd.DataFrame:
    """The production traffic in the service's log so far (its reader, as the drift stage reads it)."""
    service.service.log.close()
    return read_production_log(service.service.log.directory).applicants


def test_what_was_scored_is_in_the_production_log(service, applicants):
    before = logged(service)
    body = one(applicants, 11)
    assert post(service, body)[0] == 200
    after = logged(service)
    assert len(after) == len(before) + 1
    new = after[after["SK_ID_CURR"] == body["SK_ID_CURR"]]  # the reader's order is its files', not the calls'
    assert len(new) == (before["SK_ID_CURR"] == body["SK_ID_CURR"]).sum() + 1
    assert set(new["decision"]) <= {"granted", "refused"}
    before = len(before)
    assert post(service, {"applicants": request_schema.records(applicants.head(4))}, "/score/batch")[0] == 200
    batch = logged(service)
    assert {"probability", "decision", "AMT_INCOME_TOTAL"} <= set(batch.columns) and len(batch) == before + 5


def test_a_service_that_scored_nothing_leaves_no_log_file(tiny_project, applicants, tmp_path):
    """Every start of the service would otherwise add an empty file, and with it a rerun of the drift stage."""
    quiet = build_api(tiny_project, registry=False, production_log=str(tmp_path))
    post(quiet, {"AMT_INCOME_TOTAL": -1})  # refused before scoring: nothing to log
    assert list(tmp_path.iterdir()) == []
    post(quiet, one(applicants, 3))
    quiet.service.log.close()
    assert len(read_production_log(tmp_path).applicants) == 1


def test_requests_scored_together_get_the_answers_they_get_alone(service, applicants):
    """What Ray Serve's batching does with concurrent POST /score requests: valid ones share one engine call,
    invalid ones keep their own 422, and each reply (reasons count included) equals the one it gets alone."""
    bodies = [orjson.dumps(one(applicants, i)) for i in range(6)]
    broken = orjson.dumps({**one(applicants, 6), "AMT_CREDIT": -5.0})
    requests = [(bodies[0], ""), (broken, ""), (bodies[1], "reasons=0"), (bodies[2], "reasons=12"),
                (b"{not json", ""), (bodies[3], "reasons=99"), (bodies[4], "reasons=2"), (bodies[5], "")]
    together = service.score_requests(requests)
    alone = [service.handle("POST", "/score", body, "application/json", query) for body, query in requests]
    assert [r.status for r in together] == [200, 422, 200, 200, 422, 422, 200, 200]
    for mine, reference in zip(together, alone):
        assert mine.status == reference.status
        a, b = orjson.loads(mine.body), orjson.loads(reference.body)
        if mine.status == 200:
            assert a["probability"] == pytest.approx(b["probability"], abs=1e-6)
            assert [r["feature"] for r in a["reasons"]] == [r["feature"] for r in b["reasons"]]
        else:
            assert a == b
    assert [len(orjson.loads(r.body)["reasons"]) for r in together if r.status == 200] == [5, 0, 12, 2, 5]
