"""The HTTP layer probed as an attacker and a careless client would, in process on the tiny model: bad input of every
kind is a 4xx naming the field and the rule (never a 500), oversized batches are refused from their metadata or
their shape before they are read, every format follows the same rules, and the OpenAPI document says what the
service does. (tests/integration/test_fuzz.py runs an OpenAPI-driven fuzzer against the live service.)"""
import io
import time

import jsonschema
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scoring import contract
from scoring.monitoring.production_log import read_production_log
from scoring.serving import request_schema
from scoring.serving.request_schema import ECHO_CHARS, MAX_BATCH, TRAFFIC_HEADER
from serve.api import ScoreRequest, ScoringApi, build_api

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
JSON_TYPE = "application/json"
APPLICATION = contract.table("application_test")


@pytest.fixture(scope="module")
def api(tiny_project, tmp_path_factory) -> ScoringApi:
    return build_api(tiny_project, registry=False, production_log=str(tmp_path_factory.mktemp("production")))


@pytest.fixture(scope="module")
def applicants(small_data) -> pd.DataFrame:
    return small_data.tables["application_test"].head(20).drop(columns="TARGET", errors="ignore")


def send(api, body, path="/score", content_type=None, query="", traffic=None, method="POST"):
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    reply = api.handle(method, path, raw, content_type, query, None, traffic)
    return reply, orjson.loads(reply.body) if reply.media_type == "application/json" else reply.body


def one(applicants, i=0) -> dict:
    return request_schema.records(applicants.iloc[[i]])[0]


def arrow_bytes(table: pa.Table, compression: str | None = None, chunk: int | None = None) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=compression)) as writer:
        writer.write_table(table, max_chunksize=chunk)
    return sink.getvalue()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    frame.to_parquet(sink, index=False)
    return sink.getvalue()


def production_rows(api) -> int:
    api.service.log.close()
    return len(read_production_log(api.service.log.directory).applicants)


# ---- no 500 from bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize("literal", [b"18446744073709551616", b"-99999999999999999999999", b"1" + b"0" * 4000])
def test_integers_beyond_64_bits_are_echoed_as_text(api, applicants, literal):
    raw = orjson.dumps(one(applicants))
    unknown = raw[:-1] + b',"AMT_CREDIT_X":' + literal + b"}"
    for body in (unknown, raw.replace(b'"AMT_CREDIT":', b'"AMT_CREDIT":' + literal + b',"X":')):
        reply, answer = send(api, body)
        assert reply.status == 422, answer
        values = [p["value"] for p in answer["detail"] if "value" in p and p["field"] != "X"]
        assert values and all(isinstance(v, str) and v.lstrip("-").startswith(literal.lstrip(b"-")[:20].decode())
                              for v in values), answer
    big = orjson.dumps({"applicants": [{**one(applicants), "AMT_CREDIT": 424242}]}).replace(b"424242", literal)
    reply, answer = send(api, big, "/score/batch")
    assert reply.status == 422 and answer["detail"][0]["value"].startswith(literal[:20].decode()), answer


@pytest.mark.parametrize("identifier", [b"18446744073709551616", b"1e300", b"9007199254740992"])
def test_an_out_of_range_sk_id_curr_is_refused_and_not_logged(api, applicants, identifier):
    before = production_rows(api)
    body = orjson.dumps({**one(applicants), "SK_ID_CURR": 424242}).replace(b"424242", identifier)
    reply, answer = send(api, body)
    assert reply.status == 422 and answer["detail"][0]["field"] == "SK_ID_CURR", answer
    reply, answer = send(api, b'{"applicants":[' + body + b"]}", "/score/batch")
    assert reply.status == 422 and answer["detail"][0] | {"value": None} == {
        "field": "SK_ID_CURR", "rule": APPLICATION.column("SK_ID_CURR").range_text(), "applicant": 0, "value": None}
    assert production_rows(api) == before


