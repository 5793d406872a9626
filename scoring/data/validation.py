"""Great Expectations suites derived from the data contract, and readable reports of their results."""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from scoring import contract

logger = logging.getLogger(__name__)
NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "Int8", "Int16", "Int32", "Int64", "uint8", "uint16", "uint32",
                 "uint64", "float16", "float32", "float64", "Float32", "Float64", "bool"]
TEXT_TYPES = ["object", "str", "string", "category", "StringDtype", "CategoricalDtype"]
UNIQUE_KEY_RULE = "key must be unique"


@dataclass(frozen=True)
class Finding:
    """One failed rule: which table, column and rule, how many rows, and a few offending values."""

    table: str
    column: str
    rule: str
    severity: str
    failing: int | None
    rows: int
    examples: list[Any]

    def line(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        count = f" for {self.failing} of {self.rows} rows" if self.failing is not None else ""
        sample = f" (e.g. {', '.join(map(str, self.examples[:3]))})" if self.examples else ""
        return f"{where}: {self.rule} - failed{count}{sample}"


@dataclass
class TableReport:
    table: str
    source: str
    rows: int
    columns: int
    expectations: int
    findings: list[Finding]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": not self.errors}


def _expectation(gxe: Any, name: str, rule: str, severity: str, **kwargs: Any) -> Any:
    level = "critical" if severity == "error" else "warning"
    return getattr(gxe, name)(meta={"rule": rule}, severity=level, **kwargs)


def column_expectations(col: contract.Column, gxe: Any) -> list[Any]:
    """The expectations one contract column asks for (type, nulls, range, categories, uniqueness)."""
    name, sev = col.name, col.severity
    types = NUMERIC_TYPES if col.is_numeric else TEXT_TYPES
    kind = "numeric" if col.is_numeric else "text"
    out = [_expectation(gxe, "ExpectColumnValuesToBeInTypeList", f"type must be {kind}", "error",
                        column=name, type_list=types)]
    if not col.nullable:
        out.append(_expectation(gxe, "ExpectColumnValuesToNotBeNull", "must not be missing", "error", column=name))
    if col.is_numeric and (col.min is not None or col.max is not None):
        rule = f"must be between {col.min} and {col.max}" if None not in (col.min, col.max) else (
            f"must be >= {col.min}" if col.min is not None else f"must be <= {col.max}")
        extra = {}
        if col.sentinel is not None:
            rule += f" (or the sentinel {col.sentinel:g})"
            extra = {"row_condition": f"{name} != {col.sentinel:g}", "condition_parser": "pandas"}
        out.append(_expectation(gxe, "ExpectColumnValuesToBeBetween", rule, sev, column=name,
                                min_value=col.min, max_value=col.max, **extra))
    if col.categories is not None:
        out.append(_expectation(gxe, "ExpectColumnValuesToBeInSet", f"must be one of {len(col.categories)} "
                                "known categories", sev, column=name, value_set=list(col.categories)))
    return out


def build_suite(table: contract.Table, present: set[str], gx: Any, gxe: Any, name: str = "") -> Any:
    """Suite for `table`: every contract column must exist; value rules only for the columns that do."""
    expectations = [
        _expectation(gxe, "ExpectTableRowCountToBeBetween", "must have at least one row", "error", min_value=1),
        _expectation(gxe, "ExpectTableColumnsToMatchSet", "every contract column must exist", "error",
                     column_set=table.names, exact_match=False),
    ]
    for col in table.columns:
        if col.name in present:
            expectations += column_expectations(col, gxe)
    if table.primary_key and table.primary_key in present:
        expectations.append(_expectation(gxe, "ExpectColumnValuesToBeUnique", UNIQUE_KEY_RULE, "error",
                                         column=table.primary_key))
    # Passing the list at once: add_expectation() compares each new one with all others (quadratic, ~30 s here).
    return gx.ExpectationSuite(name=name or f"{table.name}_contract", expectations=expectations)


class ContractValidator:
    """One ephemeral Great Expectations context, validating any contract table given as a DataFrame."""

    def __init__(self) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx  # heavy import (~2 s): only when validating
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx, self.gxe = gx, gxe
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self.source = self.context.data_sources.add_pandas("contract")
        self.runs = 0

    def validate(self, frame: pd.DataFrame, table_name: str, source: str = "") -> TableReport:
        table = contract.table(table_name)
        self.runs += 1
        name = f"{table_name}_{self.runs}"
        suite = self.context.suites.add(build_suite(table, set(frame.columns), self.gx, self.gxe, name))
        batch = self.source.add_dataframe_asset(f"{table_name}_{self.runs}").add_batch_definition_whole_dataframe("all")
        definition = self.context.validation_definitions.add(
            self.gx.ValidationDefinition(name=f"{table_name}_{self.runs}", data=batch, suite=suite))
        try:
            result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
        finally:
            self.forget(name)
        findings = drop_consequences([finding_from(r, table_name, len(frame)) for r in result.results if not r.success])
        for finding in findings:
            if finding.rule.startswith("type must be"):
                finding.examples[:] = [f"found dtype {frame[finding.column].dtype}"]
        extra = sorted(set(frame.columns) - set(table.names))
        if extra:
            logger.warning("%s: columns outside the contract are ignored: %s", table_name, extra)
        return TableReport(table_name, source, len(frame), frame.shape[1], len(suite.expectations), findings)


    def forget(self, name: str) -> None:
        """Drop one validation's definition, suite, asset, batch and metrics: the execution engine's caches keep every
        validated frame and its columns' intermediate results, so a validator used many times (prepare on Ray: one
        per worker, block after block) would grow by about a frame each time."""
        self.context.validation_definitions.delete(name)
        self.context.suites.delete(name)
        self.source.delete_asset(name)
        engine = self.source.get_execution_engine()
        engine.batch_manager.reset_batch_cache()
        engine.batch_manager.batch_data_cache.clear()
        engine._metric_cache.clear()  # column-long intermediate results of every metric computed (no public reset)


def finding_from(result: Any, table: str, rows: int) -> Finding:
    config = result.expectation_config
    details = result.result or {}
    column = config.kwargs.get("column", "")
    failing = details.get("unexpected_count")
    examples = list(details.get("partial_unexpected_list") or [])[:5]
    if config.type == "expect_table_columns_to_match_set":
        column = ", ".join(sorted((details.get("details") or {}).get("mismatched", {}).get("missing") or []))
        failing, examples = None, []
    elif config.type == "expect_column_values_to_be_in_type_list":
        failing, examples = None, [f"found dtype {details.get('observed_value')}"]
    elif result.exception_info and result.exception_info.get("raised_exception"):
        examples = [str(result.exception_info.get("exception_message", ""))[:200]]
    return Finding(
        table=table,
        column=column,
        rule=(config.meta or {}).get("rule", config.type),
        severity="error" if str(config.severity).lower().endswith("critical") else "warn",
        failing=failing,
        rows=rows,
        examples=[_plain(v) for v in examples],
    )


def drop_consequences(findings: list[Finding]) -> list[Finding]:
    """A column of the wrong type fails its value rules too; report the type only."""
    mistyped = {f.column for f in findings if f.rule.startswith("type must be")}
    return [f for f in findings if f.rule.startswith("type must be") or f.column not in mistyped]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
