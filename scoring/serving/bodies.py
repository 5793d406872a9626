"""Batch request bodies, checked before and while they are read, so that an oversized or malformed one costs
milliseconds, not gigabytes: a JSON body's shape (applicants, values, keys, depth) measured in one pass before
pydantic reads it; a Parquet or Arrow body's rows, parts and size read from its metadata before it is decoded;
then the rules pydantic does not state (whole numbers, each key once, SK_ID_CURR unique in the batch).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from scoring import contract
from scoring.data import row_checks
from scoring.serving import request_schema
from scoring.serving.request_schema import (
    ARROW_TYPES,
    ECHO_CHARS,
    JSON,
    MAX_BATCH,
    MAX_BODY_BYTES,
    MAX_PROBLEMS,
    MAX_TABLE_PARTS,
    PARQUET_TYPES,
    JsonShape,
    RequestError,
    problem,
)

logger = logging.getLogger(__name__)
WHOLE = "must be a whole number"


# ---- JSON bodies -----------------------------------------------------------------------------------------------------
def value_budget(applicants: int) -> int:
    """The most JSON values and keys a body of n applicants is let hold: the object, the `applicants` key and array,
    then per applicant its object and each field twice over (key and value; a repeated key gets its 422 naming it)."""
    return 3 + max(applicants, 1) * (1 + 4 * request_schema.field_count())


def too_many_values(tokens: int, applicants: int) -> dict[str, Any]:
    return problem("body", f"{tokens:,} JSON values and keys for {applicants:,} applicant(s), at most "
                           f"{value_budget(applicants):,}: field values are numbers, strings or null, never "
                           "arrays or objects")


def check_batch_shape(shape: JsonShape) -> None:
    """413 past MAX_BATCH applicants; 422 for more values than the applicants can hold, an array or object inside an
    applicant, or an applicant of more than twice the contract's fields: pydantic never reads such a body."""
    if shape.items > MAX_BATCH:
        raise RequestError(413, [problem("applicants", f"more than {MAX_BATCH:,} applicants; split the batch")])
    if shape.tokens > value_budget(shape.items):
        raise RequestError(422, [too_many_values(shape.tokens, shape.items)])
    if shape.deepest > 3:
        raise RequestError(422, [problem("applicants", "field values are numbers, strings or null, never arrays or "
                                                       "objects", applicant=shape.deep_item - 1 if shape.deep_item
                                         else None)])
    crowded = np.flatnonzero(shape.spans[:, 2] > 2 * request_schema.field_count())
    if len(crowded):
        raise RequestError(422, [problem("applicants", f"{shape.spans[i, 2]:,} fields; an applicant has "
                                                       f"{request_schema.field_count()} at most", applicant=int(i))
                                 for i in crowded[:MAX_PROBLEMS]])


def repeated_keys(text: bytes, applicant: int | None = None) -> list[dict[str, Any]]:
    """The keys given more than once in a JSON text, in order. Python's json with a pairs hook: slow, so it runs only
    where the count of keys and the count of fields pydantic saw differ."""
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        found.extend(key for key, _ in items if key in seen or seen.add(key))
        return dict(items)

    json.loads(text, object_pairs_hook=pairs)
    return [problem(key, "given more than once (each field once: JSON keys must be unique)", applicant=applicant)
            for key in dict.fromkeys(found)]


def batch_repeated_keys(body: bytes, shape: JsonShape, given: np.ndarray) -> list[dict[str, Any]]:
    if shape.top_keys != 1:
        return [problem("applicants", "given more than once (JSON keys must be unique)")]
    problems = []
    for index in np.flatnonzero(shape.spans[:, 2] != given)[:MAX_PROBLEMS]:
        start, end, _ = shape.spans[index]
        problems += repeated_keys(body[start:end], int(index))
    return problems