def test_a_table_with_a_repeated_column_is_422_in_both_formats(api, applicants):
    table = pa.Table.from_pandas(applicants.head(3), preserve_index=False)
    table = table.append_column("AMT_CREDIT", table.column("AMT_CREDIT"))
    reply, answer = send(api, arrow_bytes(table), "/score/batch", ARROW)
    assert reply.status == 422 and answer["detail"] == [{"field": "AMT_CREDIT", "rule": "column given more than once"}]
    sink = io.BytesIO()
    pq.write_table(table, sink)
    reply, answer = send(api, sink.getvalue(), "/score/batch", PARQUET)
    assert reply.status == 422 and answer["detail"][0]["field"] == "AMT_CREDIT", answer


@pytest.mark.parametrize("kind", ["json", ARROW, PARQUET])
def test_a_20_mb_value_is_echoed_cut_to_100_characters(api, applicants, kind):
    frame = applicants.head(2).copy()
    frame["CODE_GENDER"] = frame["CODE_GENDER"].astype(object)
    frame.loc[frame.index[1], "CODE_GENDER"] = "Q" * 20_000_000
    if kind == "json":
        body, content_type = orjson.dumps({"applicants": request_schema.records(frame)}), None
    else:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        body, content_type = (arrow_bytes(table) if kind == ARROW else parquet_bytes(frame)), kind
    reply, answer = send(api, body, "/score/batch", content_type)
    assert reply.status == 422 and len(reply.body) < 1000, answer
    assert answer["detail"] == [{"field": "CODE_GENDER", "rule": answer["detail"][0]["rule"], "applicant": 1,
                                 "value": "Q" * ECHO_CHARS, "truncated": True}]


def test_a_long_unknown_field_name_is_cut_too(api, applicants):
    reply, answer = send(api, {**one(applicants), "Z" * 5000: 1})
    assert reply.status == 422 and answer["detail"] == [{"field": "Z" * ECHO_CHARS, "rule": answer["detail"][0]["rule"],
                                                         "value": 1, "truncated": True}]


@pytest.mark.parametrize("text", [b'"\\ud800"', b'"\\udc00x"'])
def test_lone_surrogates_are_422(api, applicants, text):
    raw = orjson.dumps(one(applicants))
    reply, answer = send(api, raw.replace(b'"' + one(applicants)["CODE_GENDER"].encode() + b'"', text, 1))
    assert reply.status == 422, answer
    reply, answer = send(api, raw[:-1] + b"," + text + b":1}")
    assert reply.status == 422, answer


# ---- one rule for each thing, in every format -----------------------------------------------------------------------
def test_a_repeated_key_is_422_naming_it(api, applicants):
    raw = orjson.dumps(one(applicants))
    gender = one(applicants)["CODE_GENDER"]
    for twice in (f',"CODE_GENDER":"{gender}"}}', f',"CODE_GENDER" : "{gender}"}}'):
        body = raw[:-1] + twice.encode()
        reply, answer = send(api, body)
        assert reply.status == 422 and answer["detail"] == [
            {"field": "CODE_GENDER", "rule": "given more than once (each field once: JSON keys must be unique)"}]
    rows = [orjson.dumps(r) for r in request_schema.records(applicants.head(4))]
    rows[2] = rows[2][:-1] + b',"AMT_CREDIT":' + str(one(applicants, 2)["AMT_CREDIT"]).encode() + b"}"
    reply, answer = send(api, b'{"applicants":[' + b",".join(rows) + b"]}", "/score/batch")
    assert reply.status == 422 and [(p["field"], p["applicant"]) for p in answer["detail"]] == [("AMT_CREDIT", 2)]
    reply, answer = send(api, b'{"applicants":[' + rows[0] + b'],"applicants":[' + rows[1] + b"]}", "/score/batch")
    assert reply.status == 422 and answer["detail"][0]["field"] == "applicants", answer


def test_a_repeated_sk_id_curr_is_422_in_every_format(api, applicants):
    frame = applicants.head(5).copy()
    frame.loc[frame.index[3], "SK_ID_CURR"] = frame["SK_ID_CURR"].iloc[1]
    repeated = int(frame["SK_ID_CURR"].iloc[1])
    table = pa.Table.from_pandas(frame, preserve_index=False)
    answers = {}
    for kind, body in (("json", orjson.dumps({"applicants": request_schema.records(frame)})),
                       (ARROW, arrow_bytes(table)), (PARQUET, parquet_bytes(frame))):
        reply, answers[kind] = send(api, body, "/score/batch", None if kind == "json" else kind)
        assert reply.status == 422, answers[kind]
    assert answers["json"] == answers[ARROW] == answers[PARQUET]
    assert [(p["field"], p["applicant"], p["value"]) for p in answers["json"]["detail"]] == [
        ("SK_ID_CURR", 1, repeated), ("SK_ID_CURR", 3, repeated)]


