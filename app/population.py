"""The test population the app offers (the prepared application_test table) and where one applicant stands in it."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring import contract
from scoring.serving import request_schema
from scoring.settings import load_settings

DAYS_PER_YEAR = 365.25


def project_root() -> Path:
    """`PROJECT_ROOT`, or the repository this app belongs to."""
    return Path(os.environ.get("PROJECT_ROOT") or Path(__file__).resolve().parents[1])


def applicants_path(root: Path) -> Path:
    """Where the prepare stage writes the test applicants (params.yaml `paths.prepared`)."""
    return load_settings(root / "params.yaml").under(root).paths.prepared_table(request_schema.APPLICANT_TABLE)


@dataclass(frozen=True)
class KeyFeature:
    label: str
    column: str
    scale: float = 1.0
    """Shown as value * scale: DAYS_* (negative days before the application) become positive years."""
    unit: str = ""
    axis_format: str = "~s"
    value_format: str = ",.0f"

    def show(self, value: float) -> str:
        return f"{value:{self.value_format}}{self.unit}"

    def values(self, series: pd.Series) -> pd.Series:
        sentinel = contract.table(request_schema.APPLICANT_TABLE).column(self.column).sentinel
        plain = pd.to_numeric(series, errors="coerce").astype(float)
        if sentinel is not None:
            plain = plain.where(plain != sentinel)
        return plain * self.scale

    def value(self, raw: Any) -> float | None:
        """One applicant's value as shown; None when missing or not a number (a hand-edited body may hold anything)."""
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            return None
        shown = self.values(pd.Series([raw], dtype=float)).iloc[0]
        return None if pd.isna(shown) else float(shown)


KEY_FEATURES = (
    KeyFeature("Income", "AMT_INCOME_TOTAL"), KeyFeature("Credit", "AMT_CREDIT"),
    KeyFeature("Annuity", "AMT_ANNUITY"), KeyFeature("Goods price", "AMT_GOODS_PRICE"),
    KeyFeature("Age", "DAYS_BIRTH", -1 / DAYS_PER_YEAR, " years", "d", ".1f"),
    KeyFeature("Employed for", "DAYS_EMPLOYED", -1 / DAYS_PER_YEAR, " years", "d", ".1f"),
    *(KeyFeature(f"EXT_SOURCE_{i}", f"EXT_SOURCE_{i}", axis_format=".1f", value_format=".3f") for i in (1, 2, 3)),
)


def percentile(population: pd.Series, value: float | None) -> float | None:
    """Share (%) of the known population values at or below `value` (missing values left out)."""
    known = population.dropna().to_numpy()
    if value is None or not len(known):
        return None
    return float(100 * np.mean(known <= value))


def histogram(population: pd.Series, bins: int = 30) -> pd.DataFrame:
    """Counts over the 1st-99th percentile range (the far tails of amounts would squash the chart)."""
    known = population.dropna().to_numpy()
    if not len(known):
        return pd.DataFrame({"start": [], "end": [], "count": []})
    lo, hi = np.percentile(known, [1, 99])
    if lo == hi:
        lo, hi = known.min(), known.max() + 1e-9
    counts, edges = np.histogram(np.clip(known, lo, hi), bins=bins, range=(lo, hi))
    return pd.DataFrame({"start": edges[:-1], "end": edges[1:], "count": counts})


def standing(population: pd.DataFrame, applicant: dict[str, Any]) -> pd.DataFrame:
    """For each key feature: the applicant's value, its percentile in the population, the population median."""
    rows = []
    for feature in KEY_FEATURES:
        values = feature.values(population[feature.column])
        mine = feature.value(applicant.get(feature.column))
        rows.append({"feature": feature.label, "column": feature.column, "value": mine,
                     "percentile": percentile(values, mine), "median": float(values.median()),
                     "missing": mine is None})
    return pd.DataFrame(rows)
