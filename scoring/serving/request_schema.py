"""The scoring API's request schema, derived from the data contract, its limits and its error answers.

One applicant is the application_test row of `scoring.contract` less nothing and plus nothing: every column keeps its
type, range (plausibility bounds included), sentinel and categories; the contract's non-nullable columns are required,
the others may be left out (missing, as in Kaggle's files); SK_ID_CURR is optional and only used to look up the
applicant's credit history. Extra fields, wrong types, values out of range, unknown categories, NaN and infinity are
rejected with the field and the rule, so the service answers 422, never 500. The OpenAPI document (`serve/openapi.py`)
is generated from the same models: each number's JSON Schema is written from its contract column (range, whole
numbers, the sentinel as an alternative constant), so the document states the rule the validator applies.

A JSON body is measured before pydantic reads it (`json_shape`, one compiled pass over the bytes): pydantic builds
every value and every error of a body, so a batch of 100,001 applicants, an array of ten million numbers in one field
or 100,000 empty applicants would cost seconds and gigabytes before their 413 or 422.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    create_model,
)

from scoring import contract

APPLICANT_TABLE = "application_test"
MAX_BATCH = 100_000
"""Applicants per `POST /score/batch` request; larger batches get 413 (split them)."""
MAX_BODY_BYTES = 256 * 1024 * 1024
"""Largest batch body accepted (a 100,000-applicant JSON batch of every field is about 300 MB: send fewer fields,
fewer applicants, or Arrow/Parquet); larger ones get 413. Also the most a table body may decode to."""
MAX_SINGLE_BODY_BYTES = 1024 * 1024
"""Largest `POST /score` body: one applicant is a few kB."""
MAX_TABLE_PARTS = 1_000
"""Record batches of an Arrow stream, row groups of a Parquet file: each is read from its metadata before decoding."""
MAX_PROBLEMS = 1_000
"""Problems listed in one 422 (the first ones, in order)."""
ECHO_CHARS = 100
"""A refused value (or an unknown field's name) is echoed cut to this many characters, marked `truncated`."""
JSON = "application/json"
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/parquet", "application/x-parquet")
ARROW_TYPES = ("application/vnd.apache.arrow.stream",)
BATCH_TYPES = (JSON, *PARQUET_TYPES, *ARROW_TYPES)
TRAFFIC_HEADER = "X-Traffic"
"""The request header that says which kind of traffic (`scoring.serving.traffic`) a request is (absent: production)."""


# ---- the models -----------------------------------------------------------------------------------------------------
def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def number_schema(col: contract.Column) -> dict[str, Any]:
    """The JSON Schema of a contract number: its range (integer for whole numbers) or else its sentinel."""
    plain: dict[str, Any] = {"type": "integer" if col.whole else "number"}
    plain |= {key: _plain(bound) for key, bound in (("minimum", col.min), ("maximum", col.max)) if bound is not None}
    if col.sentinel is None:
        return plain
    return {"anyOf": [plain, {"const": _plain(col.sentinel)}],
            "description": f"{contract.number(col.sentinel)} means 'not applicable'"}


def _sentinel_check(col: contract.Column):
    """The contract's own test of a number with a 'not applicable' value (`Column.rule_broken`): a range or else
    the sentinel, which pydantic's constraints cannot say."""
    def check(value: float) -> float:
        if (rule := col.rule_broken(value)) is not None:
            raise ValueError(rule)
        return value
    return check


def field_type(col: contract.Column) -> Any:
    """The pydantic type of one contract column. Numbers are strict (a string or a boolean is a wrong type) and
    checked by pydantic's compiled range constraints (a Python validator per field would double the cost of a
    batch), the sentinel columns by the contract's test; whole numbers are checked after validation, exactly
    (`whole_columns`: pydantic's `multiple_of` has a tolerance)."""
    if col.kind == "category":
        return Literal[col.categories] if col.categories and col.severity == "error" else str
    schema = WithJsonSchema(number_schema(col))
    if col.sentinel is not None:
        return Annotated[float, Field(strict=True, allow_inf_nan=False), AfterValidator(_sentinel_check(col)), schema]
    return Annotated[float, Field(strict=True, allow_inf_nan=False, ge=col.min, le=col.max), schema]


@cache
@cache
def whole_columns() -> tuple[str, ...]:
    """The numbers that must be whole (keys, integers, flags, counts and day counts stored as floats)."""
    return tuple(col.name for col in contract.table(APPLICANT_TABLE).columns if col.is_numeric and col.whole)


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
    """A JSON batch. `fail_fast`: pydantic stops at the first applicant in error (the service then checks the others
    one by one, up to `MAX_PROBLEMS`), never building the errors of 100,000 broken applicants."""
    applicant = applicant_model()
    rule = (f"1 to {MAX_BATCH:,} applicants; SK_ID_CURR, when given, unique within the batch (a repeated one is "
            "refused, 422 naming the applicants); each field given once per applicant")
    return create_model("ApplicantBatch", __config__=ConfigDict(extra="forbid"),
                        applicants=(list[applicant], Field(..., min_length=1, max_length=MAX_BATCH, fail_fast=True,
                                                           description=rule)))


@cache
def applicant_adapter() -> TypeAdapter:
    return TypeAdapter(applicant_model())


def field_count() -> int:
    return len(applicant_model().model_fields)


# ---- the answers to bad requests ------------------------------------------------------------------------------------
class RequestError(Exception):
    """A request the service refuses: HTTP status and the problems, each naming the field and the rule; `headers` of
    the answer besides its Content-Type (a 405's `Allow`)."""

    def __init__(self, status: int, problems: list[dict[str, Any]], headers: dict[str, str] | None = None):
        super().__init__(f"{status}: {problems[:3]}")
        self.status = status
        self.problems = problems
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"detail": self.problems}


