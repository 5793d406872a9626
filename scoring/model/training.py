"""Candidate models, their comparison with GridSearchCV, out-of-fold scores and probability calibration.

Each candidate is an imbalanced-learn Pipeline: preprocessing (fitted inside each fold) -> optional sampler ->
classifier, so that resampling and imputation never see the validation fold. Class imbalance is handled by class
weights, random under-sampling or SMOTE, as params.yaml says. The chosen pipeline's out-of-fold scores feed an
isotonic (or sigmoid) calibrator, so the final model's probabilities are calibrated and the threshold stage can work
on honest out-of-fold probabilities.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBClassifier

from scoring.settings import Imbalance, ModelName, TrainSettings

logger = logging.getLogger(__name__)
MODELS: tuple[str, ...] = get_args(ModelName)
IMBALANCE: tuple[str, ...] = get_args(Imbalance)


def preprocessor(numeric: list[str], categorical: list[str], model: str) -> ColumnTransformer:
    """One-hot categories for every model; numeric columns imputed and scaled for the linear model, imputed for
    the forest, left with their missing values for XGBoost (which learns where they go)."""
    categories = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=0.005, sparse_output=False),
    )
    if model == "logreg":
        numbers: Any = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    elif model == "random_forest":
        numbers = SimpleImputer(strategy="median", add_indicator=True)
    else:
        numbers = "passthrough"
    return ColumnTransformer([("num", numbers, numeric), ("cat", categories, categorical)],
                             verbose_feature_names_out=False)


def classifier(model: str, imbalance: str, positive_share: float, seed: int, n_jobs: int) -> BaseEstimator:
    weighted = imbalance == "class_weight"
    if model == "logreg":
        return LogisticRegression(max_iter=2000, class_weight="balanced" if weighted else None)
    if model == "random_forest":
        return RandomForestClassifier(n_estimators=200, min_samples_leaf=20, n_jobs=n_jobs, random_state=seed,
                                      class_weight="balanced_subsample" if weighted else None)
    scale = (1 - positive_share) / positive_share if weighted else 1.0
    return XGBClassifier(n_estimators=300, learning_rate=0.05, max_depth=4, subsample=0.8, colsample_bytree=0.5,
                         tree_method="hist", n_jobs=n_jobs, random_state=seed, scale_pos_weight=scale,
                         eval_metric="auc")


def sampler(imbalance: str, seed: int) -> BaseEstimator | None:
    if imbalance == "undersample":
        return RandomUnderSampler(random_state=seed)
    if imbalance == "smote":
        return SMOTE(random_state=seed)
    return None


def build_pipeline(model: str, numeric: list[str], categorical: list[str], p: TrainSettings,
                   positive_share: float) -> Pipeline:
    steps: list[tuple[str, Any]] = [("prep", preprocessor(numeric, categorical, model))]
    resampler = sampler(p.imbalance, p.seed)
    if resampler is not None:
        steps.append(("sampler", resampler))
    steps.append(("model", classifier(model, p.imbalance, positive_share, p.seed, p.n_jobs)))
    return Pipeline(steps)


def split_columns(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype) or X[c].dtype == object]
    return [c for c in X.columns if c not in categorical], categorical


def comparison_table(candidates: list[Candidate], chosen: Candidate) -> dict[str, Any]:
    """What train reports: each candidate's cross-validated AUC and cost, and the model kept."""
    return {
        "chosen": chosen.model,
        "models": {c.model: {"cv_auc": round(c.auc, 5), "cv_auc_std": round(c.auc_std, 5),
                             "fit_seconds": round(c.fit_seconds, 1),
                             "best_params": c.best_params} for c in candidates},
    }


@dataclass
class Candidate:
    model: str
    best_params: dict[str, Any]
    auc: float
    auc_std: float
    fit_seconds: float
    estimator: Pipeline


