"""The one scoring engine: raw applications in; features, calibrated probability, decision and reasons out.

Every scorer calls it: the service (`scoring.serving.service`), batch scoring (`scoring.serving.batch`), the evaluate
stage (holdout metrics and explanations), the drift stage (scores of each population), so the code that serves is
the code that is evaluated. For any number of applicants, without a DataFrame on the way:

    features  `features.application_columns` + the history lookup (`features.HistoryLookup`): the training code
    model     the fitted preprocessing replayed with NumPy (`compiled.CompiledPreprocessor`), then the classifier
    calibrate the isotonic (or sigmoid) calibrator fitted on out-of-fold scores at training
    decide    refused when the calibrated probability is at or above the threshold stage's threshold
    explain   exact SHAP values per field (`explainers`), top-k reasons (`reasons.top_reasons`)
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from scoring import features
from scoring.model.explain import source_columns
from scoring.model.training import CalibratedScorer, calibrate
from scoring.serving import reasons
from scoring.serving.compiled import CompiledPreprocessor
from scoring.serving.explainers import explainer_for
from scoring.serving.reasons import Reasons, top_reasons


@dataclass
class Scores:
    """What the engine says of n applicants, as columns."""

    ids: np.ndarray              # SK_ID_CURR, -1 where the applicant gave none
    probability: np.ndarray      # calibrated probability of default
    refused: np.ndarray | None   # probability >= threshold (None: scored without a threshold)
    history_found: np.ndarray    # the applicant's history aggregates were found
    raw: np.ndarray              # the model's output in the space of its SHAP values
    contributions: np.ndarray | None  # n x fields (None when not explained)
    fields: list[str]
    values: dict[str, np.ndarray]     # the model's input columns (the features)
    quantiles: Mapping[str, np.ndarray] | None = None  # the training applicants' percentiles (model.quantiles_)

    def __len__(self) -> int:
        return len(self.probability)

    @property
    def decisions(self) -> np.ndarray:
        if self.refused is None:
            raise ValueError("these scores were computed without a threshold: no decision")
        return np.where(self.refused, "refused", "granted")

    @property
    def base_values(self) -> np.ndarray:
        """Each row's SHAP base value: raw output less the sum of its contributions."""
        if self.contributions is None:
            raise ValueError("these scores were computed without explanations (explain=False)")
        return self.raw - self.contributions.sum(axis=1)

    def reasons(self, k: int) -> Reasons:
        if self.contributions is None:
            if k > 0:
                raise ValueError("these scores were computed without explanations (explain=False)")
            return top_reasons(np.zeros((len(self), 0)), [], {}, 0)
        return top_reasons(self.contributions, self.fields, self.values, k, self.quantiles)

    def feature_frame(self, columns: list[str]) -> pd.DataFrame:
        """The features of these applicants, as the model saw them, indexed by SK_ID_CURR."""
        return pd.DataFrame({name: self.values[name] for name in columns}, index=pd.Index(self.ids, name=features.KEY))

    def contribution_frame(self) -> pd.DataFrame:
        if self.contributions is None:
            raise ValueError("these scores were computed without explanations (explain=False)")
        return pd.DataFrame(self.contributions, index=pd.Index(self.ids, name=features.KEY), columns=self.fields)


class ScoringEngine:
    """A fitted model, its threshold and the history lookup, ready to score any number of applicants. Without a
    threshold (the drift stage compares scores, not decisions) it scores but does not decide."""

    def __init__(self, model: CalibratedScorer, threshold: float | None,
                 history: pd.DataFrame | features.HistoryLookup):
        self.model = model
        self.threshold = None if threshold is None else float(threshold)
        self.history = history if isinstance(history, features.HistoryLookup) else \
            features.HistoryLookup.from_frame(history)
        self.columns = list(model.feature_names_in_)
        self.prep = CompiledPreprocessor(model.pipeline.named_steps["prep"])
        sources = source_columns(self.prep.names, self.columns)
        self.fields = list(dict.fromkeys(sources))
        to_fields = np.zeros((len(sources), len(self.fields)))
        to_fields[np.arange(len(sources)), [self.fields.index(s) for s in sources]] = 1.0
        self.explainer = explainer_for(model.model_name, model.pipeline.named_steps["model"],
                                       getattr(model, "reference_", None), to_fields)
        reasons.warm_up()

    def feature_columns(self, applications: Mapping[str, Any], ids: np.ndarray) -> dict[str, np.ndarray]:
        """The model's input columns, built by the training code; absent history tables leave theirs missing."""
        own = features.application_columns(applications)
        columns = features.feature_columns(own, ids, self.history)
        blank = np.full(len(ids), np.nan)
        return {name: columns.get(name, blank) for name in self.columns}

    def score(self, applications: Mapping[str, Any], ids: np.ndarray, explain: bool = True) -> Scores:
        """Applications (each field of `features.APPLICATION_INPUTS` as an array) and their SK_ID_CURR (-1: none)."""
        ids = np.asarray(ids, dtype=np.int64)
        scores = self.score_features(self.feature_columns(applications, ids), ids, explain)
        scores.history_found = self.history.found(ids)
        return scores

    def score_table(self, apps: pd.DataFrame, explain: bool = True) -> Scores:
        """A table in Kaggle's application schema (SK_ID_CURR may be missing: no history then)."""
        ids = pd.to_numeric(apps[features.KEY], errors="coerce").fillna(-1).to_numpy(dtype=np.int64)
        return self.score({name: apps[name].to_numpy() for name in features.APPLICATION_INPUTS}, ids, explain)

    def score_features(self, columns: Mapping[str, Any], ids: np.ndarray | None = None,
                       explain: bool = True) -> Scores:
        """Already built features (the model's input columns): the model, calibration, decision and SHAP values."""
        X = self.prep.transform(columns)
        ids = np.full(len(X), -1, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        uncalibrated = self.explainer.probability(X)
        probability = self.calibrated(uncalibrated)
        contributions = self.explainer.contributions(X) if explain else None
        values = {name: columns[name] for name in self.columns}
        refused = None if self.threshold is None else probability >= self.threshold
        return Scores(ids, probability, refused, np.zeros(len(X), dtype=bool), self.explainer.raw_of(uncalibrated),
                      contributions, self.fields, values, getattr(self.model, "quantiles_", None))

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """The calibrator's mapping; isotonic regression read directly off its thresholds (sklearn's predict
        validates its input at ~0.1 ms a call)."""
        calibrator = self.model.calibrator
        if isinstance(calibrator, IsotonicRegression) and calibrator.out_of_bounds == "clip":
            return np.interp(raw, calibrator.X_thresholds_, calibrator.y_thresholds_)
        return calibrate(calibrator, raw)
