"""The scoring API's OpenAPI document and its readable reference page, generated from the request schema (itself
derived from the data contract), its limits and the reason counts of params.yaml.

The document states every rule the service enforces on a request (ranges, whole numbers, sentinels as alternative
constants, categories, unknown fields, the reasons parameter, the X-Traffic header, the media types) and every status
it answers, each with its schema; what JSON Schema cannot say (an SK_ID_CURR unique within a batch, each field once)
is said in the descriptions. tests/integration/test_fuzz.py holds the service to it with an OpenAPI-driven fuzzer.
"""
from __future__ import annotations

import html
import json
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from scoring.serving.request_schema import (
    ARROW_TYPES,
    ECHO_CHARS,
    JSON,
    MAX_BATCH,
    MAX_BODY_BYTES,
    MAX_PROBLEMS,
    MAX_SINGLE_BODY_BYTES,
    PARQUET_TYPES,
    TRAFFIC_HEADER,
    batch_model,
)
from scoring.serving.traffic import TRAFFIC
from scoring.settings import ReasonSettings

SCHEMAS = "#/components/schemas/"
BINARY = {"type": "string", "format": "binary"}
TABLE_TYPES = (ARROW_TYPES[0], PARQUET_TYPES[0])
PROBLEM_SCHEMA = {
    "type": "object", "required": ["field", "rule"],
    "properties": {
        "field": {"type": "string", "description": f"the field, column, parameter or header at fault (names cut to "
                                                   f"{ECHO_CHARS} characters)"},
        "rule": {"type": "string", "description": "the rule broken, in words"},
        "value": {"description": f"the value given: numbers and booleans as sent, integers beyond 64 bits and "
                                 f"anything else as text cut to {ECHO_CHARS} characters"},
        "applicant": {"type": "integer", "minimum": 0, "description": "position in the batch (from 0)"},
        "truncated": {"type": "boolean", "const": True,
                      "description": f"the field or the value was cut to {ECHO_CHARS} characters"},
    },
}
ERROR_SCHEMA = {
    "type": "object", "required": ["detail"],
    "properties": {"detail": {"type": "array", "minItems": 1, "maxItems": MAX_PROBLEMS,
                              "items": {"$ref": f"{SCHEMAS}Problem"}}},
}


def response_schemas(reasons: ReasonSettings) -> dict[str, Any]:
    """The schemas of the answers, every field required."""
    nullable_text = {"type": ["string", "null"]}
    return {
        "Reason": {"type": "object", "required": ["feature", "value", "contribution", "sentence", "code", "text"],
                   "description": "one family of related fields (scoring/catalog.py), named by its strongest field",
                   "properties": {
            "feature": {"type": "string", "description": "the family's field that moved the score most"},
            "value": {"description": "the applicant's value of the feature (null when missing)"},
            "contribution": {"type": "number", "description": "SHAP contribution of the whole family to the "
                                                              "model's raw score (log-odds for the boosters)"},
            "sentence": {"type": "string", "description": "the text and the direction it moves the risk"},
            "code": {"type": "string", "pattern": "^R[0-9]{2}$",
                     "description": "stable reason code of the family (for adverse-action letters)"},
            "text": {"type": "string", "description": "the reason in words, e.g. 'Employed for 1.9 years (short)'"}}},
        "Score": {"type": "object", "required": ["SK_ID_CURR", "probability", "decision", "threshold",
                                                 "model_version", "history_found", "reasons"], "properties": {
            "SK_ID_CURR": {"type": ["integer", "null"]},
            "probability": {"type": "number", "minimum": 0, "maximum": 1,
                            "description": "calibrated probability of default"},
            "decision": {"type": "string", "enum": ["granted", "refused"]},
            "threshold": {"type": "number", "description": "refused when probability >= threshold"},
            "model_version": nullable_text,
            "history_found": {"type": "boolean", "description": "the applicant's credit history was found"},
            "reasons": {"type": "array", "maxItems": reasons.max, "items": {"$ref": f"{SCHEMAS}Reason"}}}},
        "BatchScores": {"type": "object", "required": ["count", "results"], "properties": {
            "count": {"type": "integer", "minimum": 1, "maximum": MAX_BATCH},
            "results": {"type": "array", "items": {"$ref": f"{SCHEMAS}Score"}}}},
        "Health": {"type": "object", "required": ["status", "model_version", "uptime_s"], "properties": {
            "status": {"const": "ok"}, "model_version": nullable_text, "uptime_s": {"type": "number", "minimum": 0}}},
        "Model": {"type": "object", "required": ["name", "version", "source", "alias", "threshold", "model_family",
                                                 "metrics", "features", "fields"], "properties": {
            "name": {"type": "string"}, "version": nullable_text, "source": {"type": "string"},
            "alias": nullable_text, "threshold": {"type": "number"}, "model_family": {"type": "string"},
            "metrics": {"type": "object", "description": "training metrics (auc, business_cost, ...)"},
            "features": {"type": "array", "items": {"type": "string"}},
            "fields": {"type": "array", "items": {"type": "string"}}}},
        "Problem": PROBLEM_SCHEMA,
        "Error": ERROR_SCHEMA,
    }