def whole_problems(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The values of a JSON batch that must be whole numbers and are not (exactly: value == int(value), as
    `Column.rule_broken` and the row checks test it)."""
    problems = []
    for name in request_schema.whole_columns():
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            rows = np.flatnonzero(np.isfinite(values) & (values != np.trunc(values)))
        problems += [problem(name, WHOLE, float(values[row]), int(row)) for row in rows[:MAX_PROBLEMS]]
    return problems


def repeated_ids(ids: pd.Series) -> list[dict[str, Any]]:
    """An SK_ID_CURR given to more than one applicant of a batch, in any format: each of them, with its position."""
    rows = np.flatnonzero((ids.notna() & ids.duplicated(keep=False)).to_numpy())
    return [problem("SK_ID_CURR", "must be unique within the batch (given to more than one applicant)",
                    int(ids.iloc[row]), int(row)) for row in rows[:MAX_PROBLEMS]]


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, without parameters (JSON when absent)."""
    return (content_type or JSON).split(";")[0].strip().lower()


def unsupported_type(kind: str, accepted: tuple[str, ...]) -> dict[str, Any]:
    return problem("content-type", f"not accepted here; send {' or '.join(dict.fromkeys(accepted))}", kind)


# ---- Arrow and Parquet bodies ----------------------------------------------------------------------------------------
def binary_frame(body: bytes, kind: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The applicants of a table body and the contract's problems with them (SK_ID_CURR's uniqueness apart)."""
    frame = decode_table(body, kind).to_pandas()
    if len(frame) == 0:
        raise RequestError(422, [problem("applicants", "the batch is empty")])
    for name in request_schema.applicant_model().model_fields:
        if name not in frame.columns:
            frame[name] = None
    checks = frame.drop(columns="SK_ID_CURR").assign(SK_ID_CURR=frame["SK_ID_CURR"])
    found = row_checks.row_problems(checks, request_schema.APPLICANT_TABLE)
    own = (found["column"] == "SK_ID_CURR") & found["rule"].isin(["must not be missing", "must be unique"])
    return frame, [problem(r.column, r.rule, r.value, int(r.row)) for r in found[~own].head(MAX_PROBLEMS).itertuples()]


@contextmanager
def readable(kind: str) -> Iterator[None]:
    """Any failure to read a table body is the client's malformed body: 422 saying why."""
    try:
        yield
    except RequestError:
        raise
    except Exception as error:
        raise RequestError(422, [problem("body", f"not a readable {kind} body: {str(error)[:300]}")]) from None


def decode_table(body: bytes, kind: str) -> Any:
    """A table body (a pyarrow Table), decoded only after its metadata was checked: column names, types, rows, parts
    and decoded size (`check_columns`, `check_size`), so an oversized body is refused without decoding it."""
    return parquet_table(body) if kind in PARQUET_TYPES else arrow_table(body)


def parquet_table(body: bytes) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with readable(PARQUET_TYPES[0]):
        parquet = pq.ParquetFile(pa.BufferReader(body))
        check_columns(parquet.schema_arrow)
        meta = parquet.metadata
        check_size(meta.num_rows, meta.num_row_groups, 0)  # the parts first: each is read below
        check_size(meta.num_rows, 0, sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)))
        texts = [f.name for f in parquet.schema_arrow if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        # texts stay dictionary-encoded as written: a dictionary of one long text must not be copied per row
        table = pq.ParquetFile(pa.BufferReader(body), read_dictionary=texts).read()
        return cut_texts(table)


def arrow_table(body: bytes) -> Any:
    import pyarrow as pa

    with readable(ARROW_TYPES[0]):
        rows = parts = size = 0
        for message in pa.ipc.MessageReader.open_stream(pa.BufferReader(body)):
            if message.type == "schema":
                check_columns(pa.ipc.read_schema(message))
            elif message.type in ("record batch", "dictionary"):
                batch_rows, batch_size = arrow_batch_size(message)
                rows += batch_rows if message.type == "record batch" else 0
                parts, size = parts + 1, size + batch_size
                check_size(rows, parts, size)
        return cut_texts(pa.ipc.open_stream(pa.BufferReader(body)).read_all())


def check_size(rows: int, parts: int, size: int) -> None:
    if rows > MAX_BATCH:
        raise RequestError(413, [problem("applicants", f"{rows:,} rows or more; at most {MAX_BATCH:,} per request "
                                                       "(split the batch)")])
    if parts > MAX_TABLE_PARTS:
        raise RequestError(413, [problem("body", f"more than {MAX_TABLE_PARTS:,} record batches or row groups; write "
                                                 "fewer, larger ones")])
    if size > MAX_BODY_BYTES:
        raise RequestError(413, [problem("body", f"decodes to more than {MAX_BODY_BYTES // 2**20} MiB; split the "
                                                 "batch")])


def check_columns(schema: Any) -> None:
    """The columns of a table body, from its schema: each once, each of the contract, of a number type (integers,
    floats) or a text type as the contract says (or all null), the required ones present."""
    expected = request_schema.applicant_model().model_fields
    names = list(schema.names)
    problems = [problem(name, "column given more than once") for name in dict.fromkeys(names) if names.count(name) > 1]
    problems += [problem(name, "unknown column (not in the data contract's application columns)")
                 for name in names if name not in expected]
    table = contract.table(request_schema.APPLICANT_TABLE)
    problems += [wrong for field in schema if field.name in expected
                 if (wrong := type_problem(field, table.column(field.name).is_numeric)) is not None]
    problems += [problem(name, "required column is missing") for name, f in expected.items()
                 if f.is_required() and name not in names]
    if problems:
        raise RequestError(422, problems[:MAX_PROBLEMS])


def type_problem(field: Any, numeric: bool) -> dict[str, Any] | None:
    """None when an Arrow column type suits its contract column: integers or floats for a number, (dictionary-encoded)
    strings for a category, null for either; booleans, decimals, dates or lists are refused as JSON refuses them."""
    import pyarrow as pa

    kind = field.type
    if pa.types.is_null(kind) or (numeric and (pa.types.is_integer(kind) or pa.types.is_floating(kind))):
        return None
    values = kind.value_type if pa.types.is_dictionary(kind) else kind
    if not numeric and (pa.types.is_string(values) or pa.types.is_large_string(values)):
        return None
    return problem(field.name, f"column of type {kind}; {'numbers' if numeric else 'text'} expected")


def arrow_batch_size(message: Any) -> tuple[int, int]:
    """(rows, decoded bytes) of an Arrow record or dictionary batch, read from its metadata (the flatbuffers of
    Arrow's Message.fbs: Message.header -> RecordBatch {length, nodes, buffers, compression}) without decoding it; a
    compressed buffer starts with its decoded length (int64, -1: stored as is)."""
    meta = memoryview(message.metadata)
    header = _child(meta, _u32(meta, 0), 2)
    if message.type == "dictionary":
        header = _child(meta, header, 1)  # DictionaryBatch.data
    length = _slot(meta, header, 0)
    rows = int.from_bytes(meta[length:length + 8], "little", signed=True) if length else 0
    buffers = np.frombuffer(meta, "<i8", 2 * _u32(meta, _child(meta, header, 2)), _child(meta, header, 2) + 4)
    offsets, lengths = buffers[0::2], buffers[1::2]
    if _slot(meta, header, 3) is not None:  # compressed: the decoded length heads each buffer
        lengths, prefixed = lengths.copy(), lengths >= 8
        heads = np.frombuffer(message.body, np.uint8)[offsets[prefixed, None] + np.arange(8)]
        decoded = np.ascontiguousarray(heads).view("<i8")[:, 0]
        lengths[prefixed] = np.where(decoded >= 0, decoded, lengths[prefixed])
    return rows, int(lengths.sum())


def _u32(buf: memoryview, at: int) -> int:
    return int.from_bytes(buf[at:at + 4], "little")


def _slot(buf: memoryview, table: int, index: int) -> int | None:
    """Where field `index` of the flatbuffers table at `table` lies (None: absent, its default)."""
    vtable = table - int.from_bytes(buf[table:table + 4], "little", signed=True)
    if 4 + 2 * index + 2 > int.from_bytes(buf[vtable:vtable + 2], "little"):
        return None
    offset = int.from_bytes(buf[vtable + 4 + 2 * index:vtable + 6 + 2 * index], "little")
    return table + offset if offset else None


def _child(buf: memoryview, table: int, index: int) -> int:
    """The table (or vector) that field `index` of `table` points to."""
    at = _slot(buf, table, index)
    if at is None:
        raise ValueError(f"Arrow metadata without field {index}")
    return at + _u32(buf, at)


def cut_texts(table: Any) -> Any:
    """Texts cut to ECHO_CHARS + 1 characters and dictionaries decoded. No category of the contract is that long, so
    a cut text still fails its check (and its echo says truncated); the table's texts then hold at most
    rows x columns x 101 characters, whatever their encoding made of them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cut = ECHO_CHARS + 1
    for index, field in enumerate(table.schema):
        column = table.column(index)
        if pa.types.is_dictionary(field.type):
            chunks = [pa.DictionaryArray.from_arrays(c.indices, pc.utf8_slice_codeunits(c.dictionary, 0, cut))
                      for c in column.chunks]
            column = pa.chunked_array(chunks, pa.dictionary(field.type.index_type, pa.string())).cast(pa.string())
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            column = pc.utf8_slice_codeunits(column, 0, cut)
        else:
            continue
        table = table.set_column(index, field.name, column)
    return table
