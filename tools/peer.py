"""The plain peer the project's model must beat: Kaggle's public kernel "LightGBM with simple features" (its
application part), fitted as the kernel fits it, on the project's own repeated folds.

The issue that asked for a better model measured this peer on real applicants the developers never see (AUC 0.749,
cost 0.543, against the project's 0.738-0.740 then). Its figure and ours come from different samples; this module
puts the peer on the same folds as the project's candidates, so the two are compared pairwise
(`python -m tools.model_study --peer`).

What the kernel does, and this replica with it:
- features: Kaggle's application fields as they come; CODE_GENDER, FLAG_OWN_CAR and FLAG_OWN_REALTY factorised, the
  other categories one-hot with a missing-value column; DAYS_EMPLOYED's 365243 made missing; five ratios
  (DAYS_EMPLOYED_PERC, INCOME_CREDIT_PERC, INCOME_PER_PERSON, ANNUITY_INCOME_PERC, PAYMENT_RATE). The kernel keeps
  CODE_GENDER, which the project never uses (params.yaml `protected`): `drop` leaves fields out for the fair match.
- model: LightGBM with the kernel's hyperparameters, 5 folds of the training rows, each stopped early (200 rounds of
  patience) on its own validation fold, the five models' probabilities averaged on the rows scored.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from lightgbm import LGBMClassifier, early_stopping
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from scoring import contract
from scoring.features import KEY

logger = logging.getLogger(__name__)
KERNEL_PARAMS = {"n_estimators": 10_000, "learning_rate": 0.02, "num_leaves": 34, "colsample_bytree": 0.9497036,
                 "subsample": 0.8715623, "max_depth": 8, "reg_alpha": 0.041545473, "reg_lambda": 0.0735294,
                 "min_split_gain": 0.0222415, "min_child_weight": 39.3259775, "verbose": -1}
"""The kernel's LGBMClassifier arguments (its `nthread` left to the caller)."""
KERNEL_FOLDS = 5
KERNEL_PATIENCE = 200
FACTORISED = ("CODE_GENDER", "FLAG_OWN_CAR", "FLAG_OWN_REALTY")


def peer_features(apps: pd.DataFrame, drop: Sequence[str] = ()) -> pd.DataFrame:
    """The kernel's application features, one row per row of `apps` (same order), `drop` left out."""
    frame = apps.drop(columns=[c for c in (KEY, "TARGET", *drop) if c in apps.columns])
    for name in (c for c in FACTORISED if c in frame.columns):
        frame[name] = pd.factorize(frame[name])[0]
    categories = [c for c in frame.columns if frame[c].dtype == object]
    frame = pd.get_dummies(frame, columns=categories, dummy_na=True, dtype="float64")
    employed = frame["DAYS_EMPLOYED"].where(frame["DAYS_EMPLOYED"] != contract.DAYS_SENTINEL)
    frame = frame.assign(DAYS_EMPLOYED=employed,
                         DAYS_EMPLOYED_PERC=employed / frame["DAYS_BIRTH"],
                         INCOME_CREDIT_PERC=frame["AMT_INCOME_TOTAL"] / frame["AMT_CREDIT"],
                         INCOME_PER_PERSON=frame["AMT_INCOME_TOTAL"] / frame["CNT_FAM_MEMBERS"],
                         ANNUITY_INCOME_PERC=frame["AMT_ANNUITY"] / frame["AMT_INCOME_TOTAL"],
                         PAYMENT_RATE=frame["AMT_ANNUITY"] / frame["AMT_CREDIT"])
    frame.columns = [f"f{i}" for i in range(frame.shape[1])]  # one-hot names may hold what LightGBM refuses
    return frame.replace([np.inf, -np.inf], np.nan)


def kernel_scores(X: pd.DataFrame, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
    """The kernel's averaged fold models, fitted on the `train` rows, scoring the `test` rows."""
    X_fit, y_fit, X_scored = X.iloc[train], y[train], X.iloc[test]
    scores = np.zeros(len(test))
    for fit, stop in StratifiedKFold(KERNEL_FOLDS, shuffle=True, random_state=seed).split(X_fit, y_fit):
        model = LGBMClassifier(**KERNEL_PARAMS, n_jobs=1, random_state=seed)
        model.fit(X_fit.iloc[fit], y_fit[fit], eval_X=(X_fit.iloc[stop],), eval_y=(y_fit[stop],), eval_metric="auc",
                  callbacks=[early_stopping(KERNEL_PATIENCE, verbose=False)])
        scores += model.predict_proba(X_scored, num_iteration=model.best_iteration_)[:, 1] / KERNEL_FOLDS
    return scores


def peer_fold_auc(X: pd.DataFrame, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], seed: int,
                  n_jobs: int) -> np.ndarray:
    """The peer's AUC on each (train, test) split, in order: the pairs of the project's repeated folds."""
    scores = Parallel(n_jobs=n_jobs)(delayed(kernel_scores)(X, y, train, test, seed) for train, test in splits)
    aucs = np.array([roc_auc_score(y[test], s) for (_, test), s in zip(splits, scores)])
    logger.info("peer (%d features): repeated-CV AUC %.4f ± %.4f", X.shape[1], aucs.mean(), aucs.std(ddof=1))
    return aucs
