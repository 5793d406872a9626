"""The scoring API's request schema, derived from the data contract, and its error answers.

One applicant is the application_test row of `scoring.contract` less nothing and plus nothing: every column keeps its
type, range and categories; the contract's non-nullable columns are required, the others may be left out (missing,
as in Kaggle's files); SK_ID_CURR is optional and only used to look up the applicant's credit history. Extra fields,
wrong types, values out of range, unknown categories, NaN and infinity are rejected with the field and the rule, so
the service answers 422, never 500. The OpenAPI document (`serve/api.py`) is generated from the same models.
"""
from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from scoring import contract

APPLICANT_TABLE = "application_test"
MAX_BATCH = 100_000
"""Applicants per `POST /score/batch` request; larger batches get 413 (split them)."""
MAX_BODY_BYTES = 256 * 1024 * 1024
"""Largest batch body accepted (a 100,000-applicant JSON batch is about 200 MB); larger ones get 413."""
MAX_SINGLE_BODY_BYTES = 1024 * 1024
"""Largest `POST /score` body: one applicant is a few kB."""
JSON = "application/json"
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/parquet", "application/x-parquet")
ARROW_TYPES = ("application/vnd.apache.arrow.stream",)


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