@pytest.mark.parametrize("kind", ["json", ARROW, PARQUET])
def test_whole_numbers_are_checked_exactly_in_every_format(api, applicants, kind):
    frame = applicants.head(3).copy()
    frame["CNT_FAM_MEMBERS"] = frame["CNT_FAM_MEMBERS"].astype(float)
    frame.loc[frame.index[2], "CNT_FAM_MEMBERS"] = 2 + 2.59e-12
    body = (orjson.dumps({"applicants": request_schema.records(frame)}) if kind == "json" else
            arrow_bytes(pa.Table.from_pandas(frame, preserve_index=False)) if kind == ARROW else parquet_bytes(frame))
    reply, answer = send(api, body, "/score/batch", None if kind == "json" else kind)
    assert reply.status == 422 and [(p["field"], p["rule"], p["applicant"]) for p in answer["detail"]] == [
        ("CNT_FAM_MEMBERS", "must be a whole number", 2)], answer


@pytest.mark.parametrize(("query", "status"), [
    ("reasons=3", 200), ("reasons=0", 200), ("reasons=+5", 422), ("reasons=%2B5", 422), ("reasons=\u0665", 422),
    ("reasons=%D9%A5", 422), ("reasons=5&reasons=5", 422), ("reasons=", 422), ("reasons=%205", 422),
    ("reasons=1e1", 422), ("reasons=-0", 422), ("reasons=21", 422), ("reasons=" + "9" * 5000, 422)])
def test_reasons_is_strict(api, applicants, query, status):
    reply, answer = send(api, one(applicants), query=query)
    assert reply.status == status, answer
    if status == 422:
        assert answer["detail"][0]["field"] == "reasons"


@pytest.mark.parametrize(("path", "content_type", "status"), [
    ("/score", None, 200), ("/score", "application/json", 200), ("/score", "Application/JSON; charset=utf-8", 200),
    ("/score", "text/plain", 415), ("/score", ARROW, 415), ("/score", "", 200),
    ("/score/batch", "text/csv", 415), ("/score/batch", "application/xml", 415), ("/score/batch", None, 200)])
def test_an_unsupported_content_type_is_415_on_both_routes(api, applicants, path, content_type, status):
    body = one(applicants) if path == "/score" else {"applicants": [one(applicants)]}
    reply, answer = send(api, body, path, content_type)
    assert reply.status == status, answer
    if status == 415:
        assert answer["detail"][0]["field"] == "content-type" and "application/json" in answer["detail"][0]["rule"]


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/score", "POST"), ("PUT", "/score/batch", "POST"), ("DELETE", "/health", "GET"),
    ("POST", "/openapi.json", "GET"), ("OPTIONS", "/model", "GET")])
def test_405_names_the_allowed_method(api, method, path, allow):
    reply, answer = send(api, b"", path, method=method)
    assert reply.status == 405 and reply.headers == {"Allow": allow} and answer["detail"][0]["field"] == "method"
    assert api.handle("GET", "/nowhere").status == 404 and api.handle("GET", "/nowhere").headers == {}


# ---- traffic kinds ---------------------------------------------------------------------------------------------------
def test_test_and_preview_traffic_is_scored_but_not_logged_as_production(api, applicants):
    before = production_rows(api)
    for kind in ("test", "preview"):
        assert send(api, one(applicants), traffic=kind)[0].status == 200
        assert send(api, {"applicants": [one(applicants)]}, "/score/batch", traffic=kind)[0].status == 200
    replies = api.score_requests([ScoreRequest(orjson.dumps(one(applicants, i)), "", None, "test") for i in (1, 2)])
    assert [r.status for r in replies] == [200, 200]
    assert production_rows(api) == before
    assert send(api, one(applicants), traffic="production")[0].status == 200
    assert production_rows(api) == before + 1
    reply, answer = send(api, one(applicants), traffic="live")
    assert reply.status == 422 and answer["detail"][0]["field"] == TRAFFIC_HEADER
    assert production_rows(api) == before + 1


