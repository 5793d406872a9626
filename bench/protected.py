"""Measurement: what leaving protected attributes out of the model's inputs costs, by repeated cross-validation.

    python bench/protected.py --source embedded [--repeats 2] [--folds 5]
    python bench/protected.py --source real      # the key-coherent real rows in ../shared (prepared in a temp folder)

Three variants of XGBoost (the train stage's best parameters of reports/train.json), on the same repeated
stratified folds: every input, without params.yaml `protected.fields` (the pipeline's choice), and without those and
age as well (DAYS_BIRTH, AGE_YEARS, EMPLOYED_TO_AGE, PHONE_CHANGE_TO_AGE). Per fold: AUC and the lowest business cost
over thresholds on the fold's scores (the same optimism for every variant). Differences to "every input" are paired
over the folds with the Nadeau-Bengio corrected standard error (`intervals.paired_difference`). Prints a JSON line.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import make_pipeline
from xgboost import XGBClassifier

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scoring import features  # noqa: E402
from scoring.data.io import read_prepared  # noqa: E402
from scoring.data.prepare import prepare_tables  # noqa: E402
from scoring.data.validation import ContractValidator  # noqa: E402
from scoring.model import training  # noqa: E402
from scoring.model.cost import min_cost  # noqa: E402
from scoring.model.intervals import paired_difference  # noqa: E402
from scoring.settings import Settings, configure_logging, load_settings  # noqa: E402

logger = logging.getLogger("bench.protected")
MODEL = "xgboost"
SHARED = REPO.parent / "shared" / "data" / "home-credit"
FIXED = {"subsample": 0.8, "colsample_bytree": 0.5, "reg_lambda": 5, "tree_method": "hist", "random_state": 0}
"""The train stage's XGBoost settings besides its tuned parameters; the tree count is reports/train.json's (no inner
early-stopping CV: four times faster, the same for every variant)."""
AGE = ["DAYS_BIRTH", "AGE_YEARS", "EMPLOYED_TO_AGE", "PHONE_CHANGE_TO_AGE"]
REAL_FILES = {"application_train.csv.gz": "coherent10k/application_train.csv.gz",
              "bureau.csv.gz": "coherent10k/bureau.csv.gz",
              "bureau_balance.csv.gz": "coherent10k/bureau_balance.csv.gz",
              "credit_card_balance.csv.gz": "coherent10k/credit_card_balance.csv.gz"}


def embedded(settings: Settings) -> tuple[pd.DataFrame, np.ndarray]:
    """The pipeline's training features (data/features/train.parquet, built with every input)."""
    fit = pd.read_parquet(settings.paths.train_features)
    if any(name not in fit.columns for name in settings.protected.fields):
        raise SystemExit(f"{settings.paths.train_features} lacks {settings.protected.fields}: it was built without "
                         "them; use a features file built with every input")
    return fit.drop(columns="TARGET"), fit["TARGET"].to_numpy()


def real(settings: Settings) -> tuple[pd.DataFrame, np.ndarray]:
    """The real rows of ../shared, through prepare and featurize in a temporary folder (never copied elsewhere)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        raw.mkdir()
        for name, relative in REAL_FILES.items():
            (raw / name).symlink_to(SHARED / relative)
        prepare_tables(raw, Path(tmp) / "prepared", Path(tmp) / "reports", ContractValidator())
        tables = read_prepared(Path(tmp) / "prepared")
    apps = tables["application_train"]
    X = features.build_features(apps, features.history_features(tables))
    return X, apps["TARGET"].to_numpy()


def fold_figures(X: pd.DataFrame, y: np.ndarray, model: str, params: dict, settings: Settings,
                 splits: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, list[float]]:
    """AUC and lowest cost of each fold."""
    out: dict[str, list[float]] = {"auc": [], "cost": []}
    for i, (train, test) in enumerate(splits):
        pipeline = make_pipeline(training.preprocessor(*training.split_columns(X), model),
                                 XGBClassifier(**{**FIXED, **params}, n_jobs=settings.train.n_jobs))
        pipeline.fit(X.iloc[train], y[train])
        proba = pipeline.predict_proba(X.iloc[test])[:, 1]
        out["auc"].append(float(roc_auc_score(y[test], proba)))
        out["cost"].append(float(min_cost(y[test], proba, settings.cost)))
        logger.info("fold %d/%d: AUC %.4f", i + 1, len(splits), out["auc"][-1])
    return out


def main() -> None:
    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["embedded", "real"], default="embedded")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    settings = load_settings(REPO / "params.yaml").under(REPO)
    X, y = embedded(settings) if args.source == "embedded" else real(settings)
    params = json.loads(settings.paths.train_report.read_text())["models"].get(MODEL, {}).get("best_params", {})
    folds = RepeatedStratifiedKFold(n_splits=args.folds, n_repeats=args.repeats, random_state=settings.train.seed)
    splits = list(folds.split(X, y))
    protected = list(settings.protected.fields)
    variants = {"every input": [], "without protected": protected, "without protected and age": protected + AGE}
    figures = {name: fold_figures(X.drop(columns=[c for c in drop if c in X]), y, MODEL, params, settings, splits)
               for name, drop in variants.items()}
    base = figures["every input"]
    report = {"source": args.source, "rows": len(y), "default_rate": round(float(y.mean()), 4), "model": MODEL,
              "folds": f"{args.repeats}x{args.folds}", "protected": protected, "variants": {}}
    for name, f in figures.items():
        report["variants"][name] = {
            "auc": round(float(np.mean(f["auc"])), 4), "cost": round(float(np.mean(f["cost"])), 4),
            **({} if f is base else {
                f"{key}_change": {"mean": round(d.mean, 4), "se": round(d.se, 4)}
                for key in ("auc", "cost") for d in [paired_difference(f[key], base[key], 1 / args.folds)]})}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
