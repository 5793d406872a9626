"""Held-out evaluation: discrimination, calibration, business cost, fairness, and the curves DVC plots."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from scoring.model.cost import business_cost, cost_curve
from scoring.settings import CostSettings

AGE_BANDS = [18, 30, 40, 50, 60, 100]


def holdout_metrics(y: np.ndarray, proba: np.ndarray, threshold: float, cost: CostSettings) -> dict[str, Any]:
    refused = proba >= threshold
    tn, fp, fn, tp = confusion_matrix(y, refused, labels=[0, 1]).ravel()
    return {
        "auc": round(float(roc_auc_score(y, proba)), 5),
        "pr_auc": round(float(average_precision_score(y, proba)), 5),
        "brier": round(float(brier_score_loss(y, proba)), 5),
        "threshold": threshold,
        "business_cost": round(business_cost(y, refused, cost), 5),
        "business_cost_at_0_5": round(business_cost(y, proba >= 0.5, cost), 5),
        "approval_rate": round(float(1 - refused.mean()), 5),
        "default_rate": round(float(np.mean(y)), 5),
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "n": int(len(y)),
    }


def curves(y: np.ndarray, proba: np.ndarray, cost: CostSettings) -> dict[str, pd.DataFrame]:
    """ROC, precision-recall, calibration and cost curves, thinned to at most ~500 points for DVC plots."""
    fpr, tpr, _ = roc_curve(y, proba)
    precision, recall, _ = precision_recall_curve(y, proba)
    observed, predicted = calibration_curve(y, proba, n_bins=10, strategy="quantile")
    return {
        "roc": _thin(pd.DataFrame({"fpr": fpr, "tpr": tpr})),
        "precision_recall": _thin(pd.DataFrame({"recall": recall, "precision": precision})),
        "calibration": pd.DataFrame({"mean_predicted": predicted, "fraction_of_defaults": observed}),
        "cost": cost_curve(y, proba, np.linspace(0, 1, 201), cost),
    }


def confusion_rows(y: np.ndarray, refused: np.ndarray) -> pd.DataFrame:
    """One row per applicant, the shape of DVC's confusion template."""
    label = np.array(["repaid", "defaulted"])
    decision = np.array(["granted", "refused"])
    return pd.DataFrame({"actual": label[np.asarray(y, dtype=int)], "decision": decision[refused.astype(int)]})


def fairness(frame: pd.DataFrame, y: np.ndarray, refused: np.ndarray) -> pd.DataFrame:
    """Approval, default and error rates by CODE_GENDER and by age band: gaps a lender must be able to justify."""
    data = pd.DataFrame({
        "CODE_GENDER": frame["CODE_GENDER"].astype("object").to_numpy(),
        "age_band": pd.cut(frame["AGE_YEARS"].to_numpy(), AGE_BANDS, right=False).astype(str),
        "y": y, "refused": refused,
    })
    rows = []
    for attribute in ("CODE_GENDER", "age_band"):
        for group, part in data.groupby(attribute, observed=True):
            good, bad = part[part.y == 0], part[part.y == 1]
            rows.append({
                "attribute": attribute, "group": group, "n": len(part),
                "approval_rate": round(1 - part.refused.mean(), 4),
                "default_rate": round(part.y.mean(), 4),
                "refused_good_clients": round(good.refused.mean(), 4) if len(good) else np.nan,
                "granted_defaulters": round(1 - bad.refused.mean(), 4) if len(bad) else np.nan,
            })
    return pd.DataFrame(rows)


def _thin(frame: pd.DataFrame, points: int = 500) -> pd.DataFrame:
    if len(frame) <= points:
        return frame
    return frame.iloc[np.unique(np.linspace(0, len(frame) - 1, points).astype(int))]
