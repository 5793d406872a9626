"""The prepare step: load the Home Credit tables, validate each against the contract, write typed Parquet."""
from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from scoring import contract, features, ray_runtime
from scoring.data.io import InputError, find_table_file, read_raw_table, replaced_directory, to_storage_types
from scoring.data.ray_prepare import BlockChecker
from scoring.data.validation import ContractValidator, Finding, TableReport
from scoring.settings import ComputeSettings, Paths

logger = logging.getLogger(__name__)
KAGGLE_HINT = "kaggle competitions download -c home-credit-default-risk -p data/raw && unzip data/raw/*.zip -d data/raw"


class ValidationFailed(Exception):
    """Input rejected by the contract: `findings` name table, column and rule; the full report is on disk."""

    def __init__(self, findings: list[Finding], report: Path):
        self.findings, self.report = findings, report
        lines = "\n".join(f"  - {f.line()}" for f in findings)
        super().__init__(f"{len(findings)} contract rule(s) failed; nothing was written:\n{lines}\n"
                         f"Full report: {report}")


KAGGLE_SHARES = {"bureau": 0.86, "previous_application": 0.95, "credit_card_balance": 0.29}
"""Share of applicants with rows in Kaggle's complete files (../shared/data/home-credit/SOURCE.md: bureau and cards
measured on coherent10k and the full data, previous applications on the complete id range 100002-100999)."""
POPULATIONS = ("application_train", "application_test")
PARENT_KEYS = ("SK_ID_CURR", "SK_ID_BUREAU", "SK_ID_PREV")


@dataclass
class PrepareResult:
    reports: list[TableReport]
    key_coverage: dict[str, float]
    applicant_coverage: dict[str, Any] = field(default_factory=dict)


def missing_file_report(directory: Path, table: str) -> TableReport:
    rule = f"file is required: put {table}.csv (or .csv.gz, .parquet) in {directory} ({KAGGLE_HINT})"
    return TableReport(table, str(directory), 0, 0, 0, [Finding(table, "", rule, "error", None, 0, [])])


def unreadable_file_report(path: Path, table: str, error: InputError) -> TableReport:
    return TableReport(table, str(path), 0, 0, 0, [Finding(table, "", str(error), "error", None, 0, [])])


TableChecker = Callable[[contract.Table, Path, Path], TableReport]
"""Validates one table's file against the contract and, when it passes, writes it typed to the staging folder."""


class WholeTableChecker:
    """The local backend: the table read whole and validated in this process."""

    def __init__(self, validator: ContractValidator | None = None):
        self.validator = validator or ContractValidator()

    def __call__(self, table: contract.Table, path: Path, staging: Path) -> TableReport:
        frame = read_raw_table(path, table.name)
        logger.info("validating %s (%d rows) from %s", table.name, len(frame), path)
        report = self.validator.validate(frame, table.name, str(path))
        if not report.errors:
            to_storage_types(frame, table.name).to_parquet(staging / f"{table.name}.parquet", index=False)
        return report


def prepare_tables(source: Path, out_dir: Path, report_dir: Path, validator: ContractValidator | None = None,
                   compute: ComputeSettings | None = None) -> PrepareResult:
    """Validate every table found in `source` and write them typed to `out_dir`, all or nothing. With
    `compute.backend: ray` the tables are validated block by block on Ray (`ray_prepare`): same rules, same report."""
    if compute is not None and compute.backend == "ray":
        with ray_runtime.session(compute.address):
            return checked_tables(source, out_dir, report_dir, BlockChecker(compute.scratch))
    return checked_tables(source, out_dir, report_dir, WholeTableChecker(validator))


def checked_tables(source: Path, out_dir: Path, report_dir: Path, check: TableChecker) -> PrepareResult:
    reports: list[TableReport] = []
    coverage: dict[str, float] = {}
    known: dict[str, np.ndarray] = {}
    with replaced_directory(out_dir) as staging:
        for table in contract.TABLES.values():
            report = prepare_one(table, source, staging, check)
            if report is not None:
                reports.append(report)
                remember_keys(table, staging, known)
                coverage.update(key_coverage(table, staging, known))
        applicants = applicant_coverage(staging)
        write_report(reports, coverage, report_dir, applicants)
        raise_on_errors(reports, report_dir)
        oracle = source / Paths.ORACLE
        if oracle.exists():
            shutil.copy(oracle, staging / Paths.ORACLE)
    return PrepareResult(reports, coverage, applicants)


def prepare_one(table: contract.Table, source: Path, staging: Path, check: TableChecker) -> TableReport | None:
    path = find_table_file(source, table.name)
    if path is None:
        if table.name in contract.REQUIRED_TABLES:
            return missing_file_report(source, table.name)
        logger.warning("%s: no file in %s; features from it will be missing", table.name, source)
        return None
    try:
        return check(table, path, staging)
    except InputError as error:
        return unreadable_file_report(path, table.name, error)


