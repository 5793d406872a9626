"""The scoring API's OpenAPI document and its readable reference page, generated from the request schema (itself
derived from the data contract) and the reason counts of params.yaml."""
from __future__ import annotations

import html
import json
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from scoring.serving.request_schema import MAX_BATCH, batch_model
from scoring.settings import ReasonSettings

REASON_SCHEMA = {
    "type": "object",
    "properties": {
        "feature": {"type": "string"}, "value": {"description": "the applicant's value (null when missing)"},
        "contribution": {"type": "number", "description": "SHAP contribution to the log-odds of default"},
        "sentence": {"type": "string"},
    },
}
SCORE_SCHEMA = {
    "type": "object",
    "properties": {
        "SK_ID_CURR": {"type": ["integer", "null"]},
        "probability": {"type": "number", "description": "calibrated probability of default"},
        "decision": {"type": "string", "enum": ["granted", "refused"]},
        "threshold": {"type": "number", "description": "refused when probability >= threshold"},
        "model_version": {"type": ["string", "null"]},
        "history_found": {"type": "boolean", "description": "the applicant's credit history was found"},
        "reasons": {"type": "array", "items": {"$ref": "#/components/schemas/Reason"}},
    },
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "array", "items": {"type": "object", "properties": {
        "field": {"type": "string"}, "rule": {"type": "string"}, "value": {},
        "applicant": {"type": "integer", "description": "position in the batch"}}}}},
}


def _json_response(description: str, ref: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _errors() -> dict[str, Any]:
    return {"413": _json_response("Body or batch too large", "#/components/schemas/Error"),
            "422": _json_response("Invalid request: each problem names the field and the rule",
                                  "#/components/schemas/Error")}


@cache
def openapi(reasons: ReasonSettings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the service, from the same pydantic models that validate requests."""
    schemas = TypeAdapter(batch_model()).json_schema(ref_template="#/components/schemas/{model}")
    components = {**schemas.pop("$defs", {}), "ApplicantBatch": schemas, "Reason": REASON_SCHEMA,
                  "Score": SCORE_SCHEMA, "Error": ERROR_SCHEMA,
                  "BatchScores": {"type": "object", "properties": {
                      "count": {"type": "integer"},
                      "results": {"type": "array", "items": {"$ref": "#/components/schemas/Score"}}}}}
    body = {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Applicant"}}}}
    batch_body = {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/ApplicantBatch"}},
        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}}}}
    count = {"name": "reasons", "in": "query",
             "schema": {"type": "integer", "minimum": 0, "maximum": reasons.max, "default": reasons.default},
             "description": "how many reasons per applicant (0: none, faster)"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Prêt à dépenser credit scoring", "version": "1.0",
                 "description": "Probability of default, decision at the business-cost threshold, and the reasons."},
        "paths": {
            "/score": {"post": {"summary": "Score one applicant", "parameters": [count], "requestBody": body,
                                "responses": {"200": _json_response("The score", "#/components/schemas/Score"),
                                              **_errors()}}},
            "/score/batch": {"post": {
                "summary": f"Score up to {MAX_BATCH:,} applicants (JSON, Parquet or Arrow stream)",
                "parameters": [count], "requestBody": batch_body,
                "responses": {"200": _json_response("One score per applicant, in order",
                                                    "#/components/schemas/BatchScores"), **_errors()}}},
            "/health": {"get": {"summary": "Liveness and the model served",
                                "responses": {"200": {"description": "ok"}}}},
            "/model": {"get": {"summary": "Model name, version, alias, threshold, training metrics, features",
                               "responses": {"200": {"description": "model card facts"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI"}}}},
            "/docs": {"get": {"summary": "Readable API reference", "responses": {"200": {"description": "HTML"}}}},
        },
        "components": {"schemas": components},
    }


def _property_rows(schema: dict[str, Any], required: set[str]) -> str:
    rows = []
    for name, spec in schema.get("properties", {}).items():
        options = spec.get("anyOf", [spec])
        kinds = [o.get("type", "") for o in options if o.get("type") != "null"]
        limits = [f"{key} {o[key]}" for o in options for key in ("minimum", "maximum") if key in o]
        enum = [v for o in options for v in o.get("enum", [])]
        rule = ", ".join(limits) + (f"one of: {', '.join(map(str, enum))}" if enum else "")
        rows.append(f"<tr><td><code>{html.escape(name)}</code></td><td>{'/'.join(kinds)}</td>"
                    f"<td>{'yes' if name in required else ''}</td><td>{html.escape(rule)}</td></tr>")
    return "\n".join(rows)


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
  -d '{html.escape(example)}'</pre>
<p>Errors: 422 (or 413 for oversized bodies and batches) with
<code>{{"detail": [{{"field", "rule", "value"}}]}}</code>.</p>
<h2>Applicant fields (from the data contract)</h2>
<table><tr><th>field</th><th>type</th><th>required</th><th>rule</th></tr>
{_property_rows(applicant, set(applicant.get('required', [])))}</table></body></html>"""
