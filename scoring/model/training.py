"""Candidate models, their honest comparison by repeated cross-validation, and probability calibration.

Each candidate is an imbalanced-learn Pipeline: preprocessing (fitted inside each fold) -> optional sampler ->
classifier, so that resampling and imputation never see the validation fold. Class imbalance is handled by class
weights, random under-sampling or SMOTE, as params.yaml says.

How a candidate is tuned: logistic regression and random forest by GridSearchCV on `cv_folds` folds (their small
grids); XGBoost and LightGBM (`boosters`: the number of trees fitted by the library's own early-stopped CV) by
`search_draws[search]` configurations drawn from their grids, each scored by one early-stopped library CV on the
training rows. How they are compared: every tuned candidate is refitted on the same `oof_folds` x `oof_repeats`
stratified folds; the fold AUCs give paired differences (Nadeau-Bengio corrected, `intervals.paired_difference`), and
`choose` keeps the simplest candidate within `noise_se` standard errors of the best. Its out-of-fold scores, pooled
over the repeats, feed an isotonic (or sigmoid) calibrator and the threshold stage.

The boosted trees are monotone in `train.decreasing` (the external scores and their summaries): raising one of those
features, the others held, never raises the risk, so a better external score never counts against an applicant (the
calibrator is monotone too). On the visible real applicants the constraints cost nothing measurable (+0.0006 AUC, se
0.0006). The linear model and the forest are not constrained.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_args

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from imblearn.under_sampling import RandomUnderSampler
from joblib import Parallel, delayed
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    ParameterSampler,
    RepeatedStratifiedKFold,
    StratifiedKFold,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from scoring.model.boosters import EarlyStoppedLGBM, EarlyStoppedXGB, constrain
from scoring.model.intervals import paired_difference
from scoring.settings import Imbalance, ModelName, TrainSettings

logger = logging.getLogger(__name__)
MODELS: tuple[str, ...] = get_args(ModelName)
IMBALANCE: tuple[str, ...] = get_args(Imbalance)
SIMPLER_FIRST: tuple[str, ...] = ("logreg", "xgboost", "random_forest", "lightgbm")
"""Within noise, the first of these is kept: the cheapest to serve and explain (bench/batch.py, applicants/s with 3
reasons: logreg 35k, XGBoost's shallow trees 30k, the forest's deep trees 5.5k, LightGBM's pred_contrib 0.3k)."""
BOOSTED = ("xgboost", "lightgbm")


def preprocessor(numeric: list[str], categorical: list[str], model: str, imbalance: str = "none"
                 ) -> ColumnTransformer:
    """One-hot categories for every model; numeric columns imputed and scaled for the linear model, imputed for
    the forest and wherever SMOTE needs complete rows (it interpolates between neighbours), otherwise left with
    their missing values for the boosted trees (each split learns where they go).

    The boosted trees' native categories were measured against one-hot on the 12,703 visible real applicants (5 x 3
    folds, the chosen parameters): XGBoost's partition splits -0.0006 AUC (se 0.0016), LightGBM's -0.0060 (se
    0.0025: its category splits over-fit a few thousand rows). One-hot stays: no gain, and the serving explainers
    read plain numeric splits."""
    categories = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=0.005, sparse_output=False),
    )
    if model == "logreg":
        numbers: Any = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    elif model == "random_forest" or imbalance == "smote":
        numbers = SimpleImputer(strategy="median", add_indicator=True)
    else:
        numbers = "passthrough"
    return ColumnTransformer([("num", numbers, numeric), ("cat", categories, categorical)],
                             verbose_feature_names_out=False)


def classifier(model: str, p: TrainSettings, positive_share: float) -> BaseEstimator:
    """The candidate with its default parameters (its grid in params.yaml overrides them)."""
    weighted = p.imbalance == "class_weight"
    if model == "logreg":
        return LogisticRegression(max_iter=2000, class_weight="balanced" if weighted else None)
    if model == "random_forest":
        # Each tree on half the rows (drawn with replacement): the same repeated-CV AUC in half the time. 120 trees:
        # the train stage within two minutes with the boosted trees' monotone constraints (LightGBM's cost ~30% more).
        return RandomForestClassifier(n_estimators=120, max_samples=0.5, min_samples_leaf=20, n_jobs=p.n_jobs,
                                      random_state=p.seed,
                                      class_weight="balanced_subsample" if weighted else None)
    scale = (1 - positive_share) / positive_share if weighted else 1.0
    stopping = {"inner_folds": int(p.early_stopping["inner_folds"]), "patience": int(p.early_stopping["patience"]),
                "n_estimators": int(p.early_stopping["max_rounds"])}
    if model == "xgboost":
        return EarlyStoppedXGB(**stopping, learning_rate=0.05, max_depth=3, min_child_weight=10, subsample=0.8,
                               colsample_bytree=0.5, reg_lambda=5, tree_method="hist", n_jobs=p.n_jobs,
                               random_state=p.seed, scale_pos_weight=scale, eval_metric="auc")
    if model == "lightgbm":
        return EarlyStoppedLGBM(**stopping, learning_rate=0.05, num_leaves=15, min_child_samples=60, subsample=0.8,
                                subsample_freq=1, colsample_bytree=0.5, reg_lambda=5, n_jobs=p.n_jobs,
                                random_state=p.seed, scale_pos_weight=scale, verbose=-1)
    raise ValueError(f"train.models: unknown model {model!r}; choose among {MODELS}")


