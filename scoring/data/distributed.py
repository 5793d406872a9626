"""The per-applicant history aggregates on Ray (`compute.backend: ray`): the same rules, data never in one process.

Every history aggregate is a function of one applicant's rows. So the rows are first spread over `buckets` by
SK_ID_CURR (Ray Data: each prepared table read block by block, each row given its bucket, written as Parquet
partitioned by bucket, streaming, Ray spilling blocks to disk when memory runs short); then one Ray task per bucket
reads that bucket's rows of every table and runs `features.history_features` on them, the very function of the
local backend, so the values are the local ones by construction. bureau_balance rows have no SK_ID_CURR: each takes
its credit's, through the bureau's (SK_ID_BUREAU, SK_ID_CURR) pairs, which every block is given (two integers per
credit, not the balance rows); balance rows of a credit the bureau table lacks are dropped, as the local join drops
them. Only the result, one row per applicant, is gathered, in the driver.

Several machines: the prepared folder and the scratch folder (`compute.scratch`) must be ones every node reads
and writes at the same path (a shared file system); on one machine any folder will do.

Memory: a bucketing task holds one block (Ray Data's default ~128 MiB) and the credit pairs; a bucket task holds
1/buckets of the history rows. More applicants: more buckets.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scoring import contract, features, ray_runtime
from scoring.data.io import read_prepared, to_storage_types
from scoring.settings import ComputeSettings

logger = logging.getLogger(__name__)
BUCKET = "_BUCKET"
CREDIT = "SK_ID_BUREAU"


def credit_owners(prepared: Path) -> tuple[np.ndarray, np.ndarray]:
    """The bureau's credits sorted by SK_ID_BUREAU, and the SK_ID_CURR of each (empty without a bureau table)."""
    path = prepared / "bureau.parquet"
    if not path.exists():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    pairs = pq.read_table(path, columns=[CREDIT, features.KEY])
    credits, owners = (pairs.column(name).to_numpy() for name in (CREDIT, features.KEY))
    order = np.argsort(credits, kind="stable")
    return credits[order], owners[order]


def owners_of(credit_ids: np.ndarray, credits: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """The SK_ID_CURR of each credit, -1 for a credit the bureau table does not hold."""
    if not len(credits):
        return np.full(len(credit_ids), -1, dtype=np.int64)
    at = np.clip(np.searchsorted(credits, credit_ids), 0, len(credits) - 1)
    return np.where(credits[at] == credit_ids, owners[at], -1)


def with_bucket(batch: pa.Table, buckets: int, credit_pairs: Any = None) -> pa.Table:
    """The batch with its rows' bucket (SK_ID_CURR mod buckets). `credit_pairs` (bureau_balance: the object
    reference of `credit_owners`, read from the node's object store without a copy) gives each row its credit's
    SK_ID_CURR; rows of unknown credits are dropped."""
    if credit_pairs is None:
        keys = batch.column(features.KEY).to_numpy()
    else:
        import ray

        keys = owners_of(batch.column(CREDIT).to_numpy(), *ray.get(credit_pairs))
        known = keys >= 0
        batch, keys = batch.filter(pa.array(known)), keys[known]
    return batch.append_column(BUCKET, pa.array(np.mod(keys, buckets), type=pa.int64()))


def write_buckets(prepared: Path, table: str, out: Path, buckets: int, credit_pairs: Any) -> None:
    """One prepared table, streamed through Ray Data into `out/<table>/_BUCKET=<k>/` Parquet files."""
    import ray

    source = ray.data.read_parquet(str(prepared / f"{table}.parquet"))
    pairs = credit_pairs if table == "bureau_balance" else None
    bucketed = source.map_batches(with_bucket, batch_format="pyarrow",
                                  fn_kwargs={"buckets": buckets, "credit_pairs": pairs})
    bucketed.write_parquet(str(out / table), partition_cols=[BUCKET])


def bucket_table(folder: Path, table: str) -> pd.DataFrame:
    """A bucket's rows of one table in the storage types of the prepared tables (an empty frame when none)."""
    files = sorted(folder.glob("*.parquet")) if folder.exists() else []
    columns = [c.name for c in contract.table(table).columns]
    frame = (pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True) if files
             else pd.DataFrame({name: pd.Series(dtype="float64") for name in columns}))
    frame = frame.drop(columns=[BUCKET], errors="ignore")
    return to_storage_types(frame, table)


def bucket_features(root: str, tables: list[str], bucket: int) -> pd.DataFrame:
    """`features.history_features` on the rows of one bucket (a Ray task)."""
    found = {table: bucket_table(Path(root) / table / f"{BUCKET}={bucket}", table) for table in tables}
    return features.history_features(found)


def canonical_columns(parts: list[pd.DataFrame]) -> list[str]:
    """Every column of the buckets' results, in the order of the bucket that has the most (all of them, unless
    a table has rows in some buckets only)."""
    ordered: list[str] = []
    for part in sorted(parts, key=lambda p: -p.shape[1]):
        ordered += [c for c in part.columns if c not in ordered]
    return ordered


def history_features(prepared: Path, buckets: int, work: Path | None = None) -> pd.DataFrame:
    """The history lookup of `features.history_features`, computed on the Ray cluster this process is connected to
    (`scoring.ray_runtime.connect`), one row per applicant sorted by SK_ID_CURR."""
    import ray

    tables = [t for t in contract.HISTORY_TABLES if (prepared / f"{t}.parquet").exists()]
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="buckets-", dir=work))
    try:
        started = time.perf_counter()
        pairs = ray.put(credit_owners(prepared)) if "bureau_balance" in tables else None
        for table in tables:
            write_buckets(prepared, table, scratch, buckets, pairs)
            logger.info("ray: %s spread over %d buckets (%.0f s)", table, buckets, time.perf_counter() - started)
        task = ray.remote(bucket_features)
        pending = [task.remote(str(scratch), tables, k) for k in range(buckets)]
        parts = []
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            parts.extend(ray.get(done))
            logger.info("ray: history aggregates of %d/%d buckets", len(parts), buckets)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(index=pd.Index([], name=features.KEY, dtype="int64"))
    history = pd.concat([p.reindex(columns=canonical_columns(parts)) for p in parts]).sort_index()
    zero = [c for c in history.columns if c in features.ZERO_WHEN_ABSENT]
    history[zero] = history[zero].fillna(0.0)
    history.index.name = features.KEY
    return history.astype("float64")


def history_lookup(prepared: Path, compute: ComputeSettings) -> pd.DataFrame:
    """The history lookup by the backend params.yaml names: `local` reads the tables here, `ray` computes on Ray
    (`compute.address`, or a single-node Ray on 127.0.0.1 for the time of this call; bucket files in
    `compute.scratch`, a folder every node reads and writes, or a temporary one of this machine when empty)."""
    if compute.backend == "local":
        return features.history_features(read_prepared(prepared, contract.HISTORY_TABLES))
    with ray_runtime.session(compute.address):
        return history_features(prepared.resolve(), compute.buckets, Path(compute.scratch) if compute.scratch else None)
