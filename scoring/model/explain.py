"""Explanations, model side: which input field each encoded column comes from, how a reason reads, global importance.

The SHAP values themselves are computed by the scoring engine's explainers (`scoring.serving.explainers`), in the
model's raw space (log-odds, or probability for the forest), before calibration; one-hot and missing-indicator
columns are summed back into the field they come from, so a reason names a field a client filled.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from scoring.model.training import CalibratedScorer


def transformed(model: CalibratedScorer, X: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    prep = model.pipeline.named_steps["prep"]
    return np.asarray(prep.transform(X), dtype=float), list(prep.get_feature_names_out())


def source_columns(names: list[str], originals: list[str]) -> list[str]:
    """The input column each transformed column comes from (one-hot 'COL_value', 'missingindicator_COL')."""
    by_length = sorted(originals, key=len, reverse=True)
    out = []
    for name in names:
        name = name.removeprefix("missingindicator_")
        out.append(name if name in originals else next((c for c in by_length if name.startswith(c + "_")), name))
    return out


def shown(values: Sequence[Any]) -> list[str]:
    """How a reason shows a field's values: numbers to four significant digits, text as it is, 'missing'."""
    return ["missing" if v is None or (isinstance(v, float) and v != v) else
            f"{v:,.4g}" if isinstance(v, int | float | np.number) and not isinstance(v, bool) else str(v)
            for v in values]


def shown_numbers(numbers: np.ndarray) -> list[str]:
    """`shown` for an array of numbers (one conversion for all, no test per value but NaN's)."""
    return ["missing" if v != v else f"{v:,.4g}" for v in np.asarray(numbers, dtype=np.float64).tolist()]


def sentences(features: Sequence[str], shown_values: Sequence[str], contributions: Sequence[float]) -> list[str]:
    """The sentences of several reasons, from their shown values, e.g. 'EXT_SOURCE_2 = 0.62 lowers the estimated
    risk of default' (a contribution above 0 raises it)."""
    return [f"{feature} = {value} {'raises' if contribution > 0 else 'lowers'} the estimated risk of default"
            for feature, value, contribution in zip(features, shown_values, np.asarray(contributions).tolist())]



def global_importance(contribs: pd.DataFrame) -> pd.Series:
    """Mean absolute contribution per field (the SHAP summary bar)."""
    return contribs.abs().mean().sort_values(ascending=False)
