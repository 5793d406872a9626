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

import numpy as np
import pandas as pd

from scoring.model.explain import describe_many


@dataclass(frozen=True)
class Reasons:
    """Top-k reasons of n applicants: each array is n x k, strongest first."""

    fields: np.ndarray          # object: field names
    values: np.ndarray          # object: the applicant's values (Python scalars, None when missing)
    contributions: np.ndarray   # float64: SHAP contribution in the model's raw score space

    @property
    def k(self) -> int:
        return self.fields.shape[1]

    def sentences(self) -> np.ndarray:
        """n x k readable sentences, written in one pass over plain Python lists."""
        text = describe_many(self.fields.ravel().tolist(), self.values.ravel().tolist(), self.contributions.ravel())
        out = np.empty(len(text), dtype=object)
        out[:] = text
        return out.reshape(self.fields.shape)

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
        """The table form: reason_<i>_feature, _value (as text), _contribution and _sentence for i = 1..k."""
        sentences = self.sentences()
        out: dict[str, np.ndarray] = {}
        for j in range(self.k):
            out[f"reason_{j + 1}_feature"] = self.fields[:, j]
            out[f"reason_{j + 1}_value"] = np.array([None if v is None else str(v) for v in self.values[:, j]],
                                                    dtype=object)
            out[f"reason_{j + 1}_contribution"] = np.round(self.contributions[:, j], 5)
            out[f"reason_{j + 1}_sentence"] = sentences[:, j]
        return out


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
    top = np.argpartition(-np.abs(contributions), k - 1, axis=1)[:, :k]
    picked = np.take_along_axis(contributions, top, axis=1)
    order = np.argsort(-np.abs(picked), axis=1, kind="stable")
    top, picked = np.take_along_axis(top, order, axis=1), np.take_along_axis(picked, order, axis=1)
    names = np.asarray(fields, dtype=object)[top]
    return Reasons(names, picked_values(values, fields, top), picked.astype(np.float64))