def sampler(imbalance: str, seed: int) -> BaseEstimator | None:
    if imbalance == "undersample":
        return RandomUnderSampler(random_state=seed)
    if imbalance == "smote":
        return SMOTE(random_state=seed)
    return None


def build_pipeline(model: str, numeric: list[str], categorical: list[str], p: TrainSettings,
                   positive_share: float) -> Pipeline:
    steps: list[tuple[str, Any]] = [("prep", preprocessor(numeric, categorical, model, p.imbalance))]
    resampler = sampler(p.imbalance, p.seed)
    if resampler is not None:
        steps.append(("sampler", resampler))
    steps.append(("model", classifier(model, p, positive_share)))
    if model in BOOSTED:
        steps[-1][1].set_params(decreasing=decreasing_positions(numeric, p.decreasing))
    return Pipeline(steps)


def decreasing_positions(numeric: list[str], decreasing: tuple[str, ...]) -> tuple[int, ...]:
    """Where the `train.decreasing` features sit in the boosted trees' input: the numeric columns come first, in
    order, from every preprocessor (one-hot categories and imputation indicators follow them)."""
    unknown = [name for name in decreasing if name not in numeric]
    if unknown:
        raise ValueError(f"train.decreasing in params.yaml: {unknown} are not numeric features of this table; "
                         f"choose among {numeric[:8]}... or leave the list empty")
    return tuple(numeric.index(name) for name in decreasing)


def split_columns(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype) or X[c].dtype == object]
    return [c for c in X.columns if c not in categorical], categorical


@dataclass
class Candidate:
    model: str
    best_params: dict[str, Any]
    auc: float                   # mean AUC over the repeated folds
    auc_std: float
    fit_seconds: float
    estimator: Pipeline
    fold_auc: np.ndarray = field(default_factory=lambda: np.zeros(0))   # one per fold of the repeated CV
    oof: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))    # repeats x rows, raw scores
    rounds: list[int] = field(default_factory=list)                      # trees kept per fold (boosted)


def folds_of(p: TrainSettings) -> RepeatedStratifiedKFold:
    """The repeated folds every candidate is estimated on (the same for all: paired differences)."""
    return RepeatedStratifiedKFold(n_splits=p.oof_folds, n_repeats=p.oof_repeats, random_state=p.seed + 1)