def remember_keys(table: contract.Table, staging: Path, known: dict[str, np.ndarray]) -> None:
    """Add a written table's primary keys (those other tables refer to) to `known`, sorted and unique."""
    path = staging / f"{table.name}.parquet"
    if table.primary_key in PARENT_KEYS and path.exists():
        keys = pq.read_table(path, columns=[table.primary_key]).column(0).to_numpy()
        known[table.primary_key] = np.union1d(known.get(table.primary_key, keys[:0]), keys)


def is_known(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Which `values` are among `keys` (sorted, unique): a binary search each (np.isin would sort both each time)."""
    at = np.clip(np.searchsorted(keys, values), 0, len(keys) - 1)
    return keys[at] == values


def key_coverage(table: contract.Table, staging: Path, known: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of a written table's foreign keys found in the parent table (Kaggle's files have orphans: reported, not
    rejected), counted batch by batch."""
    path = staging / f"{table.name}.parquet"
    parents = {column: known[column] for column in table.parents if len(known.get(column, ()))}
    if not parents or not path.exists():
        return {}
    found, rows = dict.fromkeys(parents, 0), 0
    for batch in pq.ParquetFile(path).iter_batches(columns=list(parents), batch_size=1 << 20):
        rows += batch.num_rows
        for column, keys in parents.items():
            found[column] += int(is_known(batch.column(column).to_numpy(zero_copy_only=False), keys).sum())
    return {f"{table.name}.{column}": round(found[column] / rows, 4) for column in parents} if rows else {}


def raise_on_errors(reports: list[TableReport], report_dir: Path) -> None:
    errors = [f for r in reports for f in r.errors]
    if errors:
        raise ValidationFailed(errors, report_dir / Paths.VALIDATION_MD)


def staged_columns(staging: Path, table: str, columns: list[str]) -> pd.DataFrame | None:
    path = staging / f"{table}.parquet"
    return pd.read_parquet(path, columns=columns) if path.exists() else None


def distinct_rows(staging: Path, table: str, columns: list[str]) -> pd.DataFrame | None:
    """The distinct rows of `columns` of a written table, read batch by batch: a history table repeats an
    applicant's keys on every row (tens of millions of rows, a few million distinct keys, at a million applicants)."""
    path = staging / f"{table}.parquet"
    if not path.exists():
        return None
    parts = [batch.to_pandas().drop_duplicates()
             for batch in pq.ParquetFile(path).iter_batches(columns=columns, batch_size=1 << 20)]
    if not parts:
        return pd.read_parquet(path, columns=columns)
    return pd.concat(parts, ignore_index=True).drop_duplicates(ignore_index=True)


def applicant_coverage(staging: Path) -> dict[str, Any]:
    """Per population (training and test applicants): how many applicants each history table has rows for, the
    combinations of tables, and whose previous applications were not collected (features.history_coverage)."""
    needed = {t: [features.KEY, "SK_ID_PREV"] if t in (*features.PREVIOUS_CHILDREN, "previous_application")
              else [features.KEY] for t in (*features.COVERAGE_FLAGS, *features.PREVIOUS_CHILDREN)}
    tables = {t: frame for t, cols in needed.items() if (frame := distinct_rows(staging, t, cols)) is not None}
    flags = features.history_coverage(tables)
    out: dict[str, Any] = {"absent_tables": [t for t in features.COVERAGE_FLAGS if t not in tables]}
    for population in POPULATIONS:
        apps = staged_columns(staging, population, [features.KEY])
        if apps is not None:
            out[population] = population_coverage(flags.reindex(apps[features.KEY]).fillna(0.0))
    return out


def population_coverage(flags: pd.DataFrame) -> dict[str, Any]:
    """Counts and shares of applicants with rows in each table, and the most frequent combinations of tables."""
    n = len(flags)
    share = (lambda count: round(count / n, 4)) if n else (lambda count: 0.0)
    names = {name: table for table, name in features.COVERAGE_FLAGS.items() if name in flags}
    tables = {table: {"applicants": int(flags[name].sum()), "share": share(flags[name].sum())}
              for name, table in names.items()}
    out = {"applicants": n, "tables": tables, "combinations": combinations(flags[list(names)], names)}
    if features.PREVIOUS_NOT_COLLECTED in flags:
        out["previous_not_collected"] = int(flags[features.PREVIOUS_NOT_COLLECTED].sum())
    return out


def combinations(flags: pd.DataFrame, names: dict[str, str], top: int = 8) -> dict[str, int]:
    """The most frequent sets of tables with rows ("bureau + credit_card_balance": n), one code per applicant."""
    codes = (flags.to_numpy(dtype="int64") << np.arange(flags.shape[1])).sum(axis=1)
    counts = pd.Series(codes).value_counts().head(top)
    label = {code: " + ".join(names[c] for i, c in enumerate(flags.columns) if code >> i & 1) or "none"
             for code in counts.index}
    return {label[code]: int(count) for code, count in counts.items()}


def write_atomically(path: Path, text: str) -> None:
    """The whole file or the old one: a report is never left half written (prepare's reports persist in DVC)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def write_report(reports: list[TableReport], coverage: dict[str, float], report_dir: Path,
                 applicants: dict[str, Any] | None = None) -> None:
    """reports/validation.md for people, reports/validation.json for machines."""
    report_dir.mkdir(parents=True, exist_ok=True)
    applicants = applicants or {}
    payload = {"passed": all(not r.errors for r in reports), "tables": [r.to_dict() for r in reports],
               "key_coverage": coverage, "history_coverage": applicants}
    write_atomically(report_dir / Paths.VALIDATION_JSON, json.dumps(payload, indent=1, default=str))
    text = render_markdown(reports, coverage) + coverage_markdown(applicants)
    write_atomically(report_dir / Paths.VALIDATION_MD, text)


def render_markdown(reports: list[TableReport], coverage: dict[str, float]) -> str:
    status = "PASSED" if all(not r.errors for r in reports) else "FAILED"
    lines = [f"# Data validation: {status}", "",
             "Every table checked with Great Expectations against the data contract (`scoring/contract.py`).", "",
             "| table | source | rows | columns | expectations | errors | warnings |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in reports:
        lines.append(f"| {r.table} | `{r.source}` | {r.rows:,} | {r.columns} | {r.expectations} | "
                     f"{len(r.errors)} | {len(r.findings) - len(r.errors)} |")
    findings = [f for r in reports for f in r.findings]
    if findings:
        lines += ["", "## Failed rules", "", "| severity | table | column | rule | failing rows | examples |",
                  "| --- | --- | --- | --- | ---: | --- |"]
        for f in findings:
            failing = "" if f.failing is None else f"{f.failing:,} / {f.rows:,}"
            examples = ", ".join(str(e) for e in f.examples[:5]).replace("|", "\\|")
            lines.append(f"| {f.severity} | {f.table} | {f.column} | {f.rule} | {failing} | {examples} |")
    if coverage:
        lines += ["", "## Keys found in the parent table", "", "| foreign key | share found |", "| --- | ---: |"]
        lines += [f"| {k} | {v:.1%} |" for k, v in coverage.items()]
    return "\n".join(lines) + "\n"


COVERAGE_NOTE = (
    "Which history tables have rows for each applicant: the model's HAS_* features (1 with rows, 0 without). A table "
    "absent from the data was collected for nobody: its flag is left out rather than set to 0. The data can tell one "
    "more thing: loans that an applicant's POS, instalment or card rows name but previous_application does not hold "
    "mean their previous applications were not (all) collected (PREV_NOT_COLLECTED). It cannot tell whether an "
    "applicant without bureau rows has no credit elsewhere or was never looked up at the bureau, nor the same for an "
    "applicant without any Home Credit row: a share of applicants with rows far below Kaggle's complete files "
    "suggests a table collected for part of the applicants only.")


def coverage_markdown(applicants: dict[str, Any]) -> str:
    present = [p for p in POPULATIONS if p in applicants]
    if not present:
        return ""
    lines = ["", "## History coverage per applicant", "", COVERAGE_NOTE, "",
             "| table | " + " | ".join(present) + " | Kaggle's complete files |",
             "| --- |" + " ---: |" * (len(present) + 1)]
    for table in features.COVERAGE_FLAGS:
        cells = [f"{c['applicants']:,} ({c['share']:.1%})" if (c := applicants[p]["tables"].get(table)) else
                 "absent" for p in present]
        reference = f"{KAGGLE_SHARES[table]:.0%}" if table in KAGGLE_SHARES else ""
        lines.append(f"| {table} | " + " | ".join(cells) + f" | {reference} |")
    if any("previous_not_collected" in applicants[p] for p in present):
        cells = [f"{applicants[p].get('previous_not_collected', 0):,}" for p in present]
        lines.append("| previous applications not collected | " + " | ".join(cells) + " | |")
    for p in present:
        lines += ["", f"Combinations of tables ({p}, {applicants[p]['applicants']:,} applicants):", "",
                  "| tables with rows | applicants |", "| --- | ---: |"]
        lines += [f"| {combo} | {count:,} |" for combo, count in applicants[p]["combinations"].items()]
    return "\n".join(lines) + "\n"
