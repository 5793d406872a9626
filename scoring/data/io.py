"""Reading and writing the Home Credit tables: file discovery, contract-typed reads, atomic Parquet outputs."""
from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scoring import contract

logger = logging.getLogger(__name__)
SUFFIXES = (".parquet", ".csv", ".csv.gz", ".csv.zip")


class InputError(ValueError):
    """Input that cannot be used as it is; the message says what, where and how to fix it."""


def arrow_schema(table: str) -> pa.Schema:
    """Kaggle's raw types: strings for categories, int64 for never-missing integers, float64 otherwise."""
    fields = []
    for col in contract.table(table).columns:
        if col.kind == "category":
            kind = pa.string()
        elif col.kind in ("key", "int", "flag") and not col.nullable:
            kind = pa.int64()
        else:
            kind = pa.float64()
        fields.append(pa.field(col.name, kind))
    return pa.schema(fields)


def find_table_file(directory: Path, table: str) -> Path | None:
    """The file holding `table` in `directory` (Parquet or CSV, plain or compressed), None if there is none."""
    for suffix in SUFFIXES:
        path = directory / f"{table}{suffix}"
        if path.exists():
            return path
    return None


def read_raw_table(path: Path, table: str) -> pd.DataFrame:
    """Read a raw table without coercing values, so that wrong types stay visible to the validation."""
    return next(raw_blocks(path, table))


def raw_blocks(path: Path, table: str, rows: int | None = None) -> Iterator[pd.DataFrame]:
    """`read_raw_table` block by block: a CSV file `rows` at a time (None: the whole table in one), for tables larger
    than one process's memory; a Parquet file in one block."""
    if path.stat().st_size == 0:
        raise InputError(f"{table}: file {path} is empty; put Kaggle's {table}.csv there or remove it")
    if path.suffix == ".parquet":  # whole: prepare on Ray cuts a Parquet file by its row groups itself
        yield pd.read_parquet(path)
        return
    categories = [c.name for c in contract.table(table).columns if c.kind == "category"]
    options = {"dtype": {c: "string" for c in categories}, "low_memory": False}
    try:
        if rows is None:
            yield pd.read_csv(path, **options)
            return
        empty = True
        for block in pd.read_csv(path, chunksize=rows, **options):
            empty = False
            yield block
        if empty:
            yield pd.read_csv(path, nrows=0, **options)
    except pd.errors.EmptyDataError:
        raise InputError(f"{table}: file {path} has no header and no rows; it should be Kaggle's {table}.csv") from None


def to_storage_types(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Contract columns only, in contract order, categories as pandas categoricals (a validated frame casts)."""
    spec = contract.table(table)
    out = {}
    for col in spec.columns:
        values = frame[col.name]
        if col.kind == "category":
            out[col.name] = pd.Categorical(values.astype("object").where(values.notna(), None),
                                           categories=list(col.categories or ()))
        elif col.kind in ("key", "int", "flag") and not col.nullable:
            out[col.name] = values.astype("int64")
        else:
            out[col.name] = values.astype("float64")
    return pd.DataFrame(out)


class ChunkedParquetWriter:
    """Appends chunks of one table to a Parquet file with the contract's schema (memory stays flat)."""

    def __init__(self, path: Path, table: str, extra: dict[str, pa.DataType] | None = None):
        schema = arrow_schema(table)
        for name, kind in (extra or {}).items():
            schema = schema.append(pa.field(name, kind))
        self.schema = schema
        self.writer = pq.ParquetWriter(path, schema, compression="zstd")

    def write(self, frame: pd.DataFrame) -> None:
        self.writer.write_table(pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False))

    def close(self) -> None:
        self.writer.close()


@contextmanager
def replaced_directory(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces `target` only if the block succeeds.

    A failure leaves `target` exactly as it was (earlier outputs are never lost to a bad input).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    backup = target.with_name(f".{target.name}-old")
    shutil.rmtree(backup, ignore_errors=True)
    if target.exists():
        target.rename(backup)
    staging.rename(target)
    shutil.rmtree(backup, ignore_errors=True)


def read_prepared(directory: Path, tables: tuple[str, ...] | None = None) -> dict[str, pd.DataFrame]:
    """The prepared tables present in `directory` (absent optional tables are simply not in the result)."""
    names = tables or tuple(contract.TABLES)
    return {name: pd.read_parquet(directory / f"{name}.parquet") for name in names
            if (directory / f"{name}.parquet").exists()}
