"""The reasons of a score: the k fields that moved it most, in either direction, as columns.

One implementation for every scorer (the service, batch scoring, evaluate's explanations, the app through the
service): `top_reasons` picks the top k of each row with NumPy (argpartition, no Python loop over rows) and keeps
them as rows x k arrays. Renderings come from those arrays: JSON records for the API, `reason_<i>_*` columns for
tables (CSV, Parquet, Arrow). The top-k of a row is a prefix of its top-(k+1), so a group of requests asking for
different counts is served from one call with the largest.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import pandas as pd

from scoring import features
from scoring.model.explain import sentences as write_sentences
from scoring.model.explain import shown, shown_numbers
from scoring.serving.treeshap import PARALLEL_ROWS


@dataclass(frozen=True)
class Reasons:
    """Top-k reasons of n applicants: each array is n x k, strongest first."""

    fields: np.ndarray          # object: field names
    values: np.ndarray          # object: the applicant's values (Python scalars, None when missing)
    contributions: np.ndarray   # float64: SHAP contribution in the model's raw score space
    indices: np.ndarray | None = None               # int: each field's position in `names`
    names: Sequence[str] = ()                       # every field
    sources: Mapping[str, np.ndarray] | None = None  # every field's column (the values' source)

    @property
    def k(self) -> int:
        return self.fields.shape[1]

    def shown(self) -> np.ndarray:
        """n x k values as a reason shows them ('0.6213' for 0.62134, 'missing'): reason by reason for a few,
        field by field (numbers converted at once) for many."""
        if self.fields.size <= FEW_REASONS or self.indices is None or self.sources is None:
            return as_objects(shown(self.values.ravel().tolist()), self.fields.shape)
        flat = self.indices.ravel()
        order = np.argsort(flat, kind="stable")
        rows = order // self.k
        out = np.empty(flat.size, dtype=object)
        for group in np.split(np.arange(len(order)), np.flatnonzero(np.diff(flat[order])) + 1):
            name = self.names[flat[order[group[0]]]]
            values = np.asarray(self.sources[name])[rows[group]]
            out[order[group]] = (shown(values.tolist()) if name in features.CATEGORICAL else
                                 shown_numbers(values))
        return out.reshape(self.fields.shape)

    def sentences(self, shown_values: np.ndarray | None = None) -> np.ndarray:
        """n x k readable sentences."""
        shown_values = self.shown() if shown_values is None else shown_values
        text = write_sentences(self.fields.ravel().tolist(), shown_values.ravel().tolist(),
                               self.contributions.ravel())
        return as_objects(text, self.fields.shape)

    def records(self, counts: Sequence[int] | None = None) -> list[list[dict[str, Any]]]:
        """The API's form: per applicant, a list of {feature, value, contribution, sentence}; `counts[i]` of them
        for the i-th (a prefix of its top k)."""
        counts = [self.k] * len(self.fields) if counts is None else counts
        fields, values = self.fields.tolist(), self.values.tolist()
        rounded, sentences = np.round(self.contributions, 5).tolist(), self.sentences().tolist()
        return [[{"feature": f, "value": v, "contribution": c, "sentence": s}
                 for f, v, c, s in zip(f_row[:n], v_row[:n], c_row[:n], s_row[:n])]
                for f_row, v_row, c_row, s_row, n in zip(fields, values, rounded, sentences, counts)]

    def columns(self) -> dict[str, np.ndarray]:
        """The table form: reason_<i>_feature, _value (as a reason shows it), _contribution and _sentence for i =
        1..k."""
        shown_values = self.shown()
        text = self.sentences(shown_values)
        out: dict[str, np.ndarray] = {}
        for j in range(self.k):
            out[f"reason_{j + 1}_feature"] = self.fields[:, j]
            out[f"reason_{j + 1}_value"] = shown_values[:, j]
            out[f"reason_{j + 1}_contribution"] = np.round(self.contributions[:, j], 5)
            out[f"reason_{j + 1}_sentence"] = text[:, j]
        return out


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


def top_reasons(contributions: np.ndarray, fields: Sequence[str], values: Mapping[str, np.ndarray],
                k: int) -> Reasons:
    """The k fields with the largest |contribution| in each row (n x fields), strongest first."""
    n = len(contributions)
    k = max(0, min(k, contributions.shape[1] if contributions.ndim == 2 else 0))
    if k == 0:
        empty = np.empty((n, 0), dtype=object)
        return Reasons(empty, empty, np.empty((n, 0)))
    top = np.empty((n, k), dtype=np.int64)
    (_top_k_parallel if n >= PARALLEL_ROWS else _top_k)(np.ascontiguousarray(contributions, dtype=np.float64), top)
    picked = np.take_along_axis(contributions, top, axis=1)
    names = np.asarray(fields, dtype=object)[top]
    return Reasons(names, picked_values(values, fields, top), picked.astype(np.float64), top, list(fields), values)


def warm_up() -> None:
    """Compile (or load from numba's cache) the top-k loops now, not at the first request."""
    for rows in (1, PARALLEL_ROWS):
        _top_k_parallel(np.zeros((rows, 2)), np.empty((rows, 1), dtype=np.int64))
        _top_k(np.zeros((rows, 2)), np.empty((rows, 1), dtype=np.int64))


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


_top_k_one = numba.njit(nogil=True, cache=True)(_top_k_row)
_top_k = numba.njit(nogil=True, cache=True)(_top_k_rows)
_top_k_parallel = numba.njit(nogil=True, cache=True, parallel=True)(_top_k_rows_threads)
