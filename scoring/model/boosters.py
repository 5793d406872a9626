"""Gradient-boosted trees fitted as the field fits them: the number of trees chosen by early stopping.

`EarlyStoppedXGB` and `EarlyStoppedLGBM` are XGBoost's and LightGBM's own scikit-learn classifiers whose `fit` first
runs the library's own cross-validation on the rows it is given (`xgboost.cv`, `lightgbm.cv`: `inner_folds`
stratified folds trained in lockstep), stops once the mean validation AUC has not improved for `patience` rounds,
then fits one model on all those rows with the best round count, scaled up by REFIT_ROUNDS (the final model sees
1/inner_folds more rows than each inner one). The inner folds are drawn from the training rows only: inside a
cross-validation they never see the outer fold. One model, not the bag of the inner ones: on the real rows the bag
scored the same AUC (0.7420 against 0.7416, 5 x 2 folds) for k times the trees to serve and explain.

Being the libraries' own classifiers, they keep every hyperparameter searchable by scikit-learn's searches and
every explainer of the family (XGBoost's `get_booster`, LightGBM's `booster_`). Missing values are the libraries'
own (each split learns where they go). `n_estimators` is the most rounds the inner CV may run (and the final model
may have); the count chosen is `inner_rounds_` (the final model has REFIT_ROUNDS times as many, within that cap),
and the parameters are left as they were given, so that a clone fits again from scratch. With `rounds` set, `fit`
skips its CV and uses that count (training.py sets it from the search unless `early_stopping.each_fold`).
"""
from __future__ import annotations

import logging
from typing import Any

import lightgbm
import numpy as np
import xgboost
from lightgbm import LGBMClassifier
from xgboost import XGBClassifier

logger = logging.getLogger(__name__)
REFIT_ROUNDS = 1.1
"""Rounds of the final model per round chosen on the inner folds (the usual Kaggle factor)."""
OWN = ("inner_folds", "patience", "rounds", "decreasing")
"""The early-stopping settings and the decreasing columns, which are not the library's parameters."""


def refit_rounds(best: int) -> int:
    return max(1, int(round(best * REFIT_ROUNDS)))


def chosen_rounds(booster: Any, X: Any, y: Any, sample_weight: Any) -> tuple[int, float]:
    """(round count, inner AUC): the booster's own early-stopped CV on these rows, or, when `rounds` is set (a
    count an earlier early-stopped CV chose on a superset of these rows), that count without a new CV (inner AUC
    unknown): the repeated outer CV then costs one fit per fold instead of inner_folds + 1."""
    if booster.rounds:
        return int(booster.rounds), float("nan")
    return booster.inner_cv(X, y, sample_weight)


def constrain(booster: Any, n_features: int) -> Any:
    """The library's monotone constraints over all `n_features` input columns: -1 at the `decreasing` positions
    (the risk never rises as those columns rise, other things equal), 0 elsewhere. Set at fit time: the number of
    columns (one-hot categories) is known only then."""
    if booster.decreasing:
        signs = [0] * n_features
        for position in booster.decreasing:
            signs[position] = -1
        booster.set_params(monotone_constraints=booster.constraint_form(signs))
    return booster


def early_stopped_fit(booster: Any, X: Any, y: Any, sample_weight: Any, **kwargs: Any) -> Any:
    """The round count (chosen_rounds), then the library's own fit with REFIT_ROUNDS times as many (within the
    `n_estimators` cap), the parameter left as given so that a clone fits again from scratch."""
    constrain(booster, X.shape[1])
    booster.inner_rounds_, booster.inner_auc_ = chosen_rounds(booster, X, y, sample_weight)
    cap = booster.n_estimators
    booster.n_estimators = min(cap, refit_rounds(booster.inner_rounds_))
    try:
        return booster.refit(X, y, sample_weight, **kwargs)
    finally:
        booster.n_estimators = cap


class EarlyStoppedXGB(XGBClassifier):
    """XGBClassifier whose tree count is chosen by `xgboost.cv` with early stopping on AUC."""

    def __init__(self, *, inner_folds: int = 3, patience: int = 50, rounds: int | None = None,
                 decreasing: tuple[int, ...] = (), **kwargs: Any):
        super().__init__(**kwargs)
        self.inner_folds = inner_folds
        self.patience = patience
        self.rounds = rounds
        self.decreasing = decreasing

    def get_xgb_params(self) -> dict[str, Any]:
        return {k: v for k, v in super().get_xgb_params().items() if k not in OWN}

    def inner_cv(self, X: Any, y: Any, sample_weight: Any = None) -> tuple[int, float]:
        """(best round count, mean validation AUC there) of `xgboost.cv` with early stopping on these rows."""
        params = {**self.get_xgb_params(), "eval_metric": "auc"}
        params.pop("n_estimators", None)
        data = xgboost.DMatrix(X, label=y, weight=sample_weight, missing=np.nan, nthread=params.get("n_jobs") or 0)
        history = xgboost.cv(params, data, num_boost_round=self.n_estimators, nfold=self.inner_folds,
                             stratified=True, early_stopping_rounds=self.patience, seed=self.random_state or 0,
                             as_pandas=False, shuffle=True)
        return len(history["test-auc-mean"]), float(history["test-auc-mean"][-1])

    @staticmethod
    def constraint_form(signs: list[int]) -> str:
        return f"({','.join(map(str, signs))})"

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> EarlyStoppedXGB:
        return early_stopped_fit(self, X, y, sample_weight, **kwargs)

    def refit(self, X: Any, y: Any, sample_weight: Any, **kwargs: Any) -> EarlyStoppedXGB:
        return super().fit(X, y, sample_weight=sample_weight, verbose=False, **kwargs)


class EarlyStoppedLGBM(LGBMClassifier):
    """LGBMClassifier whose tree count is chosen by `lightgbm.cv` with early stopping on AUC."""

    def __init__(self, *, inner_folds: int = 3, patience: int = 50, rounds: int | None = None,
                 decreasing: tuple[int, ...] = (), **kwargs: Any):
        super().__init__(**kwargs)
        self.inner_folds = inner_folds
        self.patience = patience
        self.rounds = rounds
        self.decreasing = decreasing

    def _process_params(self, stage: str) -> dict[str, Any]:
        return {k: v for k, v in super()._process_params(stage).items() if k not in OWN}

    def inner_cv(self, X: Any, y: Any, sample_weight: Any = None) -> tuple[int, float]:
        """(best round count, mean validation AUC there) of `lightgbm.cv` with early stopping on these rows."""
        params = {**self._process_params(stage="fit"), "metric": "auc"}
        params.pop("n_estimators", None)
        data = lightgbm.Dataset(np.asarray(X, dtype=np.float64), label=np.asarray(y), weight=sample_weight,
                                params={"verbose": -1})
        history = lightgbm.cv(params, data, num_boost_round=self.n_estimators, nfold=self.inner_folds,
                              stratified=True, seed=self.random_state or 0,
                              callbacks=[lightgbm.early_stopping(self.patience, verbose=False)])
        return len(history["valid auc-mean"]), float(history["valid auc-mean"][-1])

    @staticmethod
    def constraint_form(signs: list[int]) -> list[int]:
        return signs

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> EarlyStoppedLGBM:
        return early_stopped_fit(self, X, y, sample_weight, **kwargs)

    def refit(self, X: Any, y: Any, sample_weight: Any, **kwargs: Any) -> EarlyStoppedLGBM:
        return super().fit(X, y, sample_weight=sample_weight, **kwargs)
