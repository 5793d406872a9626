"""Exact SHAP values of each candidate model, summed into the fields of the data contract, and the model's raw output
in the same space (so that base value + contributions = raw output, row by row).

One explainer per model family, chosen by `explainer_for`:
* XGBoost: path-dependent TreeSHAP read from per-tree tables (`treeshap.TabulatedShap`, shallow trees), else XGBoost's
  own `pred_contribs`; raw output: the margin (log-odds).
* logistic regression: exact linear SHAP, coef x (x - training mean of the encoded inputs); raw output: the logit.
* LightGBM: the booster's own path-dependent TreeSHAP (`predict(pred_contrib=True)`, the numbers of shap's
  TreeExplainer); raw output: the margin (log-odds).
* random forest: path-dependent TreeSHAP (`forestshap.ForestShap`, shap's TreeExplainer numbers, compiled); raw
  output: the forest's probability.
Contributions are in the raw space, before calibration; calibration is monotone, so a field that raises the raw
score raises the calibrated probability too.
"""
from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from scoring.serving.forestshap import ForestShap
from scoring.serving.treeshap import PARALLEL_ROWS, TabulatedShap


class Explainer(Protocol):
    def probability(self, X: np.ndarray) -> np.ndarray:
        """The classifier's probability of default, before calibration."""

    def raw_of(self, probability: np.ndarray) -> np.ndarray:
        """That probability in the space of the SHAP values (log-odds, or the probability itself)."""

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """rows x fields, float64, the bias left out."""


def log_odds(probability: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probability, dtype=np.float64), 1e-15, 1 - 1e-15)
    return np.log(p / (1 - p))


class XGBoostExplainer:
    """Tables for shallow trees (~10x faster, same numbers), `pred_contribs` otherwise. One thread for a few rows: a
    replica owns one core, and XGBoost's thread pool costs ~30 ms per call when the cores are busy (measured); every
    core for a batch of PARALLEL_ROWS or more."""

    def __init__(self, booster: Any, to_fields: np.ndarray):
        self.booster = booster.copy()
        self.booster.set_param({"nthread": 1})
        self.batch_booster = booster.copy()
        self.batch_booster.set_param({"nthread": 0})
        self.to_fields = to_fields
        self.tabulated = TabulatedShap.from_booster(self.booster, to_fields)
        if self.tabulated is not None:
            self.tabulated.warm_up()

    def probability(self, X: np.ndarray) -> np.ndarray:
        return (self.batch_booster if len(X) >= PARALLEL_ROWS else self.booster).inplace_predict(X)

    def raw_of(self, probability: np.ndarray) -> np.ndarray:
        return log_odds(probability)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        if self.tabulated is not None:
            return self.tabulated.contributions(X).astype(np.float64)
        import xgboost

        contribs = self.booster.predict(xgboost.DMatrix(X, nthread=1), pred_contribs=True)[:, :-1]
        return contribs.astype(np.float64) @ self.to_fields


class LinearExplainer:
    """coef_j (x_j - mean_j): the exact SHAP values of a linear model with independent inputs, the mean taken over
    the training applicants' encoded inputs (`CalibratedScorer.reference_`)."""

    def __init__(self, classifier: Any, reference: np.ndarray, to_fields: np.ndarray):
        self.classifier = classifier
        self.coef, self.intercept = classifier.coef_[0], float(classifier.intercept_[0])
        self.reference = reference
        self.to_fields = to_fields

    def probability(self, X: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(X @ self.coef + self.intercept)))

    def raw_of(self, probability: np.ndarray) -> np.ndarray:
        return log_odds(probability)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.reference) * self.coef) @ self.to_fields


class LightGBMExplainer:
    """LightGBM's own TreeSHAP (`pred_contrib=True`) and probability, one thread for a few rows (a replica owns one
    core), every core for a batch of PARALLEL_ROWS or more."""

    def __init__(self, booster: Any, to_fields: np.ndarray):
        self.booster = booster
        self.to_fields = to_fields

    def threads(self, rows: int) -> int:
        return 1 if rows < PARALLEL_ROWS else 0

    def probability(self, X: np.ndarray) -> np.ndarray:
        return self.booster.predict(X, num_threads=self.threads(len(X)))

    def raw_of(self, probability: np.ndarray) -> np.ndarray:
        return log_odds(probability)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        contribs = self.booster.predict(X, pred_contrib=True, num_threads=self.threads(len(X)))[:, :-1]
        return np.asarray(contribs, dtype=np.float64) @ self.to_fields


class ForestExplainer:
    """Path-dependent TreeSHAP of a random forest, in probability space (`forestshap.ForestShap`: shap's numbers,
    compiled). One thread for a few rows (a replica owns one core), every core for a batch."""

    def __init__(self, forest: Any, to_fields: np.ndarray):
        self.forest = forest
        self.shap = ForestShap.from_forest(forest, to_fields)
        self.shap.warm_up()

    def probability(self, X: np.ndarray) -> np.ndarray:
        return self.forest.predict_proba(X)[:, 1]

    def raw_of(self, probability: np.ndarray) -> np.ndarray:
        return np.asarray(probability, dtype=np.float64)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        return self.shap.contributions(X, threads=1 if len(X) < PARALLEL_ROWS else None)


def explainer_for(family: str, classifier: Any, reference: np.ndarray | None, to_fields: np.ndarray) -> Explainer:
    """The exact explainer of a fitted classifier of this family."""
    if family == "xgboost":
        return XGBoostExplainer(classifier.get_booster(), to_fields)
    if family == "logreg":
        if reference is None:
            raise ValueError("the logistic regression's SHAP values need the training mean of its encoded inputs "
                             "(CalibratedScorer.reference_): retrain with `dvc repro train`")
        return LinearExplainer(classifier, reference, to_fields)
    if family == "random_forest":
        return ForestExplainer(classifier, to_fields)
    if family == "lightgbm":
        return LightGBMExplainer(classifier.booster_, to_fields)
    raise ValueError(f"no explainer for model family {family!r}")