def _text(value: Any) -> str:
    """Any value as text, even an integer past Python's 4,300-digit printing limit or a huge container."""
    if isinstance(value, int) and value.bit_length() > 14_000:
        return f"an integer of about {int(value.bit_length() * math.log10(2)):,} digits"
    if isinstance(value, bytes):
        return value[:4 * ECHO_CHARS].decode("utf-8", "replace")
    try:
        return value if isinstance(value, str) else str(value)
    except ValueError:
        return f"a {type(value).__name__} too large to print"


def echo(value: Any) -> tuple[Any, bool]:
    """(what the answer shows of a refused value, whether it was cut). Numbers and booleans as they are, integers
    beyond 64 bits as text (JSON parsers stop there), anything else as text of at most `ECHO_CHARS` characters,
    lone surrogates replaced (they cannot be written as UTF-8)."""
    if isinstance(value, bool | float) or (isinstance(value, int) and -2**63 <= value < 2**63):
        return value, False
    text = _text(value)
    cut = text[:ECHO_CHARS]
    return cut.encode("utf-8", "replace").decode("utf-8"), len(text) > ECHO_CHARS


def problem(field: str, rule: str, value: Any = None, applicant: int | None = None) -> dict[str, Any]:
    """One problem of a refused request: the field (cut to `ECHO_CHARS`), the rule broken, the applicant's position
    in a batch and the value given (see `echo`); `truncated` when the field or the value was cut."""
    name, cut_name = echo(str(field))
    out: dict[str, Any] = {"field": name, "rule": rule.encode("utf-8", "replace").decode("utf-8")}
    if applicant is not None:
        out["applicant"] = applicant
    cut_value = False
    if value is not None:
        out["value"], cut_value = echo(value)
    if cut_name or cut_value:
        out["truncated"] = True
    return out


def _rule(error: dict[str, Any], field: str) -> str:
    """Pydantic's message, or the contract's words where the contract has them (the same as a table's checks)."""
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in ("greater_than_equal", "less_than_equal"):
        return contract.table(APPLICANT_TABLE).column(field).range_text()
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] == "extra_forbidden":
        return "unknown field (not in the data contract's application columns)"
    if error["type"] == "finite_number":
        return "must be a finite number (no NaN or infinity)"
    return message


