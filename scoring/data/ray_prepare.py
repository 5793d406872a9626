"""prepare on Ray (`compute.backend: ray`): each table validated block by block with the contract's Great
Expectations suite, the blocks' results merged into the one report of the local backend.

Each raw file is cut into blocks, a bounded number in flight at a time, so that no process ever holds a whole
table: a Parquet file's row groups, which each task reads itself (this process reads only the file's metadata), or
a CSV file's chunks, which this process reads and hands over through Ray's object store. A task runs the table's
suite on its block (`ContractValidator`, one per worker process) and, when the block passes, writes it in the
prepared storage types as one Parquet part in a scratch folder (`compute.scratch`: one every node sees on a
cluster). The findings of the blocks are merged per rule: failing rows added up, the first examples kept. The one
rule a block cannot decide, a primary key's uniqueness, is checked here on the keys the tasks return (8 bytes a
row, of the tables with a primary key: applications, bureau, previous applications). When the table passes, its
parts are appended, one at a time, to the single prepared file the local backend writes. Row counts, failing counts
and the written tables are the local ones; the examples of a rule may come in another order.
"""
from __future__ import annotations

import functools
import logging
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from scoring import contract
from scoring.data.io import raw_blocks, to_storage_types
from scoring.data.validation import UNIQUE_KEY_RULE, ContractValidator, Finding, TableReport, drop_consequences

logger = logging.getLogger(__name__)
BLOCK_CELLS = 1 << 23
"""Values in one block (rows x columns): 64 MiB as float64, about 70,000 application rows, 2.8 million balance rows
(a task's memory, Great Expectations included, is a few times that)."""
BlockResult = tuple[TableReport, "np.ndarray | None"]
"""A block's report and its primary keys (None: the table has none, or the block's are not numbers)."""


@functools.cache
def worker_validator() -> ContractValidator:
    """One Great Expectations context per worker process (about 2 s to create)."""
    return ContractValidator()


Block = pd.DataFrame | tuple[str, list[int]]
"""A block of a raw table: rows read by this process (CSV), or a Parquet file's row groups the task reads itself."""


def row_group_blocks(path: Path, rows: int) -> list[list[int]]:
    """The file's row groups gathered into blocks of at least `rows` rows (a row group is never split)."""
    metadata = pq.ParquetFile(path).metadata
    blocks, current, count = [], [], 0
    for group in range(metadata.num_row_groups):
        current.append(group)
        count += metadata.row_group(group).num_rows
        if count >= rows:
            blocks, current, count = [*blocks, current], [], 0
    return blocks + [current] if current else blocks


def blocks_of(path: Path, table_name: str, rows: int) -> Iterator[Block]:
    """A raw table's blocks: a non-empty Parquet file's row groups (read by the tasks, not here), else the chunks of
    `raw_blocks` (a CSV file's; an empty table whole, so that its rules still run on its empty frame)."""
    if path.suffix == ".parquet" and path.stat().st_size and pq.ParquetFile(path).metadata.num_rows:
        yield from ((str(path), groups) for groups in row_group_blocks(path, rows))
        return
    yield from raw_blocks(path, table_name, rows)


def check_block(block: Block, table_name: str, source: str, part: str) -> BlockResult:
    """A Ray task: the block's report (uniqueness left to the whole table's keys) and its primary keys; the block
    written to `part` in storage types when it passes."""
    frame = pq.ParquetFile(block[0]).read_row_groups(block[1]).to_pandas() if isinstance(block, tuple) else block
    report = worker_validator().validate(frame, table_name, source)
    report.findings = [f for f in report.findings if f.rule != UNIQUE_KEY_RULE]
    if not report.errors:
        to_storage_types(frame, table_name).to_parquet(part, index=False)
    key = contract.table(table_name).primary_key
    numeric_key = key in frame and pd.api.types.is_numeric_dtype(frame[key])
    return report, frame[key].to_numpy() if numeric_key else None


