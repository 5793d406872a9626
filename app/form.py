"""The applicant form, built from the data contract: one widget per application_test column, with the column's
kind, range, categories, 'not applicable' sentinel and nullability. No rule is written here; only which fields come
first and how the others are grouped (by Kaggle's name families)."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from scoring import contract
from scoring.serving import request_schema

TABLE = contract.table(request_schema.APPLICANT_TABLE)
MAIN_FIELDS = (
    "NAME_CONTRACT_TYPE", "CODE_GENDER", "AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE",
    "DAYS_BIRTH", "DAYS_EMPLOYED", "NAME_INCOME_TYPE", "OCCUPATION_TYPE", "EXT_SOURCE_1", "EXT_SOURCE_2",
    "EXT_SOURCE_3", "NAME_FAMILY_STATUS", "CNT_CHILDREN", "CNT_FAM_MEMBERS", "NAME_EDUCATION_TYPE",
    "NAME_HOUSING_TYPE", "FLAG_OWN_CAR", "FLAG_OWN_REALTY", "ORGANIZATION_TYPE",
)
"""Shown first, in this order; every other column of the contract goes in the 'all other fields' expander."""
MISSING = "— missing —"


def group_of(name: str) -> str:
    """The tab of a non-main field, from Kaggle's naming."""
    if name.startswith("FLAG_DOCUMENT_"):
        return "Documents"
    if name.startswith("FLAG_"):
        return "Contact"
    if name.startswith(("REGION_", "REG_", "LIVE_")):
        return "Region"
    if name in contract.BUILDING_COLUMNS or name.endswith("_MODE"):
        return "Building"
    if name.endswith("_SOCIAL_CIRCLE") or name.startswith("AMT_REQ_CREDIT_BUREAU_"):
        return "Social circle & enquiries"
    return "Application"


def other_groups() -> dict[str, list[contract.Column]]:
    groups: dict[str, list[contract.Column]] = {}
    for col in TABLE.columns:
        if col.name not in MAIN_FIELDS and col.name != "SK_ID_CURR":
            groups.setdefault(group_of(col.name), []).append(col)
    return groups


def is_required(col: contract.Column) -> bool:
    """What the API requires: the contract's non-nullable columns (SK_ID_CURR is optional)."""
    return not col.nullable and col.kind != "key"


def rule_text(col: contract.Column) -> str:
    """The column's rule in words, read from the contract (the widget's help)."""
    parts = ["required" if is_required(col) else "optional (empty = missing)"]
    if col.kind == "category":
        parts.append(f"{len(col.categories or ())} categories")
    elif col.kind == "flag":
        parts.append("0 or 1")
    else:
        parts.append("whole number" if col.whole else "number")
        if col.min is not None:
            parts.append(f">= {contract.number(col.min)}")
        if col.max is not None:
            parts.append(f"<= {contract.number(col.max)}")
    if col.sentinel is not None:
        parts.append(f"or {contract.number(col.sentinel)} (not applicable)")
    return "; ".join(parts)


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def typical_applicant(population: pd.DataFrame) -> dict[str, Any]:
    """A made-up applicant of the population: each number's median, each category's mode (no SK_ID_CURR)."""
    out: dict[str, Any] = {}
    for col in TABLE.columns:
        if col.kind == "key" or col.name not in population:
            out[col.name] = None
            continue
        values = population[col.name].dropna()
        if col.sentinel is not None:
            values = values[values != col.sentinel]
        if values.empty:
            out[col.name] = None
        elif col.kind in ("category", "flag"):
            out[col.name] = values.mode().iloc[0]
        else:
            median = float(values.median())
            out[col.name] = round(median) if col.whole else median
    return request_schema.records(pd.DataFrame([out]))[0]


def number_style(col: contract.Column, population: pd.DataFrame) -> tuple[float, str]:
    """(step, printf format) of a float column: whole numbers, shares in [0, 1], or amounts."""
    values = population[col.name].dropna() if col.name in population else pd.Series(dtype=float)
    if col.max is not None and col.min is not None and col.max - col.min <= 1:
        return 0.01, "%.6f"
    if len(values) and (values % 1 == 0).all():
        return 1.0, "%.0f"
    if col.name.startswith("AMT_"):
        return 1000.0, "%.1f"
    return 1.0, "%.2f"


