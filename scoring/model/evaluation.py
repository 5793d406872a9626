"""Held-out evaluation: discrimination, calibration, business cost, and the curves DVC plots."""
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

from scoring.model.cost import applicant_costs, business_cost, cost_curve
from scoring.model.intervals import auc_interval, mean_interval
from scoring.settings import CostSettings, IntervalSettings


def metric_intervals(y: np.ndarray, proba: np.ndarray, threshold: float, cost: CostSettings,
                     p: IntervalSettings) -> dict[str, Any]:
    """Bootstrap intervals (applicants drawn with replacement) of the AUC and of the cost per applicant at the
    threshold: how far the same model could land on another holdout of this size."""
    y = np.asarray(y).astype(bool)
    refused = np.asarray(proba) >= threshold
    costs = applicant_costs(y, refused, cost)
    return {"auc": auc_interval(y, proba, p.bootstrap, p.confidence, p.seed).rounded(),
            "business_cost": mean_interval(costs, p.bootstrap, p.confidence, p.seed).rounded(),
            "confidence": p.confidence, "draws": p.bootstrap}


def holdout_metrics(y: np.ndarray, proba: np.ndarray, threshold: float, cost: CostSettings,
                    intervals: IntervalSettings | None = None) -> dict[str, Any]:
    """The holdout's figures at the threshold; with `intervals`, their bootstrap intervals under "intervals"."""
    refused = proba >= threshold
    tn, fp, fn, tp = confusion_matrix(y, refused, labels=[0, 1]).ravel()
    extra = {} if intervals is None else {"intervals": metric_intervals(y, proba, threshold, cost, intervals)}
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
        **extra,
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


def _thin(frame: pd.DataFrame, points: int = 500) -> pd.DataFrame:
    if len(frame) <= points:
        return frame
    return frame.iloc[np.unique(np.linspace(0, len(frame) - 1, points).astype(int))]