def _json(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {"description": description, "content": {JSON: {"schema": {"$ref": f"{SCHEMAS}{schema}"}}}}
    return out | ({"headers": headers} if headers else {})


def _statuses(post: bool) -> dict[str, Any]:
    """The refusals and failures of an operation; 404 and 405 are in components.responses (any other path or
    method). 503 comes from the ingress (no replica up, a replica that died or timed out: JSON like a refusal) or
    from a replica's full queue (Ray Serve's text), both with Retry-After."""
    error = {"$ref": f"{SCHEMAS}Error"}
    text = {"text/plain": {"schema": {"type": "string"}}}
    out = {}
    if post:
        out |= {"413": _json(f"Body larger than its limit ({MAX_SINGLE_BODY_BYTES // 2**20} MiB for /score, "
                             f"{MAX_BODY_BYTES // 2**20} MiB for /score/batch) or batch of more than "
                             f"{MAX_BATCH:,} applicants (counted before reading them)", "Error"),
                "415": _json("Unsupported Content-Type (the problem names the accepted ones)", "Error"),
                "422": _json(f"Invalid request: each problem (the first {MAX_PROBLEMS:,}) names the field and the "
                             "rule", "Error")}
    return out | {
        "500": {"description": "A bug: logged, the request was not scored",
                "content": {JSON: {"schema": error}, **text}},
        "503": {"description": "No replica could answer (starting, restarting, overloaded or timed out): the request "
                               "may not have been scored, retry after Retry-After seconds",
                "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}},
                "content": {JSON: {"schema": error}, **text}}}


def _parameters(reasons: ReasonSettings) -> list[dict[str, Any]]:
    return [
        {"name": "reasons", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 0, "maximum": reasons.max, "default": reasons.default},
         "description": "how many reasons per applicant (0: none, faster); ASCII digits, given at most once"},
        {"name": TRAFFIC_HEADER, "in": "header", "required": False,
         "schema": {"type": "string", "enum": list(TRAFFIC), "default": TRAFFIC[0]},
         "description": "what the request is: a real application (production, the default), a test (load, "
                        "fuzzing, smoke) or a preview (the app's what-if edits). Each is scored alike; only "
                        "production traffic counts in monitoring"},
    ]


def _operations(reasons: ReasonSettings) -> dict[str, Any]:
    score_body = {"required": True, "description": "one applicant; Content-Type application/json (or none: taken "
                                                   "as JSON); each field once",
                  "content": {JSON: {"schema": {"$ref": f"{SCHEMAS}Applicant"}}}}
    batch_body = {"required": True, "description": "JSON, or a Parquet file / Arrow stream with the applicants' "
                                                   "columns (the same rules, each column once)",
                  "content": {JSON: {"schema": {"$ref": f"{SCHEMAS}ApplicantBatch"}},
                              **{kind: {"schema": BINARY} for kind in TABLE_TYPES}}}
    batch_answer = {"description": "One score per applicant, in order: JSON, or a table (reason_<i>_* columns) when "
                                   "Accept asks for an Arrow stream or Parquet",
                    "content": {JSON: {"schema": {"$ref": f"{SCHEMAS}BatchScores"}},
                                **{kind: {"schema": BINARY} for kind in TABLE_TYPES}}}
    page = {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}
    docs = {"200": page, **_statuses(False)}
    return {
        "/score": {"post": {"summary": "Score one applicant", "parameters": _parameters(reasons),
                            "requestBody": score_body,
                            "responses": {"200": _json("The score", "Score"), **_statuses(True)}}},
        "/score/batch": {"post": {"summary": f"Score up to {MAX_BATCH:,} applicants (JSON, Parquet or Arrow stream)",
                                  "parameters": _parameters(reasons), "requestBody": batch_body,
                                  "responses": {"200": batch_answer, **_statuses(True)}}},
        "/health": {"get": {"summary": "Liveness and the model served",
                            "responses": {"200": _json("ok", "Health"), **_statuses(False)}}},
        "/model": {"get": {"summary": "Model name, version, alias, threshold, training metrics, features",
                           "responses": {"200": _json("model card facts", "Model"), **_statuses(False)}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {
            "200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}},
            **_statuses(False)}}},
        "/docs": {"get": {"summary": "Readable API reference", "responses": docs}},
        "/": {"get": {"summary": "Readable API reference (as /docs)", "responses": docs}},
    }


