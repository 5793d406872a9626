"""The scoring API's request schema, derived from the data contract, and its error answers.

One applicant is the application_test row of `scoring.contract` less nothing and plus nothing: every column keeps its
type, range and categories; the contract's non-nullable columns are required, the others may be left out (missing,
as in Kaggle's files); SK_ID_CURR is optional and only used to look up the applicant's credit history. Extra fields,
wrong types, values out of range, unknown categories, NaN and infinity are rejected with the field and the rule, so
the service answers 422, never 500. The OpenAPI document is generated from the same models.
"""
from __future__ import annotations

import html
import json
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from scoring import contract

APPLICANT_TABLE = "application_test"
MAX_BATCH = 100_000
"""Applicants per `POST /score/batch` request; larger batches get 413 (split them)."""


def _sentinel_check(col: contract.Column):
    """Range check that lets the contract's 'not applicable' value through (DAYS_EMPLOYED = 365243, ...)."""
    def check(value: float | None) -> float | None:
        if value is None or value == col.sentinel:
            return value
        if col.min is not None and value < col.min:
            raise ValueError(f"must be >= {col.min:g} (or {col.sentinel:g}, 'not applicable')")
        if col.max is not None and value > col.max:
            raise ValueError(f"must be <= {col.max:g} (or {col.sentinel:g}, 'not applicable')")
        return value
    return check


def field_type(col: contract.Column) -> Any:
    """The pydantic type of one contract column."""
    if col.kind == "category":
        return Literal[col.categories] if col.categories and col.severity == "error" else str
    # Numbers are strict (a string is a wrong type); integer columns take 1 or 1.0 (pandas writes nullable integers
    # as floats) but not 1.5.
    whole = {} if col.kind == "float" else {"multiple_of": 1}
    if col.sentinel is not None:
        return Annotated[float, Field(strict=True, allow_inf_nan=False, **whole),
                         AfterValidator(_sentinel_check(col))]
    return Annotated[float, Field(strict=True, ge=col.min, le=col.max, allow_inf_nan=False, **whole)]


def _field(col: contract.Column, required: bool) -> tuple[Any, Any]:
    kind = field_type(col)
    if required:
        return kind, Field(...)
    return kind | None, Field(None)


@cache
def applicant_model() -> type[BaseModel]:
    """One applicant: the contract's application columns; the non-nullable ones required."""
    fields = {
        col.name: _field(col, required=not col.nullable and col.name != "SK_ID_CURR")
        for col in contract.table(APPLICANT_TABLE).columns
    }
    return create_model("Applicant", __config__=ConfigDict(extra="forbid"), **fields)


@cache
def batch_model() -> type[BaseModel]:
    applicant = applicant_model()
    return create_model("ApplicantBatch", __config__=ConfigDict(extra="forbid"),
                        applicants=(list[applicant], Field(..., min_length=1, max_length=MAX_BATCH)))


@cache
def applicant_adapter() -> TypeAdapter:
    return TypeAdapter(applicant_model())


class RequestError(Exception):
    """A request the service refuses: HTTP status and the problems, each naming the field and the rule."""

    def __init__(self, status: int, problems: list[dict[str, Any]]):
        super().__init__(f"{status}: {problems[:3]}")
        self.status = status
        self.problems = problems

    def body(self) -> dict[str, Any]:
        return {"detail": self.problems}


def problem(field: str, rule: str, value: Any = None, applicant: int | None = None) -> dict[str, Any]:
    out = {"field": field, "rule": rule}
    if applicant is not None:
        out["applicant"] = applicant
    if value is not None:
        out["value"] = value if isinstance(value, (int, float, str, bool)) else str(value)[:100]
    return out


def _rule(error: dict[str, Any]) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] == "extra_forbidden":
        return "unknown field (not in the data contract's application columns)"
    if error["type"] == "multiple_of":
        return "must be a whole number"
    if error["type"] == "finite_number":
        return "must be a finite number (no NaN or infinity)"
    return message


def problems_from(error: ValidationError, batch: bool = False) -> list[dict[str, Any]]:
    """Pydantic's errors as (field, rule, value) problems; in a batch, with the applicant's position."""
    out = []
    for item in error.errors(include_url=False):
        loc = list(item["loc"])
        applicant = None
        if batch and len(loc) >= 2 and loc[0] == "applicants" and isinstance(loc[1], int):
            applicant, loc = loc[1], loc[2:]
        field = ".".join(str(part) for part in loc) or "body"
        if item["type"] == "json_invalid":
            out.append(problem("body", f"malformed JSON: {item['msg'].removeprefix('Invalid JSON: ')}"))
            continue
        value = item.get("input") if item["type"] not in ("missing", "model_type", "dict_type") else None
        out.append(problem(field, _rule(item), value, applicant))
    return out


# ---- OpenAPI --------------------------------------------------------------------------------------------------------
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
def openapi() -> dict[str, Any]:
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
    reasons = {"name": "reasons", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 20},
               "description": "how many reasons per applicant (0: none, faster)"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Prêt à dépenser credit scoring", "version": "1.0",
                 "description": "Probability of default, decision at the business-cost threshold, and the reasons."},
        "paths": {
            "/score": {"post": {"summary": "Score one applicant", "parameters": [reasons], "requestBody": body,
                                "responses": {"200": _json_response("The score", "#/components/schemas/Score"),
                                              **_errors()}}},
            "/score/batch": {"post": {
                "summary": f"Score up to {MAX_BATCH:,} applicants (JSON, Parquet or Arrow stream)",
                "parameters": [reasons], "requestBody": batch_body,
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
def docs_page() -> str:
    """A self-contained API reference (no CDN: the machines here reach no internet)."""
    spec = openapi()
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


def records(frame: Any) -> list[dict[str, Any]]:
    """Applicants of a table (Kaggle's application schema) as request bodies: missing values as null, no TARGET."""
    import pandas as pd

    columns = [name for name in applicant_model().model_fields if name in frame.columns]
    plain = frame[columns].astype(object).where(frame[columns].notna(), None)
    rows = plain.to_dict("records")
    for row in rows:
        for key, value in row.items():
            if hasattr(value, "item"):
                row[key] = value.item()
            elif value is pd.NA:
                row[key] = None
    return rows