def fold_index(y: np.ndarray, p: TrainSettings) -> np.ndarray:
    """repeats x rows: the fold in which each row was scored, per repeat."""
    out = np.zeros((p.oof_repeats, len(y)), dtype=np.int64)
    for i, (_, test) in enumerate(folds_of(p).split(np.zeros(len(y)), y)):
        out[i // p.oof_folds, test] = i % p.oof_folds
    return out


def single_threaded(pipe: Pipeline, p: TrainSettings) -> Pipeline:
    """A copy of the pipeline whose model uses one thread: the fits of a search or of the repeated CV run
    `p.n_jobs` at a time in worker processes, which on a few thousand rows beats threads inside one fit (the
    libraries' threads wait on each other at every split)."""
    one = clone(pipe)
    threaded = one.named_steps["model"].get_params().get("n_jobs") is not None   # logreg's lbfgs: no threads
    return one.set_params(model__n_jobs=1) if threaded else one


def workers(p: TrainSettings) -> Parallel:
    """`p.n_jobs` worker processes; results come back in order as each finishes (progress is logged then)."""
    return Parallel(n_jobs=p.n_jobs, return_as="generator")


def fit_fold(pipe: Pipeline, X: pd.DataFrame, y: np.ndarray, train: np.ndarray, test: np.ndarray
             ) -> tuple[np.ndarray, int | None]:
    """(raw scores of the test rows, trees kept or None) of the pipeline fitted on the train rows."""
    fitted = clone(pipe).fit(X.iloc[train], y[train])
    model = fitted.named_steps["model"]
    return fitted.predict_proba(X.iloc[test])[:, 1], getattr(model, "inner_rounds_", None)


def repeated_cv(pipe: Pipeline, X: pd.DataFrame, y: np.ndarray, p: TrainSettings, name: str
                ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(AUC per fold, raw out-of-fold scores repeats x rows, trees kept per fold) on `folds_of(p)`."""
    oof, aucs, rounds = np.zeros((p.oof_repeats, len(y))), [], []
    splits = list(folds_of(p).split(X, y))
    one = single_threaded(pipe, p)
    fitted = workers(p)(delayed(fit_fold)(one, X, y, train, test) for train, test in splits)
    for i, ((_, test), (scores, kept)) in enumerate(zip(splits, fitted)):
        oof[i // p.oof_folds, test] = scores
        aucs.append(roc_auc_score(y[test], scores))
        rounds.extend([int(kept)] if kept is not None else [])
        logger.info("%s: fold %d/%d AUC %.4f", name, i + 1, len(splits), aucs[-1])
    return np.asarray(aucs), oof, rounds


def grid_of(model: str, p: TrainSettings) -> dict[str, list[Any]]:
    return {f"model__{k}": list(v) for k, v in p.grids.get(model, {}).items()}


def grid_search(pipe: Pipeline, model: str, X: pd.DataFrame, y: np.ndarray, p: TrainSettings) -> dict[str, Any]:
    """The best grid point of a small grid (logreg, random forest) by GridSearchCV's AUC on `cv_folds` folds."""
    grid = grid_of(model, p)
    if not grid or len(ParameterGrid(grid)) == 1:
        return {k: v[0] for k, v in grid.items()}
    folds = StratifiedKFold(p.cv_folds, shuffle=True, random_state=p.seed)
    search = GridSearchCV(single_threaded(pipe, p), grid, cv=folds, scoring="roc_auc", refit=False,
                          n_jobs=p.n_jobs, error_score="raise")
    search.fit(X, y)
    return search.cv_results_["params"][int(np.argmax(search.cv_results_["mean_test_score"]))]


def boosted_search(pipe: Pipeline, model: str, X: pd.DataFrame, y: np.ndarray, p: TrainSettings) -> dict[str, Any]:
    """`search_draws[search]` configurations of the grid, each scored by the library's own early-stopped CV on
    the training rows (one CV per draw: no refit): the anchor (each list's first value), then random draws. The
    sampler is left out of this step: resampled rows would fall on both sides of the inner folds; the repeated CV
    that follows applies it inside each fold."""
    grid = grid_of(model, p)
    if not grid:
        return {}
    draws = min(int(p.search_draws[p.search]), len(ParameterGrid(grid)))
    anchor = {k: v[0] for k, v in grid.items()}
    sampled = [c for c in ParameterSampler(grid, n_iter=draws, random_state=p.seed) if c != anchor]
    configurations = [anchor, *sampled][:draws]
    Xt = clone(pipe.named_steps["prep"]).fit_transform(X, y)
    one = single_threaded(pipe, p)
    boosters = [constrain(clone(one).set_params(**config).named_steps["model"], Xt.shape[1])
                for config in configurations]
    scored = []
    for i, (config, (rounds, auc)) in enumerate(zip(configurations, workers(p)(
            delayed(booster.inner_cv)(Xt, y) for booster in boosters))):
        scored.append((auc, rounds))
        logger.info("%s search %d/%d: inner AUC %.4f at %d rounds with %s", model, i + 1, draws, auc, rounds,
                    {k.removeprefix("model__"): v for k, v in config.items()})
    best = int(np.argmax([auc for auc, _ in scored]))
    kept = {} if p.early_stopping_each_fold else {"model__rounds": scored[best][1]}
    return {**configurations[best], **kept}


def tune_and_estimate(model: str, X: pd.DataFrame, y: np.ndarray, p: TrainSettings) -> Candidate:
    """A candidate tuned on the training rows, then estimated on the repeated folds."""
    started = time.perf_counter()
    pipe = build_pipeline(model, *split_columns(X), p, float(np.mean(y)))
    tune = boosted_search if model in BOOSTED else grid_search
    best = tune(pipe, model, X, y, p)
    pipe = pipe.set_params(**best)
    aucs, oof, rounds = repeated_cv(pipe, X, y, p, model)
    candidate = Candidate(model, {k.removeprefix("model__"): v for k, v in best.items()}, float(aucs.mean()),
                          float(aucs.std(ddof=1)) if len(aucs) > 1 else 0.0, time.perf_counter() - started, pipe,
                          aucs, oof, rounds)
    logger.info("%s: repeated-CV AUC %.4f ± %.4f with %s (%.0f s)", model, candidate.auc, candidate.auc_std,
                candidate.best_params, candidate.fit_seconds)
    return candidate


def compare_models(X: pd.DataFrame, y: np.ndarray, p: TrainSettings) -> list[Candidate]:
    """Every candidate of `train.models`, tuned and estimated on the same repeated stratified folds.

    The business cost of each candidate is computed by the threshold stage from their out-of-fold scores, so
    that a change of costs re-runs the threshold and what follows, not the training.
    """
    unknown = sorted(set(p.models) - set(MODELS))
    if unknown:
        raise ValueError(f"train.models in params.yaml: unknown {unknown}; choose among {MODELS}")
    return [tune_and_estimate(model, X, y, p) for model in p.models]


def difference(a: Candidate, b: Candidate, p: TrainSettings) -> dict[str, float]:
    """a - b of the fold AUCs, with its corrected standard error."""
    d = paired_difference(a.fold_auc, b.fold_auc, 1 / p.oof_folds)
    return {"mean": round(d.mean, 5), "se": round(d.se, 5), "t": round(float(d.t), 2)}


def choose(candidates: list[Candidate], p: TrainSettings) -> Candidate:
    """The model params.yaml forces; else, among the candidates whose AUC is within `noise_se` corrected standard
    errors of the best one's, the simplest (SIMPLER_FIRST): a gain smaller than the noise is no gain."""
    if p.model != "auto":
        forced = [c for c in candidates if c.model == p.model]
        if not forced:
            raise ValueError(f"train.model is {p.model!r} but train.models {list(p.models)} does not hold it")
        return forced[0]
    best = max(candidates, key=lambda c: c.auc)
    within = [c for c in candidates if c is best or difference(best, c, p)["t"] < p.noise_se]
    return min(within, key=lambda c: SIMPLER_FIRST.index(c.model))


def rank_blend(candidates: list[Candidate], y: np.ndarray, p: TrainSettings) -> dict[str, Any] | None:
    """The mean rank of the two best candidates' out-of-fold scores, fold by fold, against the best alone: a
    blend is worth serving only if its gain is beyond the noise (it is reported, not served)."""
    if len(candidates) < 2:
        return None
    first, second = sorted(candidates, key=lambda c: -c.auc)[:2]
    folds = fold_index(y, p)
    aucs = []
    for repeat in range(p.oof_repeats):
        for k in range(p.oof_folds):
            rows = folds[repeat] == k
            blend = rankdata(first.oof[repeat, rows]) + rankdata(second.oof[repeat, rows])
            aucs.append(roc_auc_score(y[rows], blend))
    d = paired_difference(np.asarray(aucs), first.fold_auc, 1 / p.oof_folds)
    return {"members": [first.model, second.model], "cv_auc": round(float(np.mean(aucs)), 5),
            "gain": round(d.mean, 5), "se": round(d.se, 5), "beyond_noise": bool(d.t >= p.noise_se),
            "served": False}


def comparison_table(candidates: list[Candidate], chosen: Candidate, p: TrainSettings,
                     blend: dict[str, Any] | None = None) -> dict[str, Any]:
    """What train reports: each candidate's repeated-CV AUC, its paired difference with the best, the model kept
    and why."""
    best = max(candidates, key=lambda c: c.auc)
    return {
        "chosen": chosen.model,
        "protocol": {"folds": p.oof_folds, "repeats": p.oof_repeats, "noise_se": p.noise_se, "search": p.search,
                     "rule": "the simplest model within noise_se corrected standard errors of the best AUC"},
        "best_auc": best.model,
        "decreasing": list(p.decreasing) if chosen.model in BOOSTED else [],
        "models": {c.model: {"cv_auc": round(c.auc, 5), "cv_auc_std": round(c.auc_std, 5),
                             "vs_best": difference(c, best, p), "fit_seconds": round(c.fit_seconds, 1),
                             "trees": int(np.median(c.rounds) * 1.1) if c.rounds else None,
                             "best_params": c.best_params} for c in candidates},
        "blend": blend,
    }


def out_of_fold_scores(candidates: list[Candidate], y: np.ndarray, p: TrainSettings) -> pd.DataFrame:
    """Every candidate's raw out-of-fold score, one row per applicant and repeat: `row` (the applicant's position),
    `repeat`, `fold`, TARGET and `raw_<model>`."""
    folds = fold_index(y, p)
    rows = np.tile(np.arange(len(y)), p.oof_repeats)
    frame = pd.DataFrame({"row": rows, "repeat": np.repeat(np.arange(p.oof_repeats), len(y)),
                          "fold": folds.ravel(), "TARGET": np.tile(y, p.oof_repeats)})
    for c in candidates:
        frame[f"raw_{c.model}"] = c.oof.ravel()
    return frame


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


def fit_final(chosen: Candidate, raw_oof: np.ndarray, X: pd.DataFrame, y: np.ndarray, p: TrainSettings,
              refit: Callable[[Pipeline, pd.DataFrame, np.ndarray], Pipeline] | None = None, rows: int | None = None
              ) -> tuple[CalibratedScorer, np.ndarray]:
    """Calibrator fitted on the chosen model's out-of-fold scores pooled over the repeats (`raw_oof`: repeats x
    rows); pipeline refitted on all rows.

    Returns the final model and its calibrated out-of-fold probabilities (repeats x rows, the threshold's input).
    `refit` fits the pipeline elsewhere (Ray Train: `ray_xgboost.refit`, on `rows` applicants of which `X` is
    the sample the encoder is fitted on) instead of here.
    """
    raw_oof = np.atleast_2d(raw_oof)
    pooled_y = np.tile(y, len(raw_oof))
    calibrator = fit_calibrator(raw_oof.ravel(), pooled_y, p.calibration)
    logger.info("out-of-fold AUC of %s, pooled over %d repeats: %.4f", chosen.model, len(raw_oof),
                roc_auc_score(pooled_y, raw_oof.ravel()))
    model = fitted_scorer(chosen, calibrator, X, y, refit, rows)
    return model, calibrate(calibrator, raw_oof.ravel()).reshape(raw_oof.shape)


def release_fit(validated: CalibratedScorer, chosen: Candidate, X: pd.DataFrame, y: np.ndarray,
                refit: Callable[[Pipeline, pd.DataFrame, np.ndarray], Pipeline] | None = None, rows: int | None = None
                ) -> CalibratedScorer:
    """The served model of `train.release: all_labelled`: the chosen pipeline (its configuration and round count)
    fitted again on every labelled applicant (`X`, `y`: the training rows and the holdout), with the validated
    model's calibrator and a threshold that stays the threshold stage's.

    Why: the holdout's fifth of the labelled applicants is worth about +0.002 AUC (on the visible real applicants,
    `python -m tools.model_study --release`: +0.0020, se 0.0023, 5 x 3 folds: within noise), which a plain model
    trained on every row would otherwise keep over ours. What it costs: the served model is not the one
    evaluate measured; it is the same procedure on a quarter more rows, and its calibrator is the one already
    carried over from the out-of-fold models (fitted on 4/5 of the training rows) to the validated model.
    `refit` and `rows` as in fit_final."""
    return fitted_scorer(chosen, validated.calibrator, X, y, refit, rows)


def fitted_scorer(chosen: Candidate, calibrator: Any, X: pd.DataFrame, y: np.ndarray,
                  refit: Callable[[Pipeline, pd.DataFrame, np.ndarray], Pipeline] | None, rows: int | None
                  ) -> CalibratedScorer:
    """The chosen pipeline fitted on `X`, `y` (or by `refit`, elsewhere), behind `calibrator`."""
    pipeline = refit(chosen.estimator, X, y) if refit else clone(chosen.estimator).fit(X, y)
    return scorer_of(pipeline, calibrator, chosen.model, X, rows)


def scorer_of(pipeline: Pipeline, calibrator: Any, model_name: str, X: pd.DataFrame, rows: int | None = None
              ) -> CalibratedScorer:
    """The fitted pipeline and calibrator, with what reasons compare an applicant to: the mean preprocessed input and
    the percentiles of the applicants `X` (those it was fitted on, or their sample), and `rows_`, how many
    applicants it was fitted on (`rows`, else len(X))."""
    model = CalibratedScorer(pipeline, calibrator, model_name)
    model.reference_ = np.asarray(pipeline.named_steps["prep"].transform(X), dtype=float).mean(axis=0)
    model.quantiles_ = reference_quantiles(X)
    model.rows_ = int(rows) if rows is not None else len(X)
    return model


def reference_quantiles(X: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each numeric input's percentiles 0, 1, ..., 100 over the training applicants: a reason says where an
    applicant's value lies among them ("External score 2 is low (0.41, 27th percentile)")."""
    numeric = X.select_dtypes("number")
    numeric = numeric.loc[:, numeric.notna().any().to_numpy()]
    grid = np.nanquantile(numeric.to_numpy(dtype=float), np.linspace(0, 1, 101), axis=0)
    return {name: grid[:, j] for j, name in enumerate(numeric.columns)}
