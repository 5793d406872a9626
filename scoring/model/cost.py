"""The business cost of credit decisions and the threshold that minimises it.

A refused good client (false positive) costs `fp`; a granted credit that defaults (false negative) costs `fn`,
typically ten times more. The cost is normalised per applicant: (fn * FN + fp * FP) / n. An applicant is refused
when their probability of default is at or above the threshold.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.settings import CostSettings


def applicant_costs(y_true: np.ndarray, refused: np.ndarray, cost: CostSettings) -> np.ndarray:
    """Each applicant's cost of the decision: fn for a granted defaulter, fp for a refused good client, else 0."""
    y_true, refused = np.asarray(y_true).astype(bool), np.asarray(refused).astype(bool)
    return np.where(y_true & ~refused, cost.fn, 0.0) + np.where(~y_true & refused, cost.fp, 0.0)


def business_cost(y_true: np.ndarray, refused: np.ndarray, cost: CostSettings) -> float:
    """Mean cost per applicant of the decisions `refused` (True = credit refused)."""
    costs = applicant_costs(y_true, refused, cost)
    return float(costs.sum() / max(len(costs), 1))


def cost_curve(y_true: np.ndarray, proba: np.ndarray, thresholds: np.ndarray, cost: CostSettings) -> pd.DataFrame:
    """Cost, error counts and approval rate at every threshold, in O((n + k) log n) without a loop."""
    y_true = np.asarray(y_true).astype(bool)
    proba = np.asarray(proba, dtype=float)
    positives, negatives = np.sort(proba[y_true]), np.sort(proba[~y_true])
    fn = np.searchsorted(positives, thresholds, side="left")          # defaulters scored below t: granted
    fp = len(negatives) - np.searchsorted(negatives, thresholds, side="left")  # good clients at or above t: refused
    n = max(len(proba), 1)
    approved = fn + np.searchsorted(negatives, thresholds, side="left")
    return pd.DataFrame({
        "threshold": thresholds, "cost": (cost.fn * fn + cost.fp * fp) / n, "false_negatives": fn,
        "false_positives": fp, "approval_rate": approved / n,
    })


def pick_threshold(y_true: np.ndarray, proba: np.ndarray, cost: CostSettings, steps: int = 1001) -> tuple[float, float]:
    """(threshold, cost) minimising the business cost over a regular grid on [0, 1].

    Where a stretch of thresholds gives the same lowest cost (no score falls between them: the same decisions; an
    isotonic calibrator's steps make such stretches wide), the middle of that stretch: the threshold then sits
    away from the score where the next decision would change, and moves less between samples than its lower edge
    (real rows: per-repeat edges 0.078 and 0.092 for the same decisions)."""
    curve = cost_curve(y_true, proba, np.linspace(0, 1, steps), cost)
    costs = curve["cost"].to_numpy()
    first = int(costs.argmin())
    last = first + int(np.argmax(np.r_[costs[first:], np.inf] != costs[first])) - 1
    best = (first + last) // 2
    return float(curve["threshold"].iloc[best]), float(costs[best])


def min_cost(y_true: np.ndarray, proba: np.ndarray, cost: CostSettings) -> float:
    """Lowest achievable cost on these scores (used to compare models, whatever their probability scale)."""
    return pick_threshold(y_true, proba, cost)[1]