def merged_findings(findings: list[Finding], rows: int) -> list[Finding]:
    """One finding per rule over all blocks: failing rows summed, the first five distinct examples."""
    merged: dict[tuple[str, str, str], Finding] = {}
    for f in findings:
        key = (f.column, f.rule, f.severity)
        if key not in merged:
            merged[key] = Finding(f.table, f.column, f.rule, f.severity, f.failing, rows, list(f.examples))
            continue
        seen = merged[key]
        failing = None if seen.failing is None or f.failing is None else seen.failing + f.failing
        examples = seen.examples + [e for e in f.examples if e not in seen.examples]
        merged[key] = Finding(f.table, f.column, f.rule, f.severity, failing, rows, examples[:5])
    return drop_consequences(list(merged.values()))


def duplicate_key_finding(table: contract.Table, keys: np.ndarray, rows: int) -> Finding | None:
    """The uniqueness rule on the whole table, counted as Great Expectations counts it (every row of a repeated
    key fails)."""
    values = pd.Series(keys)
    repeated = values.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return None
    examples = values[repeated].head(5).tolist()
    return Finding(table.name, table.primary_key, UNIQUE_KEY_RULE, "error", int(repeated.sum()), rows, examples)


def merged_report(table: contract.Table, source: str, blocks: list[BlockResult]) -> TableReport:
    reports = [report for report, _ in blocks]
    rows = sum(r.rows for r in reports)
    findings = merged_findings([f for r in reports for f in r.findings], rows)
    keys = [k for _, k in blocks]
    if table.primary_key and keys and all(k is not None for k in keys):
        repeated = duplicate_key_finding(table, np.concatenate(keys), rows)
        findings += [repeated] if repeated else []
    return TableReport(table.name, source, rows, reports[0].columns, reports[0].expectations, findings)


def append_parts(parts: list[Path], out: Path) -> None:
    """The blocks' files as one Parquet file, one part in memory at a time."""
    schema = pq.read_schema(parts[0])
    with pq.ParquetWriter(out, schema) as writer:
        for part in parts:
            writer.write_table(pq.read_table(part).replace_schema_metadata(schema.metadata))


class BlockChecker:
    """prepare's table checker on the Ray cluster this process is connected to (`ray_runtime.session`)."""

    def __init__(self, scratch: str = "", block_rows: int | None = None):
        """`block_rows`: rows per block (None: BLOCK_CELLS values, at least 1,000 rows)."""
        self.scratch = Path(scratch) if scratch else None
        self.block_rows = block_rows

    def __call__(self, table: contract.Table, path: Path, staging: Path) -> TableReport:
        if self.scratch is not None:
            self.scratch.mkdir(parents=True, exist_ok=True)
        parts = Path(tempfile.mkdtemp(prefix=f"{table.name}-", dir=self.scratch))
        try:
            report = merged_report(table, str(path), self.checked_blocks(table, path, parts))
            if not report.errors:
                append_parts(sorted(parts.glob("part-*.parquet")), staging / f"{table.name}.parquet")
        finally:
            shutil.rmtree(parts, ignore_errors=True)
        return report

    def checked_blocks(self, table: contract.Table, path: Path, parts: Path) -> list[BlockResult]:
        """Every block's result, in the file's order; at most two blocks per CPU of the cluster in flight."""
        import ray

        task = ray.remote(num_cpus=1)(check_block)
        in_flight = 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
        rows_per_block = self.block_rows or max(1_000, BLOCK_CELLS // len(table.columns))
        pending: deque = deque()
        results: list[BlockResult] = []
        started, rows = time.perf_counter(), 0

        def collect_oldest() -> None:
            nonlocal rows
            results.append(ray.get(pending.popleft()))
            rows += results[-1][0].rows
            logger.info("ray: %s validated, %d blocks, %d rows (%.0f s)", table.name, len(results), rows,
                        time.perf_counter() - started)

        try:
            for number, block in enumerate(blocks_of(path, table.name, rows_per_block)):
                pending.append(task.remote(block, table.name, str(path), str(parts / f"part-{number:06d}.parquet")))
                if len(pending) >= in_flight:
                    collect_oldest()
            while pending:
                collect_oldest()
        except BaseException:  # an unreadable block further on: the tasks still running are of no use
            for reference in pending:
                ray.cancel(reference)
            raise
        return results