def compare_models(X: pd.DataFrame, y: np.ndarray, p: TrainSettings) -> list[Candidate]:
    """GridSearchCV of every candidate on the same stratified folds, scored by AUC.

    The business cost of each candidate is computed by the threshold stage from their out-of-fold scores, so
    that a change of costs re-runs the threshold and what follows, not the training.
    """
    numeric, categorical = split_columns(X)
    folds = StratifiedKFold(p.cv_folds, shuffle=True, random_state=p.seed)
    results = []
    for model in p.models:
        pipe = build_pipeline(model, numeric, categorical, p, float(np.mean(y)))
        grid = {f"model__{k}": v for k, v in p.grids.get(model, {}).items()}
        search = GridSearchCV(pipe, grid, cv=folds, scoring="roc_auc", refit=False, n_jobs=1, error_score="raise")
        started = time.perf_counter()
        search.fit(X, y)
        best = int(np.argmax(search.cv_results_["mean_test_score"]))
        chosen_grid = search.cv_results_["params"][best]
        candidate = Candidate(model, {k.removeprefix("model__"): v for k, v in chosen_grid.items()},
                              float(search.cv_results_["mean_test_score"][best]),
                              float(search.cv_results_["std_test_score"][best]), time.perf_counter() - started,
                              pipe.set_params(**chosen_grid))
        logger.info("%s: CV AUC %.4f ± %.4f with %s (%.0f s)", model, candidate.auc, candidate.auc_std,
                    candidate.best_params, candidate.fit_seconds)
        results.append(candidate)
    return results


def choose(candidates: list[Candidate], p: TrainSettings) -> Candidate:
    """The model params.yaml forces, or the best cross-validated AUC."""
    if p.model != "auto":
        return next(c for c in candidates if c.model == p.model)
    return max(candidates, key=lambda c: c.auc)


def out_of_fold_scores(candidates: list[Candidate], X: pd.DataFrame, y: np.ndarray, p: TrainSettings) -> pd.DataFrame:
    """Raw out-of-fold probability of every candidate (one column each), on the same folds."""
    folds = StratifiedKFold(p.oof_folds, shuffle=True, random_state=p.seed + 1)
    return pd.DataFrame({
        c.model: cross_val_predict(clone(c.estimator), X, y, cv=folds, method="predict_proba")[:, 1]
        for c in candidates
    }, index=X.index)


class CalibratedScorer(BaseEstimator, ClassifierMixin):
    """A fitted pipeline whose scores go through a calibrator fitted on its out-of-fold scores."""

    def __init__(self, pipeline: Pipeline, calibrator: Any, model_name: str = ""):
        self.pipeline = pipeline
        self.calibrator = calibrator
        self.model_name = model_name
        self.classes_ = np.array([0, 1])

    def raw_scores(self, X: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict_proba(X)[:, 1]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        calibrated = calibrate(self.calibrator, self.raw_scores(X))
        return np.column_stack([1 - calibrated, calibrated])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Labels at 0.5 (sklearn's contract); decisions use the cost-optimal threshold instead."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    @property
    def feature_names_in_(self) -> np.ndarray:
        return self.pipeline.feature_names_in_


def fit_calibrator(raw: np.ndarray, y: np.ndarray, method: str) -> Any:
    if method == "isotonic":
        return IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4).fit(raw, y)
    if method == "sigmoid":
        logit = np.log(np.clip(raw, 1e-9, 1 - 1e-9) / np.clip(1 - raw, 1e-9, 1)).reshape(-1, 1)
        return LogisticRegression(C=1e6).fit(logit, y)
    raise ValueError(f"train.calibration must be 'isotonic' or 'sigmoid', got {method!r}")


def calibrate(calibrator: Any, raw: np.ndarray) -> np.ndarray:
    if isinstance(calibrator, IsotonicRegression):
        return calibrator.predict(raw)
    logit = np.log(np.clip(raw, 1e-9, 1 - 1e-9) / np.clip(1 - raw, 1e-9, 1)).reshape(-1, 1)
    return calibrator.predict_proba(logit)[:, 1]


def fit_final(chosen: Candidate, raw_oof: np.ndarray, X: pd.DataFrame, y: np.ndarray, p: TrainSettings
              ) -> tuple[CalibratedScorer, np.ndarray]:
    """Calibrator fitted on the chosen model's out-of-fold scores; pipeline refitted on all rows.

    Returns the final model and its calibrated out-of-fold probabilities (the threshold stage's input).
    """
    calibrator = fit_calibrator(raw_oof, y, p.calibration)
    logger.info("out-of-fold AUC of %s: %.4f", chosen.model, roc_auc_score(y, raw_oof))
    pipeline = clone(chosen.estimator).fit(X, y)
    model = CalibratedScorer(pipeline, calibrator, chosen.model)
    model.reference_ = np.asarray(pipeline.named_steps["prep"].transform(X), dtype=float).mean(axis=0)
    return model, calibrate(calibrator, raw_oof)
