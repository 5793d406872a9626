"""Population stability index (PSI) and the binning it shares with the drift figures."""
from __future__ import annotations

import numpy as np
import pandas as pd

MISSING = "<missing>"
"""The category that stands for a missing value when categories are binned."""


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Inner edges of the `bins` quantile bins of `values` (missing ignored; ties merge bins)."""
    present = values[~np.isnan(values)]
    return np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if len(present) else np.array([])


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of `values` in each bin cut at `edges` (a value on an edge goes up), then the share missing."""
    missing = np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1)
    return np.append(counts, missing.sum()) / max(len(values), 1)


def binned_shares(reference: pd.Series, current: pd.Series, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Shares of each side in the reference's quantile bins (numbers) or categories, plus one bin for missing."""
    if pd.api.types.is_numeric_dtype(reference) and pd.api.types.is_numeric_dtype(current):
        ref, cur = reference.to_numpy(dtype="float64"), current.to_numpy(dtype="float64")
        edges = quantile_edges(ref, bins)
        return bin_shares(ref, edges), bin_shares(cur, edges)
    ref = reference.astype(object).where(reference.notna(), MISSING)
    cur = current.astype(object).where(current.notna(), MISSING)
    categories = sorted(set(ref.unique()) | set(cur.unique()), key=str)
    return (ref.value_counts(normalize=True).reindex(categories, fill_value=0).to_numpy(dtype="float64"),
            cur.value_counts(normalize=True).reindex(categories, fill_value=0).to_numpy(dtype="float64"))


def psi(reference: pd.Series, current: pd.Series, bins: int = 10, floor: float = 1e-4) -> float:
    """Population stability index: sum over bins of (current - reference) x ln(current / reference).

    Bins are the reference's deciles (categories for a category), plus one for missing values; shares are floored
    at 1e-4 so that an empty bin counts without being infinite. Usual reading: < 0.1 stable, 0.1-0.2 moderate,
    > 0.2 significant shift.
    """
    ref, cur = binned_shares(pd.Series(reference), pd.Series(current), bins)
    ref, cur = np.maximum(ref, floor), np.maximum(cur, floor)
    return float(np.sum((cur - ref) * np.log(cur / ref)))