def problems_from(error: ValidationError, batch: bool = False, applicant: int | None = None) -> list[dict[str, Any]]:
    """Pydantic's errors as (field, rule, value) problems; in a batch, with the applicant's position (read from the
    error's location, or `applicant` for one applicant validated alone)."""
    out = []
    for item in error.errors(include_url=False):
        loc, where = list(item["loc"]), applicant
        if batch and len(loc) >= 2 and loc[0] == "applicants" and isinstance(loc[1], int):
            where, loc = loc[1], loc[2:]
        if item["type"] == "json_invalid":
            out.append(problem("body", f"malformed JSON: {item['msg'].removeprefix('Invalid JSON: ')}"))
            continue
        field = ".".join(str(part) for part in loc) or "body"
        value = item.get("input") if item["type"] != "missing" else None
        out.append(problem(field, _rule(item, field), value, where))
    return out


# ---- the shape of a JSON body, measured before pydantic reads it -----------------------------------------------------
@dataclass(frozen=True)
class JsonShape:
    """What one pass over a JSON body's bytes finds, strings skipped (their content never counts):
    - items: elements of the arrays that are values of the top-level object (a batch's applicants), counted up to
      the limit asked for plus one; `spans[i]` = (first byte, end byte, keys) of the i-th (keys: its own keys)
    - tokens: values and keys of the whole body; top_keys: the top-level object's keys (top_object: whether the body
      is an object); deepest: the deepest nesting of arrays and objects, first reached in element `deep_item`."""

    items: int
    tokens: int
    deepest: int
    deep_item: int
    top_keys: int
    top_object: bool
    spans: np.ndarray


def _scan_json(data: np.ndarray, limit: int, capacity: int) -> tuple:
    """The compiled pass of `json_shape` (numba): a byte loop with no allocation but the spans."""
    spans = np.zeros((capacity, 3), np.int64)
    n, i, depth, deepest, deep_item, items, tokens, top_keys = len(data), 0, 0, 0, 0, 0, 0, 0
    in_items, expect, top_object = False, True, False
    while i < n:
        c = data[i]
        i += 1
        if c == 32 or c == 10 or c == 13 or c == 9:
            continue
        if c == 44 or c == 58:  # , :
            if c == 44 and in_items and depth == 2 and 0 < items <= capacity:
                spans[items - 1, 1] = i - 1
            elif c == 58 and depth == 1:
                top_keys += 1
            elif c == 58 and in_items and depth == 3 and 0 < items <= capacity:
                spans[items - 1, 2] += 1
            expect = True
            continue
        if c == 93 or c == 125:  # ] }
            if in_items and depth == 2:
                if 0 < items <= capacity and spans[items - 1, 1] == 0:
                    spans[items - 1, 1] = i - 1
                in_items = False
            depth -= 1
            expect = False
            continue
        if expect:
            tokens += 1
            expect = False
            if in_items and depth == 2:
                items += 1
                if items > limit:
                    break
                if items <= capacity:
                    spans[items - 1, 0] = i - 1
        if c == 34:  # a string: skipped, escapes included
            while i < n and data[i] != 34:
                i += 2 if data[i] == 92 else 1
            i += 1
        elif c == 123 or c == 91:  # { [
            top_object = top_object or (depth == 0 and c == 123)
            depth += 1
            if depth > deepest:
                deepest, deep_item = depth, items
            expect = True
            in_items = in_items or (depth == 2 and c == 91 and top_object)
        else:  # a number or a literal: skipped to its end
            while i < n and data[i] > 32 and data[i] != 44 and data[i] != 58 and data[i] != 93 and data[i] != 125:
                i += 1
    return items, tokens, deepest, deep_item, top_keys, top_object, spans


@cache
def _compiled_scan():
    import numba

    return numba.njit(nogil=True, cache=True)(_scan_json)


def json_shape(body: bytes, limit: int = MAX_BATCH, spans: bool = True) -> JsonShape:
    """The shape of a JSON body in one compiled pass (about 1 ms per MB, no copy of the body): the checks that bound
    pydantic's work read it. `limit`: stop counting items past it; `spans`: keep each item's bytes and keys."""
    data = np.frombuffer(body, dtype=np.uint8)
    items, tokens, deepest, deep_item, top_keys, top_object, where = _compiled_scan()(
        data, limit, limit + 1 if spans else 0)
    return JsonShape(int(items), int(tokens), int(deepest), int(deep_item), int(top_keys), bool(top_object),
                     where[:min(int(items), len(where))])


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
