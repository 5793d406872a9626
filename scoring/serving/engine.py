"""The scoring graph for the service, without DataFrames: features -> score -> reasons -> decision.

It uses the same feature code as training (`features.application_columns`, `HistoryLookup`), the fitted model's
preprocessing replayed with NumPy (`compiled.CompiledPreprocessor`), XGBoost's own SHAP values (by table look-up,
`treeshap.TabulatedShap`, or `pred_contribs` for models with large trees), and the calibrator and threshold of the
pipeline. Any number of applicants per call: one for `POST /score`, many for `POST /score/batch`. Results equal
`model.predict_proba(build_features(...))` (tested).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from scoring import features
from scoring.model import explain
from scoring.model.registry import ScoringModel
from scoring.model.training import calibrate
from scoring.serving.compiled import CompiledPreprocessor
from scoring.serving.treeshap import TabulatedShap


@dataclass
class Scores:
    probability: np.ndarray
    refused: np.ndarray
    contributions: np.ndarray   # applicants x fields, in the model's raw score space
    fields: list[str]
    values: dict[str, np.ndarray]


class ScoringEngine:
    def __init__(self, scoring: ScoringModel, history: pd.DataFrame):
        self.model = scoring.model
        self.threshold = scoring.threshold
        self.version = scoring.version
        self.columns = list(self.model.feature_names_in_)
        self.history = features.HistoryLookup.from_frame(history)
        self.prep = CompiledPreprocessor(self.model.pipeline.named_steps["prep"])
        self.classifier = self.model.pipeline.named_steps["model"]
        self.fields = list(dict.fromkeys(explain.source_columns(self.prep.names, self.columns)))
        sources = explain.source_columns(self.prep.names, self.columns)
        self.to_fields = np.zeros((len(sources), len(self.fields)))
        self.to_fields[np.arange(len(sources)), [self.fields.index(s) for s in sources]] = 1.0
        self.booster = self.classifier.get_booster() if self.model.model_name == "xgboost" else None
        if self.booster is not None:
            # One thread: a replica owns one core, and XGBoost's thread pool costs ~30 ms per call when the
            # cores are busy (measured); scale out with replicas instead.
            self.booster = self.booster.copy()
            self.booster.set_param({"nthread": 1})
        # XGBoost's SHAP values by table look-up (same numbers, ~10x faster); None for large trees: pred_contribs.
        self.tabulated = TabulatedShap.from_booster(self.booster, self.to_fields) if self.booster else None

    def feature_columns(self, applications: Mapping[str, Any], ids: np.ndarray) -> dict[str, np.ndarray]:
        own = features.application_columns(applications)
        columns = features.feature_columns(own, ids, self.history)
        blank = np.full(len(ids), np.nan)
        return {name: columns.get(name, blank) for name in self.columns}

    def raw_scores(self, X: np.ndarray) -> np.ndarray:
        if self.booster is not None:
            return self.booster.inplace_predict(X)
        return self.classifier.predict_proba(X)[:, 1]

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """SHAP values per field, in the model's raw score space."""
        if self.tabulated is not None:
            return self.tabulated.contributions(X).astype(np.float64)
        if self.booster is not None:
            import xgboost

            contribs = self.booster.predict(xgboost.DMatrix(X, nthread=1), pred_contribs=True)[:, :-1]
        elif self.model.model_name == "logreg":
            contribs, _ = explain.raw_contributions(self.model, X)
        else:
            contribs = self.tree_explainer_values(X)
        return contribs @ self.to_fields

    def tree_explainer_values(self, X: np.ndarray) -> np.ndarray:
        """SHAP of a random forest; the explainer is built once (it walks every tree)."""
        if not hasattr(self, "_explainer"):
            import shap

            self._explainer = shap.TreeExplainer(self.classifier)
        values = np.asarray(self._explainer.shap_values(X, check_additivity=False))
        return values[..., 1] if values.ndim == 3 else values

    def score(self, applications: Mapping[str, Any], ids: np.ndarray, explain_scores: bool = True) -> Scores:
        columns = self.feature_columns(applications, ids)
        X = self.prep.transform(columns)
        if self.booster is not None and explain_scores and self.tabulated is None:
            # One DMatrix for the score and the SHAP values. (The sum of the SHAP values is the margin, but its
            # float32 rounding moves calibrated probabilities by up to 2e-4: the score keeps its own prediction.)
            import xgboost

            matrix = xgboost.DMatrix(X, nthread=1)
            probability = self.calibrated(self.booster.predict(matrix))
            contribs = self.booster.predict(matrix, pred_contribs=True)[:, :-1] @ self.to_fields
        else:  # no DMatrix: inplace_predict for XGBoost, SHAP from the tables
            probability = self.calibrated(self.raw_scores(X))
            contribs = self.contributions(X) if explain_scores else np.zeros((len(ids), len(self.fields)))
        return Scores(probability, probability >= self.threshold, contribs, self.fields, columns)

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """The calibrator's mapping; isotonic regression read directly off its thresholds (sklearn's predict
        validates its input at ~0.1 ms a call)."""
        calibrator = self.model.calibrator
        if isinstance(calibrator, IsotonicRegression) and calibrator.out_of_bounds == "clip":
            return np.interp(raw, calibrator.X_thresholds_, calibrator.y_thresholds_)
        return calibrate(calibrator, raw)

    def reasons(self, scores: Scores, row: int, k: int = 5) -> list[explain.Reason]:
        contribs = pd.Series(scores.contributions[row], index=scores.fields)
        values = pd.Series({name: scores.values[name][row] for name in scores.fields})
        return explain.top_reasons(contribs, values, k)
