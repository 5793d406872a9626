"""The reasons of a score: the k families of fields that moved it most, in either direction, as columns.

One implementation for every scorer (the service, batch scoring, evaluate's explanations, the app through the
service). Related fields are one reason: the SHAP values of each family of the reason catalogue (`scoring.catalog`:
the three external scores and their summaries, the employment fields, ...) are summed with one matrix product, and
`top_reasons` picks the top k families of each row with a compiled loop (no Python loop over rows). A reason names
the family's strongest field (`feature`, `value`), its stable code (R01, ...) and a sentence a loan officer can read
("Employed for 1.9 years (short)", "External score 2 is low (0.41, 27th percentile)"): percentiles come from the
model's training applicants (`CalibratedScorer.quantiles_`), computed field by field with NumPy. Renderings come
from the rows x k arrays: JSON records for the API, `reason_<i>_*` columns for tables (CSV, Parquet, Arrow). The
top-k of a row is a prefix of its top-(k+1), so a group of requests asking for different counts is served from one
call with the largest.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numba
import numpy as np
import pandas as pd

from scoring import catalog, features
from scoring.model.explain import shown, shown_numbers
from scoring.serving.treeshap import PARALLEL_ROWS


@dataclass(frozen=True)
class Reasons:
    """Top-k reasons of n applicants: each array is n x k, strongest first. A reason is a family of the catalogue:
    `fields` its strongest field, `values` that field's value, `contributions` the family's summed SHAP value."""

    fields: np.ndarray          # object: field names
    values: np.ndarray          # object: the applicant's values (Python scalars, None when missing)
    contributions: np.ndarray   # float64: SHAP contribution in the model's raw score space
    indices: np.ndarray | None = None               # int: each field's position in `names`
    names: Sequence[str] = ()                       # every field
    sources: Mapping[str, np.ndarray] | None = None  # every field's column (the values' source)
    codes: np.ndarray | None = None                 # object: the reason codes (R01, ...)
    quantiles: Mapping[str, np.ndarray] | None = None  # field -> its percentiles 0..100 on the training applicants

    @property
    def k(self) -> int:
        return self.fields.shape[1]

    def reason_codes(self) -> np.ndarray:
        if self.codes is not None:
            return self.codes
        return as_objects([code_of(f) for f in self.fields.ravel().tolist()], self.fields.shape)

    def shown(self) -> np.ndarray:
        """n x k values as a reason shows them ('0.6213' for 0.62134, 'missing'): reason by reason for a few,
        field by field (numbers converted at once) for many."""
        if self.fields.size <= FEW_REASONS or self.indices is None or self.sources is None:
            return as_objects(shown(self.values.ravel().tolist()), self.fields.shape)
        out = np.empty(self.fields.size, dtype=object)
        for name, at, values in self._by_field():
            out[at] = shown(values.tolist()) if name in features.CATEGORICAL else shown_numbers(values)
        return out.reshape(self.fields.shape)

    def texts(self) -> np.ndarray:
        """n x k statements in words, without the direction ("Employed for 1.9 years (short)"), field by field."""
        out = np.empty(self.fields.size, dtype=object)
        if self.fields.size <= FEW_REASONS or self.indices is None or self.sources is None:
            for at, (name, value) in enumerate(zip(self.fields.ravel().tolist(), self.values.ravel().tolist())):
                out[at] = self._statement(name, value)
        else:
            for name, at, values in self._by_field():
                out[at] = self._statements(name, values)
        return out.reshape(self.fields.shape)

    def sentences(self, texts: np.ndarray | None = None) -> np.ndarray:
        """n x k sentences: the statement and the direction it moves the risk."""
        texts = self.texts() if texts is None else texts
        direction = np.where(self.contributions > 0, ": raises the estimated risk of default",
                             ": lowers the estimated risk of default").astype(object)
        return texts.astype(object) + direction if texts.size else texts

    def records(self, counts: Sequence[int] | None = None) -> list[list[dict[str, Any]]]:
        """The API's form: per applicant, a list of {feature, value, contribution, sentence, code, text}; `counts[i]`
        of them for the i-th (a prefix of its top k)."""
        counts = [self.k] * len(self.fields) if counts is None else counts
        fields, values, codes = self.fields.tolist(), self.values.tolist(), self.reason_codes().tolist()
        texts = self.texts()
        rounded, sentences = np.round(self.contributions, 5).tolist(), self.sentences(texts).tolist()
        return [[{"feature": f, "value": v, "contribution": c, "sentence": s, "code": o, "text": t}
                 for f, v, c, s, o, t in zip(f_row[:n], v_row[:n], c_row[:n], s_row[:n], o_row[:n], t_row[:n])]
                for f_row, v_row, c_row, s_row, o_row, t_row, n in zip(fields, values, rounded, sentences, codes,
                                                                      texts.tolist(), counts)]

    def columns(self) -> dict[str, np.ndarray]:
        """The table form: reason_<i>_feature, _value (as a reason shows it), _contribution, _sentence, _code and
        _text for i = 1..k."""
        shown_values, codes, texts = self.shown(), self.reason_codes(), self.texts()
        sentences = self.sentences(texts)
        out: dict[str, np.ndarray] = {}
        for j in range(self.k):
            out[f"reason_{j + 1}_feature"] = self.fields[:, j]
            out[f"reason_{j + 1}_value"] = shown_values[:, j]
            out[f"reason_{j + 1}_contribution"] = np.round(self.contributions[:, j], 5)
            out[f"reason_{j + 1}_sentence"] = sentences[:, j]
            out[f"reason_{j + 1}_code"] = codes[:, j]
            out[f"reason_{j + 1}_text"] = texts[:, j]
        return out

    def _by_field(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """(field, flat positions of its reasons, its values there) for each field among the reasons."""
        assert self.indices is not None and self.sources is not None
        flat = self.indices.ravel()
        order = np.argsort(flat, kind="stable")
        rows = order // self.k
        for group in np.split(np.arange(len(order)), np.flatnonzero(np.diff(flat[order])) + 1):
            if len(group):
                name = self.names[flat[order[group[0]]]]
                yield name, order[group], np.asarray(self.sources[name])[rows[group]]

    def _statement(self, name: str, value: Any) -> str:
        """One reason in words, in plain Python (a request's few reasons)."""
        found = catalog.catalogue().get(name)
        if found is None:
            return f"{name} = {shown([value])[0]}"
        if python_scalar(value) is None:
            return f"{found.label}: not provided"
        grid = None if self.quantiles is None else self.quantiles.get(name)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        percentile = float("nan")
        if grid is not None and number and found.unit not in UNRANKED:
            percentile = float(percentile_of(found.unit, grid, np.array([value], dtype=np.float64))[0])
        ranks, quals = qualifiers(found.unit, [percentile])
        return composed(found, formatted(found.unit, value), ranks[0], quals[0])

    def _statements(self, name: str, values: np.ndarray) -> list[str]:
        """The statements of one field's reasons, its percentiles computed at once."""
        found = catalog.catalogue().get(name)
        if found is None:
            return [f"{name} = {v}" for v in shown(values.tolist())]
        grid = None if self.quantiles is None else self.quantiles.get(name)
        ranked = grid is not None and found.unit not in UNRANKED
        return statements(found, values, percentile_of(found.unit, grid, values) if ranked else None)


UNRANKED = frozenset({"flag", "category", "count"})
"""Units whose reasons state the value without a percentile ("3 late instalments")."""
REVERSED = frozenset({"years_ago", "months_ago"})
"""Units shown as the opposite of the stored value (Kaggle counts days back as negative numbers)."""
PERCENTS = np.linspace(0.0, 100.0, 101)
LONGER = ("short", "average", "long")
LARGER = ("low", "average", "high")


def percentile_of(unit: str, grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Where each value lies among the training applicants' (0 to 100), as the reason shows the value: for a
    duration counted back in days, more days back is a higher percentile. NaN for a missing value."""
    try:
        numbers = np.asarray(values, dtype=np.float64)  # None becomes NaN
    except (TypeError, ValueError):
        numbers = np.asarray(pd.to_numeric(pd.Series(values, dtype=object), errors="coerce"), dtype=np.float64)
    at = np.interp(numbers, grid, PERCENTS if len(grid) == len(PERCENTS) else np.linspace(0.0, 100.0, len(grid)))
    return np.where(np.isnan(numbers), np.nan, 100.0 - at if unit in REVERSED else at)


FORMATS: dict[str, Callable[[float], str]] = {
    "score": lambda x: f"{x:.2f}", "amount": lambda x: f"{x:,.0f}", "ratio": lambda x: f"{x:.1f}",
    "share": lambda x: f"{x:.0%}", "count": lambda x: f"{x:g}" if x == int(x) else f"{x:.1f}",
    "years_ago": lambda x: f"{features.years_before(x):.1f} years", "months_ago": lambda x: f"{-x:.0f} months",
    "days": lambda x: f"{x:,.0f} days", "years": lambda x: f"{x:.1f} years", "hour": lambda x: f"{x:.0f}:00"}
"""How a number of each unit reads: 1.9 years for DAYS_EMPLOYED = -700, 25% for a share."""
YES_NO = {"Y": "yes", "N": "no"}


def formatted(unit: str, value: Any) -> str:
    """A value in the words of its unit (text as it is; Kaggle's Y/N flags as yes/no)."""
    if isinstance(value, str):
        return YES_NO.get(value, value) if unit == "flag" else value
    if unit == "category":
        return str(value)
    if unit == "flag":
        return "yes" if float(value) >= 0.5 else "no"
    return FORMATS.get(unit, lambda x: f"{x:.4g}")(float(value))


def ordinal(number: int) -> str:
    suffix = "th" if 11 <= number % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


ORDINALS = [ordinal(i) for i in range(101)]


def qualifiers(unit: str, percentiles: np.ndarray | list[float]) -> tuple[list[int], list[str]]:
    """Ranks 1 to 99 (0: no rank) and their words: low / average / high, short / average / long for durations
    (plain Python: cheaper than NumPy for the few reasons of a request, and cheap enough for many)."""
    words = LONGER if unit in {"years_ago", "months_ago", "years", "days"} else LARGER
    listed = percentiles.tolist() if isinstance(percentiles, np.ndarray) else percentiles
    ranks = [0 if p != p else min(99, max(1, round(p))) for p in listed]
    return ranks, ["" if r == 0 else words[0] if r <= 33 else words[2] if r >= 67 else words[1] for r in ranks]


def statements(entry: catalog.Entry, values: np.ndarray, percentiles: np.ndarray | None = None) -> list[str]:
    """Reasons of one field in words: the catalogue's `text` when it has one, else "<label> is low (0.41, 27th
    percentile)" (with a percentile) or "<label>: <value>"; "<label>: not provided" for a missing value."""
    items = np.asarray(values, dtype=object)
    missing = pd.isna(items).tolist()
    percentiles = np.full(len(items), np.nan) if percentiles is None else np.asarray(percentiles, dtype=np.float64)
    ranks, quals = qualifiers(entry.unit, percentiles)
    return [f"{entry.label}: not provided" if absent else composed(entry, shown_value, rank, qual)
            for shown_value, absent, rank, qual in zip(shown_all(entry.unit, items), missing, ranks, quals)]


def composed(entry: catalog.Entry, shown_value: str, rank: int, qual: str) -> str:
    """The sentence of a present value: the catalogue's `text` when it has one (and, if it names {qual}, a rank),
    else "<label> is <qual> (<value>, <rank> percentile)", else "<label>: <value>"."""
    if entry.text and (qual or "{qual}" not in entry.text):
        return entry.text.format(value=shown_value, qual=qual)
    return f"{entry.label} is {qual} ({shown_value}, {ORDINALS[rank]} percentile)" if rank else \
        f"{entry.label}: {shown_value}"


def shown_all(unit: str, items: np.ndarray) -> list[str]:
    """`formatted` for a field's values: numbers converted at once and written by their unit's format; missing
    values come out as anything (the caller says "not provided")."""
    number_format = FORMATS.get(unit)
    if number_format is not None:
        try:
            numbers = np.asarray(items, dtype=np.float64)
        except (TypeError, ValueError):
            pass
        else:
            return [number_format(x) if x == x else "" for x in numbers.tolist()]
    return ["" if v is None or v != v else formatted(unit, v) for v in items.tolist()]


def statement(entry: catalog.Entry, value: Any, percentile: float | None) -> str:
    """One reason in words (see `statements`)."""
    return statements(entry, np.array([value], dtype=object),
                      None if percentile is None else np.array([percentile], dtype=np.float64))[0]


def code_of(field: str) -> str:
    found = catalog.catalogue().get(field)
    return found.code if found else field


def as_objects(items: list[Any], shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out.reshape(shape)


def json_friendly(column: np.ndarray) -> np.ndarray:
    """An object array of Python scalars (NumPy to Python, NaN and missing to None), converted in one call."""
    column = np.asarray(column)
    listed = column.astype(object)
    listed[pd.isna(column)] = None
    return listed


def python_scalar(value: Any) -> Any:
    """One value as JSON takes it: a Python scalar, None for NaN or missing."""
    if value is None or value is pd.NA or (isinstance(value, float | np.floating) and value != value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def picked_values(values: Mapping[str, np.ndarray], fields: Sequence[str], top: np.ndarray) -> np.ndarray:
    """The value of each picked field (n x k): for many applicants, gathered and converted field by field (one
    NumPy call per field); for a few, reason by reason (fewer calls)."""
    out = np.empty(top.shape, dtype=object)
    if top.size <= FEW_REASONS:
        for (i, r), j in np.ndenumerate(top):
            out[i, r] = python_scalar(values[fields[j]][i])
        return out
    for j in np.unique(top).tolist():
        at_row, at_rank = np.nonzero(top == j)
        out[at_row, at_rank] = json_friendly(np.asarray(values[fields[j]])[at_row])
    return out


FEW_REASONS = 128
"""Below this many reasons in all, gathering them one by one costs less than grouping them by field."""


@dataclass(frozen=True)
class Layout:
    """What top_reasons needs of a model's fields, computed once per model: their families, names and codes."""

    group: catalog.Grouping
    names: np.ndarray   # object: the field names
    codes: np.ndarray   # object: each family's reason code


@lru_cache(maxsize=32)
def layout(fields: tuple[str, ...]) -> Layout:
    group = catalog.grouping(list(fields))
    return Layout(group, np.asarray(fields, dtype=object), np.asarray(group.codes, dtype=object))


def top_reasons(contributions: np.ndarray, fields: Sequence[str], values: Mapping[str, np.ndarray], k: int,
                quantiles: Mapping[str, np.ndarray] | None = None) -> Reasons:
    """The k families with the largest |summed contribution| in each row (n x fields), strongest first, each named
    by its strongest field. `quantiles` (field -> percentiles on the training applicants) place values in words."""
    n = len(contributions)
    plan = layout(tuple(fields))
    k = max(0, min(k, len(plan.group.families) if contributions.ndim == 2 else 0))
    if k == 0:
        empty = np.empty((n, 0), dtype=object)
        return Reasons(empty, empty, np.empty((n, 0)))
    contributions = np.ascontiguousarray(contributions, dtype=np.float64)
    grouped = len(plan.group.families) < len(fields)
    by_family = np.ascontiguousarray(contributions @ plan.group.matrix) if grouped else contributions
    top_family = np.empty((n, k), dtype=np.int64)
    parallel = n >= PARALLEL_ROWS
    (_top_k_parallel if parallel else _top_k)(by_family, top_family)
    picked = np.take_along_axis(by_family, top_family, axis=1)
    top = top_family
    if grouped:
        top = np.empty_like(top_family)
        (_lead_parallel if parallel else _lead)(contributions, plan.group.family_of, top_family, top)
    return Reasons(plan.names[top], picked_values(values, fields, top), picked, top, list(fields), values,
                   plan.codes[top_family], quantiles)


def warm_up() -> None:
    """Compile (or load from numba's cache) the top-k loops now, not at the first request."""
    for rows in (1, PARALLEL_ROWS):
        _top_k_parallel(np.zeros((rows, 2)), np.empty((rows, 1), dtype=np.int64))
        _top_k(np.zeros((rows, 2)), np.empty((rows, 1), dtype=np.int64))
        for lead in (_lead, _lead_parallel):
            lead(np.zeros((rows, 2)), np.zeros(2, dtype=np.int64), np.zeros((rows, 1), dtype=np.int64),
                 np.empty((rows, 1), dtype=np.int64))


def _top_k_row(row: np.ndarray, top: np.ndarray) -> None:
    """The indices of the len(top) largest |row| values, largest first; on a tie the lower index first."""
    k, count = len(top), 0
    for j in range(len(row)):
        size = abs(row[j])
        if count == k and size <= abs(row[top[k - 1]]):
            continue
        at = min(count, k - 1)
        while at > 0 and abs(row[top[at - 1]]) < size:
            top[at] = top[at - 1]
            at -= 1
        top[at] = j
        count = min(count + 1, k)


def _top_k_rows(contributions: np.ndarray, top: np.ndarray) -> None:
    for i in range(len(contributions)):
        _top_k_one(contributions[i], top[i])


def _top_k_rows_threads(contributions: np.ndarray, top: np.ndarray) -> None:
    for i in numba.prange(len(contributions)):
        _top_k_one(contributions[i], top[i])


def _lead_rows(contributions: np.ndarray, family_of: np.ndarray, top_family: np.ndarray, top: np.ndarray) -> None:
    """Per row and picked family, the family's field with the largest |contribution| (the lower index on a tie)."""
    for i in range(len(contributions)):
        _lead_one(contributions[i], family_of, top_family[i], top[i])


def _lead_rows_threads(contributions: np.ndarray, family_of: np.ndarray, top_family: np.ndarray,
                       top: np.ndarray) -> None:
    for i in numba.prange(len(contributions)):
        _lead_one(contributions[i], family_of, top_family[i], top[i])


def _lead_row(row: np.ndarray, family_of: np.ndarray, families: np.ndarray, top: np.ndarray) -> None:
    best = np.full(len(families), -1.0)
    for j in range(len(row)):
        size = abs(row[j])
        for r in range(len(families)):
            if family_of[j] == families[r] and size > best[r]:
                best[r] = size
                top[r] = j


_lead_one = numba.njit(nogil=True, cache=True)(_lead_row)
_lead = numba.njit(nogil=True, cache=True)(_lead_rows)
_lead_parallel = numba.njit(nogil=True, cache=True, parallel=True)(_lead_rows_threads)
_top_k_one = numba.njit(nogil=True, cache=True)(_top_k_row)
_top_k = numba.njit(nogil=True, cache=True)(_top_k_rows)
_top_k_parallel = numba.njit(nogil=True, cache=True, parallel=True)(_top_k_rows_threads)
