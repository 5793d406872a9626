"""The prepare step: load the Home Credit tables, validate each against the contract, write typed Parquet."""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from scoring import contract
from scoring.data.io import InputError, find_table_file, read_raw_table, replaced_directory, to_storage_types
from scoring.data.validation import ContractValidator, Finding, TableReport
from scoring.settings import Paths

logger = logging.getLogger(__name__)
KAGGLE_HINT = "kaggle competitions download -c home-credit-default-risk -p data/raw && unzip data/raw/*.zip -d data/raw"


class ValidationFailed(Exception):
    """Input rejected by the contract: `findings` name table, column and rule; the full report is on disk."""

    def __init__(self, findings: list[Finding], report: Path):
        self.findings, self.report = findings, report
        lines = "\n".join(f"  - {f.line()}" for f in findings)
        super().__init__(f"{len(findings)} contract rule(s) failed; nothing was written:\n{lines}\n"
                         f"Full report: {report}")


@dataclass
class PrepareResult:
    reports: list[TableReport]
    key_coverage: dict[str, float]


def missing_file_report(directory: Path, table: str) -> TableReport:
    rule = f"file is required: put {table}.csv (or .csv.gz, .parquet) in {directory} ({KAGGLE_HINT})"
    return TableReport(table, str(directory), 0, 0, 0, [Finding(table, "", rule, "error", None, 0, [])])


def unreadable_file_report(path: Path, table: str, error: InputError) -> TableReport:
    return TableReport(table, str(path), 0, 0, 0, [Finding(table, "", str(error), "error", None, 0, [])])


def key_coverage(frame: pd.DataFrame, table: contract.Table, known: dict[str, set[int]]) -> dict[str, float]:
    """Share of foreign keys found in the parent table (Kaggle's files have orphans: reported, not rejected)."""
    out = {}
    for column in table.parents:
        parents = known.get(column, set())
        if parents and column in frame:
            out[f"{table.name}.{column}"] = round(float(frame[column].isin(parents).mean()), 4)
    return out


def prepare_tables(
    source: Path, out_dir: Path, report_dir: Path, validator: ContractValidator | None = None
) -> PrepareResult:
    """Validate every table found in `source` and write them typed to `out_dir`, all or nothing."""
    validator = validator or ContractValidator()
    reports: list[TableReport] = []
    coverage: dict[str, float] = {}
    known: dict[str, set[int]] = {"SK_ID_CURR": set(), "SK_ID_BUREAU": set(), "SK_ID_PREV": set()}
    with replaced_directory(out_dir) as staging:
        for table in contract.TABLES.values():
            report = prepare_one(table, source, staging, validator, known)
            if report is not None:
                reports.append(report)
                coverage.update(report_coverage(table, staging, known))
        write_report(reports, coverage, report_dir)
        raise_on_errors(reports, report_dir)
        oracle = source / Paths.ORACLE
        if oracle.exists():
            shutil.copy(oracle, staging / Paths.ORACLE)
    return PrepareResult(reports, coverage)


def prepare_one(table: contract.Table, source: Path, staging: Path, validator: ContractValidator,
                known: dict[str, set[int]]) -> TableReport | None:
    path = find_table_file(source, table.name)
    if path is None:
        if table.name in contract.REQUIRED_TABLES:
            return missing_file_report(source, table.name)
        logger.warning("%s: no file in %s; features from it will be missing", table.name, source)
        return None
    try:
        frame = read_raw_table(path, table.name)
    except InputError as error:
        return unreadable_file_report(path, table.name, error)
    logger.info("validating %s (%d rows) from %s", table.name, len(frame), path)
    report = validator.validate(frame, table.name, str(path))
    if not report.errors:
        to_storage_types(frame, table.name).to_parquet(staging / f"{table.name}.parquet", index=False)
        if table.primary_key in known:
            known[table.primary_key] |= set(frame[table.primary_key].tolist())
    return report


def report_coverage(table: contract.Table, staging: Path, known: dict[str, set[int]]) -> dict[str, float]:
    path = staging / f"{table.name}.parquet"
    if not table.parents or not path.exists():
        return {}
    frame = pd.read_parquet(path, columns=list(table.parents))
    return key_coverage(frame, table, known)


def raise_on_errors(reports: list[TableReport], report_dir: Path) -> None:
    errors = [f for r in reports for f in r.errors]
    if errors:
        raise ValidationFailed(errors, report_dir / Paths.VALIDATION_MD)


def write_report(reports: list[TableReport], coverage: dict[str, float], report_dir: Path) -> None:
    """reports/validation.md for people, reports/validation.json for machines."""
    report_dir.mkdir(parents=True, exist_ok=True)
    payload = {"passed": all(not r.errors for r in reports), "tables": [r.to_dict() for r in reports],
               "key_coverage": coverage}
    (report_dir / Paths.VALIDATION_JSON).write_text(json.dumps(payload, indent=1, default=str))
    (report_dir / Paths.VALIDATION_MD).write_text(render_markdown(reports, coverage))


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