def test_requests_scored_together_keep_their_own_content_type_and_traffic(api, applicants):
    body = orjson.dumps(one(applicants))
    replies = api.score_requests([(body, "reasons=1"), ScoreRequest(body, "", "text/plain"),
                                  ScoreRequest(body, "", None, "bogus"), ScoreRequest(body, "reasons=2", JSON_TYPE)])
    assert [r.status for r in replies] == [200, 415, 422, 200]
    assert [len(orjson.loads(r.body)["reasons"]) for r in replies if r.status == 200] == [1, 2]


# ---- oversized and pathological batches, refused before they are read ------------------------------------------------
def timed(api, body, content_type=None):
    """(reply, seconds, bytes pyarrow allocated meanwhile)."""
    arrow_before = pa.total_allocated_bytes()
    start = time.perf_counter()
    reply = api.handle("POST", "/score/batch", body, content_type)
    return reply, time.perf_counter() - start, pa.total_allocated_bytes() - arrow_before


def required_frame(applicants, rows: int) -> pd.DataFrame:
    required = [c.name for c in APPLICATION.columns if not c.nullable and c.name != "SK_ID_CURR"]
    return applicants[required].iloc[np.zeros(rows, dtype=int)].reset_index(drop=True)


def test_oversized_table_bodies_are_413_from_their_metadata(api, applicants):
    frame = required_frame(applicants, 1_000_000)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    bodies = {"parquet": (parquet_bytes(frame), PARQUET), "arrow zstd": (arrow_bytes(table, "zstd"), ARROW),
              "arrow, 20 batches": (arrow_bytes(table, None, 50_000), ARROW)}
    del frame, table
    for name, (body, kind) in bodies.items():
        reply, seconds, allocated = timed(api, body, kind)
        assert reply.status == 413 and orjson.loads(reply.body)["detail"][0]["field"] == "applicants", name
        assert seconds < 1 and allocated < 50 * 2**20, (name, seconds, allocated)


def test_a_table_that_decodes_to_too_much_is_413(api, applicants):
    frame = required_frame(applicants, 20_000)
    frame["ORGANIZATION_TYPE"] = [f"{i:05d}" + "x" * 20_000 for i in range(len(frame))]
    reply, seconds, allocated = timed(api, arrow_bytes(pa.Table.from_pandas(frame, preserve_index=False), "zstd"),
                                      ARROW)
    assert reply.status == 413 and "decodes to more than" in orjson.loads(reply.body)["detail"][0]["rule"]
    assert allocated < 50 * 2**20


@pytest.mark.parametrize("element", [b'{"AMT_CREDIT":1.0}', b"1", b"[]", b'"x"'])
def test_an_oversized_json_batch_is_413_before_it_is_read(api, element):
    body = b'{"applicants":[' + b",".join([element] * (MAX_BATCH + 1)) + b"]}"
    reply, seconds, _ = timed(api, body)
    assert reply.status == 413 and orjson.loads(reply.body)["detail"][0]["field"] == "applicants"
    assert seconds < 1


@pytest.mark.parametrize(("body", "field"), [
    (b'{"applicants":[{"AMT_CREDIT":[' + b"1," * 1_000_000 + b"1]}]}", "body"),
    (b"[" + b"1," * 1_000_000 + b"1]", "body"),
    (b'{"applicants":[{},{"AMT_CREDIT":{"a":[1]}}]}', "applicants"),
    (b'{"applicants":[{' + b",".join(b'"k%d":1' % i for i in range(1000)) + b"}]}", "body"),
])
def test_values_no_applicant_can_hold_are_refused_before_pydantic_reads_them(api, body, field):
    reply, seconds, _ = timed(api, body)
    answer = orjson.loads(reply.body)
    assert reply.status == 422 and answer["detail"][0]["field"] == field and seconds < 1, answer


