"""Why a score is what it is: per-feature contributions (SHAP values) mapped back to the application's fields.

Contributions are in the model's raw log-odds (or probability, for the forest) space, before calibration; the
calibration is monotone, so a feature that raises the raw score raises the calibrated probability too. One-hot and
missing-indicator columns are summed back into the field they come from, so a reason names a field a client filled.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring.model.training import CalibratedScorer


@dataclass(frozen=True)
class Reason:
    feature: str
    value: Any
    contribution: float
    sentence: str


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


def raw_contributions(model: CalibratedScorer, Xt: np.ndarray, background: np.ndarray | None = None
                      ) -> tuple[np.ndarray, float]:
    """(n x k contributions, base value) of the fitted classifier on transformed rows."""
    estimator = model.pipeline.named_steps["model"]
    if model.model_name == "xgboost":
        import xgboost

        contribs = estimator.get_booster().predict(xgboost.DMatrix(Xt), pred_contribs=True)
        return contribs[:, :-1], float(contribs[0, -1]) if len(contribs) else 0.0
    if model.model_name == "logreg":  # exact SHAP of a linear model: coef * (x - reference row)
        reference = getattr(model, "reference_", None)
        mean = background.mean(axis=0) if background is not None else (reference if reference is not None
                                                                        else Xt.mean(axis=0))
        coef = estimator.coef_[0]
        return (Xt - mean) * coef, float(estimator.intercept_[0] + mean @ coef)
    import shap

    explainer = shap.TreeExplainer(estimator)
    values = np.asarray(explainer.shap_values(Xt, check_additivity=False))
    values = values[..., 1] if values.ndim == 3 else values
    base = np.atleast_1d(explainer.expected_value)
    return values, float(base[-1])


def contributions(model: CalibratedScorer, X: pd.DataFrame, background: pd.DataFrame | None = None
                  ) -> tuple[pd.DataFrame, float]:
    """Per-field contributions for every row of X (columns: the input fields), and the base value."""
    Xt, names = transformed(model, X)
    bg = transformed(model, background)[0] if background is not None else None
    values, base = raw_contributions(model, Xt, bg)
    per_column = pd.DataFrame(values, index=X.index, columns=source_columns(names, list(X.columns)))
    return per_column.T.groupby(level=0, sort=False).sum().T, base


def describe(feature: str, value: Any, contribution: float) -> str:
    shown = "missing" if value is None or (isinstance(value, float) and np.isnan(value)) else (
        f"{value:,.4g}" if isinstance(value, (int, float, np.number)) else str(value))
    direction = "raises" if contribution > 0 else "lowers"
    return f"{feature} = {shown} {direction} the estimated risk of default"


def top_reasons(contribs: pd.Series, values: pd.Series, k: int = 5) -> list[Reason]:
    """The k fields that moved this applicant's score the most, in either direction."""
    order = contribs.abs().sort_values(ascending=False).index[:k]
    reasons = []
    for feature in order:
        value = values.get(feature)
        value = value.item() if hasattr(value, "item") else value
        reasons.append(Reason(feature, value, float(contribs[feature]), describe(feature, value, contribs[feature])))
    return reasons


def global_importance(contribs: pd.DataFrame) -> pd.Series:
    """Mean absolute contribution per field (the SHAP summary bar)."""
    return contribs.abs().mean().sort_values(ascending=False)
