"""The feature tables featurize writes (fit, holdout, test), built and written chunk by chunk: the same table as
building it whole, in one chunk's memory (a million applicants' features are ~1.7 GB as float64)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scoring import features

FEATURE_CHUNK_ROWS = 100_000
"""Applicants whose features are built and written at once by `write_features` (memory: one chunk's features)."""


def feature_schema(frame: pd.DataFrame) -> pa.Schema:
    """The Parquet schema of a feature table: text for the category columns (a chunk where one is all missing
    would otherwise fix it as null), the index SK_ID_CURR kept."""
    schema = pa.Schema.from_pandas(frame, preserve_index=True)
    for i, column in enumerate(schema):
        if pa.types.is_null(column.type) or (column.name in frame and frame[column.name].dtype == object):
            schema = schema.set(i, pa.field(column.name, pa.string()))
    return schema


def write_features(apps: pd.DataFrame, ids: np.ndarray, lookup: features.HistoryLookup, protected: Sequence[str],
                   path: Path, with_target: bool = False, chunk_rows: int = FEATURE_CHUNK_ROWS) -> int:
    """`features.build_features` of the applicants `ids` (in that order; TARGET last when `with_target`), written to
    one Parquet file chunk by chunk: the same table as building it whole, in a chunk's memory. Returns its
    columns' count."""
    position = pd.Index(apps[features.KEY]).get_indexer(np.asarray(ids))
    writer, columns = None, 0
    try:
        for start in range(0, max(len(position), 1), chunk_rows):
            rows = apps.iloc[position[start:start + chunk_rows]]
            frame = features.build_features(rows, lookup, protected)
            if with_target:
                frame["TARGET"] = rows["TARGET"].to_numpy()
            if writer is None:
                writer, columns = pq.ParquetWriter(path, feature_schema(frame)), frame.shape[1]
            writer.write_table(pa.Table.from_pandas(frame, schema=writer.schema, preserve_index=True))
    finally:
        if writer is not None:
            writer.close()
    return columns


def read_features(path: Path, sample: int = 0, seed: int = 0) -> pd.DataFrame:
    """A feature table written by `write_features`; with `sample` > 0 and fewer rows than the table, a stratified
    sample of that many of its rows (by TARGET, in the table's order), read chunk by chunk: only the sample is ever
    in memory."""
    table = pq.ParquetFile(path)
    if sample <= 0 or sample >= table.metadata.num_rows:
        return pd.read_parquet(path)
    target = pq.read_table(path, columns=["TARGET"]).column(0).to_numpy()
    _, drawn = features.holdout_split(np.arange(len(target)), target, sample / len(target), seed)
    keep = np.sort(drawn)
    parts, start = [], 0
    for batch in table.iter_batches(batch_size=FEATURE_CHUNK_ROWS):
        inside = keep[(keep >= start) & (keep < start + batch.num_rows)] - start
        parts.append(pa.Table.from_batches([batch]).take(pa.array(inside)))
        start += batch.num_rows
    return pa.concat_tables(parts).to_pandas()