def test_a_batch_of_broken_applicants_lists_the_first_problems_fast(api, applicants):
    good = orjson.dumps(one(applicants))
    body = b'{"applicants":[' + b",".join([good] * 10 + [b"{}"] * (MAX_BATCH - 10)) + b"]}"
    reply, seconds, _ = timed(api, body)
    detail = orjson.loads(reply.body)["detail"]
    assert reply.status == 422 and len(detail) == request_schema.MAX_PROBLEMS and seconds < 2
    assert detail[0] == {"field": "NAME_CONTRACT_TYPE", "rule": "required field is missing", "applicant": 10}
    assert detail[-1]["applicant"] > 10


# ---- the document says what the service does -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spec(api) -> dict:
    return orjson.loads(api.handle("GET", "/openapi.json").body)


def validator(spec: dict, name: str) -> jsonschema.Draft202012Validator:
    """A validator of one component schema, its $refs (#/components/...) resolved within the document."""
    return jsonschema.Draft202012Validator({**spec["components"]["schemas"][name], "components": spec["components"]})


def boundary_values(col: contract.Column) -> list[float]:
    values = [0.5, 1e300, -1e300, 2.0**64]
    values += [b + d for b in (col.min, col.max) if b is not None for d in (-1, -0.5, 0, 0.5, 1)]
    return values + ([col.sentinel, col.sentinel + 1] if col.sentinel is not None else [])


def test_the_document_states_every_number_rule_the_service_enforces(api, spec, applicants):
    """For each number of the contract, at and around its bounds and sentinel: valid for the document <=> accepted."""
    check = validator(spec, "Applicant")
    base = one(applicants)
    disagreements = []
    for col in APPLICATION.columns:
        if not col.is_numeric:
            continue
        for value in boundary_values(col):
            body = {**base, col.name: value}
            documented = check.is_valid(body)
            accepted = api.handle("POST", "/score", orjson.dumps(body), None, "reasons=0", None, "test").status == 200
            if documented != accepted:
                disagreements.append((col.name, value, documented, accepted))
    assert disagreements == []
    days = spec["components"]["schemas"]["Applicant"]["properties"]["DAYS_EMPLOYED"]
    assert {"const": contract.DAYS_SENTINEL} in days["anyOf"] and not check.is_valid({**base, "DAYS_EMPLOYED": 114})
    assert not check.is_valid({**base, "REGION_RATING_CLIENT_W_CITY": 0})


def test_the_document_names_every_status_with_a_schema(spec):
    for path in ("/score", "/score/batch"):
        responses = spec["paths"][path]["post"]["responses"]
        assert set(responses) == {"200", "413", "415", "422", "500", "503"}
        assert all(answer.get("content") for answer in responses.values())
        assert TRAFFIC_HEADER in [p["name"] for p in spec["paths"][path]["post"]["parameters"]]
    assert {"NotFound", "MethodNotAllowed"} <= set(spec["components"]["responses"])
    assert "Allow" in spec["components"]["responses"]["MethodNotAllowed"]["headers"]
    for name in ("Score", "Reason", "BatchScores", "Error", "Problem", "Health", "Model"):
        schema = spec["components"]["schemas"][name]
        assert set(schema["required"]) <= set(schema["properties"]) and schema["required"], name


def test_answers_match_their_documented_schemas(api, spec, applicants):
    reply, answer = send(api, one(applicants), query="reasons=3", traffic="test")
    validator(spec, "Score").validate(answer)
    _, answer = send(api, {"applicants": request_schema.records(applicants.head(3))}, "/score/batch", traffic="test")
    validator(spec, "BatchScores").validate(answer)
    huge = orjson.dumps({**one(applicants), "AMT_CREDIT": 424242, "Q" * 200: "Q" * 200}).replace(b"424242", b"9" * 30)
    for bad in (b"{", b"[1]", huge):
        reply, answer = send(api, bad)
        assert reply.status == 422
        validator(spec, "Error").validate(answer)
    validator(spec, "Health").validate(orjson.loads(api.handle("GET", "/health").body))
    validator(spec, "Model").validate(orjson.loads(api.handle("GET", "/model").body))