def widget_key(scope: str, name: str) -> str:
    """Widgets are keyed by the chosen applicant, so picking another one resets the form to its values."""
    return f"{scope}:{name}"


def choices(col: contract.Column) -> list[Any]:
    """A category's or a flag's allowed values, with None (missing) first when the contract allows it."""
    allowed = list(col.categories or ()) if col.kind == "category" else [int(col.min or 0), int(col.max or 1)]
    return ([None] if col.nullable else []) + allowed


def choice_label(value: Any) -> str:
    if value is None:
        return MISSING
    return f"{value} ({'yes' if value else 'no'})" if isinstance(value, int) else str(value)


def choice_input(col: contract.Column, value: Any, key: str) -> Any:
    options = choices(col)
    current = None if is_missing(value) else (int(value) if col.kind == "flag" else value)
    index = options.index(current) if current in options else 0
    return st.selectbox(label(col), options, index=index, key=key, help=rule_text(col), format_func=choice_label)


def number_input(col: contract.Column, value: Any, key: str, style: tuple[float, str]) -> Any:
    """A number within the contract's range (its plausibility bounds are the widget's min and max, so no value outside
    them can be entered); empty means missing. The sentinel has its own checkbox. Whole-number columns, the counts
    Kaggle stores as floats included, take whole numbers only."""
    whole = col.whole
    cast: Callable[[Any], Any] = int if whole else float
    lo, hi = (None if b is None else cast(b) for b in (col.min, col.max))
    not_applicable = col.sentinel is not None and value == col.sentinel
    shown = None if is_missing(value) or not_applicable or (lo is not None and value < lo) or (
        hi is not None and value > hi) else cast(value)
    step, fmt = (1, "%d") if whole else style
    number = st.number_input(label(col), min_value=lo, max_value=hi, value=shown, step=cast(step), format=fmt,
                             key=key, help=rule_text(col), placeholder=MISSING)
    if col.sentinel is None:
        return number
    if st.checkbox(f"not applicable ({col.sentinel:g})", value=not_applicable, key=f"{key}:na"):
        return cast(col.sentinel)
    return number


def label(col: contract.Column) -> str:
    """The column's name; `*` when the API requires it (left empty, the service answers 422 naming it)."""
    return f"{col.name} *" if is_required(col) else col.name


def field_input(col: contract.Column, value: Any, scope: str, population: pd.DataFrame) -> Any:
    key = widget_key(scope, col.name)
    if col.kind in ("category", "flag"):
        return choice_input(col, value, key)
    return number_input(col, value, key, number_style(col, population))


def field_grid(columns: list[contract.Column], values: dict[str, Any], scope: str, population: pd.DataFrame,
               per_row: int = 2) -> dict[str, Any]:
    out = {}
    for start in range(0, len(columns), per_row):
        cells = st.columns(per_row)
        for cell, col in zip(cells, columns[start:start + per_row]):
            with cell:
                out[col.name] = field_input(col, values.get(col.name), scope, population)
    return out


def optional_numbers() -> list[str]:
    """Nullable number columns: a filled number input cannot be emptied (Streamlit puts its default back), so
    these are sent as missing by naming them in a multiselect."""
    return [c.name for c in TABLE.columns if c.nullable and c.kind in ("int", "float")]


def applicant_form(values: dict[str, Any], scope: str, population: pd.DataFrame) -> tuple[dict[str, Any], bool]:
    """The whole form (main fields, then the others in tabs); returns (request body, submitted)."""
    key_col = TABLE.column("SK_ID_CURR")
    with st.form(f"applicant-{scope}", border=True):
        body: dict[str, Any] = {}
        body.update(field_grid([key_col, *(TABLE.column(n) for n in MAIN_FIELDS)], values, scope, population))
        forced = st.multiselect("Send as missing", optional_numbers(), key=widget_key(scope, "send-as-missing"),
                                placeholder="optional fields to send as null, whatever their value",
                                help="A filled number cannot be emptied; name it here to send it as missing.")
        submitted = st.form_submit_button("Score this applicant", type="primary", icon=":material/send:")
        groups = other_groups()
        with st.expander(f"All other fields ({sum(len(g) for g in groups.values())})"):
            for tab, columns in zip(st.tabs(list(groups)), groups.values()):
                with tab:
                    body.update(field_grid(columns, values, scope, population))
    return {name: None if name in forced else body.get(name) for name in TABLE.names}, submitted