@cache
def openapi(reasons: ReasonSettings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the service, from the same pydantic models that validate requests."""
    schemas = TypeAdapter(batch_model()).json_schema(ref_template=SCHEMAS + "{model}")
    components = {**schemas.pop("$defs", {}), "ApplicantBatch": schemas, **response_schemas(reasons)}
    refusals = {"NotFound": _json("No such path", "Error"),
                "MethodNotAllowed": _json("Another method than the path's", "Error", {
                    "Allow": {"description": "the path's method", "schema": {"type": "string"}}})}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Prêt à dépenser credit scoring", "version": "1.0",
                 "description": "Probability of default, decision at the business-cost threshold, and the reasons. "
                                "Any other path answers 404, any other method 405 with Allow (components.responses)."},
        "paths": _operations(reasons),
        "components": {"schemas": components, "responses": refusals},
    }


def _rule_text(options: list[dict[str, Any]]) -> str:
    limits = [f"{key} {o[key]}" for o in options for key in ("minimum", "maximum") if key in o]
    whole = ["whole number"] if any(o.get("type") == "integer" for o in options) else []
    sentinel = [f"or {o['const']} ('not applicable')" for o in options if "const" in o]
    enum = [f"one of: {', '.join(map(str, o['enum']))}" for o in options if "enum" in o]
    return ", ".join(limits + whole + sentinel + enum)


def _property_rows(schema: dict[str, Any], required: set[str]) -> str:
    rows = []
    for name, spec in schema.get("properties", {}).items():
        options = [o for o in spec.get("anyOf", [spec]) if o.get("type") != "null"]
        options = [inner for o in options for inner in o.get("anyOf", [o])]
        kinds = sorted({o.get("type", "") for o in options if "type" in o} | ({"text"} if any(
            "enum" in o for o in options) else set()))
        rows.append(f"<tr><td><code>{html.escape(name)}</code></td><td>{'/'.join(kinds)}</td>"
                    f"<td>{'yes' if name in required else ''}</td><td>{html.escape(_rule_text(options))}</td></tr>")
    return "\n".join(rows)


def _status_rows(spec: dict[str, Any]) -> str:
    statuses = {code: answer["description"] for ops in spec["paths"].values() for op in ops.values()
                for code, answer in op["responses"].items() if code != "200"}
    statuses |= {"404": "No such path", "405": "Another method than the path's (the Allow header names it)"}
    return "".join(f"<li><b>{code}</b>: {html.escape(text)}</li>" for code, text in sorted(statuses.items()))


@cache
def docs_page(reasons: ReasonSettings) -> str:
    """A self-contained API reference (no CDN: the machines here reach no internet)."""
    spec = openapi(reasons)
    applicant = spec["components"]["schemas"]["Applicant"]
    endpoints = "".join(
        f"<li><b>{method.upper()} <code>{path}</code></b>: {html.escape(op['summary'])}</li>"
        for path, ops in spec["paths"].items() for method, op in ops.items())
    example = json.dumps({"SK_ID_CURR": 100001, "NAME_CONTRACT_TYPE": "Cash loans", "CODE_GENDER": "F", "...": "..."})
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{spec['info']['title']}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{border-bottom:1px solid #ddd;
padding:2px 8px;text-align:left;font-size:13px}}code{{background:#f4f4f4}}</style></head><body>
<h1>{html.escape(spec['info']['title'])}</h1><p>{html.escape(spec['info']['description'])}
The machine-readable document is <a href="/openapi.json">/openapi.json</a>.</p>
<h2>Endpoints</h2><ul>{endpoints}</ul>
<h2>Example</h2><pre>curl -s -X POST http://127.0.0.1:8000/score -H 'content-type: application/json' \\
  -H '{TRAFFIC_HEADER}: test' -d '{html.escape(example)}'</pre>
<h2>Requests</h2><ul>
<li><code>POST /score</code> takes <code>application/json</code> (no Content-Type: taken as JSON); <code>POST
/score/batch</code> also Parquet (<code>{PARQUET_TYPES[0]}</code>) and Arrow streams (<code>{ARROW_TYPES[0]}</code>).
Any other Content-Type: 415.</li>
<li>Each field once per applicant (a repeated JSON key is a 422 naming it); in a batch, an SK_ID_CURR once (in every
format: a repeated one is a 422 naming the applicants); at most {MAX_BATCH:,} applicants (413, counted before they
are read).</li>
<li><code>?reasons=k</code>: 0 to {reasons.max} (default {reasons.default}), ASCII digits, given at most once.</li>
<li><code>{TRAFFIC_HEADER}</code>: {', '.join(TRAFFIC)} (default {TRAFFIC[0]}); only production traffic counts in
monitoring.</li></ul>
<h2>Answers</h2><p>Errors carry <code>{{"detail": [{{"field", "rule", "value", "applicant", "truncated"}}]}}</code>:
the first {MAX_PROBLEMS:,} problems, values and names cut to {ECHO_CHARS} characters (<code>truncated</code>),
integers beyond 64 bits as text.</p><ul>{_status_rows(spec)}</ul>
<h2>Applicant fields (from the data contract)</h2>
<table><tr><th>field</th><th>type</th><th>required</th><th>rule</th></tr>
{_property_rows(applicant, set(applicant.get('required', [])))}</table></body></html>"""
